"""The Keras pieces a zoo builder takes: Keras 3 with keras_bnn's layers, or tf-keras with larq's (legacy).

Every zoo model has one definition, written against a `Kit`: ``kit.keras`` (the Keras module: ``keras`` or
``tf.keras``) and the binary layer classes by their larq names (``kit.QuantConv2D``, ``kit.XNORConv2D``,
``kit.BinaryGRU``...), which take the same arguments in both implementations. ``kit(legacy=False)`` is Keras 3 on
whatever backend ``KERAS_BACKEND`` names; ``kit(legacy=True)`` is tf-keras + larq + ``keras_bnn.legacy``, the models
the converter (``keras_bnn.tflite``) takes until it is ported. Nothing is imported until a piece is asked for, so
importing the zoo imports neither TensorFlow nor larq.

Example:
    >>> from keras_bnn.zoo.models._kit import kit
    >>> keras3 = kit(legacy=False)
    >>> keras3.keras.__name__, keras3.QuantDense.__module__
    ('keras', 'keras_bnn.layers.quantized')
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from typing import Any

__all__ = ["BINARY_LAYERS", "Kit", "kit"]

# Binary layer class -> (module of its Keras 3 class, module of its tf-keras class).
BINARY_LAYERS: dict[str, tuple[str, str]] = {
    "QuantConv2D": ("keras_bnn.layers", "larq.layers"),
    "QuantDense": ("keras_bnn.layers", "larq.layers"),
    "XNORConv2D": ("keras_bnn.layers", "keras_bnn.legacy.layers"),
    "BiRealConv2D": ("keras_bnn.layers", "keras_bnn.legacy.layers"),
    "BinaryGRU": ("keras_bnn.layers", "keras_bnn.legacy.layers"),
    "BinaryTransformerEncoder": ("keras_bnn.layers", "keras_bnn.legacy.layers"),
    "AddPositions": ("keras_bnn.layers", "keras_bnn.legacy.layers"),
}


def _import_legacy() -> None:
    """Import keras_bnn.legacy (tf-keras as ``tf.keras``).

    TensorFlow resolves ``tf.keras`` on first use, so tf-keras can still be selected after TensorFlow was imported
    (e.g. by Keras 3's TensorFlow backend) as long as nothing has used ``tf.keras`` yet.
    """
    if "keras_bnn.legacy" not in sys.modules:
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    importlib.import_module("keras_bnn.legacy")


class Kit:
    """The Keras module and binary layer classes of one implementation (see the module docstring).

    Args:
        legacy: True: tf-keras + larq + keras_bnn.legacy; False: Keras 3 + keras_bnn.layers.
    """

    def __init__(self, legacy: bool):
        if not isinstance(legacy, bool):
            raise TypeError(f"legacy must be a bool, got {legacy!r}.")
        self.legacy = legacy

    def __repr__(self) -> str:
        return f"Kit(legacy={self.legacy})"

    @functools.cached_property
    def keras(self) -> Any:
        """``tf.keras`` (tf-keras 2) for a legacy kit, else ``keras`` (Keras 3)."""
        if self.legacy:
            _import_legacy()
            import tensorflow as tf

            return tf.keras
        return importlib.import_module("keras")

    @functools.cached_property
    def hard_tanh(self) -> Any:
        """clip(x, -1, 1), the float twin's stand-in for sign()."""
        if self.legacy:
            _import_legacy()
            from keras_bnn.legacy.quantizers import hard_tanh
        else:
            from keras_bnn.quantizers import hard_tanh
        return hard_tanh

    def __getattr__(self, name: str) -> Any:
        if name not in BINARY_LAYERS:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        if self.legacy:
            _import_legacy()
        module = importlib.import_module(BINARY_LAYERS[name][self.legacy])
        try:
            layer_class = getattr(module, name)
        except AttributeError:
            raise NotImplementedError(
                f"{module.__name__} has no {name} (yet); build this zoo model with legacy=True (tf-keras)."
            ) from None
        setattr(self, name, layer_class)
        return layer_class


@functools.lru_cache(maxsize=None)
def kit(legacy: bool = False) -> Kit:
    """The `Kit` of Keras 3 (default) or of tf-keras (``legacy=True``), one per process."""
    return Kit(legacy)
