"""The interpreters that run flatbuffers, behind one small interface: :func:`open_runtime` -> :class:`Runtime`.

* ``"lce"``: Larq Compute Engine's interpreter (its custom ops ``LceBconv2d``, ``LceQuantize``, ... and TFLite's
  builtin ops; on x86 its portable kernels), package ``larq-compute-engine``;
* ``"litert"``: LiteRT (``ai_edge_litert.interpreter``, the TFLite runtime of Android and Linux; XNNPACK on by
  default, ``use_xnnpack=False`` for its builtin kernels only);
* ``"tflite"``: TensorFlow's ``tf.lite.Interpreter`` (deprecated by TensorFlow in favour of LiteRT, still shipped;
  XNNPACK on by default), and ``"tflite-builtin"``: the same with its builtin kernels only;
* ``"tflm"``: TFLite Micro's Python interpreter (``tflite_micro.runtime``: its reference kernels, the code that
  runs on Cortex-M); :meth:`TflmRuntime.arena_bytes` is the RAM its tensor arena needs.

LiteRT and TFLite Micro are the optional ``portable`` extra (``pip install keras-bnn[portable]``), imported only
when asked for. More runtimes register with :func:`register_runtime`. The flatbuffer is always checked by the one reader
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
import os
import re
import tempfile
from typing import Any, Callable, Sequence

import numpy as np

from keras_bnn import _compat
from keras_bnn.tflite.flatbuffer import Flatbuffer, read_flatbuffer

__all__ = ["Runtime", "TensorDetail", "arrange", "available_runtimes", "default_runtime", "open_runtime", "positions_by_name",
           "register_runtime", "run", "tflm_arena_bytes"]

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

    def real_values(self, values: np.ndarray) -> np.ndarray:
        """`values` of this tensor as float64 real numbers (dequantized when the tensor is quantized).

        Raises:
            NotImplementedError: the tensor is quantized per channel.

        Example:
            >>> TensorDetail("scores", (1, 2), np.dtype(np.int8), 0.5, -128).real_values(np.array([-128, 2], np.int8))
            array([ 0., 65.])
        """
        if not self.quantized or not np.issubdtype(values.dtype, np.integer):
            return np.asarray(values, np.float64)
        if not np.isscalar(self.scale):
            raise NotImplementedError(f"{self.name!r} is quantized per channel (scales {self.scale}); only per-tensor "
                                      "is supported")
        return (values.astype(np.float64) - self.zero_point) * self.scale


def _details(flatbuffer: Flatbuffer, indices: Sequence[int], signature_names: dict[str, int]) -> list[TensorDetail]:
    subgraph = flatbuffer.model.subgraphs[0]
    names = {position: name for name, position in signature_names.items()}
    details = []
    for position, index in enumerate(indices):
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
            name=names.get(position, flatbuffer.tensor_name(0, index)),
            shape=tuple(int(d) for d in (tensor.shape if tensor.shape is not None else [])),
            dtype=dtype, scale=scale, zero_point=zero_point))
    return details


def positions_by_name(details: Sequence[TensorDetail], names: Sequence[str], what: str = "inputs") -> list[int]:
    """For each Keras tensor name, the position of the file's tensor of that name.

    Files keep the Keras model's input and output names in their signature, but their order may differ from the
    model's (a file with one input and one output is taken as it is, whatever its names).

    Raises:
        ValueError: a name the file does not have.

    Example:
        >>> detail = lambda name: TensorDetail(name, (1,), np.dtype(np.float32), None, None)
        >>> positions_by_name([detail("state_0"), detail("token")], ["token", "state_0"])
        [1, 0]
    """
    if len(names) == 1 and len(details) == 1:
        return [0]
    found = {detail.name: position for position, detail in enumerate(details)}
    missing = [name for name in names if name not in found]
    if missing:
        raise ValueError(f"the file's {what} {sorted(found)} do not name the model's {what} {missing}")
    return [found[name] for name in names]


def arrange(inputs: Sequence[np.ndarray], positions: Sequence[int], details: Sequence[TensorDetail]) -> list[np.ndarray]:
    """`inputs`, given in the Keras model's order, moved to the file's `positions` (from :func:`positions_by_name`)
    and cast to each file tensor's dtype.

    Example:
        >>> detail = lambda name, dtype: TensorDetail(name, (1,), np.dtype(dtype), None, None)
        >>> arrange([np.array([3.0]), np.zeros(1)], [1, 0], [detail("state_0", np.float32), detail("token", np.int32)])
        [array([0.], dtype=float32), array([3], dtype=int32)]
    """
    arranged: list[Any] = [None] * len(inputs)
    for x, position in zip(inputs, positions):
        arranged[position] = np.asarray(x).astype(details[position].dtype)
    return arranged


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
        signature = flatbuffer.signature(0) if flatbuffer.model.signatureDefs else None
        inputs, outputs = signature if signature and flatbuffer.model.signatureDefs[0].subgraphIndex == 0 else ({}, {})
        self.inputs = _details(flatbuffer, subgraph.inputs if subgraph.inputs is not None else [], inputs)
        self.outputs = _details(flatbuffer, subgraph.outputs if subgraph.outputs is not None else [], outputs)

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


class _TfliteFamilyRuntime(Runtime):
    """An interpreter with TFLite's Python API (set_tensor / invoke / get_tensor)."""

    def _bind(self, interpreter: Any) -> None:
        self._interpreter = interpreter
        interpreter.allocate_tensors()
        self._inputs = [detail["index"] for detail in interpreter.get_input_details()]
        self._outputs = [detail["index"] for detail in interpreter.get_output_details()]

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        for index, value in zip(self._inputs, inputs):
            self._interpreter.set_tensor(index, value)
        self._interpreter.invoke()
        return [self._interpreter.get_tensor(index).copy() for index in self._outputs]


