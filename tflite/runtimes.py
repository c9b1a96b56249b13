"""The interpreters that run flatbuffers, behind one small interface: :func:`open_runtime` -> :class:`Runtime`.

* ``"lce"``: Larq Compute Engine's interpreter (its custom ops ``LceBconv2d``, ``LceQuantize``, ... and TFLite's
  builtin ops; on x86 its portable kernels), package ``larq-compute-engine``.

More runtimes register with :func:`register_runtime`. The flatbuffer is always checked by the one reader
(:func:`keras_bnn.tflite.flatbuffer.read_flatbuffer`) before an interpreter sees it, and a runtime is refused a
file whose custom ops it cannot run, so bad bytes are a ``ValueError``, never a crash.

Example:
    >>> import keras_bnn, keras_bnn.tflite, larq as lq, numpy as np, tensorflow as tf
    >>> from keras_bnn.tflite.runtimes import open_runtime
    >>> inputs = tf.keras.Input((4, 4, 32), batch_size=2)
    >>> outputs = lq.layers.QuantConv2D(8, 3, input_quantizer="ste_sign", kernel_quantizer="ste_sign")(inputs)
    >>> runtime = open_runtime(keras_bnn.tflite.convert(tf.keras.Model(inputs, outputs)), "lce")
    >>> [detail.shape for detail in runtime.inputs], runtime.run([np.zeros((2, 4, 4, 32), np.float32)])[0].shape
    ([(2, 4, 4, 32)], (2, 2, 2, 8))
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np

from keras_bnn import _compat
from keras_bnn.tflite.flatbuffer import Flatbuffer, read_flatbuffer

__all__ = ["Runtime", "TensorDetail", "available_runtimes", "default_runtime", "open_runtime", "register_runtime"]

LCE_OPS = frozenset({"LceQuantize", "LceDequantize", "LceBconv2d", "LceBMaxPool2d"})


@dataclasses.dataclass(frozen=True)
class TensorDetail:
    """An input or output of a flatbuffer's main subgraph.

    Attributes:
        name: The tensor's name (its signature name where the file has a signature).
        shape: The shape, batch included (fixed at conversion).
        dtype: The numpy element type.
        scale: The quantization scale of an integer tensor (a tuple when per channel), or None (float, or not
            quantized).
        zero_point: The zero point (a tuple when per channel), or None.
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float | tuple[float, ...] | None
    zero_point: int | tuple[int, ...] | None

    @property
    def quantized(self) -> bool:
        return self.scale is not None


def _details(flatbuffer: Flatbuffer, indices: Sequence[int]) -> list[TensorDetail]:
    subgraph = flatbuffer.model.subgraphs[0]
    details = []
    for index in indices:
        tensor = subgraph.tensors[index]
        quantization = tensor.quantization
        scales = getattr(quantization, "scale", None)
        points = getattr(quantization, "zeroPoint", None)
        dtype = flatbuffer.numpy_type(tensor) or np.dtype(np.float32)
        scale = zero_point = None
        if scales is not None and len(scales) and dtype.kind in "iu":
            scale = float(scales[0]) if len(scales) == 1 else tuple(float(v) for v in scales)
            zero_point = int(points[0]) if points is not None and len(points) == 1 else tuple(points or ())
        details.append(TensorDetail(
            name=flatbuffer.tensor_name(0, index),
            shape=tuple(int(d) for d in (tensor.shape if tensor.shape is not None else [])),
            dtype=dtype, scale=scale, zero_point=zero_point))
    return details


class Runtime:
    """A flatbuffer loaded in one interpreter.

    Attributes:
        name: The runtime's name (e.g. ``"lce"``).
        flatbuffer: The checked flatbuffer.
        inputs: The main subgraph's inputs.
        outputs: The main subgraph's outputs.
    """

    name = ""
    supported_custom_ops: frozenset[str] = frozenset()

    def __init__(self, flatbuffer: Flatbuffer):
        self.flatbuffer = flatbuffer
        subgraph = flatbuffer.model.subgraphs[0]
        self.inputs = _details(flatbuffer, subgraph.inputs if subgraph.inputs is not None else [])
        self.outputs = _details(flatbuffer, subgraph.outputs if subgraph.outputs is not None else [])

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One invocation: `inputs` in the order of :attr:`inputs` (shapes and dtypes as they state)."""
        raise NotImplementedError


class LceRuntime(Runtime):
    """Larq Compute Engine's interpreter.

    Options: ``use_indirect_bgemm`` (LCE's indirect BGEMM kernel for ``LceBconv2d``), ``use_reference_bconv``,
    ``use_xnnpack``.
    """

    name = "lce"
    supported_custom_ops = LCE_OPS

    def __init__(self, flatbuffer: Flatbuffer, *, num_threads: int = 1, use_indirect_bgemm: bool = False,
                 use_reference_bconv: bool = False, use_xnnpack: bool = False):
        super().__init__(flatbuffer)
        self._interpreter = _compat.lce_interpreter_class()(
            flatbuffer.data, num_threads=num_threads, use_reference_bconv=use_reference_bconv,
            use_indirect_bgemm=use_indirect_bgemm, use_xnnpack=use_xnnpack)

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [np.array(output) for output in _compat.lce_predict(self._interpreter, inputs)]


_RUNTIMES: dict[str, Callable[..., Runtime]] = {"lce": LceRuntime}


def register_runtime(name: str, factory: Callable[..., Runtime]) -> None:
    """Make ``open_runtime(..., name)`` use `factory(flatbuffer, num_threads=..., **options)`."""
    _RUNTIMES[name] = factory


def available_runtimes() -> list[str]:
    """The runtime names :func:`open_runtime` accepts."""
    return sorted(_RUNTIMES)


def default_runtime(flatbuffer: Flatbuffer) -> str:
    """The runtime :func:`keras_bnn.tflite.verify` uses when none is named: LCE's."""
    return "lce"


def open_runtime(flatbuffer: bytes | Flatbuffer, runtime: str = "lce", *, num_threads: int = 1,
                 **options: Any) -> Runtime:
    """Load a flatbuffer in a runtime, after checking it.

    Args:
        flatbuffer: The bytes (checked by :func:`~keras_bnn.tflite.flatbuffer.read_flatbuffer`) or a checked
            :class:`~keras_bnn.tflite.flatbuffer.Flatbuffer`.
        runtime: One of :func:`available_runtimes`.
        num_threads: Interpreter threads.
        **options: The runtime's own options (see each runtime class).

    Raises:
        ValueError: bad bytes, an unknown runtime, or custom ops the runtime cannot run.
    """
    checked = flatbuffer if isinstance(flatbuffer, Flatbuffer) else read_flatbuffer(flatbuffer)
    if runtime not in _RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; available: {', '.join(available_runtimes())}")
    factory = _RUNTIMES[runtime]
    unsupported = checked.custom_op_types() - getattr(factory, "supported_custom_ops", frozenset())
    if unsupported:
        raise ValueError(f"the {runtime!r} runtime cannot run custom ops {sorted(unsupported)} of this flatbuffer"
                         + (" (an LCE flatbuffer: use runtime='lce')" if unsupported & LCE_OPS else ""))
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive integer, got {num_threads!r}")
    return factory(checked, num_threads=num_threads, **options)
