"""Run a native converter step in a child process, so that its crash is an exception, not a dead interpreter.

TensorFlow's and LCE's MLIR converters are C++: a bug in them (a segmentation fault, an ``abort()``) would kill the
Python process that called them. :func:`run_isolated` runs one such call in a worker process instead (its
arguments and result pickled through the worker's pipes): a worker that dies by a signal becomes a
:class:`ConverterCrashError` naming the signal, the target and the model, with the tail of what the worker wrote to
stderr during that call; a Python exception in the worker is raised again in the caller (its own type when it can
be pickled, else a RuntimeError with its text). :func:`lce_convert_keras_model` is
``larq_compute_engine.convert_keras_model`` with its native steps run this way (same bytes).

One worker (``keras_bnn/tflite/_conversion_worker.py``) serves every conversion of the calling process: started on
first use (it imports TensorFlow and LCE once, a few seconds), kept between conversions (then isolation costs
little more than the pickling), started again after it dies (the conversion that killed it gets the error, the next
one a fresh worker), and stopped at interpreter exit (or by :func:`shutdown_worker`). :func:`worker_pid` tells
which process it is. A process forked from the caller starts its own worker. Each request carries the caller's
environment as it is at that moment (the worker's ``os.environ`` is set to it; ``TF_USE_LEGACY_KERAS=1`` is forced).

``KERAS_BNN_CONVERTER_ISOLATION=0`` runs the native steps in the calling process instead (LCE's own function: faster,
but a crash there kills the process).

Test hook: when the environment variable ``KERAS_BNN_CONVERTER_CRASH`` is ``"abort"`` (or ``"segfault"``) at the
time of a call, the worker calls ``os.abort()`` (or sends itself SIGSEGV) instead of converting: the way to check
that a crash reaches the caller as a :class:`ConverterCrashError`.

Example:
    >>> from keras_bnn.tflite.isolation import run_isolated, worker_pid
    >>> run_isolated("zlib:compress", (b"bnn",), target="demo", model_name="none")[:2]
    b'x\\x9c'
    >>> worker_pid() == worker_pid() is not None
    True
"""

from __future__ import annotations

import atexit
import io
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import warnings
from typing import Any

from keras_bnn.tflite._conversion_worker import receive, send

__all__ = ["CRASH_VARIABLE", "ISOLATION_VARIABLE", "ConverterCrashError", "lce_convert_keras_model", "run_isolated",
           "shutdown_worker", "worker_pid"]

CRASH_VARIABLE = "KERAS_BNN_CONVERTER_CRASH"
ISOLATION_VARIABLE = "KERAS_BNN_CONVERTER_ISOLATION"
_STDERR_TAIL = 4000
_WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_conversion_worker.py")
_LCE_CONVERTER = "larq_compute_engine.mlir.python.converter"


class ConverterCrashError(RuntimeError):
    """The native converter died (a signal such as SIGSEGV or SIGABRT) instead of returning or raising.

    Attributes:
        signal_name: e.g. ``"SIGSEGV"`` (or ``"exit status N"`` when the worker exited without an answer).
        target: what was being made (``"lce"``, ...).
        model_name: the Keras model's name.
        stderr_tail: the last lines the worker wrote to stderr during the call (the native error, when it printed
            one).
    """

    def __init__(self, signal_name: str, target: str, model_name: str, stderr_tail: str):
        self.signal_name, self.target, self.model_name, self.stderr_tail = signal_name, target, model_name, stderr_tail
        super().__init__(f"the {target!r} converter crashed ({signal_name}) while converting model {model_name!r}; "
                         f"the calling process is unharmed. The converter's stderr ended with:\n{stderr_tail}")


def _signal_name(returncode: int) -> str:
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


