"""Two-step training: requantize keeps every weight and changes only the quantizers it is asked to."""

import keras
import numpy as np
import pytest

import keras_bnn
from keras_bnn.layers import BiRealConv2D, QuantConv2D, QuantDense
from keras_bnn.quantizers import LearnableThresholdSign
from keras_bnn.training import requantize
from tests.training.gradients import numpy

QUANTIZER_KEYS = {"input_quantizer", "kernel_quantizer", "kernel_constraint"}


def _binary_model():
    inputs = keras.Input((8, 8, 2))
    x = QuantConv2D(4, 3, padding="same", kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                    use_bias=False, name="first")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = BiRealConv2D(4, name="bireal")(x)
    x = QuantConv2D(6, 3, strides=2, input_quantizer=LearnableThresholdSign(), kernel_quantizer="ste_sign",
                    kernel_constraint="weight_clip", name="thresholded")(x)
    x = keras.layers.Flatten()(x)
    outputs = QuantDense(3, input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                         name="head")(x)
    model = keras.Model(inputs, outputs)
    model(np.zeros((1, 8, 8, 2), np.float32))  # builds every quantizer (the learned threshold's beta)
    return model


def _trained_binary_model():
    model = _binary_model()
    rng = np.random.default_rng(0)
    for weight in model.weights:  # non-trivial values everywhere, BatchNorm statistics included
        value = rng.uniform(-0.9, 0.9, size=weight.shape).astype(np.float32)
        weight.assign(np.abs(value) + 0.1 if "variance" in weight.path else value)
    return model


def _strip(config):
    return {key: value for key, value in config.items() if key not in QUANTIZER_KEYS and key != "name"}


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
            assert keras_bnn.quantizers.serialize(new.input_quantizer) == keras_bnn.quantizers.serialize(
                old.input_quantizer)
    # The learned threshold of the kept input quantizer is carried over too.
    np.testing.assert_array_equal(numpy(step1.get_layer("thresholded").input_quantizer.beta),
                                  numpy(model.get_layer("thresholded").input_quantizer.beta))
    # Step 1 really uses real weights: its first layer is a real convolution of the same latent kernel.
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 2)).astype(np.float32)
    expected = keras.ops.conv(x, model.get_layer("first").kernel, padding="same")
    np.testing.assert_allclose(numpy(step1.get_layer("first")(x)), numpy(expected), rtol=1e-5, atol=1e-5)


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
    np.testing.assert_array_equal(numpy(step2(x)), numpy(model(x)))
    assert not np.allclose(numpy(step1(x)), numpy(model(x)))


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
    step1.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(3)
    history = step1.fit(rng.normal(size=(8, 8, 8, 2)), rng.integers(0, 3, 8), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_sequential_model_and_synchronized_batchnorm():
    synchronized = keras.backend.backend() == "tensorflow"  # Keras supports it there only
    model = keras.Sequential([
        keras.Input((4,)),
        QuantDense(3, kernel_quantizer="ste_sign", kernel_constraint="weight_clip", name="dense"),
        keras.layers.BatchNormalization(synchronized=synchronized, name="sync_bn"),
    ])
    copy = requantize(model, kernel_quantizer=None)
    assert isinstance(copy, keras.Sequential) and copy.get_layer("sync_bn").synchronized == synchronized
    assert copy.get_layer("dense").kernel_quantizer is None
    assert copy.get_layer("dense").kernel_constraint is not None  # KEEP


def test_bad_arguments():
    class Subclassed(keras.Model):
        def call(self, inputs):
            return inputs

    with pytest.raises(TypeError, match="Functional or Sequential"):
        requantize(Subclassed(), kernel_quantizer=None)
    with pytest.raises(ValueError, match="no layers named"):
        requantize(_binary_model(), kernel_quantizer=None, layers=["nope"])
    with pytest.raises(ValueError):
        requantize(_binary_model(), kernel_quantizer="not_a_quantizer")
