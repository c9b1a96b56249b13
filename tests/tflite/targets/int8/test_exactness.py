"""Binary layers lowered to int8 give exactly Keras' signs, in every runtime, including at ties.

Inputs are small integers (exact in int8) with many zeros; BatchNorm means sit on values the integer
accumulators reach, with beta = 0, so that many pre-activations are exactly 0 (larq's sign(0) = +1); scales of
both signs and zero. Every model ends in sign quantizer layers, whose +-1 outputs must match Keras bit for bit.
"""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

import keras_bnn
from keras_bnn.tflite.targets.int8 import convert_int8

BINARY = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint=None, use_bias=False)


def zero_heavy(rng, shape, n=24):
    return rng.choice([-2.0, -1.0, 0.0, 0.0, 0.0, 1.0, 3.0], size=(n, *shape)).astype(np.float32)


def tie_batch_norm(layer, rng, accumulator_values):
    """Means on reachable accumulator values, beta 0, gamma of mixed signs with some zeros."""
    channels = layer.gamma.shape[0]
    gamma = rng.choice([-1.5, -0.5, 0.0, 0.5, 2.0], size=channels)
    mean = rng.choice(accumulator_values, size=channels).astype(np.float32)
    layer.set_weights([gamma, np.zeros(channels), mean, rng.uniform(0.5, 2.0, channels)])


def set_binary_kernels(model, rng):
    for layer in model.layers:
        if isinstance(layer, (lq.layers.QuantConv2D, lq.layers.QuantDense)):
            layer.kernel.assign(rng.normal(size=layer.kernel.shape))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conv_stack_with_ties_pads_pools_and_negative_scales(seed, exact_in_all_runtimes):
    rng = np.random.default_rng(seed)
    inputs = tf.keras.Input((8, 8, 3))
    conv1 = lq.layers.QuantConv2D(6, 3, padding="same", pad_values=0.0, **BINARY)(inputs)
    bn1 = tf.keras.layers.BatchNormalization()(conv1)
    conv2 = lq.layers.QuantConv2D(6, 3, padding="same", pad_values=1.0, **BINARY)(bn1)
    pool2 = tf.keras.layers.MaxPooling2D(2)(conv2)  # max-pool BEFORE BatchNorm
    bn2 = tf.keras.layers.BatchNormalization()(pool2)
    conv3 = lq.layers.QuantConv2D(8, 2, padding="valid", **BINARY)(bn2)
    bn3 = tf.keras.layers.BatchNormalization()(conv3)
    pool3 = tf.keras.layers.MaxPooling2D(2, padding="same")(bn3)  # max-pool AFTER BatchNorm
    flat = tf.keras.layers.Flatten()(pool3)
    dense = lq.layers.QuantDense(12, **BINARY)(flat)
    bn4 = tf.keras.layers.BatchNormalization()(dense)
    taps = [lq.quantizers.SteSign()(t) for t in (bn1, bn2, pool3, bn4)]
    model = tf.keras.Model(inputs, taps)
    set_binary_kernels(model, rng)
    for layer, values in zip([l for l in model.layers if isinstance(l, tf.keras.layers.BatchNormalization)],
                             [range(-27, 28, 3), range(-54, 55, 2), range(-24, 25, 2), range(-8, 9, 2)]):
        tie_batch_norm(layer, rng, list(values))
    x = zero_heavy(rng, (8, 8, 3))
    flatbuffer = convert_int8(model, representative_data=x)
    exact_in_all_runtimes(model, flatbuffer, x)


def test_ties_actually_happen():
    """The tie construction above does put pre-activations exactly on 0 (else the test would prove little)."""
    rng = np.random.default_rng(0)
    inputs = tf.keras.Input((8, 8, 3))
    conv = lq.layers.QuantConv2D(6, 3, padding="same", **BINARY)(inputs)
    bn = tf.keras.layers.BatchNormalization()(conv)
    model = tf.keras.Model(inputs, bn)
    set_binary_kernels(model, rng)
    tie_batch_norm(model.layers[-1], rng, list(range(-4, 5, 2)))
    y = model.predict(zero_heavy(rng, (8, 8, 3)), verbose=0)
    assert np.mean(y == 0) > 0.02


@pytest.mark.parametrize("pad_values", [0.0, 1.0])
def test_xnor_per_channel_alpha_with_ties(pad_values, exact_in_all_runtimes):
    """XNORConv2D: alpha = mean|W| differs per output channel; with |W| constant per channel the float conv is
    exact, so ties at zero are reproducible in Keras."""
    rng = np.random.default_rng(3)
    inputs = tf.keras.Input((6, 6, 4))
    conv = keras_bnn.legacy.layers.XNORConv2D(5, 3, padding="same", pad_values=pad_values, kernel_constraint=None)(inputs)
    bn = tf.keras.layers.BatchNormalization()(conv)
    model = tf.keras.Model(inputs, lq.quantizers.SteSign()(bn))
    alpha = np.array([0.25, 0.5, 1.0, 2.0, 0.125])
    conv_layer = model.layers[1]
    conv_layer.kernel.assign(rng.choice([-1.0, 1.0], size=conv_layer.kernel.shape) * alpha)
    gamma = np.array([1.0, -1.0, 0.5, -2.0, 1.0])
    mean = alpha * rng.choice(np.arange(-8, 9, 2), size=5)
    model.layers[2].set_weights([gamma, np.zeros(5), mean, np.ones(5)])
    x = zero_heavy(rng, (6, 6, 4))
    exact_in_all_runtimes(model, convert_int8(model, representative_data=x), x)


