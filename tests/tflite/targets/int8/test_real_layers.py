"""Real-valued layers in int8: close to Keras (int8 rounding), the same in every runtime up to rounding."""

import larq as lq
import numpy as np
import tensorflow as tf

import keras_bnn
from keras_bnn.tflite.targets.int8 import convert_int8
from keras_bnn.tflite.runtimes import run


def test_real_layers_follow_keras(ops_of):
    inputs = tf.keras.Input((12, 12, 3))
    x = tf.keras.layers.Conv2D(8, 3, padding="same", use_bias=True)(inputs)
    x = tf.keras.layers.BatchNormalization()(x)
    skip = tf.keras.layers.AveragePooling2D(2)(x)
    x = tf.keras.layers.MaxPooling2D(2)(x)
    x = tf.keras.layers.Add()([x, skip])
    x = tf.keras.layers.Dropout(0.5)(x)
    pooled = tf.keras.layers.GlobalAveragePooling2D()(x)
    flat = tf.keras.layers.Reshape((6 * 6 * 8,))(x)
    x = tf.keras.layers.Add()([tf.keras.layers.Dense(8)(flat), pooled])
    model = tf.keras.Model(inputs, tf.keras.layers.Activation("softmax")(tf.keras.layers.Dense(5)(x)))
    x_data = np.random.default_rng(0).normal(size=(64, 12, 12, 3)).astype(np.float32)
    flatbuffer = convert_int8(model, representative_data=x_data)
    assert {"AVERAGE_POOL_2D", "ADD", "SOFTMAX", "FULLY_CONNECTED", "CONV_2D"} <= set(ops_of(flatbuffer))
    expected = model.predict(x_data, verbose=0)
    outputs = {runtime: run(flatbuffer, x_data, runtime)[0] for runtime in ("litert", "tflite-builtin", "tflm")}
    for runtime, actual in outputs.items():
        assert np.abs(actual - expected).max() < 0.08, runtime  # a few int8 steps of the softmax (1/256)
        assert np.mean(actual.argmax(1) == expected.argmax(1)) >= 0.9, runtime
    # TFLite's optimized int8 softmax and TFLite Micro's reference one differ by a few 1/256 steps.
    np.testing.assert_allclose(outputs["tflite-builtin"], outputs["tflm"], atol=4 / 256)


def test_bireal_blocks_identity_and_projection():
    inputs = tf.keras.Input((8, 8, 4))
    first = keras_bnn.legacy.layers.BiRealConv2D(4, name="identity")(inputs)
    second = keras_bnn.legacy.layers.BiRealConv2D(8, strides=2, name="projection")(first)
    rng = np.random.default_rng(1)
    for weight in tf.keras.Model(inputs, second).weights:
        if "moving_variance" in weight.name:
            weight.assign(rng.uniform(0.5, 2.0, weight.shape))
        else:
            weight.assign(rng.normal(size=weight.shape))
    x_data = rng.integers(-3, 4, size=(32, 8, 8, 4)).astype(np.float32)
    # The first block takes exact signs (integer input): its output is off only by int8 rounding (residual
    # requantization, ADD), a few steps of its scale.
    model = tf.keras.Model(inputs, first)
    expected = model.predict(x_data, verbose=0)
    step = (expected.max() - min(expected.min(), 0)) / 255
    for runtime in ("litert", "tflm"):
        actual = run(convert_int8(model, representative_data=x_data), x_data, runtime)[0]
        assert np.abs(actual - expected).max() <= 2 * step, runtime
    # The projection block takes signs of int8-rounded values: some flip; most outputs stay close.
    model = tf.keras.Model(inputs, second)
    expected = model.predict(x_data, verbose=0)
    step = (expected.max() - min(expected.min(), 0)) / 255
    for runtime in ("litert", "tflm"):
        actual = run(convert_int8(model, representative_data=x_data), x_data, runtime)[0]
        assert np.median(np.abs(actual - expected)) <= step, runtime


def test_quantizer_layer_output_is_exact_plus_minus_one(exact_in_all_runtimes):
    inputs = tf.keras.Input((10,))
    outputs = lq.quantizers.ApproxSign()(tf.keras.layers.Dense(6)(lq.quantizers.SteSign()(inputs)))
    model = tf.keras.Model(inputs, outputs)
    x_data = np.random.default_rng(2).integers(-2, 3, size=(30, 10)).astype(np.float32)
    # Dense has real weights: its signs are exact only up to its int8 weights, so compare the first sign alone.
    signs = tf.keras.Model(inputs, model.layers[1].output)
    exact_in_all_runtimes(signs, convert_int8(signs, representative_data=x_data), x_data)
