"""The names `keras_bnn.quantizers.get` resolves: larq's aliases and class names, and keras-bnn's own.

A quantizer class is registered once with Keras (``keras_bnn>ClassName``, what a ``.keras`` file records) and
under each name a layer argument may use (``"ste_sign"``, ``"SteSign"``); the functional forms (``ste_sign``)
are registered with Keras too, so a layer given a function saves and loads.

Example:
    >>> from keras_bnn.quantizers import registry
    >>> registry.ALIASES["ste_sign"] is registry.ALIASES["SteSign"]
    True
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from keras_bnn.quantizers.base import PACKAGE

__all__ = ["ALIASES", "FUNCTIONS", "register_alias", "serializable", "serializable_function"]

#: Every name `get` resolves, to the class it builds (``get(name)`` is ``ALIASES[name]()``).
ALIASES: dict[str, type] = {}
#: The functional quantizers by name (what larq's configs name a function by).
FUNCTIONS: dict[str, Callable] = {}


def _same_class(first: type, second: type) -> bool:
    # A module imported twice (importlib.reload) makes a new class object of the same class.
    return first is second or (first.__module__, first.__qualname__) == (second.__module__, second.__qualname__)


def register_alias(name: str, cls: type) -> None:
    """Make `keras_bnn.quantizers.get(name)` build ``cls()``, as larq's ``utils.register_alias``.

    Args:
        name: The name a layer argument may use (e.g. ``"stochastic_sign"``).
        cls: The quantizer class (built with no arguments).

    Raises:
        ValueError: `name` is already registered to another class (larq's names are never shadowed).
        TypeError: `name` is not a non-empty string or `cls` is not a class.

    Example:
        >>> import keras_bnn
        >>> keras_bnn.quantizers.register_alias("ste_sign", keras_bnn.quantizers.ApproxSign)
        Traceback (most recent call last):
        ...
        ValueError: Quantizer name 'ste_sign' is already registered to SteSign.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"A quantizer name must be a non-empty string, got {name!r}.")
    if not isinstance(cls, type):
        raise TypeError(f"register_alias needs a quantizer class, got {cls!r}.")
    existing = ALIASES.get(name)
    if existing is not None and not _same_class(existing, cls):
        raise ValueError(f"Quantizer name {name!r} is already registered to {existing.__qualname__}.")
    ALIASES[name] = cls


def serializable(*aliases: str) -> Callable[[type], type]:
    """Class decorator: register with Keras as ``keras_bnn>ClassName`` and under ``ClassName`` and `aliases`."""

    def decorator(cls: type) -> type:
        for name in (cls.__name__, *aliases):
            register_alias(name, cls)
        return keras.saving.register_keras_serializable(package=PACKAGE)(cls)

    return decorator


def serializable_function(function: Callable) -> Callable:
    """Function decorator: register with Keras as ``keras_bnn>name`` and in `FUNCTIONS`."""
    FUNCTIONS[function.__name__] = function
    return keras.saving.register_keras_serializable(package=PACKAGE)(function)