class _Worker:
    """One running ``_conversion_worker.py``: its process, its pipes, and the file its stderr goes to."""

    def __init__(self, preload: tuple[str, ...]):
        descriptor, path = tempfile.mkstemp(prefix="keras_bnn_converter_", suffix=".stderr")
        os.close(descriptor)
        self.stderr = open(path, "a+b")  # append mode: the worker writes at the end after each truncation
        os.unlink(path)
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
        self.process = subprocess.Popen([sys.executable, _WORKER_SCRIPT, *preload], env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.stderr)
        self.owner = os.getpid()

    def alive(self) -> bool:
        return self.owner == os.getpid() and self.process.poll() is None

    def call(self, request: bytes, target: str, model_name: str) -> tuple[bool, Any]:
        """Send one pickled request and return the answer; a dead worker is a ConverterCrashError."""
        os.ftruncate(self.stderr.fileno(), 0)
        try:
            self.process.stdin.write(request)
            self.process.stdin.flush()
            return receive(self.process.stdout)
        except (EOFError, BrokenPipeError):
            returncode = self.process.wait()
            raise ConverterCrashError(_signal_name(returncode), target, model_name, self.stderr_tail()) from None

    def stderr_tail(self) -> str:
        size = os.fstat(self.stderr.fileno()).st_size
        tail = os.pread(self.stderr.fileno(), min(size, _STDERR_TAIL), max(0, size - _STDERR_TAIL))
        return tail.decode("utf-8", "replace")

    def close(self, wait: float = 10.0) -> None:
        """End the worker: close its stdin (it exits after the request in hand), kill it if it lingers."""
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        try:
            self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stderr.close()

    def forget(self) -> None:
        """In a forked child: drop the inherited pipe ends without touching the parent's worker."""
        for file in (self.process.stdin, self.process.stdout, self.stderr):
            try:
                os.close(file.fileno())
            except OSError:
                pass
        self.process.returncode = 0  # not this process's child: nothing to wait for
        _forgotten.append(self)  # kept forever: their file objects must never close those (reused) numbers again


_lock = threading.Lock()
_worker: _Worker | None = None
_forgotten: list[_Worker] = []  # a forked child's inherited workers (see _Worker.forget)


def _running_worker(preload: tuple[str, ...] = ()) -> _Worker:
    """The worker (started if there is none, or the last one died); call with ``_lock`` held."""
    global _worker
    if _worker is not None and not _worker.alive():
        if _worker.owner == os.getpid():
            _worker.close(wait=0.0)
        _worker = None
    if _worker is None:
        _worker = _Worker(preload)
    return _worker


def worker_pid() -> int | None:
    """The process id of this process's converter worker, or None when none is running.

    Example:
        >>> shutdown_worker()
        >>> worker_pid() is None
        True
    """
    with _lock:
        return _worker.process.pid if _worker is not None and _worker.alive() else None


def shutdown_worker() -> None:
    """Stop this process's converter worker (the next conversion starts a new one); done at interpreter exit.

    Example:
        >>> shutdown_worker()
        >>> worker_pid() is None
        True
    """
    global _worker
    with _lock:
        if _worker is not None and _worker.owner == os.getpid():
            _worker.close()
        _worker = None


def _after_fork_in_child() -> None:
    global _lock, _worker
    _lock = threading.Lock()
    if _worker is not None:
        _worker.forget()
    _worker = None


atexit.register(shutdown_worker)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def run_isolated(function: str, args: tuple = (), kwargs: dict | None = None, *, target: str,
                 model_name: str) -> Any:
    """Call ``function(*args, **kwargs)`` in the converter worker process and return its (picklable) result.

    Args:
        function: ``"module:name"`` of the function, importable in the worker.
        args, kwargs: its arguments (picklable).
        target, model_name: named by the error if the worker crashes.

    Returns:
        What the function returned.

    Raises:
        ConverterCrashError: the worker died by a signal, or exited without an answer (the next call starts a new
            worker).
        Exception: what the function raised (its own type when it pickles, else a RuntimeError with its text).
    """
    message = (function, tuple(args), dict(kwargs or {}), dict(os.environ, TF_USE_LEGACY_KERAS="1"),
               os.environ.get(CRASH_VARIABLE, ""))
    with _lock:
        worker = _running_worker()
        request = io.BytesIO()
        send(request, message)  # pickled here: an unpicklable argument fails before the worker sees it
        try:
            ok, value = worker.call(request.getvalue(), target, model_name)
        except BaseException:  # a crash, or an interrupt mid-exchange: this worker's pipes are out of step
            _discard(worker)
            raise
    if ok:
        return value
    raise value


