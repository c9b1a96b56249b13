"""BiRealConv2D: forward pass against the paper's formula, shortcut choice, gradients and errors."""

import keras_bnn
import larq
import numpy as np
import pytest
import tensorflow as tf

from keras_bnn.legacy.layers import BiRealConv2D


def _reference_binary_conv(x, kernel, strides):
    """sign(x) ⊛ (mean|W| · sign(W)) with +1 SAME padding, written from the definitions."""
    x_bin = np.where(x >= 0, 1.0, -1.0).astype(np.float32)
    scale = np.abs(kernel).mean(axis=(0, 1, 2))
    w_bin = np.where(kernel >= 0, 1.0, -1.0) * scale
    kh, kw = kernel.shape[:2]
    h, w = x.shape[1:3]
    out_h, out_w = -(-h // strides), -(-w // strides)
    pad_h = max((out_h - 1) * strides + kh - h, 0)
    pad_w = max((out_w - 1) * strides + kw - w, 0)
    padded = np.pad(
        x_bin,
        ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)),
        constant_values=1.0,
    )
    return tf.nn.conv2d(padded, w_bin.astype(np.float32), strides, "VALID").numpy()


def _batch_norm_inference(layer, y):
    gamma, beta, mean, var = (v.numpy() for v in (layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance))
    return gamma * (y - mean) / np.sqrt(var + layer.epsilon) + beta


def _randomize_batch_norm(layer, rng):
    c = layer.gamma.shape[0]
    layer.gamma.assign(rng.uniform(0.5, 1.5, c))
    layer.beta.assign(rng.normal(size=c))
    layer.moving_mean.assign(rng.normal(size=c))
    layer.moving_variance.assign(rng.uniform(0.5, 2.0, c))


def test_identity_shortcut_matches_paper_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 6, 8)).astype(np.float32)
    block = BiRealConv2D(8)
    block.build(x.shape)
    _randomize_batch_norm(block.batch_norm, rng)
    assert not block.has_projection_shortcut

    expected = _batch_norm_inference(block.batch_norm, _reference_binary_conv(x, block.kernel.latent_variable.numpy(), 1)) + x
    np.testing.assert_allclose(block(x, training=False).numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("strides, filters", [(2, 8), (1, 16), (2, 16)])
def test_projection_shortcut_is_avgpool_conv_bn(strides, filters):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 6, 6, 8)).astype(np.float32)
    block = BiRealConv2D(filters, strides=strides)
    block.build(x.shape)
    assert block.has_projection_shortcut
    _randomize_batch_norm(block.batch_norm, rng)
    _randomize_batch_norm(block.shortcut_norm, rng)

    pooled = tf.nn.avg_pool2d(x, strides, strides, "SAME").numpy()
    shortcut = _batch_norm_inference(
        block.shortcut_norm, np.einsum("bhwc,cf->bhwf", pooled, block.shortcut_conv.kernel.numpy()[0, 0])
    )
    residual = _batch_norm_inference(
        block.batch_norm, _reference_binary_conv(x, block.kernel.latent_variable.numpy(), strides)
    )
    np.testing.assert_allclose(block(x, training=False).numpy(), residual + shortcut, rtol=1e-4, atol=1e-4)


def test_paper_defaults_and_overrides():
    block = BiRealConv2D(4)
    assert isinstance(block.input_quantizer, larq.quantizers.ApproxSign)
    assert isinstance(block.kernel_quantizer, larq.quantizers.MagnitudeAwareSign)
    assert block.padding == "same" and block.pad_values == 1.0 and block.kernel_size == (3, 3)
    custom = BiRealConv2D(4, input_quantizer="ste_sign", kernel_quantizer="ste_sign")
    assert isinstance(custom.input_quantizer, larq.quantizers.SteSign)
    assert isinstance(custom.kernel_quantizer, larq.quantizers.SteSign)


def test_gradients_reach_binary_kernel_shortcut_and_norms():
    x = tf.random.normal((2, 8, 8, 4))
    block = BiRealConv2D(8, strides=2)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(block(x, training=True) ** 2)
    grads = tape.gradient(loss, block.trainable_weights)
    names = [w.name for w in block.trainable_weights]
    assert len(grads) == 6, names
    for name, grad in zip(names, grads):
        assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0, name


def test_activation_applies_after_the_addition():
    x = tf.random.normal((1, 4, 4, 4))
    block = BiRealConv2D(4, activation="relu")
    out = block(x).numpy()
    assert out.min() >= 0
    assert block.get_config()["activation"] == "relu"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"filters": 4, "padding": "valid"}, "padding='valid'"),
        ({"filters": 4, "momentum": 1.5}, "momentum"),
        ({"filters": 4, "epsilon": 0.0}, "epsilon"),
        ({"filters": 4, "data_format": "channels_first"}, "channels_last"),
        ({"filters": 4, "input_quantizer": "no_such_quantizer"}, "no_such_quantizer"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BiRealConv2D(**kwargs)


def test_wrong_input_rank_names_the_shape():
    with pytest.raises(ValueError, match=r"(rank 4|ndim=4).*\(2, 8, 3\)"):
        BiRealConv2D(4)(tf.zeros((2, 8, 3)))