class LiteRtRuntime(_TfliteFamilyRuntime):
    """LiteRT (``ai-edge-litert``). Option: ``use_xnnpack`` (default True: LiteRT's default XNNPACK delegate)."""

    name = "litert"

    def __init__(self, flatbuffer: Flatbuffer, *, num_threads: int = 1, use_xnnpack: bool = True):
        super().__init__(flatbuffer)
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        kind = OpResolverType.AUTO if use_xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self._bind(Interpreter(model_content=flatbuffer.data, num_threads=num_threads,
                               experimental_op_resolver_type=kind))

    def xnnpack_delegated_ops(self) -> tuple[list[str], list[str]]:
        """(op names the XNNPACK delegate runs, op names left to builtin kernels)."""
        return _compat.litert_delegated_ops(self._interpreter)


class TfLiteRuntime(_TfliteFamilyRuntime):
    """TensorFlow's ``tf.lite.Interpreter``. Option: ``use_xnnpack`` (default True)."""

    name = "tflite"

    def __init__(self, flatbuffer: Flatbuffer, *, num_threads: int = 1, use_xnnpack: bool = True):
        super().__init__(flatbuffer)
        import tensorflow as tf

        resolver = tf.lite.experimental.OpResolverType
        kind = resolver.AUTO if use_xnnpack else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self._bind(tf.lite.Interpreter(model_content=flatbuffer.data, num_threads=num_threads,
                                       experimental_op_resolver_type=kind))


_ARENA = re.compile(r"Arena allocation total (\d+) bytes")


class TflmRuntime(Runtime):
    """TFLite Micro's interpreter (reference kernels, one thread). Option: ``arena_size`` (bytes; None: its
    default)."""

    name = "tflm"

    def __init__(self, flatbuffer: Flatbuffer, *, num_threads: int = 1, arena_size: int | None = None):
        super().__init__(flatbuffer)
        from tflite_micro import runtime as tflm

        self._interpreter = tflm.Interpreter.from_bytes(flatbuffer.data, arena_size=arena_size)

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        for index, value in enumerate(inputs):
            self._interpreter.set_input(value, index)
        self._interpreter.invoke()
        return [np.array(self._interpreter.get_output(index)) for index in range(len(self.outputs))]

    def arena_bytes(self) -> int:
        """Bytes of the tensor arena the model uses (TFLite Micro's recording allocator's total; run it first).

        TFLite Micro prints its allocation record to the process's stderr from C++: it is read back from file
        descriptor 2.
        """
        with tempfile.TemporaryFile(mode="w+b") as capture:
            saved = os.dup(2)
            try:
                os.dup2(capture.fileno(), 2)
                self._interpreter.print_allocations()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
        match = _ARENA.search(text)
        if not match:
            raise RuntimeError(f"TFLite Micro printed no arena total: {text[:500]!r}")
        return int(match.group(1))


