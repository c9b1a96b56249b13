"""Load a saved Keras model without running code from the file, unless the caller opts in.

A model file can carry Python code: a `Lambda` layer stores its function (as bytecode in legacy `.h5` files), and
a SavedModel folder holds TensorFlow graphs and objects that Keras revives. Keras' own safe mode guards `.keras`
files only. :func:`load_model` reads the stored model configuration first (the JSON inside a `.keras` zip or an
`.h5` file's ``model_config`` attribute) and refuses a file whose layers carry code, and any SavedModel folder,
unless ``safe_mode=False`` is passed (``--unsafe`` on the command line). A file that is not what its name says (a
truncated `.keras` zip, a text file named `.h5`) is a `ValueError` saying what was expected.

:func:`load_larq_model` (from `keras_bnn.larq_reader`) reads a file that larq saved on tf-keras 2 into the
Keras 3 model (keras_bnn's layers and quantizers) with the same weights, on every Keras backend, with the same
refusal of code.

Example:
    >>> import keras_bnn, tempfile, os, tensorflow as tf
    >>> from keras_bnn.saving import UnsafeModelError, load_model
    >>> inputs = tf.keras.Input((4,))
    >>> path = os.path.join(tempfile.mkdtemp(), "model.h5")
    >>> tf.keras.Model(inputs, tf.keras.layers.Lambda(lambda x: x * 2)(inputs)).save(path)
    >>> try:
    ...     load_model(path)
    ... except UnsafeModelError as error:
    ...     print("refused:", "safe_mode=False" in str(error))
    refused: True
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

from keras_bnn.larq_reader import load_larq_model

__all__ = ["UnsafeModelError", "code_carrying_layers", "load_larq_model", "load_model"]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_CODE_CLASSES = {"Lambda", "__lambda__"}  # a layer class that calls a stored function, and Keras 3 style lambdas


class UnsafeModelError(ValueError):
    """The model file would run code when loaded, and the caller did not opt in with ``safe_mode=False``."""


def code_carrying_layers(config: Any) -> list[str]:
    """The layers of a serialized Keras model config that carry Python code (a `Lambda` or a stored lambda).

    Args:
        config: The model config as JSON data (dicts and lists), as stored in a `.keras` or `.h5` file.

    Returns:
        ``"name (ClassName)"`` for each such layer, in config order.

    Example:
        >>> from keras_bnn.saving import code_carrying_layers
        >>> code_carrying_layers({"class_name": "Sequential", "config": {"layers": [
        ...     {"class_name": "Lambda", "config": {"name": "double", "function": ["4wEA", None, None],
        ...                                         "function_type": "lambda"}}]}})
        ['double (Lambda)']
    """
    found: list[str] = []

    def visit(node: Any, owner: str) -> None:
        if isinstance(node, dict):
            class_name = node.get("class_name")
            inner = node.get("config") if isinstance(node.get("config"), dict) else {}
            name = inner.get("name", owner) if isinstance(class_name, str) else owner
            if class_name in _CODE_CLASSES or node.get("function_type") == "lambda":
                found.append(f"{name} ({class_name or 'stored lambda'})")
                return  # what is inside belongs to this layer
            for value in node.values():
                visit(value, name)
        elif isinstance(node, list):
            for value in node:
                visit(value, owner)

    visit(config, "model")
    return found


def _refusal(path: str, reason: str, loader: str = "load_model") -> UnsafeModelError:
    return UnsafeModelError(
        f"Refusing to load {path!r}: {reason}. Loading it would run Python code stored in the file. If you trust "
        f"the file, opt in explicitly: keras_bnn.saving.{loader}(path, safe_mode=False), or --unsafe on the "
        "keras-bnn command line.")


def _stored_config(path: str) -> dict:
    """The model config stored in a `.keras` or `.h5` file (ValueError when the file is not one)."""
    with open(path, "rb") as file:
        head = file.read(8)
    size = os.path.getsize(path)
    if path.endswith(".keras"):
        if not zipfile.is_zipfile(path):
            raise ValueError(
                f"{path!r} is not a .keras model file: a .keras file is a zip archive (starting with b'PK'), but "
                f"this one ({size:,} bytes) starts with {head!r}; it may be truncated, corrupted or another kind "
                "of file. Save the model again with model.save('model.keras').")
        try:
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json"))
        except (KeyError, zipfile.BadZipFile, json.JSONDecodeError, OSError) as error:
            raise ValueError(f"{path!r} is a zip archive but not a readable .keras model file (no valid "
                             f"config.json: {error}); save the model again with model.save('model.keras').") from None
    if head != _HDF5_SIGNATURE:
        raise ValueError(f"{path!r} is not an HDF5 (.h5) model file: it ({size:,} bytes) does not start with the HDF5 "
                         f"signature {_HDF5_SIGNATURE!r} but with {head!r}; it may be truncated or another kind of file.")
    import h5py

    try:
        with h5py.File(path, "r") as file:
            stored = file.attrs.get("model_config")
    except OSError as error:
        raise ValueError(f"{path!r} has an HDF5 signature but cannot be read ({error}); it may be truncated.") from None
    if stored is None:
        raise ValueError(f"{path!r} holds no model configuration (a weights-only .h5 file?): build the model in code "
                         "and call model.load_weights(path), or save the whole model with model.save().")
    return json.loads(stored.decode() if isinstance(stored, bytes) else stored)


def load_model(path: str | os.PathLike, *, safe_mode: bool = True, custom_objects: dict | None = None
               ) -> "tf.keras.Model":
    """Load a `.keras` file, an `.h5` file or a SavedModel folder (not compiled), refusing code unless allowed.

    keras_bnn's and larq's layers and quantizers deserialize by name (importing this module registers them).

    Args:
        path: The file or folder.
        safe_mode: True (default) refuses a file whose layers carry Python code (`Lambda`) and any SavedModel
            folder, before anything of it is deserialized; False loads them (only for files you trust).
        custom_objects: Extra classes or functions the model needs, by name.

    Returns:
        The model.

    Raises:
        UnsafeModelError: with ``safe_mode=True``, the file carries code (the message names the layers and how to
            opt in).
        FileNotFoundError: `path` does not exist.
        ValueError: `path` is not a `.keras`/`.h5` model file or a SavedModel folder (the message says what it
            is and what was expected).
    """
    import larq  # noqa: F401  (registers larq's layers and quantizers)
    import tensorflow as tf

    import keras_bnn.legacy.layers  # noqa: F401  (registers keras_bnn's layers)
    import keras_bnn.legacy.training  # noqa: F401  (registers the training tools' layers and quantizers)

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file or directory: {path!r}")
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise ValueError(f"{path!r} is a folder but not a SavedModel (no saved_model.pb in it).")
        if safe_mode:
            raise _refusal(path, "it is a SavedModel folder, whose graphs and revived objects are code by nature")
    elif path.endswith((".keras", ".h5", ".hdf5")):
        found = code_carrying_layers(_stored_config(path))
        if found and safe_mode:
            raise _refusal(path, f"layer(s) {', '.join(found)} carry Python code")
    else:
        raise ValueError(f"{path!r} is not a saved Keras model: expected a .keras file, an .h5 file or a SavedModel "
                         "folder.")
    options = {"safe_mode": safe_mode} if path.endswith(".keras") else {}
    return tf.keras.models.load_model(path, custom_objects=custom_objects, compile=False, **options)
