"""keras-bnn: Binary Neural Networks for Keras 3 (TensorFlow, JAX and PyTorch backends), larq-compatible.

Every submodule loads when first used, so ``import keras_bnn`` is light and selects nothing:
``quantizers``, ``constraints``, ``layers``, ``models`` (larq's ``summary``) and ``training`` (Keras 3, every
backend), ``backends``, ``datasets``, ``text``,
``saving`` (safe loading; larq files in), ``zoo``, ``tflite`` (conversion, TensorFlow), ``cli``, and ``legacy``
(the tf-keras 2 + larq implementation the converter still takes; importing it needs ``TF_USE_LEGACY_KERAS=1``
before TensorFlow is imported, which it sets itself when TensorFlow is not imported yet).

Example:
    >>> import keras, keras_bnn
    >>> layer = keras_bnn.layers.QuantConv2D(8, 3, input_quantizer="ste_sign", kernel_quantizer="ste_sign")
    >>> tuple(layer(keras.ops.zeros((1, 8, 8, 4))).shape)
    (1, 6, 6, 8)
"""

import importlib

__version__ = "0.1.0"

_LAZY_SUBMODULES = ("backends", "cli", "constraints", "datasets", "layers", "legacy", "models", "quantizers", "saving",
                    "text", "tflite", "training", "zoo")

__all__ = ["__version__", *_LAZY_SUBMODULES]


def __getattr__(name: str):
    """Import a submodule on first use (``keras_bnn.layers``, ``keras_bnn.zoo``, ...)."""
    if name in _LAZY_SUBMODULES:
        module = importlib.import_module(f"keras_bnn.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'keras_bnn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_SUBMODULES})
