"""The one reader of TFLite / LCE flatbuffers: every function that takes flatbuffer bytes goes through it.

:func:`read_flatbuffer` checks the bytes before anything else sees them, so that bad bytes (empty, truncated, random,
another file type) are a ``ValueError`` that says what they are and what was expected, never a crash inside an
interpreter: the file identifier ``TFL3``, a complete parse with TFLite's own generated schema, and the consistency
of every index (operator codes, tensors, buffers, subgraphs), every buffer's extent, every constant tensor's size and
every custom op's options. The result, :class:`Flatbuffer`, holds the unpacked model and the lookups that the
converter, ``inspect``, ``verify``, the text steppers and the command line share.

Example:
    >>> import keras_bnn, larq as lq, tensorflow as tf, keras_bnn.tflite
    >>> from keras_bnn.tflite.flatbuffer import read_flatbuffer
    >>> inputs = tf.keras.Input((4, 4, 32), batch_size=1)
    >>> outputs = lq.layers.QuantConv2D(8, 3, input_quantizer="ste_sign", kernel_quantizer="ste_sign")(inputs)
    >>> flatbuffer = read_flatbuffer(keras_bnn.tflite.convert(tf.keras.Model(inputs, outputs)))
    >>> "LceBconv2d" in flatbuffer.op_types()
    True
    >>> read_flatbuffer(b"not a model")
    Traceback (most recent call last):
    ...
    ValueError: the given bytes (11 bytes) are not a TFLite flatbuffer: expected the file identifier b'TFL3' at bytes 4..8, found b'a mo'
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from keras_bnn._compat import tflite_schema

__all__ = ["BITPACK_WIDTH", "Flatbuffer", "read_flatbuffer"]

BITPACK_WIDTH = 32  # LCE packs input channels into int32 words
IDENTIFIER = b"TFL3"
NUMPY_TYPES = {"FLOAT32": np.float32, "FLOAT16": np.float16, "FLOAT64": np.float64, "INT8": np.int8,
               "UINT8": np.uint8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64, "BOOL": np.bool_}


class Flatbuffer:
    """A validated flatbuffer (made by :func:`read_flatbuffer`): the unpacked model and shared lookups.

    Attributes:
        data: The flatbuffer's bytes.
        model: TFLite's unpacked ``ModelT`` (object API of the generated schema).
        origin: Where the bytes came from, for messages ("the given bytes", "the bytes of file 'x.tflite'").
    """

    def __init__(self, data: bytes, model: Any, origin: str):
        self.data, self.model, self.origin = data, model, origin
        schema = tflite_schema()
        self._builtin_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        self._type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}

    def op_type(self, op: Any) -> str:
        """The op's builtin name (e.g. ``CONV_2D``), or its custom code (e.g. ``LceBconv2d``)."""
        code = self.model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = self._builtin_names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            custom = code.customCode
            return custom.decode(errors="replace") if isinstance(custom, bytes) else str(custom)
        return name

    def type_name(self, tensor: Any) -> str:
        """The tensor's element type, e.g. ``FLOAT32`` or ``INT8``."""
        return self._type_names.get(tensor.type, f"TYPE_{tensor.type}")

    def numpy_type(self, tensor: Any) -> np.dtype | None:
        """The tensor's element type as a numpy dtype (None for types numpy has no match for)."""
        found = NUMPY_TYPES.get(self.type_name(tensor))
        return None if found is None else np.dtype(found)

    def operators(self) -> Iterator[tuple[int, int, Any, str]]:
        """``(subgraph index, op index, op, op type)`` for every op of every subgraph."""
        for subgraph_index, subgraph in enumerate(self.model.subgraphs):
            for op_index, op in enumerate(subgraph.operators or []):
                yield subgraph_index, op_index, op, self.op_type(op)

    def op_types(self) -> set[str]:
        """The types of all ops in all subgraphs."""
        return {kind for *_, kind in self.operators()}

    def custom_op_types(self) -> set[str]:
        """The custom codes of all custom ops (empty for a file of builtin ops only)."""
        custom = {code.customCode for code in self.model.operatorCodes or [] if code.customCode is not None}
        used = self.op_types()
        return {code.decode(errors="replace") if isinstance(code, bytes) else str(code) for code in custom} & used

    def buffer_bytes(self, index: int) -> np.ndarray | None:
        """The bytes of buffer `index` (None when empty), whether stored inline or after the flatbuffer."""
        buffer = self.model.buffers[index]
        if buffer.offset > 1:  # large models keep buffers after the flatbuffer
            return np.frombuffer(self.data, np.uint8, int(buffer.size), int(buffer.offset))
        if buffer.data is None or len(buffer.data) == 0:
            return None
        return np.asarray(buffer.data, np.uint8)

    def constant(self, subgraph: int, tensor_index: int) -> np.ndarray | None:
        """The values of a constant tensor (shaped), or None when it has no data or an unknown type."""
        tensor = self.model.subgraphs[subgraph].tensors[tensor_index]
        raw = self.buffer_bytes(tensor.buffer) if tensor.buffer else None
        dtype = self.numpy_type(tensor)
        if raw is None or dtype is None:
            return None
        return raw.view(dtype).reshape([int(d) for d in _shape(tensor)])

    def custom_options(self, op: Any) -> dict[str, Any]:
        """A custom op's options (a flexbuffer map), as a dict ({} when it has none)."""
        from flatbuffers import flexbuffers

        raw = _custom_options_bytes(self.data, op)
        if not raw:
            return {}
        return flexbuffers.GetRoot(raw).AsMap.Value

    def tensor_name(self, subgraph: int, tensor_index: int) -> str:
        name = self.model.subgraphs[subgraph].tensors[tensor_index].name
        return name.decode(errors="replace") if isinstance(name, bytes) else str(name or "")

    def signature(self, index: int = 0) -> tuple[dict[str, int], dict[str, int]] | None:
        """``({input name: position in subgraph 0's inputs}, {output name: position in its outputs})`` of signature
        `index`, or None when the file has no signature."""
        signatures = self.model.signatureDefs or []
        if index >= len(signatures):
            return None
        signature = signatures[index]
        subgraph = self.model.subgraphs[signature.subgraphIndex]

        def positions(maps, order):
            order = list(order if order is not None else [])
            return {m.name.decode(errors="replace"): order.index(m.tensorIndex) for m in maps or []
                    if m.tensorIndex in order}

        return positions(signature.inputs, subgraph.inputs), positions(signature.outputs, subgraph.outputs)


