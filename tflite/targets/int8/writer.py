"""Write an IR :class:`~keras_bnn.tflite.targets.int8.ir.Graph` as a TFLite flatbuffer with TFLite's schema object API.

Only builtin ops are written (no custom op, no Select TF op). Constant buffers are 16-byte aligned, as the
schema asks (``force_align: 16``) and as TFLite Micro needs to read int32 biases in place on strict-alignment
cores.

Example:
    >>> import numpy as np
    >>> from keras_bnn.tflite.targets.int8.ir import Graph
    >>> from keras_bnn.tflite.targets.int8.writer import to_flatbuffer
    >>> graph = Graph()
    >>> x = graph.activation("x", (1, 4), "int8", scale=1 / 127, zero_point=0)
    >>> y = graph.activation("y", (1, 2, 2), "int8", scale=1 / 127, zero_point=0)
    >>> _ = graph.reshape(x, y)
    >>> graph.inputs, graph.outputs = [x], [y]
    >>> to_flatbuffer(graph)[4:8]
    b'TFL3'
"""

from __future__ import annotations

import flatbuffers
import numpy as np

from keras_bnn._compat import tflite_schema
from keras_bnn.tflite.targets.int8.ir import Graph, Tensor

__all__ = ["OP_VERSIONS", "to_flatbuffer"]

# The op version TFLite's own converter writes for these ops on int8 tensors (runtimes accept any version they
# register; older runtimes refuse versions newer than they know, so the lowest version with int8 support).
OP_VERSIONS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 4, "MAX_POOL_2D": 2,
               "AVERAGE_POOL_2D": 2, "ADD": 2, "SOFTMAX": 2, "QUANTIZE": 2, "DEQUANTIZE": 2, "RESHAPE": 1,
               "PAD": 2, "PADV2": 2, "CONCATENATION": 2, "MEAN": 2, "MUL": 2}
_ALIGNMENT = 16


def _buffer_class():
    schema = tflite_schema()

    class AlignedBufferT(schema.BufferT):
        """BufferT whose data vector starts on a 16-byte boundary."""

        def Pack(self, builder):  # noqa: N802 (flatbuffers' naming)
            data = None
            if self.data is not None:
                payload = bytes(self.data)
                builder.StartVector(1, len(payload), _ALIGNMENT)
                builder.head = builder.head - len(payload)
                builder.Bytes[builder.head:builder.head + len(payload)] = payload
                data = builder.EndVector()
            schema.BufferStart(builder)
            if data is not None:
                schema.BufferAddData(builder, data)
            return schema.BufferEnd(builder)

    return AlignedBufferT


def _quantization(tensor: Tensor):
    schema = tflite_schema()
    if tensor.scale is None:
        return None
    params = schema.QuantizationParametersT()
    params.scale = [float(s) for s in tensor.scale]
    params.zeroPoint = [int(z) for z in tensor.zero_point]
    params.quantizedDimension = int(tensor.quantized_dimension)
    return params


def _options_type(options) -> int:
    """The BuiltinOptions union tag of an ``*OptionsT`` instance (Conv2DOptionsT -> BuiltinOptions.Conv2DOptions)."""
    schema = tflite_schema()
    name = type(options).__name__
    if not name.endswith("T") or not hasattr(schema.BuiltinOptions, name[:-1]):
        raise TypeError(f"{name} is not a builtin options class of the TFLite schema")
    return getattr(schema.BuiltinOptions, name[:-1])


def to_flatbuffer(graph: Graph, *, description: str = "keras_bnn int8") -> bytes:
    """The TFLite flatbuffer of `graph` (one subgraph, builtin ops only).

    Raises:
        ValueError: an op name that is not a TFLite builtin op, or a tensor used but never added to the graph.
    """
    schema = tflite_schema()
    buffer_class = _buffer_class()
    builtin = {name: value for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    types = {"int8": schema.TensorType.INT8, "int16": schema.TensorType.INT16, "int32": schema.TensorType.INT32,
             "int64": schema.TensorType.INT64, "float32": schema.TensorType.FLOAT32}

    model = schema.ModelT()
    model.version = 3
    model.description = description
    model.buffers = [buffer_class()]  # buffer 0: the empty sentinel every TFLite file starts with
    index = {id(tensor): position for position, tensor in enumerate(graph.tensors)}
    subgraph = schema.SubGraphT()
    subgraph.name = "main"
    subgraph.tensors = []
    for tensor in graph.tensors:
        entry = schema.TensorT()
        entry.name = tensor.name
        entry.shape = list(tensor.shape)
        entry.type = types[tensor.dtype]
        entry.quantization = _quantization(tensor)
        entry.buffer = 0
        if tensor.data is not None:
            buffer = buffer_class()
            buffer.data = np.ascontiguousarray(tensor.data).astype(tensor.data.dtype.newbyteorder("<")).tobytes()
            model.buffers.append(buffer)
            entry.buffer = len(model.buffers) - 1
        subgraph.tensors.append(entry)

    def tensor_index(tensor: Tensor | None) -> int:
        if tensor is None:
            return -1
        if id(tensor) not in index:
            raise ValueError(f"tensor {tensor.name!r} is used by an op but is not in the graph")
        return index[id(tensor)]

    codes: dict[tuple[str, int], int] = {}
    model.operatorCodes = []
    subgraph.operators = []
    for op in graph.operators:
        if op.opcode not in builtin or op.opcode == "CUSTOM":
            raise ValueError(f"{op.opcode!r} is not a TFLite builtin op")
        key = (op.opcode, OP_VERSIONS.get(op.opcode, 1))
        if key not in codes:
            code = schema.OperatorCodeT()
            code.builtinCode = builtin[op.opcode]
            code.deprecatedBuiltinCode = min(builtin[op.opcode],
                                             schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
            code.version = key[1]
            codes[key] = len(model.operatorCodes)
            model.operatorCodes.append(code)
        entry = schema.OperatorT()
        entry.opcodeIndex = codes[key]
        entry.inputs = [tensor_index(t) for t in op.inputs]
        entry.outputs = [tensor_index(t) for t in op.outputs]
        if op.options is not None:
            entry.builtinOptionsType = _options_type(op.options)
            entry.builtinOptions = op.options
        subgraph.operators.append(entry)
    subgraph.inputs = [tensor_index(t) for t in graph.inputs]
    subgraph.outputs = [tensor_index(t) for t in graph.outputs]
    model.subgraphs = [subgraph]

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