def _tflite_builtin(flatbuffer: Flatbuffer, **options: Any) -> TfLiteRuntime:
    return TfLiteRuntime(flatbuffer, use_xnnpack=False, **options)


_RUNTIMES: dict[str, Callable[..., Runtime]] = {"lce": LceRuntime, "litert": LiteRtRuntime, "tflite": TfLiteRuntime,
                                                "tflite-builtin": _tflite_builtin, "tflm": TflmRuntime}


def register_runtime(name: str, factory: Callable[..., Runtime]) -> None:
    """Make ``open_runtime(..., name)`` use `factory(flatbuffer, num_threads=..., **options)`."""
    _RUNTIMES[name] = factory


def available_runtimes() -> list[str]:
    """The runtime names :func:`open_runtime` accepts."""
    return sorted(_RUNTIMES)


def default_runtime(flatbuffer: Flatbuffer) -> str:
    """The runtime :func:`keras_bnn.tflite.verify` uses when none is named: LCE's for a file with LCE's custom
    ops, else LiteRT (TensorFlow's ``tf.lite`` when LiteRT is not installed)."""
    if flatbuffer.custom_op_types() & LCE_OPS:
        return "lce"
    try:
        import ai_edge_litert  # noqa: F401
    except ImportError:
        return "tflite"
    return "litert"


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
    if runtime not in _RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; available: {', '.join(available_runtimes())}")
    checked = flatbuffer if isinstance(flatbuffer, Flatbuffer) else read_flatbuffer(flatbuffer)
    factory = _RUNTIMES[runtime]
    unsupported = checked.custom_op_types() - getattr(factory, "supported_custom_ops", frozenset())
    if unsupported:
        raise ValueError(f"the {runtime!r} runtime cannot run custom ops {sorted(unsupported)} of this flatbuffer"
                         + (" (an LCE flatbuffer: use runtime='lce')" if unsupported & LCE_OPS else ""))
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive integer, got {num_threads!r}")
    return factory(checked, num_threads=num_threads, **options)


def run(flatbuffer: bytes | Flatbuffer, x: np.ndarray, runtime: str = "litert", *, num_threads: int = 1,
        **options: Any) -> list[np.ndarray]:
    """Run the samples `x` of a single-input flatbuffer, one batch (the flatbuffer's batch size) at a time.

    Returns:
        One array per output, the batches concatenated.

    Raises:
        ValueError: as :func:`open_runtime`, or `x`'s length is not a multiple of the flatbuffer's batch size.
    """
    opened = open_runtime(flatbuffer, runtime, num_threads=num_threads, **options)
    batch = opened.inputs[0].shape[0] if opened.inputs[0].shape else 1
    x = np.asarray(x)
    if len(x) % batch:
        raise ValueError(f"{len(x)} samples are not a multiple of the flatbuffer's batch size {batch}")
    results = [opened.run([x[start:start + batch].astype(opened.inputs[0].dtype)])
               for start in range(0, len(x), batch)]
    return [np.concatenate([result[i] for result in results]) for i in range(len(results[0]))]


def tflm_arena_bytes(flatbuffer: bytes | Flatbuffer, sample: np.ndarray) -> int:
    """TFLite Micro's tensor arena bytes for the flatbuffer, after one run on `sample` (a batch of its input)."""
    opened = open_runtime(flatbuffer, "tflm")
    opened.run([np.asarray(sample).astype(opened.inputs[0].dtype)])
    return opened.arena_bytes()
