"""Inspect a TFLite / Larq Compute Engine flatbuffer: op table, MACs by kind, and size against the ideal.

The flatbuffer is read with TFLite's own generated schema module, not through Keras, so the report describes
what the converter actually produced.

MAC categories:
    * ``bitpacked``: binary MACs inside LCE's bitpacked kernels (``LceBconv2d``).
    * ``unpacked_binary``: binary weight x binary activation MACs left in float/int8 ops: a ``CONV_2D``,
      ``DEPTHWISE_CONV_2D``, ``FULLY_CONNECTED`` or ``BATCH_MATMUL`` whose activation comes from
      ``LceDequantize`` (possibly through layout-only ops such as ``RESHAPE``), or is an int8 sign as the int8
      target writes them (+-127 at scale 1/127, zero point 0), and whose constant weight is ``+-c`` per output
      channel. In an int8 target's file these are all its binary MACs.
    * ``activation_binary``: ``BATCH_MATMUL`` of two +-1 activations (both from ``LceDequantize``); no bitpacked
      kernel exists for these.
    * ``other``: every other MAC (float or int8).

MACs of WHILE cond/body subgraphs (and subgraphs called from them) are for one iteration; totals add every
subgraph once.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import numpy as np

from keras_bnn.tflite.flatbuffer import BITPACK_WIDTH, Flatbuffer, read_flatbuffer
from keras_bnn.tflite.report import CATEGORIES, FlatbufferReport, OpMacs, SubgraphReport

__all__ = ["FlatbufferReport", "inspect"]

INT8_SIGN_SCALE = float(np.float32(1 / 127))
INT8_NOTE = ("binary activations of int8 ops are recognised by their quantization (+-127 at scale 1/127, zero point "
             "0: keras_bnn's int8 target); their binary MACs run in int8 ops (not bitpacked) and each binary weight "
             "takes 8 bits, so the file is about 8x its 1-bit ideal")

# Ops that only move values around -> their data inputs (None: all); what they make from +-1 stays +-1.
_LAYOUT_OPS: dict[str, tuple[int, ...] | None] = {
    "RESHAPE": (0,), "TRANSPOSE": (0,), "SQUEEZE": (0,), "EXPAND_DIMS": (0,), "SLICE": (0,), "STRIDED_SLICE": (0,),
    "GATHER": (0,), "SPLIT": (1,), "SPLIT_V": (0,), "UNPACK": (0,), "PACK": None, "CONCATENATION": None}


def _subgraph_roles(graph: Flatbuffer) -> list[tuple[str, bool]]:
    """(role, per_iteration) of every subgraph, following WHILE/IF/CALL_ONCE from subgraph 0."""
    subgraphs = graph.model.subgraphs
    roles: list[tuple[str, bool] | None] = [None] * len(subgraphs)
    roles[0] = ("main", False)
    pending = [0]
    while pending:
        caller = pending.pop()
        in_loop = roles[caller][1]
        for op in subgraphs[caller].operators:
            options, kind = op.builtinOptions, graph.op_type(op)
            callees = []
            if kind == "WHILE":
                callees = [(options.condSubgraphIndex, "while_cond", True),
                           (options.bodySubgraphIndex, "while_body", True)]
            elif kind == "IF":
                callees = [(options.thenSubgraphIndex, "if_then", in_loop),
                           (options.elseSubgraphIndex, "if_else", in_loop)]
            elif kind == "CALL_ONCE":
                callees = [(options.initSubgraphIndex, "call_once", in_loop)]
            for index, role, per_iteration in callees:
                if roles[index] is None:
                    roles[index] = (role, per_iteration or in_loop)
                    pending.append(index)
    return [role or ("unreferenced", False) for role in roles]


class _SubgraphAnalysis:
    """MACs and binary weights of one subgraph."""

    def __init__(self, graph: Flatbuffer, index: int, notes: list[str]):
        self.graph, self.index, self.notes = graph, index, notes
        self.subgraph = graph.model.subgraphs[index]
        self.producers = {out: op for op in self.subgraph.operators for out in op.outputs}
        # buffer index -> ("packed" | "unpacked", ideal bytes, padding bytes, n binary weights)
        self.binary_buffers: dict[int, tuple[str, int, int, int]] = {}
        self.notes_kinds: set[str] = set()

    def tensor(self, index: int):
        return self.subgraph.tensors[index]

    def shape(self, index: int) -> list[int]:
        tensor = self.tensor(index)
        signature = tensor.shapeSignature
        if signature is not None and any(dim < 0 for dim in signature):
            name = tensor.name.decode(errors="replace") if isinstance(tensor.name, bytes) else tensor.name
            self.notes.append(f"tensor {name!r} of subgraph {self.index} has a dynamic shape "
                              f"{list(signature)}; MACs count its unknown dimensions as 1")
        return [int(dim) for dim in (tensor.shape if tensor.shape is not None else [])]

    def is_int8_sign(self, index: int) -> bool:
        """Whether a tensor is an int8 sign as the int8 target writes them: +-127 at scale 1/127, zero point 0."""
        tensor = self.tensor(index)
        quantization = tensor.quantization
        scales = getattr(quantization, "scale", None)
        points = getattr(quantization, "zeroPoint", None)
        return (self.graph.type_name(tensor) == "INT8" and scales is not None and len(scales) == 1
                and abs(float(scales[0]) - INT8_SIGN_SCALE) < 1e-9 and points is not None and len(points) == 1
                and int(points[0]) == 0)

    def is_binary_activation(self, index: int) -> bool:
        """Whether a tensor holds +-1: made by LceDequantize, possibly through layout-only ops, or an int8 sign."""
        if self.is_int8_sign(index):
            if "int8" not in self.notes_kinds:
                self.notes_kinds.add("int8")
                self.notes.append(INT8_NOTE)
            return True
        op = self.producers.get(index)
        if op is None:
            return False
        kind = self.graph.op_type(op)
        if kind == "LceDequantize":
            return True
        if kind not in _LAYOUT_OPS:
            return False
        inputs = op.inputs if _LAYOUT_OPS[kind] is None else [op.inputs[i] for i in _LAYOUT_OPS[kind]]
        return all(self.is_binary_activation(i) for i in inputs)

    def constant(self, index: int) -> tuple[np.ndarray, Any, int] | None:
        """(values, quantization, buffer index) of a constant tensor, looking through one DEQUANTIZE op."""
        producer = self.producers.get(index)
        if producer is not None and self.graph.op_type(producer) == "DEQUANTIZE":
            index = producer.inputs[0]
        tensor = self.tensor(index)
        raw = self.graph.buffer_bytes(tensor.buffer) if tensor.buffer else None
        dtype = self.graph.numpy_type(tensor)
        if raw is None or dtype is None:
            return None
        values = raw.view(dtype).reshape([int(d) for d in tensor.shape])
        return values, tensor.quantization, tensor.buffer

    def binary_weight(self, index: int, channel_axis: int) -> bool:
        """Whether a constant is +-c per output channel; records its ideal size if so."""
        found = self.constant(index)
        if found is None or found[0].ndim < 2:
            return False
        values, quantization, buffer = found
        values = np.moveaxis(values.astype(np.float64), channel_axis, 0).reshape(values.shape[channel_axis], -1)
        zero_point = getattr(quantization, "zeroPoint", None)
        if zero_point is not None and len(zero_point) in (1, values.shape[0]):
            values = values - np.asarray(zero_point, np.float64).reshape(-1, 1)
        magnitude = np.abs(values)
        if values.shape[1] < 2 or not np.all(magnitude == magnitude[:, :1]) or not np.all(magnitude[:, 0] > 0):
            return False
        count = values.size
        is_float = self.graph.type_name(self.tensor(index)).startswith(("FLOAT", "BFLOAT"))
        scales = 4 * values.shape[0] if is_float and not np.all(magnitude == 1) else 0
        self.binary_buffers.setdefault(buffer, ("unpacked", -(-count // 8) + scales, 0, count))
        return True

    def op_macs(self, op_index: int, op) -> OpMacs | None:
        kind = self.graph.op_type(op)
        if kind == "LceBconv2d":
            return self._bconv_macs(op_index, op)
        if kind not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL"):
            return None
        out = self.shape(op.outputs[0])
        if kind == "BATCH_MATMUL":  # [..., M, K] x [..., K, N] -> [..., M, N] (before adjX/adjY)
            left, right = op.inputs[0], op.inputs[1]
            adj_x = bool(op.builtinOptions is not None and op.builtinOptions.adjX)
            adj_y = bool(op.builtinOptions is not None and op.builtinOptions.adjY)
            macs = int(np.prod(out)) * self.shape(left)[-2 if adj_x else -1]
            left_binary, right_binary = self.is_binary_activation(left), self.is_binary_activation(right)
            # a constant operand's output channels: M of the left one, N of the right one
            left_weight = self.binary_weight(left, -1 if adj_x else -2)
            right_weight = self.binary_weight(right, -2 if adj_y else -1)
            if left_binary and right_binary:
                category = "activation_binary"
            elif (left_binary and right_weight) or (right_binary and left_weight):
                category = "unpacked_binary"
            else:
                category = "other"
            return OpMacs(self.index, op_index, kind, macs, category)
        weights_shape = self.shape(op.inputs[1])
        if kind == "CONV_2D":  # filter [out, kh, kw, in / groups]
            macs, channel_axis = int(np.prod(out)) * int(np.prod(weights_shape[1:])), 0
        elif kind == "DEPTHWISE_CONV_2D":  # filter [1, kh, kw, out]
            macs, channel_axis = int(np.prod(out)) * weights_shape[1] * weights_shape[2], 3
        else:  # FULLY_CONNECTED, weights [units, depth]
            macs, channel_axis = int(np.prod(out)) * weights_shape[1], 0
        binary_weight = self.binary_weight(op.inputs[1], channel_axis)  # also records binary weights
        if self.is_binary_activation(op.inputs[0]) and self.is_binary_activation(op.inputs[1]):
            category = "activation_binary"  # e.g. a @ b.T of two +-1 activations, lowered to FULLY_CONNECTED
        elif binary_weight and self.is_binary_activation(op.inputs[0]):
            category = "unpacked_binary"
        else:
            category = "other"
        return OpMacs(self.index, op_index, kind, macs, category)

    def _bconv_macs(self, op_index: int, op) -> OpMacs:
        options = self.graph.custom_options(op)
        if "channels_in" not in options:
            raise ValueError(f"LceBconv2d op {op_index} of subgraph {self.index} has no 'channels_in' option")
        channels_in = int(options["channels_in"])
        if self.graph.type_name(self.tensor(op.inputs[1])) != "INT32":
            raise ValueError(f"LceBconv2d op {op_index} of subgraph {self.index} has a filter that is not "
                             "bitpacked into int32 (a flatbuffer from an older LCE?)")
        channels_out, height, width, packed = self.shape(op.inputs[1])
        groups = -(-channels_in // BITPACK_WIDTH) // packed  # as LCE's kernel infers it
        group_size = channels_in // groups
        out = self.shape(op.outputs[0])
        macs = out[0] * out[1] * out[2] * channels_out * height * width * group_size
        count = channels_out * height * width * group_size
        stored = channels_out * height * width * packed * BITPACK_WIDTH // 8
        ideal = -(-count // 8)
        self.binary_buffers.setdefault(self.tensor(op.inputs[1]).buffer, ("packed", ideal, stored - ideal, count))
        return OpMacs(self.index, op_index, "LceBconv2d", macs, "bitpacked")


def inspect(flatbuffer: bytes | str | os.PathLike) -> FlatbufferReport:
    """Report the ops, MACs and size of a TFLite / LCE flatbuffer.

    Args:
        flatbuffer: the flatbuffer's bytes, or the path of a ``.tflite`` file.

    Returns:
        A :class:`~keras_bnn.tflite.report.FlatbufferReport`; ``print`` it for a table, ``to_dict()`` for JSON.

    Raises:
        ValueError: the input is not a TFLite flatbuffer (no ``TFL3`` identifier, or unparsable).
        TypeError: the input is neither bytes nor a path.

    Example:
        >>> import keras_bnn, larq as lq, tensorflow as tf, larq_compute_engine as lce
        >>> from keras_bnn.tflite import inspect
        >>> inputs = tf.keras.Input(batch_size=1, shape=(8, 8, 32))
        >>> binary = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", use_bias=False)
        >>> outputs = lq.layers.QuantConv2D(64, 3, **binary)(inputs)
        >>> report = inspect(lce.convert_keras_model(tf.keras.Model(inputs, outputs)))
        >>> report.macs["bitpacked"] == 6 * 6 * 64 * 3 * 3 * 32, report.op_counts["LceBconv2d"]
        (True, 1)
    """
    graph = read_flatbuffer(flatbuffer)
    data, model, notes = graph.data, graph.model, []
    roles = _subgraph_roles(graph)
    subgraph_reports, op_macs = [], []
    binary_buffers: dict[int, tuple[str, int, int, int]] = {}
    for index, subgraph in enumerate(model.subgraphs):
        analysis = _SubgraphAnalysis(graph, index, notes)
        counts: Counter[str] = Counter()
        macs = dict.fromkeys(CATEGORIES, 0)
        for op_index, op in enumerate(subgraph.operators or []):
            counts[graph.op_type(op)] += 1
            record = analysis.op_macs(op_index, op)
            if record is not None:
                op_macs.append(record)
                macs[record.category] += record.macs
        for buffer, info in analysis.binary_buffers.items():
            binary_buffers.setdefault(buffer, info)
        name = subgraph.name.decode() if isinstance(subgraph.name, bytes) else (subgraph.name or "")
        subgraph_reports.append(SubgraphReport(index, name, roles[index][0], roles[index][1], dict(counts), macs))

    tensor_buffers = {tensor.buffer for sub in model.subgraphs for tensor in sub.tensors if tensor.buffer}
    buffer_sizes = [0 if (raw := graph.buffer_bytes(i)) is None else len(raw) for i in range(len(model.buffers))]
    ideal = excess = padding = binary_weights = 0
    for buffer in tensor_buffers:
        stored = buffer_sizes[buffer]
        if buffer in binary_buffers:
            kind, binary_ideal, pad, count = binary_buffers[buffer]
            ideal += binary_ideal
            binary_weights += count
            if kind == "packed":
                padding += pad
            else:
                excess += stored - binary_ideal
        else:
            ideal += stored
    totals = {name: sum(sub.macs[name] for sub in subgraph_reports) for name in CATEGORIES}
    binary = totals["bitpacked"] + totals["unpacked_binary"]
    op_counts: Counter[str] = Counter()
    for sub in subgraph_reports:
        op_counts.update(sub.op_counts)
    return FlatbufferReport(
        op_counts=dict(op_counts),
        ops_by_subgraph={sub.label: sub.op_counts for sub in subgraph_reports},
        subgraphs=tuple(subgraph_reports),
        op_macs=tuple(op_macs),
        macs=totals,
        bitpacked_share=totals["bitpacked"] / binary if binary else None,
        flatbuffer_bytes=len(data),
        ideal_bytes=ideal,
        binary_weights=binary_weights,
        structure_bytes=len(data) - sum(buffer_sizes),
        non_tensor_buffer_bytes=sum(size for i, size in enumerate(buffer_sizes) if i not in tensor_buffers),
        unpacked_binary_excess_bytes=excess,
        bitpack_padding_bytes=padding,
        notes=tuple(dict.fromkeys(notes)),
    )
