"""verify() with the real LCE converter and the real LCE interpreter."""

import larq as lq
import larq_compute_engine as lce
import numpy as np
import pytest
import tensorflow as tf

from keras_bnn.tflite.verification import verify

BINARY = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip", use_bias=False)


def _binary_conv_model(batch_size: int) -> tf.keras.Model:
    """Binary conv -> BatchNorm with random statistics -> global pooling -> float classifier."""
    inputs = tf.keras.Input(batch_size=batch_size, shape=(8, 8, 16))
    x = lq.layers.QuantConv2D(32, 3, **BINARY)(inputs)
    norm = tf.keras.layers.BatchNormalization()
    x = norm(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf.keras.layers.Dense(10)(x)
    rng = np.random.default_rng(0)
    norm.set_weights([rng.uniform(0.5, 2, 32), rng.normal(size=32), rng.normal(scale=5, size=32),
                      rng.uniform(10, 100, 32)])  # gamma, beta, moving mean, moving variance
    return tf.keras.Model(inputs, outputs)


def test_keras_and_lce_agree_with_chunking():
    model = _binary_conv_model(batch_size=3)
    flatbuffer = lce.convert_keras_model(model)
    x = np.random.default_rng(1).normal(size=(10, 8, 8, 16))  # 10 = 3 + 3 + 3 + 1: the last chunk is padded

    report = verify(model, flatbuffer, x)

    assert report.n_samples == 10 and report.flatbuffer_batch_size == 3
    # The binary conv sums are exact integers on both sides; BatchNorm, pooling and the float Dense accumulate
    # float32 in a different order in TF and TFLite, so outputs of size ~max_abs_keras differ by a few float32
    # ulps times the number of summed terms (<= 64 per pooled value, 32 per logit): well under 1e-5 relative.
    assert report.max_abs_diff <= 1e-5 * max(1.0, report.max_abs_keras)
    assert report.mean_abs_diff <= report.max_abs_diff
    assert report.top1_agreement == 1.0
    assert report.to_dict()["n_samples"] == 10
    assert "10 samples" in str(report)


def test_detects_a_flatbuffer_of_another_model():
    model = _binary_conv_model(batch_size=2)
    other = _binary_conv_model(batch_size=2)  # same architecture, other random conv and dense weights
    x = np.random.default_rng(2).normal(size=(4, 8, 8, 16))

    report = verify(model, lce.convert_keras_model(other), x)

    assert report.max_abs_diff > 1e-2 * report.max_abs_keras


def test_int8_inputs_and_outputs_are_quantized_with_tensor_parameters():
    inputs = tf.keras.Input(batch_size=2, shape=(4, 4, 8))
    x = lq.layers.QuantConv2D(8, 1, **BINARY)(inputs)
    # |outputs| <= 8 channels * 8 (binary 1x1 conv) * 0.1: inside the default int8 range, so nothing saturates.
    dense = tf.keras.layers.Dense(4, kernel_initializer=tf.keras.initializers.RandomUniform(-0.1, 0.1))
    model = tf.keras.Model(inputs, dense(x))
    with pytest.warns(UserWarning, match="experimental_default_int8_range"):  # fine: no real calibration needed
        flatbuffer = lce.convert_keras_model(model, inference_input_type=tf.int8, inference_output_type=tf.int8,
                                             experimental_default_int8_range=(-10, 10))
    rng = np.random.default_rng(3)
    # |x| >= 0.5 is far more than half an input step (20 / 255 / 2 ~ 0.04), so quantizing x never flips a sign.
    x = rng.choice([-1, 1], size=(5, 4, 4, 8)) * rng.uniform(0.5, 2, size=(5, 4, 4, 8))

    report = verify(model, flatbuffer, x)

    assert report.quantized_io and report.n_samples == 5
    # Error budget: output rounding <= half a step (20 / 255 / 2 ~ 0.04) + int8 Dense weights, each off by
    # <= max|w| / 254 = 0.1 / 254, times sum |h| <= 8 inputs * 8 (binary 1x1 conv over 8 channels) ~ 0.025.
    assert 0 < report.max_abs_diff <= 0.07


def test_mismatched_input_shape_names_both_shapes():
    model = _binary_conv_model(batch_size=1)
    flatbuffer = lce.convert_keras_model(model)
    with pytest.raises(ValueError, match=r"\(8, 8, 3\).*\(8, 8, 16\)"):
        verify(model, flatbuffer, np.zeros((2, 8, 8, 3)))
    with pytest.raises(ValueError, match="at least one sample"):
        verify(model, flatbuffer, np.zeros((0, 8, 8, 16)))


def test_bad_model_or_flatbuffer():
    model = _binary_conv_model(batch_size=1)
    x = np.zeros((1, 8, 8, 16))
    with pytest.raises(TypeError, match="tf.keras.Model"):
        verify(lambda t: t, lce.convert_keras_model(model), x)
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        verify(model, b"this is not a flatbuffer", x)
