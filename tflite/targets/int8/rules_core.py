"""Lowering rules for Keras' own layers: Conv2D, Dense, BatchNormalization, pooling, layout, Rescaling,
Activation (linear, softmax), Dropout and Add.

Convolutions and dense layers become :class:`~keras_bnn.tflite.targets.int8.values.Pending` ops (see
:func:`linear_pending`, shared with the larq rules); BatchNormalization, Rescaling and max-pooling join a pending
op when they follow one; everything else works on int8 tensors.

Example:
    >>> import keras_bnn, tensorflow as tf
    >>> from keras_bnn.tflite.targets.int8.lowering import find_rule
    >>> import keras_bnn.tflite.targets.int8.rules_core
    >>> find_rule(tf.keras.layers.Flatten()).sign_passthrough
    True
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_bnn.tflite.targets.int8 import emit, head, materialize
from keras_bnn.tflite.targets.int8.lowering import Context, UnsupportedLayerError, register_lowering
from keras_bnn.tflite.targets.int8.arith import activation_params
from keras_bnn.tflite.targets.int8.values import ChannelAffine, Deferred, Float, Pending, Pool, Real, Signs

__all__ = ["batch_norm_affine", "check_linear", "join_affine", "linear_pending", "node_pending", "probe_with",
           "unsupported"]


def unsupported(layer, reason: str) -> UnsupportedLayerError:
    return UnsupportedLayerError(layer.name, type(layer).__name__, reason)


def check_linear(layer) -> None:
    activation = getattr(layer, "activation", None)
    if activation is not None and activation is not tf.keras.activations.linear:
        raise unsupported(layer, f"fused activation {getattr(activation, '__name__', activation)!r} (only linear)")


def _output(node):
    return tf.nest.flatten(node.outputs)[0]


def linear_pending(ctx: Context, layer, value, calibration, keras_rank: int, *, kind: str, kernel: np.ndarray,
                   binary: bool, bias, spec=None, strides=(1, 1), padding: str = "valid", dilation=(1, 1),
                   pad_value: float = 0.0) -> Pending:
    """A conv ("conv", Keras kernel (kh, kw, I, O)) or dense ("fc", kernel (I, O)) layer as a pending op on
    its input's signs (`spec`) or real value; `calibration` gives the range of its output."""
    check_linear(layer)
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise unsupported(layer, "data_format must be channels_last")
    if getattr(layer, "groups", 1) != 1:
        raise unsupported(layer, "grouped convolutions are not supported")
    source = ctx.signs(value, spec, layer.name) if spec is not None else ctx.real(value, layer.name)
    if kind == "fc" and len(source.tensor.shape) != 2:
        raise unsupported(layer, f"dense layers on inputs of rank {len(source.tensor.shape)} (only 2)")
    kernel = np.transpose(kernel, (3, 0, 1, 2)) if kind == "conv" else kernel.T
    channels = kernel.shape[0]
    bias = np.zeros(channels) if bias is None else np.asarray(bias, np.float64)
    return Pending(name=layer.name, kind=kind, source=source, kernel=kernel, binary=binary, bias=bias,
                   calibration=calibration, keras_rank=keras_rank, strides=tuple(strides),
                   padding=padding.upper(), dilation=tuple(dilation), pad_value=float(pad_value),
                   source_scale=1.0 if spec is None else spec.scale, digits=ctx.weight_digits)


def node_pending(ctx: Context, layer, value, node, **kwargs) -> Pending:
    """:func:`linear_pending` for a layer of the model graph (calibrated on its output tensor)."""
    output = _output(node)
    return linear_pending(ctx, layer, value, ctx.calibrator.tap(output), len(output.shape), **kwargs)


def _bias(layer):
    return np.asarray(layer.bias.numpy(), np.float64) if getattr(layer, "use_bias", False) else None


@register_lowering(tf.keras.layers.Conv2D)
def _conv2d(ctx, layer, inputs, node):
    return node_pending(ctx, layer, inputs[0], node, kind="conv", kernel=layer.kernel.numpy().astype(np.float64),
                          binary=False, bias=_bias(layer), strides=layer.strides, padding=layer.padding,
                          dilation=layer.dilation_rate)


@register_lowering(tf.keras.layers.Dense)
def _dense(ctx, layer, inputs, node):
    return node_pending(ctx, layer, inputs[0], node, kind="fc", kernel=layer.kernel.numpy().astype(np.float64),
                          binary=False, bias=_bias(layer))