def _discard(worker: _Worker) -> None:
    global _worker
    if worker.process.poll() is None:
        worker.process.kill()
    worker.close(wait=10.0)
    if _worker is worker:
        _worker = None


def _start_worker_early() -> None:
    """Start the worker now, importing LCE's converter, so that its imports overlap the caller's model saving."""
    with _lock:
        _running_worker((_LCE_CONVERTER,))


def lce_convert_keras_model(model, *, target: str = "arm", inference_input_type=None, inference_output_type=None,
                            experimental_default_int8_range=None) -> bytes:
    """``larq_compute_engine.convert_keras_model(model, ...)`` with the native conversion in the worker process.

    As LCE does: the model is saved as a SavedModel and that is converted; if that fails (an exception, not a
    crash), the model's frozen graph is converted instead. Same bytes as LCE's own function.

    Raises:
        ConverterCrashError: LCE's converter crashed.
    """
    import tensorflow as tf
    from larq_compute_engine.mlir.python import converter as lce_converter

    options = dict(inference_input_type=inference_input_type or tf.float32,
                   inference_output_type=inference_output_type or tf.float32, target=target,
                   experimental_default_int8_range=experimental_default_int8_range)
    lce_converter._validate_options(**options)
    if os.environ.get(ISOLATION_VARIABLE, "1") == "0":
        return lce_converter.convert_keras_model(model, **options)
    _start_worker_early()
    try:
        with tempfile.TemporaryDirectory(prefix="keras_bnn_saved_model_") as saved_model_dir:
            model.save(saved_model_dir, save_format="tf")
            return run_isolated("larq_compute_engine.mlir.python.converter:convert_saved_model", (saved_model_dir,),
                                options, target="lce", model_name=model.name)
    except ConverterCrashError:
        raise
    except Exception:  # noqa: BLE001  (LCE's own fallback)
        warnings.warn("Saved-model conversion failed, falling back to graphdef-based conversion.")
    return _lce_convert_graph(model, lce_converter, options)


def _lce_convert_graph(model, lce_converter, options: dict) -> bytes:
    """LCE's graphdef fallback of ``convert_keras_model``, its native call isolated."""
    import tensorflow as tf
    from tensorflow.core.framework.types_pb2 import DataType
    from tensorflow.lite.python.util import get_tensor_name
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    frozen = convert_variables_to_constants_v2(lce_converter.concrete_function_from_keras_model(model),
                                               lower_control_flow=False)
    inputs = [tensor for tensor in frozen.inputs if tensor.dtype != tf.dtypes.resource]
    graph_def = frozen.graph.as_graph_def()
    quantize = (lce_converter._contains_training_quant_op(graph_def)
                or options["experimental_default_int8_range"] is not None)
    shapes = []
    for tensor in inputs:
        shape = tensor.shape.as_list()
        if None in shape[1:]:
            raise ValueError(f"None is only supported in the 1st dimension. Tensor '{get_tensor_name(tensor)}' "
                             f"has invalid shape '{shape}'.")
        shapes.append([1, *shape[1:]] if shape and shape[0] is None else shape)
    flatbuffer = run_isolated(
        "larq_compute_engine.mlir._tf_tfl_flatbuffer:convert_graphdef_to_tflite_flatbuffer",
        (graph_def.SerializeToString(), [get_tensor_name(t) for t in inputs],
         [DataType.Name(t.dtype.as_datatype_enum) for t in inputs], shapes,
         [get_tensor_name(t) for t in frozen.outputs], quantize, options["target"],
         options["experimental_default_int8_range"]), target="lce", model_name=model.name)
    if quantize and (options["inference_input_type"], options["inference_output_type"]) != (tf.float32, tf.float32):
        flatbuffer = lce_converter.modify_integer_quantized_model_io_type(
            flatbuffer, inference_input_type=options["inference_input_type"],
            inference_output_type=options["inference_output_type"])
    return flatbuffer

