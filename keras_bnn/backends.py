"""Which Keras 3 backend keras_bnn runs on, and a clear message when that backend's package is missing.

Keras 3 picks its backend when ``keras`` is first imported: ``KERAS_BACKEND`` if set, else the ``backend`` of
``keras.json`` in ``$KERAS_HOME`` (default ``~/.keras``), else TensorFlow. keras-bnn installs TensorFlow; JAX and
PyTorch come with the extras ``pip install keras-bnn[jax]`` and ``keras-bnn[torch]``. Without them Keras fails
with a bare ``ModuleNotFoundError: No module named 'jax'``; `check_backend` (run by keras_bnn's Keras 3 modules
before they import ``keras``) says which extra to install instead.

Example:
    >>> import keras_bnn.backends
    >>> keras_bnn.backends.EXTRAS["jax"]
    'pip install keras-bnn[jax]'
"""

from __future__ import annotations

import importlib
import json
import os
import sys

__all__ = ["EXTRAS", "BackendUnavailableError", "check_backend", "selected_backend"]

# Backend name -> the install command of the extra that provides its package (TensorFlow is a base dependency).
EXTRAS = {
    "jax": "pip install keras-bnn[jax]",
    "torch": "pip install keras-bnn[torch]",
}
_PACKAGES = {"jax": "jax", "torch": "torch"}


class BackendUnavailableError(ImportError):
    """The Keras backend that is selected cannot be imported (its package is missing or broken)."""


def _keras_config_path() -> str:
    """The keras.json that Keras 3 reads (its own rule: $KERAS_HOME, else ~/.keras, else /tmp/.keras)."""
    if "KERAS_HOME" in os.environ:
        folder = os.environ["KERAS_HOME"]
    else:
        home = os.path.expanduser("~")
        folder = os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
    return os.path.expanduser(os.path.join(folder, "keras.json"))


def selected_backend() -> str:
    """The backend Keras 3 uses or will use in this process, read without importing Keras when it is not loaded.

    Example:
        >>> import keras_bnn.backends
        >>> keras_bnn.backends.selected_backend() in ("tensorflow", "jax", "torch", "numpy", "openvino")
        True
    """
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend") and hasattr(keras.backend, "backend"):
        return keras.backend.backend()
    name = os.environ.get("KERAS_BACKEND")
    if name:
        return name
    try:
        with open(_keras_config_path()) as handle:
            return json.load(handle).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def check_backend() -> str:
    """Make sure the selected backend's package imports; return the backend's name.

    Imports the package of the JAX or PyTorch backend (Keras imports it right after anyway) when Keras is not
    loaded yet; other backends are left to Keras.

    Raises:
        BackendUnavailableError: the package of the selected backend is missing or fails to import; the message
            names the extra to install and how to pick another backend.

    Example:
        >>> import keras_bnn.backends
        >>> keras_bnn.backends.check_backend() == keras_bnn.backends.selected_backend()
        True
    """
    name = selected_backend()
    package = _PACKAGES.get(name)
    if package is None or package in sys.modules:
        return name
    try:
        importlib.import_module(package)
    except ImportError as error:
        source = "KERAS_BACKEND" if os.environ.get("KERAS_BACKEND") else _keras_config_path()
        raise BackendUnavailableError(
            f"Keras is set to the {name!r} backend (by {source}), but {package!r} cannot be imported: {error}. "
            f"Install it with `{EXTRAS[name]}`, or choose another backend, e.g. KERAS_BACKEND=tensorflow."
        ) from error
    return name
