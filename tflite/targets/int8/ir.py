"""A small IR of TFLite builtin ops on quantized tensors: what the int8 lowering builds and the emitter writes.

A :class:`Graph` holds :class:`Tensor` s (activations or constants, each with its TFLite type and quantization)
and :class:`Operator` s (a builtin op name, input and output tensors, and the op's options as the flatbuffer
schema's object-API ``*OptionsT`` instance). :mod:`keras_bnn.tflite.targets.int8.writer` turns a graph into bytes.

Example:
    >>> import numpy as np
    >>> from keras_bnn.tflite.targets.int8.ir import Graph
    >>> graph = Graph()
    >>> x = graph.activation("x", (1, 4), "int8", scale=1 / 127, zero_point=0)
    >>> y = graph.activation("y", (1, 2, 2), "int8", scale=1 / 127, zero_point=0)
    >>> _ = graph.reshape(x, y)
    >>> [op.opcode for op in graph.operators]
    ['RESHAPE']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keras_bnn._compat import tflite_schema

__all__ = ["Graph", "Operator", "Tensor", "NUMPY_TYPES"]

NUMPY_TYPES = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64, "float32": np.float32}


@dataclass(eq=False)
class Tensor:
    """One tensor: an activation (``data is None``) or a constant.

    Attributes:
        name: unique name in the graph.
        shape: static shape, batch included.
        dtype: "int8", "int16", "int32", "int64" or "float32".
        scale: quantization scales (one, or one per index of ``quantized_dimension``); None: not quantized.
        zero_point: zero points, as many as scales.
        quantized_dimension: axis of per-channel quantization.
        data: the constant's values (any numpy array castable to `dtype`), or None.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    quantized_dimension: int = 0
    data: np.ndarray | None = None

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def scalar_scale(self) -> float:
        """The per-tensor scale (ValueError for a per-channel tensor)."""
        if self.scale is None or len(self.scale) != 1:
            raise ValueError(f"tensor {self.name!r} has no per-tensor scale")
        return float(self.scale[0])

    @property
    def scalar_zero_point(self) -> int:
        if self.zero_point is None or len(self.zero_point) != 1:
            raise ValueError(f"tensor {self.name!r} has no per-tensor zero point")
        return int(self.zero_point[0])


@dataclass(eq=False)
class Operator:
    """One builtin op. ``inputs`` may hold None for an omitted optional input (written as -1)."""

    opcode: str
    inputs: list[Tensor | None]
    outputs: list[Tensor]
    options: Any = None


@dataclass
class Graph:
    """Tensors and operators of one subgraph, in execution order, with the model's inputs and outputs."""

    tensors: list[Tensor] = field(default_factory=list)
    operators: list[Operator] = field(default_factory=list)
    inputs: list[Tensor] = field(default_factory=list)
    outputs: list[Tensor] = field(default_factory=list)
    _names: set = field(default_factory=set)

    # ---- tensors ----------------------------------------------------------------------------------------
    def _unique(self, name: str) -> str:
        candidate, index = name, 1
        while candidate in self._names:
            candidate, index = f"{name}_{index}", index + 1
        self._names.add(candidate)
        return candidate

    def _add(self, tensor: Tensor) -> Tensor:
        tensor.name = self._unique(tensor.name)
        self.tensors.append(tensor)
        return tensor

    def activation(self, name: str, shape, dtype: str, *, scale=None, zero_point=None) -> Tensor:
        """A new activation tensor with per-tensor quantization (or none, for float32)."""
        scale_array = None if scale is None else np.asarray([scale], np.float32).reshape(-1)
        zero_array = None if zero_point is None else np.asarray([zero_point], np.int64).reshape(-1)
        return self._add(Tensor(name, tuple(int(d) for d in shape), dtype, scale_array, zero_array))

    def like(self, name: str, tensor: Tensor, shape=None) -> Tensor:
        """A new activation with `tensor`'s type and quantization (and `shape`, if given)."""
        return self._add(Tensor(name, tuple(shape or tensor.shape), tensor.dtype, tensor.scale,
                                tensor.zero_point, tensor.quantized_dimension))

    def constant(self, name: str, data, dtype: str, *, scale=None, zero_point=None,
                 quantized_dimension: int = 0) -> Tensor:
        """A constant; `scale`/`zero_point` are scalars or per-channel sequences along `quantized_dimension`."""
        array = np.asarray(data)
        info = np.iinfo(NUMPY_TYPES[dtype]) if dtype.startswith("int") else None
        if info is not None and array.size and (array.min() < info.min or array.max() > info.max):
            raise ValueError(f"constant {name!r} does not fit {dtype}: range [{array.min()}, {array.max()}]")
        array = array.astype(NUMPY_TYPES[dtype])
        scale_array = None if scale is None else np.asarray(scale, np.float32).reshape(-1)
        zero_array = None
        if scale_array is not None:
            zero_array = np.zeros(len(scale_array), np.int64) if zero_point is None else \
                np.broadcast_to(np.asarray(zero_point, np.int64), scale_array.shape).copy()
        return self._add(Tensor(name, array.shape, dtype, scale_array, zero_array, quantized_dimension, array))

    # ---- operators --------------------------------------------------------------------------------------
    def add_op(self, opcode: str, inputs, outputs, options=None) -> Operator:
        op = Operator(opcode, list(inputs), list(outputs), options)
        self.operators.append(op)
        return op

    def reshape(self, x: Tensor, y: Tensor) -> Operator:
        """RESHAPE x to y's shape (the shape travels as a constant int32 input, as TFLite's converter does)."""
        schema = tflite_schema()
        shape = self.constant(f"{y.name}/shape", np.asarray(y.shape, np.int32), "int32")
        return self.add_op("RESHAPE", [x, shape], [y], schema.ReshapeOptionsT())
