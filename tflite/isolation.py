"""Run a native converter step in a child process, so that its crash is an exception, not a dead interpreter.

TensorFlow's and LCE's MLIR converters are C++: a bug in them (a segmentation fault, an ``abort()``) would kill the
Python process that called them. :func:`run_isolated` runs one such call in a fresh ``python`` process (its
arguments pickled to a temporary folder, its bytes read back): a child that dies by a signal becomes a
:class:`ConverterCrashError` naming the signal, the target and the model, with the child's stderr tail; a Python
exception in the child is raised again in the caller (its own type when it can be pickled, else a RuntimeError
with its text). :func:`lce_convert_keras_model` is ``larq_compute_engine.convert_keras_model`` with its native
steps run this way (same bytes; about 3-5 s more per conversion, for the child's imports).

``KERAS_BNN_CONVERTER_ISOLATION=0`` runs the native steps in the calling process instead (LCE's own function: faster,
but a crash there kills the process).

Test hook: when the environment variable ``KERAS_BNN_CONVERTER_CRASH`` is ``"abort"`` (or ``"segfault"``), the child
calls ``os.abort()`` (or sends itself SIGSEGV) instead of converting: the way to check that a crash reaches the
caller as a :class:`ConverterCrashError`.

Example:
    >>> from keras_bnn.tflite.isolation import run_isolated
    >>> run_isolated("zlib:compress", (b"bnn",), target="demo", model_name="none")[:2]
    b'x\\x9c'
"""

from __future__ import annotations

import importlib
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import warnings
from typing import Any

__all__ = ["CRASH_VARIABLE", "ISOLATION_VARIABLE", "ConverterCrashError", "lce_convert_keras_model", "run_isolated"]

CRASH_VARIABLE = "KERAS_BNN_CONVERTER_CRASH"
ISOLATION_VARIABLE = "KERAS_BNN_CONVERTER_ISOLATION"
_STDERR_TAIL = 4000


class ConverterCrashError(RuntimeError):
    """The native converter died (a signal such as SIGSEGV or SIGABRT) instead of returning or raising.

    Attributes:
        signal_name: e.g. ``"SIGSEGV"`` (or ``"exit status N"`` when the child exited without an answer).
        target: what was being made (``"lce"``, ...).
        model_name: the Keras model's name.
        stderr_tail: the last lines the child wrote to stderr (the native error, when it printed one).
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


def run_isolated(function: str, args: tuple = (), kwargs: dict | None = None, *, target: str,
                 model_name: str) -> Any:
    """Call ``function(*args, **kwargs)`` in a fresh Python process and return its (picklable) result.

    Args:
        function: ``"module:name"`` of the function, importable in the child.
        args, kwargs: its arguments (picklable).
        target, model_name: named by the error if the child crashes.

    Returns:
        What the function returned.

    Raises:
        ConverterCrashError: the child died by a signal, or exited without an answer.
        Exception: what the function raised (its own type when it pickles, else a RuntimeError with its text).
    """
    with tempfile.TemporaryDirectory(prefix="keras_bnn_convert_") as folder:
        with open(os.path.join(folder, "job.pkl"), "wb") as file:
            pickle.dump((function, tuple(args), dict(kwargs or {})), file)
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
        process = subprocess.run([sys.executable, __file__, folder], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, check=False)
        stderr_tail = process.stderr.decode("utf-8", "replace")[-_STDERR_TAIL:]
        answer = os.path.join(folder, "answer.pkl")
        if process.returncode != 0 or not os.path.exists(answer):
            raise ConverterCrashError(_signal_name(process.returncode), target, model_name, stderr_tail)
        with open(answer, "rb") as file:
            ok, value = pickle.load(file)
    if ok:
        return value
    raise value


def _child(folder: str) -> None:
    """The child's side: run the job, write ``(True, result)`` or ``(False, exception)``."""
    with open(os.path.join(folder, "job.pkl"), "rb") as file:
        function, args, kwargs = pickle.load(file)
    crash = os.environ.get(CRASH_VARIABLE, "")
    if crash == "abort":
        os.abort()
    if crash == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    module, name = function.split(":")
    try:
        answer = (True, getattr(importlib.import_module(module), name)(*args, **kwargs))
    except Exception as error:  # noqa: BLE001  (handed to the caller)
        try:
            pickle.loads(pickle.dumps(error))
        except Exception:  # noqa: BLE001
            error = RuntimeError(f"{type(error).__name__}: {error}")
        answer = (False, error)
    with open(os.path.join(folder, "answer.pkl"), "wb") as file:
        pickle.dump(answer, file)


def lce_convert_keras_model(model, *, target: str = "arm", inference_input_type=None, inference_output_type=None,
                            experimental_default_int8_range=None) -> bytes:
    """``larq_compute_engine.convert_keras_model(model, ...)`` with the native conversion in a child process.

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


if __name__ == "__main__":
    del sys.path[0]  # this file's folder (keras_bnn.tflite's modules) must not shadow top-level packages
    _child(sys.argv[1])
