"""The long-lived converter worker of :mod:`keras_bnn.tflite.isolation`: one process, many native conversions.

Run as a script (``python .../_conversion_worker.py [MODULE ...]``, by :mod:`~keras_bnn.tflite.isolation`, which
also imports :func:`send` and :func:`receive` from here): it imports each MODULE (so that TensorFlow and LCE load
while the caller saves its model), then answers requests until its stdin closes. A request is a length-prefixed
pickle of ``(function, args, kwargs, environ, crash)`` on stdin; the answer, ``(True, result)`` or
``(False, exception)``, goes back the same way on the stdout it was started with. Everything else the worker or
the native code prints goes to stderr (its fd 1 is pointed there), so the answer channel stays clean; a fatal
signal prints the Python stack there too (``faulthandler``).

``crash`` is the test hook ``KERAS_BNN_CONVERTER_CRASH`` as the caller read it for this request: ``"abort"`` calls
``os.abort()``, ``"segfault"`` sends the worker SIGSEGV, instead of running the function.

Example:
    >>> import io
    >>> channel = io.BytesIO()
    >>> send(channel, ("zlib:compress", (b"bnn",), {}, {}, ""))
    >>> _ = channel.seek(0)
    >>> receive(channel)[0]
    'zlib:compress'
"""

from __future__ import annotations

import faulthandler
import importlib
import os
import pickle
import signal
import struct
import sys
from typing import IO, Any

_HEADER = struct.Struct("<Q")


def send(channel: IO[bytes], message: Any) -> None:
    """Write ``message`` to ``channel`` as an 8-byte length and its pickle, and flush."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    channel.write(_HEADER.pack(len(data)) + data)
    channel.flush()


def receive(channel: IO[bytes]) -> Any:
    """Read one message written by :func:`send`; raise ``EOFError`` if the channel ends first."""
    header = channel.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the channel closed")
    (size,) = _HEADER.unpack(header)
    data = channel.read(size)
    if len(data) < size:
        raise EOFError("the channel closed mid-message")
    return pickle.loads(data)


def _picklable(error: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001
        return RuntimeError(f"{type(error).__name__}: {error}")


def _answer(function: str, args: tuple, kwargs: dict) -> tuple[bool, Any]:
    module, name = function.split(":")
    try:
        result = getattr(importlib.import_module(module), name)(*args, **kwargs)
        pickle.dumps(result)
        return True, result
    except Exception as error:  # noqa: BLE001  (handed to the caller)
        return False, _picklable(error)


def serve(preload: list[str]) -> None:
    """The worker's loop (see the module docstring)."""
    requests = os.fdopen(os.dup(0), "rb")
    answers = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # native prints must not reach the answer channel
    os.close(devnull)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the caller decides when this worker ends
    faulthandler.enable()  # a fatal signal prints the Python stack to stderr: the caller's error shows its tail
    for module in preload:
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001  (the request that needs it reports the error)
            pass
    while True:
        try:
            function, args, kwargs, environ, crash = receive(requests)
        except EOFError:
            return
        os.environ.clear()
        os.environ.update(environ)
        if crash == "abort":
            os.abort()
        if crash == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        send(answers, _answer(function, args, kwargs))


if __name__ == "__main__":
    del sys.path[0]  # this file's folder (keras_bnn.tflite's modules) must not shadow top-level packages
    serve(sys.argv[1:])
