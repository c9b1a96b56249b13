"""convert(kernels=...): the targets as plug-ins, the float reference target, and clear errors for bad options."""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

import keras_bnn.tflite
from keras_bnn.tflite.runtimes import open_runtime

BINARY = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip")


def _model():
    """A binary conv, BatchNorm (trained-like statistics: no pre-activation is exactly 0), a binary dense layer."""
    inputs = tf.keras.Input((6, 6, 4), batch_size=1)
    x = lq.layers.QuantConv2D(8, 3, padding="same", pad_values=1.0, **BINARY)(inputs)
    norm = tf.keras.layers.BatchNormalization()
    x = tf.keras.layers.Flatten()(norm(x))
    model = tf.keras.Model(inputs, lq.layers.QuantDense(5, **BINARY)(x))
    rng = np.random.default_rng(3)
    norm.set_weights([rng.uniform(0.5, 2, 8), rng.normal(size=8), rng.normal(size=8) + 0.3, rng.uniform(0.5, 2, 8)])
    return model


def _pixels(count=8, seed=0):
    """Integer inputs: the int8 file reads them exactly (a sign of a rounded float input could differ)."""
    return np.random.default_rng(seed).integers(-8, 8, (count, 6, 6, 4)).astype(np.float32)


def test_bad_kernels_and_options_are_clear_errors():
    model = _model()
    with pytest.raises(ValueError, match="kernels must be one of 'float', 'int8', 'lce', got 'int4'"):
        keras_bnn.tflite.convert(model, kernels="int4")
    with pytest.raises(ValueError, match="needs representative_data"):
        keras_bnn.tflite.convert(model, kernels="int8")
    with pytest.raises(TypeError, match="unknown option.*'experimental_default_int8_range'"):
        keras_bnn.tflite.convert(model, kernels="int8", representative_data=_pixels(),
                                 experimental_default_int8_range=(-1, 1))
    with pytest.raises(TypeError, match="target='xcore' is an option of kernels='lce'"):
        keras_bnn.tflite.convert(model, kernels="int8", representative_data=_pixels(), target="xcore")
    with pytest.raises(ValueError, match="float32 file"):
        keras_bnn.tflite.convert(model, kernels="float", inference_input_type=tf.int8)


def test_each_target_runs_in_its_runtime_and_agrees_with_keras():
    model, x = _model(), _pixels(16, seed=1)
    for kernels, runtime in (("lce", "lce"), ("int8", "litert"), ("int8", "tflm"), ("float", "litert")):
        options = {"representative_data": x} if kernels == "int8" else {}
        result = keras_bnn.tflite.convert(model, kernels=kernels, report=True, **options)
        custom = keras_bnn.tflite.flatbuffer.read_flatbuffer(result.flatbuffer).custom_op_types()
        assert (custom >= {"LceBconv2d"}) if kernels == "lce" else custom == set(), (kernels, custom)
        check = keras_bnn.tflite.verify(model, result.flatbuffer, x, runtime=runtime)
        assert check.runtime == runtime and check.top1_agreement == 1.0, (kernels, runtime, check)


def test_an_int8_file_is_inspected_as_one():
    model = _model()
    flatbuffer = keras_bnn.tflite.convert(model, kernels="int8", representative_data=_pixels())
    report = keras_bnn.tflite.inspect(flatbuffer)
    assert report.macs["bitpacked"] == 0 and report.macs["unpacked_binary"] == 6 * 6 * 8 * 9 * 4 + 288 * 5
    assert report.bitpacked_share == 0.0 and report.size_ratio > 2
    assert any("about 8x its 1-bit ideal" in note for note in report.notes)
    assert keras_bnn.tflite.runtimes.default_runtime(keras_bnn.tflite.flatbuffer.read_flatbuffer(flatbuffer)) == "litert"


def test_the_float_target_is_stock_tflite_for_any_batch():
    model = _model()
    flatbuffer = keras_bnn.tflite.convert(model, kernels="float", batch_size=3)
    runtime = open_runtime(flatbuffer, "tflite")
    assert runtime.inputs[0].shape == (3, 6, 6, 4)
    x = _pixels(3)
    np.testing.assert_allclose(runtime.run([x])[0], model(x).numpy(), atol=1e-4)