def probe_with(layer, rank: int):
    """Run a per-channel Keras layer on float32 values of shape (n, C), as a tensor of the layer's rank."""
    def probe(x: np.ndarray) -> np.ndarray:
        shaped = x.reshape((x.shape[0],) + (1,) * (rank - 2) + (x.shape[-1],))
        return np.asarray(layer(tf.constant(shaped, tf.float32), training=False)).reshape(x.shape)

    return probe


def join_affine(ctx: Context, layer, value, scale, offset, calibration, keras_rank: int, probe=None):
    """`value` followed by a per-channel affine map (a pending op grows; a real tensor becomes one)."""
    if isinstance(value, Signs):
        raise unsupported(layer, "its input exists only as signs")
    if isinstance(value, Deferred):
        value = ctx.real(value, layer.name)
    if isinstance(value, Real):
        value = materialize.identity_pending(value, f"{layer.name}/input")
    channels = value.channels
    step = ChannelAffine(layer.name, np.broadcast_to(scale, (channels,)).astype(np.float64),
                         np.broadcast_to(offset, (channels,)).astype(np.float64),
                         probe or probe_with(layer, keras_rank), layer)
    return value.then(step, calibration)


def batch_norm_affine(layer, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Inference BatchNormalization as ``scale * x + offset`` per channel (float64)."""
    axis = layer.axis if isinstance(layer.axis, int) else (layer.axis[0] if len(layer.axis) == 1 else None)
    if axis not in (-1, rank - 1):
        raise unsupported(layer, f"BatchNormalization over axis {layer.axis} (only the last axis)")
    variance = np.asarray(layer.moving_variance.numpy(), np.float64)
    gamma = np.asarray(layer.gamma.numpy(), np.float64) if layer.scale else 1.0
    beta = np.asarray(layer.beta.numpy(), np.float64) if layer.center else 0.0
    scale = gamma / np.sqrt(variance + layer.epsilon)
    return scale, beta - np.asarray(layer.moving_mean.numpy(), np.float64) * scale


@register_lowering(tf.keras.layers.BatchNormalization)
def _batch_norm(ctx, layer, inputs, node):
    output = _output(node)
    scale, offset = batch_norm_affine(layer, len(output.shape))
    return join_affine(ctx, layer, inputs[0], scale, offset, ctx.calibrator.tap(output), len(output.shape))


@register_lowering(tf.keras.layers.Rescaling)
def _rescaling(ctx, layer, inputs, node):
    scale, offset = np.asarray(layer.scale, np.float64), np.asarray(layer.offset, np.float64)
    value = inputs[0]
    if isinstance(value, Real) and scale.size == 1 and offset.size == 1 and value.neg is None:
        a, b = value.affine
        return Real(value.tensor, None, (float(scale) * a, float(scale) * b + float(offset)), exact=value.exact,
                    int_batches=value.int_batches)
    probe = lambda x: x * np.float32(layer.scale) + np.float32(layer.offset)  # noqa: E731 (Keras' float32 order)
    output = _output(node)
    return join_affine(ctx, layer, value, scale, offset, ctx.calibrator.tap(output), len(output.shape), probe)


def _pool_args(layer):
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise unsupported(layer, "data_format must be channels_last")
    return tuple(layer.pool_size), tuple(layer.strides), layer.padding.upper()


@register_lowering(tf.keras.layers.MaxPooling2D, sign_passthrough=True)
def _max_pool(ctx, layer, inputs, node):
    size, strides, padding = _pool_args(layer)
    value, output = inputs[0], _output(node)
    if isinstance(value, Pending) and value.pool is None and not value.post:
        return value.then(Pool(size, strides, padding), ctx.calibrator.tap(output))
    return Deferred(lambda spec: _max_pool_signs(ctx, layer, value, spec),
                    lambda: _max_pool_real(ctx, layer, value))


def _max_pool_signs(ctx, layer, value, spec) -> Signs:
    """Max-pool of signs: exact, since sign(max(x)) = max(sign(x))."""
    signs = materialize.unnegate(ctx.graph, ctx.signs(value, spec, layer.name), layer.name)
    size, strides, padding = _pool_args(layer)
    return Signs(emit.pool(ctx.graph, "MAX_POOL_2D", signs.tensor, size, strides, padding, f"{layer.name}/signs"),
                 spec)


def _max_pool_real(ctx, layer, value) -> Real:
    real = ctx.real(value, layer.name)
    if real.affine[0] < 0:
        real = ctx.plain(real, layer.name)
    real = materialize.unnegate(ctx.graph, real, layer.name)
    size, strides, padding = _pool_args(layer)
    return Real(emit.pool(ctx.graph, "MAX_POOL_2D", real.tensor, size, strides, padding, layer.name), None,
                real.affine, real.is_sign)


def _average(ctx, layer, value, size, strides, padding):
    real = materialize.unnegate(ctx.graph, ctx.real(value, layer.name), layer.name)
    return Real(emit.pool(ctx.graph, "AVERAGE_POOL_2D", real.tensor, size, strides, padding, layer.name),
                None, real.affine)


@register_lowering(tf.keras.layers.AveragePooling2D)
def _average_pool(ctx, layer, inputs, node):
    return _average(ctx, layer, inputs[0], *_pool_args(layer))


@register_lowering(tf.keras.layers.GlobalAveragePooling2D)
def _global_average(ctx, layer, inputs, node):
    if layer.data_format != "channels_last" or getattr(layer, "keepdims", False):
        raise unsupported(layer, "only channels_last without keepdims")
    x = ctx.real(inputs[0], layer.name).tensor
    pooled = _average(ctx, layer, inputs[0], x.shape[1:3], x.shape[1:3], "VALID")
    flat = emit.reshape(ctx.graph, pooled.tensor, (x.shape[0], x.shape[3]), f"{layer.name}/flat")
    return Real(flat, None, pooled.affine)


def _layout(ctx, layer, value, node):
    output = _output(node)
    shape = (ctx.batch_size,) + tuple(int(d) for d in output.shape[1:])
    spec = ctx.sign_spec(output)
    if spec is not None:
        signs = ctx.signs(value, spec, layer.name)
        mask = None if signs.neg is None else signs.neg.reshape(shape[1:])
        return Signs(emit.reshape(ctx.graph, signs.tensor, shape, layer.name), spec, mask)
    real = ctx.real(value, layer.name)
    mask = None if real.neg is None else real.neg.reshape(shape[1:])
    batches = None if real.int_batches is None else \
        (lambda: (batch.reshape((-1,) + shape[1:]) for batch in real.int_batches()))
    return Real(emit.reshape(ctx.graph, real.tensor, shape, layer.name), mask, real.affine, real.is_sign, real.exact,
                batches)


@register_lowering(tf.keras.layers.Flatten, sign_passthrough=True, changes_layout=True)
def _flatten(ctx, layer, inputs, node):
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise unsupported(layer, "data_format must be channels_last")
    return _layout(ctx, layer, inputs[0], node)


@register_lowering(tf.keras.layers.Reshape, sign_passthrough=True, changes_layout=True)
def _reshape(ctx, layer, inputs, node):
    return _layout(ctx, layer, inputs[0], node)


@register_lowering(tf.keras.layers.Dropout, sign_passthrough=True)
def _dropout(ctx, layer, inputs, node):
    return inputs[0]  # identity at inference


@register_lowering(tf.keras.layers.Activation, sign_passthrough=False)
def _activation(ctx, layer, inputs, node):
    name = getattr(layer.activation, "__name__", str(layer.activation))
    if name == "linear":
        return inputs[0]
    if name != "softmax":
        raise unsupported(layer, f"activation {name!r} (only linear and softmax)")
    if len(_output(node).shape) != 2:
        raise unsupported(layer, "softmax over inputs of rank other than 2")
    if ctx.head == "float":
        return Float(head.float_softmax(ctx.graph, head.float_head(ctx.graph, inputs[0], layer.name), layer.name))
    real = ctx.plain(inputs[0], layer.name, ctx.calibrator.tap(node.keras_inputs[0]))
    return Real(emit.softmax(ctx.graph, real.tensor, layer.name))


@register_lowering(tf.keras.layers.Add)
def _add(ctx, layer, inputs, node):
    if len(inputs) != 2:
        raise unsupported(layer, f"Add of {len(inputs)} tensors (only 2)")
    keras_inputs = node.keras_inputs
    a, b = (ctx.plain(v, f"{layer.name}/in{i}", ctx.calibrator.tap(t))
            for i, (v, t) in enumerate(zip(inputs, keras_inputs)))
    scale, zero_point = activation_params(*ctx.calibrator.range(_output(node)))
    return Real(emit.add(ctx.graph, a.tensor, b.tensor, scale, zero_point, layer.name))