def test_xnor_generic_alpha_and_bias(exact_in_all_runtimes):
    rng = np.random.default_rng(4)
    inputs = tf.keras.Input((6, 6, 4))
    conv = keras_bnn.legacy.layers.XNORConv2D(7, 3, padding="same", use_bias=True, kernel_constraint=None)(inputs)
    pool = tf.keras.layers.MaxPooling2D(2)(conv)
    bn = tf.keras.layers.BatchNormalization()(pool)
    model = tf.keras.Model(inputs, lq.quantizers.SteSign()(bn))
    model.layers[1].kernel.assign(rng.normal(size=model.layers[1].kernel.shape))
    model.layers[1].bias.assign(rng.normal(size=7))
    model.layers[3].set_weights([rng.normal(size=7), rng.normal(size=7), rng.normal(size=7),
                                 rng.uniform(0.5, 2, 7)])
    x = zero_heavy(rng, (6, 6, 4))
    exact_in_all_runtimes(model, convert_int8(model, representative_data=x), x)


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_real_pixels_into_binary_weights(padding, exact_in_all_runtimes):
    """Raw pixels 0..255, Rescaling(1/127.5, -1) folded into a binary-weight conv: exact even with SAME zero
    padding, where a padded 0 is pixel 127.5 (two PADV2 copies, -1 and 0, summed by the conv)."""
    rng = np.random.default_rng(5)
    inputs = tf.keras.Input((8, 8, 1))
    x = tf.keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    conv = lq.layers.QuantConv2D(6, 3, padding=padding, kernel_quantizer="ste_sign", use_bias=False)(x)
    pool = tf.keras.layers.MaxPooling2D(2)(conv)
    bn = tf.keras.layers.BatchNormalization()(pool)
    model = tf.keras.Model(inputs, lq.quantizers.SteSign()(bn))
    model.layers[2].kernel.assign(rng.normal(size=model.layers[2].kernel.shape))
    model.layers[4].set_weights([rng.choice([-1.0, 1.0], 6), rng.normal(size=6) * 0.2, rng.normal(size=6),
                                 rng.uniform(0.5, 2, 6)])
    pixels = rng.choice([0, 0, 0, 255, 128, 127, 37], size=(24, 8, 8, 1)).astype(np.float32)
    exact_in_all_runtimes(model, convert_int8(model, representative_data=pixels), pixels)


def test_dense_on_real_input_and_threshold_quantizers(exact_in_all_runtimes):
    """BinaryNet's first layer (binary weights on real pixels), then keras_bnn's learnable-threshold and elastic
    signs (per-channel and scaled signs)."""
    rng = np.random.default_rng(6)
    inputs = tf.keras.Input((6, 6, 1))
    flat = tf.keras.layers.Flatten()(tf.keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs))
    dense1 = lq.layers.QuantDense(10, kernel_quantizer="ste_sign", use_bias=False)(flat)
    bn1 = tf.keras.layers.BatchNormalization()(dense1)
    dense2 = lq.layers.QuantDense(8, input_quantizer="learnable_threshold_sign", kernel_quantizer="ste_sign")(bn1)
    dense3 = lq.layers.QuantDense(6, input_quantizer="elastic_sign", kernel_quantizer="ste_sign")(dense2)
    model = tf.keras.Model(inputs, lq.quantizers.SteSign()(dense3))
    for layer in model.layers:
        for weight in layer.trainable_weights + layer.non_trainable_weights:
            if "moving_variance" in weight.name:
                weight.assign(rng.uniform(0.5, 2.0, weight.shape))
            elif "alpha" in weight.name:
                weight.assign(0.75)
            else:
                weight.assign(rng.normal(size=weight.shape))
    pixels = rng.choice([0, 0, 255, 128, 10], size=(24, 6, 6, 1)).astype(np.float32)
    exact_in_all_runtimes(model, convert_int8(model, representative_data=pixels), pixels)


def test_int8_input_and_output_types():
    rng = np.random.default_rng(7)
    inputs = tf.keras.Input((16,))
    outputs = lq.quantizers.SteSign()(lq.layers.QuantDense(8, **BINARY)(inputs))
    model = tf.keras.Model(inputs, outputs)
    x = zero_heavy(rng, (16,))
    flatbuffer = convert_int8(model, representative_data=x, inference_input_type=tf.int8,
                              inference_output_type=tf.int8)
    from keras_bnn.tflite.runtimes import run

    out = run(flatbuffer, x.astype(np.int8), "tflm")[0]  # integer inputs in [-128, 127]: scale 1, zero point 0
    assert out.dtype == np.int8
    np.testing.assert_array_equal(out.astype(np.float32) / 127, model.predict(x, verbose=0))
