"""The one place for TensorFlow/Keras version checks and private-API imports.

Everything else in keras_bnn imports TensorFlow internals only through this module, so a TF upgrade that
moves them breaks here, loudly, and nowhere else.
"""

from __future__ import annotations

import os
import sys

LEGACY_KERAS_VARIABLE = "TF_USE_LEGACY_KERAS"

_KERAS3_MESSAGE = (
    "keras_bnn needs Keras 2 (the `tf-keras` package) as `tf.keras`, because larq does, but TensorFlow "
    "was already imported with Keras 3 as `tf.keras`. Set the environment variable "
    "TF_USE_LEGACY_KERAS=1 before TensorFlow is first imported (for example `export TF_USE_LEGACY_KERAS=1` "
    "in the shell, or `os.environ['TF_USE_LEGACY_KERAS'] = '1'` at the very top of your script), or "
    "`import keras_bnn` before `import tensorflow`."
)


def ensure_legacy_keras() -> None:
    """Make `tf.keras` be tf-keras (Keras 2), or raise ImportError when it is too late to do so.

    Raises:
        ImportError: TensorFlow is already imported and its `tf.keras` is Keras 3, or tf-keras is missing.
    """
    if "tensorflow" not in sys.modules:
        os.environ[LEGACY_KERAS_VARIABLE] = "1"
    import tensorflow as tf

    try:
        keras_module = tf.keras.layers.Layer.__module__
    except ImportError as error:
        raise ImportError(f"{_KERAS3_MESSAGE} ({error})") from error
    if not keras_module.startswith("tf_keras."):
        raise ImportError(f"{_KERAS3_MESSAGE} (tf.keras.layers.Layer comes from {keras_module!r})")


def tflite_schema():
    """TFLite's generated flatbuffer schema module (private to TensorFlow, shipped with it)."""
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


def lce_interpreter_class():
    """LCE's Python interpreter, which runs flatbuffers containing LCE custom ops."""
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    return Interpreter
