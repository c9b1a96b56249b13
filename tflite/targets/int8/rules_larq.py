"""Lowering rules for larq's and keras_bnn's binary layers.

* ``larq.layers.QuantConv2D`` / ``QuantDense`` (binary or real input, binary or real kernel), and with them
  ``keras_bnn.legacy.layers.XNORConv2D`` (``input_scaling=False``; alpha = mean|W| per output channel is folded into
  the thresholds).
* ``keras_bnn.legacy.layers.BiRealConv2D``: binary conv + its ``batch_norm`` on the input's exact signs, plus the real
  shortcut (identity, or ``shortcut_pool`` + ``shortcut_conv`` + ``shortcut_norm``), added in int8.
* larq / keras_bnn quantizers used as layers: their output is exact signs (+-1 as int8 +-127).

Example:
    >>> import keras_bnn, larq
    >>> import keras_bnn.tflite.targets.int8.rules_larq
    >>> from keras_bnn.tflite.targets.int8.lowering import find_rule
    >>> layer = larq.layers.QuantDense(4, input_quantizer="ste_sign", kernel_quantizer="ste_sign")
    >>> find_rule(layer).sign_input(layer).description
    'sign'
"""

from __future__ import annotations

import larq
import numpy as np
import tensorflow as tf

from keras_bnn.legacy.layers import BiRealConv2D, XNORConv2D
from keras_bnn.tflite.targets.int8 import emit
from keras_bnn.tflite.targets.int8.arith import activation_params
from keras_bnn.tflite.targets.int8.lowering import register_lowering
from keras_bnn.tflite.targets.int8.quantizers import effective_kernel, input_sign_spec
from keras_bnn.tflite.targets.int8.rules_core import batch_norm_affine, join_affine, linear_pending, node_pending, \
    probe_with, unsupported
from keras_bnn.tflite.targets.int8.values import Real

__all__: list[str] = []


def _input_spec(layer):
    return input_sign_spec(layer.input_quantizer)


def _bias(layer):
    return np.asarray(layer.bias.numpy(), np.float64) if layer.use_bias else None


def _conv_kwargs(layer) -> dict:
    kernel, binary = effective_kernel(layer)
    padding = layer.padding
    if padding not in ("same", "valid"):
        raise unsupported(layer, f"padding {padding!r} (only same and valid)")
    pad_value = float(tf.keras.backend.get_value(layer.pad_values)) if padding == "same" else 0.0
    return dict(kind="conv", kernel=kernel, binary=binary, bias=_bias(layer), spec=_input_spec(layer),
                strides=layer.strides, padding=padding, dilation=layer.dilation_rate, pad_value=pad_value)


@register_lowering(larq.layers.QuantConv2D, sign_input=_input_spec)
def _quant_conv2d(ctx, layer, inputs, node):
    return node_pending(ctx, layer, inputs[0], node, **_conv_kwargs(layer))


@register_lowering(larq.layers.QuantDense, sign_input=_input_spec)
def _quant_dense(ctx, layer, inputs, node):
    kernel, binary = effective_kernel(layer)
    return node_pending(ctx, layer, inputs[0], node, kind="fc", kernel=kernel, binary=binary, bias=_bias(layer),
                        spec=_input_spec(layer))


@register_lowering(XNORConv2D, sign_input=_input_spec)
def _xnor_conv2d(ctx, layer, inputs, node):
    if layer.input_scaling:
        raise unsupported(layer, "input_scaling=True multiplies by a float input-magnitude map K, which has no "
                          "exact int8 form")
    return _quant_conv2d(ctx, layer, inputs, node)


def _quantizer_layer(ctx, layer, inputs, node):
    spec = input_sign_spec(layer)
    signs = ctx.signs(inputs[0], spec, layer.name)
    return Real(signs.tensor, signs.neg, (spec.scale, 0.0), is_sign=spec.scale == 1.0, exact=True)


for _quantizer_class in (larq.quantizers.SteSign, larq.quantizers.ApproxSign, larq.quantizers.SwishSign):
    register_lowering(_quantizer_class, sign_input=input_sign_spec)(_quantizer_layer)


def _register_keras_bnn_quantizers() -> None:
    from keras_bnn.legacy.quantizers import ElasticSign, LearnableThresholdSign, StochasticSign

    for cls in (ElasticSign, LearnableThresholdSign, StochasticSign):
        register_lowering(cls, sign_input=input_sign_spec)(_quantizer_layer)


_register_keras_bnn_quantizers()


@register_lowering(BiRealConv2D)
def _bireal_conv2d(ctx, layer, inputs, node):
    activation = layer.output_activation
    if activation is not None and activation is not tf.keras.activations.linear:
        raise unsupported(layer, "an activation after the addition (only none)")
    value, x_tensor = inputs[0], node.keras_inputs[0]
    output = tf.nest.flatten(node.outputs)[0]
    calibrator, name = ctx.calibrator, layer.name

    def residual(x):
        return layer.batch_norm(larq.layers.QuantConv2D.call(layer, tf.constant(x)), training=False)

    residual_range = calibrator.tap(x_tensor, residual, key=(name, "residual"))
    conv = linear_pending(ctx, layer, value, residual_range, 4, **_conv_kwargs(layer))
    scale, offset = batch_norm_affine(layer.batch_norm, 4)
    branch = join_affine(ctx, layer.batch_norm, conv, scale, offset, residual_range, 4,
                         probe_with(layer.batch_norm, 4))
    branch.name = f"{name}/residual"
    if layer.has_projection_shortcut:
        def shortcut(x):
            pooled = layer.shortcut_pool(tf.constant(x))
            return layer.shortcut_norm(layer.shortcut_conv(pooled), training=False)

        shortcut_range = calibrator.tap(x_tensor, shortcut, key=(name, "shortcut"))
        pool = layer.shortcut_pool
        real = ctx.plain(value, f"{name}/shortcut_input", calibrator.tap(x_tensor))
        pooled = Real(emit.pool(ctx.graph, "AVERAGE_POOL_2D", real.tensor, pool.pool_size, pool.strides,
                                pool.padding.upper(), f"{name}/shortcut_pool"))
        projection = linear_pending(ctx, layer.shortcut_conv, pooled, shortcut_range, 4, kind="conv",
                                    kernel=layer.shortcut_conv.kernel.numpy().astype(np.float64), binary=False,
                                    bias=_bias(layer.shortcut_conv))
        projection.name = f"{name}/shortcut_conv"
        scale, offset = batch_norm_affine(layer.shortcut_norm, 4)
        short_value = join_affine(ctx, layer.shortcut_norm, projection, scale, offset, shortcut_range, 4,
                                  probe_with(layer.shortcut_norm, 4))
        short = ctx.plain(short_value, f"{name}/shortcut", shortcut_range)
    else:
        short = ctx.plain(value, f"{name}/shortcut", calibrator.tap(x_tensor))
    residual_real = ctx.plain(branch, f"{name}/residual", residual_range)
    scale, zero_point = activation_params(*calibrator.range(output))
    return Real(emit.add(ctx.graph, residual_real.tensor, short.tensor, scale, zero_point, name))