def _shape(tensor: Any) -> list[int]:
    return [] if tensor.shape is None else [int(d) for d in tensor.shape]


def _custom_options_bytes(data: bytes, op: Any) -> bytes:
    raw = op.customOptions
    if (raw is None or len(raw) == 0) and op.largeCustomOptionsSize:
        start = int(op.largeCustomOptionsOffset)
        return data[start:start + int(op.largeCustomOptionsSize)]
    return b"" if raw is None else bytes(bytearray(raw))


def _source_bytes(source: Any) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "the given bytes"
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no such flatbuffer file: {path!r}")
        with open(path, "rb") as file:
            return file.read(), f"the bytes of file {path!r}"
    raise TypeError(f"a flatbuffer must be bytes or the path of a .tflite file, got {type(source).__name__}")


def _check(condition: bool, origin: str, size: int, problem: str) -> None:
    if not condition:
        raise ValueError(f"{origin} ({size:,} bytes) are not a valid TFLite flatbuffer: {problem}; it may be "
                         "truncated or corrupted")


def _validate(data: bytes, model: Any, origin: str, reader: Flatbuffer) -> None:
    """Every index in range, every buffer inside the bytes, constant sizes, custom options parse."""
    size = len(data)
    buffers, codes = model.buffers or [], model.operatorCodes or []
    _check(bool(model.subgraphs), origin, size, "it has no subgraph")
    for index, buffer in enumerate(buffers):
        if buffer.offset > 1:
            _check(buffer.offset + buffer.size <= size, origin, size,
                   f"buffer {index} lies at bytes {buffer.offset}..{buffer.offset + buffer.size}, past the end")
    for s, subgraph in enumerate(model.subgraphs):
        tensors = subgraph.tensors or []
        for t, tensor in enumerate(tensors):
            _check(0 <= tensor.buffer < max(len(buffers), 1), origin, size,
                   f"tensor {t} of subgraph {s} uses buffer {tensor.buffer} of {len(buffers)}")
            _check(all(d >= 0 for d in _shape(tensor)), origin, size, f"tensor {t} of subgraph {s} has a negative "
                   f"dimension in {_shape(tensor)}")
            raw = reader.buffer_bytes(tensor.buffer) if tensor.buffer else None
            dtype = reader.numpy_type(tensor)
            if raw is not None and dtype is not None:
                expected = int(np.prod(_shape(tensor))) * dtype.itemsize
                _check(raw.size == expected, origin, size, f"constant tensor {t} of subgraph {s} has {raw.size} "
                       f"bytes of data for shape {_shape(tensor)} ({expected} expected)")
        for name, indices in (("input", subgraph.inputs), ("output", subgraph.outputs)):
            for index in indices if indices is not None else []:
                _check(0 <= index < len(tensors), origin, size,
                       f"subgraph {s} names tensor {index} as an {name} but has {len(tensors)} tensors")
        for o, op in enumerate(subgraph.operators or []):
            _check(0 <= op.opcodeIndex < len(codes), origin, size,
                   f"op {o} of subgraph {s} uses operator code {op.opcodeIndex} of {len(codes)}")
            for index in [*(op.inputs if op.inputs is not None else []),
                          *(op.outputs if op.outputs is not None else [])]:
                _check(-1 <= index < len(tensors), origin, size,
                       f"op {o} of subgraph {s} uses tensor {index} but the subgraph has {len(tensors)}")
            if op.largeCustomOptionsSize:
                _check(op.largeCustomOptionsOffset + op.largeCustomOptionsSize <= size, origin, size,
                       f"the options of op {o} of subgraph {s} lie past the end")
            for attribute in ("condSubgraphIndex", "bodySubgraphIndex", "thenSubgraphIndex", "elseSubgraphIndex",
                              "initSubgraphIndex"):
                index = getattr(op.builtinOptions, attribute, None)
                if index is not None:
                    _check(0 <= index < len(model.subgraphs), origin, size,
                           f"op {o} of subgraph {s} calls subgraph {index} of {len(model.subgraphs)}")
            if codes[op.opcodeIndex].customCode is not None and _custom_options_bytes(data, op):
                try:
                    reader.custom_options(op)
                except Exception as error:  # noqa: BLE001  (flexbuffers raises many types on bad bytes)
                    _check(False, origin, size, f"the custom options of op {o} of subgraph {s} do not parse "
                           f"({type(error).__name__})")
    for signature in model.signatureDefs or []:
        _check(0 <= signature.subgraphIndex < len(model.subgraphs), origin, size,
               f"a signature names subgraph {signature.subgraphIndex} of {len(model.subgraphs)}")


