"""keras-bnn: Binary Neural Networks for Keras, extending Larq.

Importing this package selects Keras 2 (``tf-keras``) as ``tf.keras``, which larq needs, by setting
``TF_USE_LEGACY_KERAS=1`` before TensorFlow is first imported. If TensorFlow was already imported with
Keras 3 as ``tf.keras``, the import fails with an ImportError that says how to fix it.

``keras_bnn.quantizers`` and ``keras_bnn.layers`` load with the package (they register their Keras objects);
``datasets``, ``text``, ``training``, ``saving``, ``zoo``, ``tflite`` and ``cli`` load when first used, so
``import keras_bnn`` loads neither tensorflow-datasets nor Larq Compute Engine nor the zoo.

Example:
    >>> import keras_bnn
    >>> import tensorflow as tf
    >>> layer = keras_bnn.layers.XNORConv2D(8, 3)
    >>> layer(tf.zeros((1, 8, 8, 4))).shape
    TensorShape([1, 6, 6, 8])
"""

import importlib

from keras_bnn import _compat

_compat.ensure_legacy_keras()

from keras_bnn import quantizers  # noqa: E402
from keras_bnn import layers  # noqa: E402

__version__ = "0.1.0"

_LAZY_SUBMODULES = ("cli", "datasets", "saving", "text", "tflite", "training", "zoo")

__all__ = ["__version__", "layers", "quantizers", *_LAZY_SUBMODULES]


def __getattr__(name: str):
    """Import a lazy submodule on first use (``keras_bnn.zoo``, ``keras_bnn.tflite``, ...)."""
    if name in _LAZY_SUBMODULES:
        module = importlib.import_module(f"keras_bnn.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'keras_bnn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_SUBMODULES})
