"""Finding layers inside a Keras 3 model, nested layers and quantizers included (backend-neutral)."""

from __future__ import annotations

from typing import Any

import keras

from keras_bnn import _compat

__all__ = ["all_layers"]


def all_layers(model: keras.layers.Layer) -> list[keras.layers.Layer]:
    """`model` and every layer tracked inside it (nested models, blocks, quantizer layers), each once, in
    tracking order.

    Example:
        >>> import keras, keras_bnn
        >>> model = keras.Sequential([keras.Input((3,)), keras_bnn.layers.QuantDense(2, kernel_quantizer="ste_sign")])
        >>> [type(layer).__name__ for layer in all_layers(model)]
        ['Sequential', 'InputLayer', 'QuantDense', 'SteSign']
    """
    return _compat.keras_sublayers(model)


def layers_of_type(model: keras.layers.Layer, kind: type | tuple[type, ...]) -> list[Any]:
    """Every layer of `model` (see `all_layers`) that is an instance of `kind`."""
    return [layer for layer in all_layers(model) if isinstance(layer, kind)]