def read_flatbuffer(source: bytes | bytearray | memoryview | str | os.PathLike) -> Flatbuffer:
    """Read and check a TFLite / LCE flatbuffer from its bytes or a ``.tflite`` path.

    Args:
        source: The bytes, or the path of a file.

    Returns:
        The validated :class:`Flatbuffer`.

    Raises:
        TypeError: `source` is neither bytes nor a path.
        FileNotFoundError: the path does not exist.
        ValueError: the bytes are not a TFLite flatbuffer (no ``TFL3`` identifier), or are truncated or corrupted
            (the message says what was found and what was expected).
    """
    data, origin = _source_bytes(source)
    if len(data) < 8 or data[4:8] != IDENTIFIER:
        found = "empty" if not data else f"found {data[4:8]!r}"
        raise ValueError(f"{origin} ({len(data):,} bytes) are not a TFLite flatbuffer: expected the file identifier "
                         f"{IDENTIFIER!r} at bytes 4..8, {found}")
    root = int.from_bytes(data[:4], "little")
    _check(8 <= root < len(data), origin, len(data), f"its root table offset {root} points outside the bytes")
    try:
        model = tflite_schema().ModelT.InitFromPackedBuf(data, 0)
    except Exception as error:  # noqa: BLE001  (struct.error, IndexError, ValueError, ... on bad bytes)
        raise ValueError(f"{origin} ({len(data):,} bytes) carry the TFLite identifier {IDENTIFIER!r} but are not a "
                         f"valid TFLite flatbuffer ({type(error).__name__}: {error}); they may be truncated or "
                         "corrupted") from None
    reader = Flatbuffer(data, model, origin)
    _validate(data, model, origin, reader)
    return reader
