"""Builders of the TFLite ops the int8 lowering emits, on IR tensors (shapes computed here).

Every helper appends one op (plus its constant inputs) to a :class:`~keras_bnn.tflite.targets.int8.ir.Graph` and returns
the output tensor. Weights arrive output-channel first (TFLite's layout for CONV_2D and FULLY_CONNECTED).

Example:
    >>> import numpy as np
    >>> from keras_bnn.tflite.targets.int8.ir import Graph
    >>> from keras_bnn.tflite.targets.int8 import emit
    >>> graph = Graph()
    >>> x = graph.activation("x", (1, 8, 8, 4), "int8", scale=1 / 127, zero_point=0)
    >>> emit.pool(graph, "MAX_POOL_2D", x, (2, 2), (2, 2), "VALID", "pool").shape
    (1, 4, 4, 4)
"""

from __future__ import annotations

import math

import numpy as np

from keras_bnn._compat import tflite_schema
from keras_bnn.tflite.targets.int8.ir import Graph, Tensor

__all__ = ["add", "concatenate", "conv", "dequantize", "output_size", "pad", "pool", "quantize", "reshape",
           "softmax"]

SIGN_SCALE = 1.0 / 127.0  # binary activations: int8 +-127 are real +-1


def output_size(size: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
    """Spatial output size of a convolution or pooling, TensorFlow's rule."""
    if padding == "SAME":
        return math.ceil(size / stride)
    return (size - (kernel - 1) * dilation - 1) // stride + 1


def _padding(name: str) -> int:
    return getattr(tflite_schema().Padding, name)


def _activation(name: str) -> int:
    return getattr(tflite_schema().ActivationFunctionType, name)


def conv(graph: Graph, kind: str, x: Tensor, weights: np.ndarray, weight_scale: np.ndarray, bias: np.ndarray,
         out_scale: float, out_zero_point: int, *, strides=(1, 1), padding: str = "VALID", dilation=(1, 1),
         activation: str = "NONE", name: str) -> Tensor:
    """CONV_2D (weights (O, kh, kw, I)), DEPTHWISE_CONV_2D (weights (C, kh, kw)) or FULLY_CONNECTED (weights
    (O, I)) with per-channel int8 weights and int32 bias (bias scale = input scale x weight scale)."""
    schema = tflite_schema()
    channels = weights.shape[0]
    weight_scale = np.broadcast_to(np.asarray(weight_scale, np.float64), (channels,))
    if np.all(weight_scale == weight_scale[0]):  # per-tensor: one scale instead of a scale and zero point each
        weight_scale = weight_scale[:1]
    bias_scale = np.float32(x.scalar_scale) * weight_scale.astype(np.float32)
    if kind == "depthwise":
        filter_data, dimension = np.transpose(weights, (1, 2, 0))[None], 3  # (1, kh, kw, C)
    else:
        filter_data, dimension = weights, 0
    w = graph.constant(f"{name}/weights", filter_data, "int8", scale=weight_scale, quantized_dimension=dimension)
    b = graph.constant(f"{name}/bias", bias, "int32", scale=bias_scale)
    if kind == "fc":
        shape = (x.shape[0], channels)
        options = schema.FullyConnectedOptionsT()
        opcode = "FULLY_CONNECTED"
    else:
        kh, kw = weights.shape[1:3]
        shape = (x.shape[0], output_size(x.shape[1], kh, strides[0], padding, dilation[0]),
                 output_size(x.shape[2], kw, strides[1], padding, dilation[1]), channels)
        if kind == "depthwise":
            options, opcode = schema.DepthwiseConv2DOptionsT(), "DEPTHWISE_CONV_2D"
            options.depthMultiplier = 1
        else:
            options, opcode = schema.Conv2DOptionsT(), "CONV_2D"
        options.padding = _padding(padding)
        options.strideH, options.strideW = map(int, strides)
        options.dilationHFactor, options.dilationWFactor = map(int, dilation)
    options.fusedActivationFunction = _activation(activation)
    y = graph.activation(name, shape, "int8", scale=out_scale, zero_point=out_zero_point)
    graph.add_op(opcode, [x, w, b], [y], options)
    return y


def pool(graph: Graph, opcode: str, x: Tensor, size, strides, padding: str, name: str) -> Tensor:
    """MAX_POOL_2D or AVERAGE_POOL_2D; the output keeps the input's quantization (as TFLite requires)."""
    options = tflite_schema().Pool2DOptionsT()
    options.padding = _padding(padding)
    options.filterHeight, options.filterWidth = map(int, size)
    options.strideH, options.strideW = map(int, strides)
    shape = (x.shape[0], output_size(x.shape[1], size[0], strides[0], padding),
             output_size(x.shape[2], size[1], strides[1], padding), x.shape[3])
    y = graph.like(name, x, shape)
    graph.add_op(opcode, [x], [y], options)
    return y


def pad(graph: Graph, x: Tensor, paddings, value: int, name: str) -> Tensor:
    """PADV2 of a 4D int8 tensor with the integer `value` (stored with x's quantization)."""
    paddings = np.asarray(paddings, np.int32)
    shape = tuple(int(d + before + after) for d, (before, after) in zip(x.shape, paddings))
    y = graph.like(name, x, shape)
    pads = graph.constant(f"{name}/paddings", paddings, "int32")
    constant = graph.constant(f"{name}/value", np.asarray(value), "int8", scale=x.scale, zero_point=x.zero_point)
    graph.add_op("PADV2", [x, pads, constant], [y], tflite_schema().PadV2OptionsT())
    return y


def concatenate(graph: Graph, tensors: list[Tensor], axis: int, name: str) -> Tensor:
    """CONCATENATION of tensors with identical quantization (so no value is requantized)."""
    options = tflite_schema().ConcatenationOptionsT()
    options.axis = axis
    shape = list(tensors[0].shape)
    shape[axis] = sum(t.shape[axis] for t in tensors)
    y = graph.like(name, tensors[0], shape)
    graph.add_op("CONCATENATION", tensors, [y], options)
    return y


def reshape(graph: Graph, x: Tensor, shape, name: str) -> Tensor:
    y = graph.like(name, x, shape)
    graph.reshape(x, y)
    return y


def add(graph: Graph, a: Tensor, b: Tensor, scale: float, zero_point: int, name: str) -> Tensor:
    y = graph.activation(name, a.shape, "int8", scale=scale, zero_point=zero_point)
    graph.add_op("ADD", [a, b], [y], tflite_schema().AddOptionsT())
    return y


def softmax(graph: Graph, x: Tensor, name: str) -> Tensor:
    """int8 SOFTMAX; TFLite fixes its output quantization to scale 1/256, zero point -128."""
    options = tflite_schema().SoftmaxOptionsT()
    options.beta = 1.0
    y = graph.activation(name, x.shape, "int8", scale=1.0 / 256.0, zero_point=-128)
    graph.add_op("SOFTMAX", [x], [y], options)
    return y


def quantize(graph: Graph, x: Tensor, scale: float, zero_point: int, name: str) -> Tensor:
    y = graph.activation(name, x.shape, "int8", scale=scale, zero_point=zero_point)
    graph.add_op("QUANTIZE", [x], [y], tflite_schema().QuantizeOptionsT())
    return y


def dequantize(graph: Graph, x: Tensor, name: str) -> Tensor:
    y = graph.activation(name, x.shape, "float32")
    graph.add_op("DEQUANTIZE", [x], [y], tflite_schema().DequantizeOptionsT())
    return y
