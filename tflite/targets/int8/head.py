"""The optional float32 head: exact logits for a binary classifier, float weights for a real one.

With ``head="float"`` the model's last dense layer and what follows it (its scale, BatchNorm, softmax) leave
int8, because int8 logits tie classes whose logits differ by less than one int8 step (measured: 1 of 10,000
MNIST images for binary_cnn.mnist, 2 for binarynet_mlp.mnist with the int8 head):

* a **binary** classifier on exact signs gives exact integer partial sums: its inputs are split (SPLIT_V) into
  chunks of at most 254 (even) or 127 (odd), each chunk's sum is exact in int8 (scale 2 or 1), and the sums
  are added and scaled in float32 with Keras' own float32 constants and order of operations;
* a **real** classifier (XNOR-Net, Bi-Real Net) reads its dequantized int8 input with Keras' float32 weights.

Example:
    >>> from keras_bnn.tflite.targets.int8.head import chunk_sizes
    >>> chunk_sizes(256), chunk_sizes(2048)[-2:], chunk_sizes(129)
    ([254, 2], [254, 16], [2, 127])
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_bnn._compat import tflite_schema
from keras_bnn.tflite.targets.int8 import emit, materialize
from keras_bnn.tflite.targets.int8.ir import Graph, Tensor
from keras_bnn.tflite.targets.int8.values import Pending, Signs

__all__ = ["chunk_sizes", "float_head", "float_softmax", "keras_float_ops"]


def chunk_sizes(n: int) -> list[int]:
    """Input chunks whose +-1 sums are exact in int8: even sizes up to 254 (sum/2 in [-127, 127]) or odd sizes up
    to 127 (sum in [-127, 127])."""
    sizes, left = [], n
    while left:
        take = 254 if left >= 254 else left if left % 2 == 0 or left <= 127 else left - 127
        sizes.append(take)
        left -= take
    return sizes


def keras_float_ops(layer, scale: np.ndarray, offset: np.ndarray, probe) -> list[tuple[str, np.ndarray]]:
    """float32 (op, constant) steps that reproduce a per-channel Keras layer bit for bit, when one of the known
    orders of operations does on probe values; else ``x * scale + offset`` rounded to float32."""
    candidates = [[("MUL", scale.astype(np.float32)), ("ADD", offset.astype(np.float32))]]
    if isinstance(layer, tf.keras.layers.BatchNormalization):
        variance = tf.constant(layer.moving_variance.numpy())
        inv = tf.math.rsqrt(variance + tf.cast(layer.epsilon, tf.float32))
        if layer.scale:
            inv = inv * layer.gamma
        mean, beta = layer.moving_mean.numpy(), layer.beta.numpy() if layer.center else 0 * layer.moving_mean.numpy()
        inv = inv.numpy()
        candidates = [[("MUL", inv), ("ADD", (beta - mean * inv).astype(np.float32))],  # tf.nn.batch_normalization
                      [("ADD", -mean), ("MUL", inv), ("ADD", beta)]] + candidates  # fused CPU kernel
    x = np.linspace(-300, 300, 1201, dtype=np.float32)[:, None] * np.ones((1, len(scale)), np.float32)
    expected = probe(x)
    for steps in candidates:
        y = x
        for op, constant in steps:
            y = y * constant if op == "MUL" else y + constant
        if np.array_equal(y, expected):
            return steps
    return candidates[-1]


def _float_op(graph: Graph, opcode: str, x: Tensor, constant: np.ndarray, name: str) -> Tensor:
    schema = tflite_schema()
    c = graph.constant(f"{name}/constant", np.asarray(constant, np.float32), "float32")
    y = graph.activation(name, x.shape, "float32")
    graph.add_op(opcode, [x, c], [y], schema.MulOptionsT() if opcode == "MUL" else schema.AddOptionsT())
    return y


def _exact_binary_sums(graph: Graph, p: Pending) -> Tensor:
    """float32 (B, K) holding the classifier's integer dot products S exactly."""
    schema = tflite_schema()
    prep = materialize.prepare(graph, p, 127)
    x, sizes = prep.x, chunk_sizes(prep.x.shape[1])
    parts = [x]
    if len(sizes) > 1:
        parts = [graph.like(f"{p.name}/chunk{i}", x, (x.shape[0], size)) for i, size in enumerate(sizes)]
        options = schema.SplitVOptionsT()
        options.numSplits = len(sizes)
        graph.add_op("SPLIT_V", [x, graph.constant(f"{p.name}/chunks", np.asarray(sizes, np.int32), "int32"),
                                 graph.constant(f"{p.name}/axis", np.asarray(1, np.int32), "int32")], parts, options)
    total, start = None, 0
    for i, (part, size) in enumerate(zip(parts, sizes)):
        weights = prep.weights[:, start:start + size]
        start += size
        scale = 2.0 if size % 2 == 0 else 1.0  # the chunk's sum S is exact: S / scale is an integer in [-127, 127]
        sums = emit.conv(graph, "fc", part, weights, 1.0, np.zeros(len(weights), np.int64), scale, 0,
                         name=f"{p.name}/sum{i}")
        sums = emit.dequantize(graph, sums, f"{p.name}/sum{i}/float")
        total = sums if total is None else _add(graph, total, sums, f"{p.name}/sum{i}/total")
    alpha = np.abs(p.kernel).max(axis=1)
    y = total if np.all(alpha == 1) else _float_op(graph, "MUL", total, alpha, f"{p.name}/alpha")
    return y if not np.any(p.bias) else _float_op(graph, "ADD", y, p.bias, f"{p.name}/bias")


def _add(graph: Graph, a: Tensor, b: Tensor, name: str) -> Tensor:
    y = graph.activation(name, a.shape, "float32")
    graph.add_op("ADD", [a, b], [y], tflite_schema().AddOptionsT())
    return y


def _dequantized(graph: Graph, value, name: str) -> Tensor:
    real = materialize.plain_real(graph, value, name)
    return emit.dequantize(graph, real.tensor, f"{name}/float")


def float_head(graph: Graph, value, name: str) -> Tensor:
    """float32 logits of `value` (a pending dense layer and its affine chain; anything else is dequantized)."""
    if not isinstance(value, Pending) or value.kind != "fc" or value.pool is not None:
        return _dequantized(graph, value, name)
    p = value
    if p.binary and isinstance(p.source, Signs):
        y = _exact_binary_sums(graph, p)
    else:
        x = _dequantized(graph, p.source, f"{p.name}/input")  # plain: no negated element, no pending affine map
        w = graph.constant(f"{p.name}/float_weights", p.kernel.astype(np.float32), "float32")
        b = graph.constant(f"{p.name}/float_bias", p.bias.astype(np.float32), "float32")
        y = graph.activation(f"{p.name}/float", (x.shape[0], p.channels), "float32")
        graph.add_op("FULLY_CONNECTED", [x, w, b], [y], tflite_schema().FullyConnectedOptionsT())
    for step in p.post:
        for i, (op, constant) in enumerate(keras_float_ops(step.layer, step.scale, step.offset, step.probe)):
            y = _float_op(graph, op, y, constant, f"{step.name}/{op.lower()}{i}")
    return y


def float_softmax(graph: Graph, x: Tensor, name: str) -> Tensor:
    options = tflite_schema().SoftmaxOptionsT()
    options.beta = 1.0
    y = graph.activation(name, x.shape, "float32")
    graph.add_op("SOFTMAX", [x], [y], options)
    return y
