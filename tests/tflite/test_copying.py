"""Any quantizer converts: the converter's copy keeps the user's quantizer objects (13.4 of the reliability issue).

Never worse than plain LCE: every model plain ``larq_compute_engine.convert_keras_model`` converts, ours converts
too, with the same outputs and at least its bitpacked share.
"""

import warnings

import larq as lq
import larq_compute_engine as lce
import numpy as np
import pytest
import tensorflow as tf

import keras_bnn.tflite
from keras_bnn.tflite.copying import copy_layer
from keras_bnn.tflite.runtimes import open_runtime


@tf.keras.utils.register_keras_serializable(package="keras_bnn_tests")
def registered_sign(x):
    return tf.where(x >= 0, tf.ones_like(x), -tf.ones_like(x))


def unregistered_sign(x):
    return tf.where(x >= 0, tf.ones_like(x), -tf.ones_like(x))


class UnregisteredSignQuantizer(lq.quantizers.Quantizer):
    """A quantizer class Keras cannot find by name."""

    precision = 1

    def call(self, inputs):
        return lq.math.sign(inputs)


QUANTIZERS = {
    "registered_function": lambda: registered_sign,
    "unregistered_function": lambda: unregistered_sign,
    "lambda": lambda: (lambda x: tf.where(x >= 0, 1.0, -1.0)),
    # typed at the interactive prompt (or made by eval): Keras cannot read its source to serialize it
    "lambda_without_source": lambda: eval("lambda x: tf.where(x >= 0, 1.0, -1.0)"),
    "custom_class": UnregisteredSignQuantizer,
}


def _model(layer_kind: str, quantizer) -> tf.keras.Model:
    inputs = tf.keras.Input((6, 6, 32) if layer_kind == "conv" else (64,), batch_size=1)
    if layer_kind == "conv":
        layer = lq.layers.QuantConv2D(16, 3, input_quantizer=quantizer, kernel_quantizer=quantizer)
    else:
        layer = lq.layers.QuantDense(16, input_quantizer=quantizer, kernel_quantizer=quantizer)
    x = layer(inputs)
    x = tf.keras.layers.Activation(quantizer)(x)  # an Activation layer holding the quantizer too
    model = tf.keras.Model(inputs, x)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def _run(flatbuffer: bytes, x: np.ndarray) -> np.ndarray:
    return open_runtime(flatbuffer, "lce").run([x])[0]


@pytest.mark.parametrize("layer_kind", ["conv", "dense"])
@pytest.mark.parametrize("name", sorted(QUANTIZERS))
def test_any_quantizer_converts_like_plain_lce(name, layer_kind):
    model = _model(layer_kind, QUANTIZERS[name]())
    plain = lce.convert_keras_model(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (a quantizer LCE does not lower to its sign is reported, not an error)
        ours = keras_bnn.tflite.convert(model, report=True)
    x = np.random.default_rng(1).normal(size=(1, *model.inputs[0].shape[1:])).astype(np.float32)
    np.testing.assert_allclose(_run(ours.flatbuffer, x), _run(plain, x), atol=1e-5)
    np.testing.assert_allclose(_run(ours.flatbuffer, x), model(x).numpy(), atol=1e-4)
    plain_share = keras_bnn.tflite.inspect(plain).bitpacked_share or 0.0
    assert (ours.report.bitpacked_share or 0.0) >= plain_share
    if layer_kind == "conv" or name == "custom_class":
        assert ours.report.op_counts.get("LceBconv2d", 0) >= keras_bnn.tflite.inspect(plain).op_counts.get(
            "LceBconv2d", 0)


@pytest.mark.parametrize("name", sorted(QUANTIZERS))
def test_the_copy_keeps_the_users_quantizer(name):
    quantizer = QUANTIZERS[name]()
    layer = lq.layers.QuantDense(4, input_quantizer=quantizer, kernel_quantizer=quantizer)
    copy = copy_layer(layer)
    if name == "custom_class":
        assert type(copy.input_quantizer) is UnregisteredSignQuantizer
    else:
        assert copy.input_quantizer is quantizer and copy.kernel_quantizer is quantizer


class _NoConfig(tf.keras.layers.Layer):
    """A layer without a config (a user layer that never implemented get_config)."""

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, inputs):
        return inputs * self.scale

    def get_config(self):
        raise NotImplementedError("no config")


def test_a_layer_that_cannot_be_copied_is_kept_and_reported():
    inputs = tf.keras.Input((64,), batch_size=1)
    x = _NoConfig(2.0, name="no_config")(inputs)
    x = lq.layers.QuantDense(8, input_quantizer="ste_sign", kernel_quantizer="ste_sign")(x)
    model = tf.keras.Model(inputs, x)
    with pytest.warns(UserWarning, match="no_config"):
        result = keras_bnn.tflite.convert(model, report=True)
    assert any("no_config" in note for note in result.notes) and result.report.bitpacked_share == 1.0
    x = np.random.default_rng(2).normal(size=(1, 64)).astype(np.float32)
    np.testing.assert_allclose(_run(result.flatbuffer, x), model(x).numpy(), atol=1e-4)
