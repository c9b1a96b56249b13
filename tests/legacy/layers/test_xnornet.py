"""XNORConv2D: XNOR-Net's scaled binary convolution, optional input scaling, and errors."""

import keras_bnn
import larq
import numpy as np
import pytest
import tensorflow as tf

from keras_bnn.legacy.layers import XNORConv2D


def _xnor_reference(x, kernel, padding):
    x_bin = np.where(x >= 0, 1.0, -1.0).astype(np.float32)
    alpha = np.abs(kernel).mean(axis=(0, 1, 2))
    w_bin = (np.where(kernel >= 0, 1.0, -1.0) * alpha).astype(np.float32)
    if padding == "same":
        kh, kw = kernel.shape[:2]
        x_bin = np.pad(x_bin, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)), constant_values=1.0)
    return tf.nn.conv2d(x_bin, w_bin, 1, "VALID").numpy()


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_output_is_alpha_scaled_binary_convolution(padding):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 7, 7, 5)).astype(np.float32)
    layer = XNORConv2D(6, 3, padding=padding)
    out = layer(x).numpy()
    expected = _xnor_reference(x, layer.kernel.latent_variable.numpy(), padding)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_alpha_is_mean_absolute_weight_per_output_channel():
    layer = XNORConv2D(3, 2)
    layer.build((1, 4, 4, 2))
    latent = np.arange(24, dtype=np.float32).reshape(2, 2, 2, 3) / 24.0 - 0.5
    layer.kernel.latent_variable.assign(latent)
    with larq.context.quantized_scope(True):
        quantized = tf.convert_to_tensor(layer.kernel).numpy()
    np.testing.assert_allclose(np.abs(quantized).max(axis=(0, 1, 2)), np.abs(latent).mean(axis=(0, 1, 2)), rtol=1e-6)


def test_input_scaling_multiplies_by_box_filtered_channel_mean():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 6, 6, 4)).astype(np.float32)
    plain = XNORConv2D(5, 3)
    plain.build(x.shape)
    scaled = XNORConv2D(5, 3, input_scaling=True)
    scaled.build(x.shape)
    scaled.set_weights(plain.get_weights())
    channel_mean = np.abs(x).mean(axis=-1, keepdims=True)
    k = tf.nn.avg_pool2d(channel_mean, 3, 1, "VALID").numpy()
    np.testing.assert_allclose(scaled(x).numpy(), plain(x).numpy() * k, rtol=1e-5, atol=1e-5)


def test_defaults_are_xnor_net():
    layer = XNORConv2D(4, 3)
    assert isinstance(layer.input_quantizer, larq.quantizers.SteSign)
    assert isinstance(layer.kernel_quantizer, larq.quantizers.MagnitudeAwareSign)
    assert layer.use_bias is False and layer.pad_values == 1.0


def test_kernel_that_does_not_fit_is_refused():
    with pytest.raises(ValueError, match=r"kernel_size \(5, 5\).*\(3, 3\)"):
        XNORConv2D(4, 5)(tf.zeros((1, 3, 3, 2)))


def test_wrong_input_rank_is_refused():
    with pytest.raises(ValueError, match="rank 4|ndim=4"):
        XNORConv2D(4, 1)(tf.zeros((1, 3, 2)))


def test_bad_arguments():
    with pytest.raises(ValueError, match="channels_last"):
        XNORConv2D(4, 3, data_format="channels_first")
    with pytest.raises(TypeError, match="input_scaling"):
        XNORConv2D(4, 3, input_scaling="yes")
    with pytest.raises(ValueError, match="not_a_quantizer"):
        XNORConv2D(4, 3, kernel_quantizer="not_a_quantizer")


def test_rank_five_input_is_refused_by_our_check():
    with pytest.raises(ValueError, match=r"rank 4.*rank 5"):
        XNORConv2D(4, 1).build((1, 2, 3, 3, 2))
