"""Copies of Keras layers for conversion that keep the user's quantizer objects.

A layer is copied through its config (``from_config(get_config())``). Keras and larq serialize a plain Python
function (a quantizer, an activation) by its name, which does not come back when the function is not registered
(or is a lambda): the copy would fail, or get another object. So wherever the layer holds a plain function, the
config carries the function object itself, which every Keras/larq constructor accepts.

Example:
    >>> import keras_bnn, larq as lq, tensorflow as tf
    >>> from keras_bnn.tflite.copying import copy_layer
    >>> sign = lambda x: tf.where(x >= 0, 1.0, -1.0)
    >>> layer = lq.layers.QuantDense(4, input_quantizer=sign, kernel_quantizer=sign)
    >>> copy_layer(layer).input_quantizer is sign
    True
"""

from __future__ import annotations

import contextlib
import functools
import inspect

import tensorflow as tf

__all__ = ["CannotCopy", "copy_layer", "from_config", "layer_config"]


class CannotCopy(TypeError):
    """A layer has no working ``get_config`` / ``from_config``."""


def _plain_function(value) -> bool:
    return inspect.isfunction(value) or inspect.isbuiltin(value) or isinstance(value, functools.partial)


def _stand_in(x):
    """Serialized in place of a function Keras cannot serialize (its name is all that is written)."""
    return x


@contextlib.contextmanager
def _functions_stood_in(layer: tf.keras.layers.Layer, names: list[str]):
    """The layer's plain-function attributes `names` set to `_stand_in` for the block, then put back."""
    saved = {name: vars(layer)[name] for name in names}
    try:
        for name in names:
            object.__setattr__(layer, name, _stand_in)
        yield
    finally:
        for name, value in saved.items():
            object.__setattr__(layer, name, value)


def layer_config(layer: tf.keras.layers.Layer) -> dict:
    """``layer.get_config()`` with each entry whose attribute is a plain function replaced by that function.

    Keras cannot serialize a lambda whose source it cannot read (one typed at the interactive prompt or made by
    ``eval``): its config is then taken with such functions stood in for, and the functions put in after.
    """
    functions = [name for name, value in vars(layer).items() if _plain_function(value)]
    try:
        config = layer.get_config()
    except NotImplementedError as error:
        raise CannotCopy(f"layer {layer.name!r} ({type(layer).__name__}) has no get_config()") from error
    except OSError as error:  # tf-keras reads a lambda's source while serializing it
        if not functions:
            raise CannotCopy(f"layer {layer.name!r} ({type(layer).__name__}): get_config() failed: {error}") \
                from error
        with _functions_stood_in(layer, functions):
            config = layer.get_config()
    for key in config:
        value = getattr(layer, key, None)
        if _plain_function(value):
            config[key] = value
    return config


def from_config(cls: type, config: dict, original: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
    """``cls.from_config(config)`` with the classes inside `original` in scope (e.g. unregistered quantizers)."""
    objects = {type(module).__name__: type(module) for module in original.submodules}
    with tf.keras.utils.custom_object_scope(objects):
        return cls.from_config(config)


def copy_layer(layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
    """A new, unbuilt layer of the same class and config as `layer` (weights are not copied).

    Raises:
        CannotCopy: the layer's config does not give it back (the message names the layer and the error).
    """
    config = layer_config(layer)
    try:
        return from_config(type(layer), config, layer)
    except Exception as error:  # noqa: BLE001  (from_config of user layers raises anything)
        raise CannotCopy(f"layer {layer.name!r} ({type(layer).__name__}) cannot be rebuilt from its config: "
                         f"{type(error).__name__}: {error}") from error
