"""Two-step training: requantize keeps every weight and changes only the quantizers it is asked to."""

import keras_bnn.legacy  # noqa: F401  (first: selects tf-keras)
import larq
import numpy as np
import pytest
import tensorflow as tf

from keras_bnn.legacy.layers import BiRealConv2D
from keras_bnn.legacy.quantizers import LearnableThresholdSign
from keras_bnn.legacy.training import requantize

QUANTIZER_KEYS = {"input_quantizer", "kernel_quantizer", "kernel_constraint"}


def _binary_model():
    inputs = tf.keras.Input((8, 8, 2))
    x = larq.layers.QuantConv2D(4, 3, padding="same", kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                                use_bias=False, name="first")(inputs)
    x = tf.keras.layers.BatchNormalization(name="bn")(x)
    x = BiRealConv2D(4, name="bireal")(x)
    x = larq.layers.QuantConv2D(6, 3, strides=2, input_quantizer=LearnableThresholdSign(),
                                kernel_quantizer="ste_sign", kernel_constraint="weight_clip", name="thresholded")(x)
    x = tf.keras.layers.Flatten()(x)
    outputs = larq.layers.QuantDense(3, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                                     kernel_constraint="weight_clip", name="head")(x)
    return tf.keras.Model(inputs, outputs)


def _trained_binary_model():
    model = _binary_model()
    rng = np.random.default_rng(0)
    for weight in model.weights:  # non-trivial values everywhere, BatchNorm statistics included
        value = rng.uniform(-0.9, 0.9, size=weight.shape).astype(np.float32)
        weight.assign(np.abs(value) + 0.1 if "variance" in weight.name else value)
    return model


def _strip(config):
    return {key: value for key, value in config.items() if key not in QUANTIZER_KEYS}


def _assert_same_weights(model_a, model_b):
    weights_a, weights_b = model_a.get_weights(), model_b.get_weights()
    assert len(weights_a) == len(weights_b)
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_array_equal(a, b)


def test_step_one_keeps_weights_and_only_drops_weight_quantizers():
    model = _trained_binary_model()
    step1 = requantize(model, kernel_quantizer=None, kernel_constraint=None)
    _assert_same_weights(model, step1)
    for old, new in zip(model.layers, step1.layers):
        assert old.name == new.name and type(old) is type(new)
        assert _strip(new.get_config()) == _strip(old.get_config())
        if hasattr(old, "kernel_quantizer"):
            assert new.kernel_quantizer is None and new.kernel_constraint is None
            assert larq.quantizers.serialize(new.input_quantizer) == larq.quantizers.serialize(old.input_quantizer)
    # The learned threshold of the kept input quantizer is carried over too.
    np.testing.assert_array_equal(step1.get_layer("thresholded").input_quantizer.beta.numpy(),
                                  model.get_layer("thresholded").input_quantizer.beta.numpy())
    # Step 1 really uses real weights: its first layer is a real convolution of the same latent kernel.
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 2)).astype(np.float32)
    first = step1.get_layer("first")
    expected = tf.nn.conv2d(x, model.get_layer("first").kernel.latent_variable, 1, "SAME")
    np.testing.assert_allclose(first(x).numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_step_two_restores_the_binary_model_exactly():
    model = _trained_binary_model()
    step1 = requantize(model, kernel_quantizer=None, kernel_constraint=None)
    step2 = requantize(step1, kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                       layers=lambda layer: layer.name != "bireal")
    step2 = requantize(step2, kernel_quantizer="magnitude_aware_sign", kernel_constraint="weight_clip",
                       layers=["bireal"])  # Bi-Real's own weight quantizer
    _assert_same_weights(model, step2)
    for old, new in zip(model.layers, step2.layers):
        assert _strip(new.get_config()) == _strip(old.get_config())
        for key in ("input_quantizer", "kernel_quantizer"):
            assert type(getattr(new, key, None)) is type(getattr(old, key, None))
    x = np.random.default_rng(2).normal(size=(3, 8, 8, 2)).astype(np.float32)
    np.testing.assert_array_equal(step2(x).numpy(), model(x).numpy())
    assert not np.allclose(step1(x).numpy(), model(x).numpy())


def test_requantize_only_named_layers_and_replaced_quantizer_weights_reset():
    model = _trained_binary_model()
    changed = requantize(model, input_quantizer="ste_sign", layers=["thresholded"])
    assert type(changed.get_layer("thresholded").input_quantizer).__name__ == "SteSign"
    assert type(changed.get_layer("bireal").input_quantizer).__name__ == "ApproxSign"  # untouched
    assert changed.get_layer("first").input_quantizer is None
    # Same own weights; the removed LearnableThresholdSign's beta is gone with it.
    assert len(changed.get_weights()) == len(model.get_weights()) - 1
    for old, new in zip(model.get_layer("head").get_weights(), changed.get_layer("head").get_weights()):
        np.testing.assert_array_equal(old, new)


def test_requantized_model_trains():
    step1 = requantize(_trained_binary_model(), kernel_quantizer=None, kernel_constraint=None)
    step1.compile("adam", tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(3)
    history = step1.fit(rng.normal(size=(8, 8, 8, 2)), rng.integers(0, 3, 8), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_bad_arguments():
    class Subclassed(tf.keras.Model):
        def call(self, inputs):
            return inputs

    with pytest.raises(TypeError, match="Functional or Sequential"):
        requantize(Subclassed(), kernel_quantizer=None)
    with pytest.raises(ValueError, match="no layers named"):
        requantize(_binary_model(), kernel_quantizer=None, layers=["nope"])
    with pytest.raises(ValueError):
        requantize(_binary_model(), kernel_quantizer="not_a_quantizer")


def test_synchronized_batchnorm_stays_synchronized():
    """tf-keras' BatchNormalization.get_config drops synchronized=True; requantize keeps it (tf.distribute)."""
    model = tf.keras.Sequential([
        tf.keras.Input((4,)),
        larq.layers.QuantDense(3, kernel_quantizer="ste_sign", kernel_constraint="weight_clip"),
        tf.keras.layers.BatchNormalization(synchronized=True, name="sync_bn"),
    ])
    assert requantize(model, kernel_quantizer=None).get_layer("sync_bn").synchronized
