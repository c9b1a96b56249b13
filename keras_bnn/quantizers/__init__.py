"""Quantizers on Keras 3 (every backend): larq's, by the same names and configs, and keras-bnn's own.

A quantizer is a Keras layer with a `precision` (see `Quantizer`), or any callable tensor -> tensor. `get`
resolves what a layer argument such as ``input_quantizer="ste_sign"`` names.

Example:
    >>> import keras_bnn
    >>> type(keras_bnn.quantizers.get("ste_sign")).__name__
    'SteSign'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras_bnn._backend_guard  # noqa: F401  (first: a missing JAX/PyTorch names its extra)
import keras
from keras import ops

from keras_bnn.quantizers.base import PACKAGE, Quantizer, clipped_gradient, sign, straight_through
from keras_bnn.quantizers.larq_quantizers import (
    ApproxSign,
    DoReFa,
    DoReFaQuantizer,
    MagnitudeAwareSign,
    NoOp,
    NoOpQuantizer,
    SteHeaviside,
    SteSign,
    SteTern,
    SwishSign,
    approx_sign,
    heaviside,
    magnitude_aware_sign,
    ste_heaviside,
    ste_sign,
    ste_tern,
    swish_sign,
)
from keras_bnn.quantizers.registry import ALIASES, FUNCTIONS, register_alias
from keras_bnn.quantizers.signs import ElasticSign, LearnableThresholdSign, StochasticSign

__all__ = [
    "ALIASES", "ApproxSign", "DoReFa", "DoReFaQuantizer", "ElasticSign", "LearnableThresholdSign",
    "MagnitudeAwareSign", "NoOp", "NoOpQuantizer", "Quantizer", "SteHeaviside", "SteSign", "SteTern",
    "StochasticSign", "SwishSign", "approx_sign", "clipped_gradient", "deserialize", "get", "get_kernel_quantizer",
    "hard_tanh", "heaviside", "is_binary", "known_quantizer_names", "magnitude_aware_sign", "register_alias",
    "serialize", "sign", "ste_heaviside", "ste_sign", "ste_tern", "straight_through", "swish_sign",
]


def known_quantizer_names() -> list[str]:
    """Every name `get` resolves (larq's and keras-bnn's).

    Example:
        >>> import keras_bnn
        >>> "ste_sign" in keras_bnn.quantizers.known_quantizer_names()
        True
    """
    return sorted(ALIASES)


def serialize(quantizer: Any) -> Any:
    """A quantizer's Keras config (None stays None), as larq's ``quantizers.serialize``."""
    if quantizer is None:
        return None
    return keras.saving.serialize_keras_object(quantizer)


def _larq_object(config: dict) -> Any:
    """What a larq/tf-keras config names, or None: ``{"class_name": "SteSign", "config": {...}}`` (tf-keras'
    legacy form, no ``module``), the same with ``"module": "larq.quantizers"``, or a larq function."""
    module = config.get("module")
    if module is not None and not str(module).startswith("larq"):
        if (module == "builtins" and config.get("class_name") == "function"
                and config.get("registered_name") in (None, "function")):  # larq's form of a function
            return FUNCTIONS.get(config.get("config"))
        return None
    class_name = config.get("class_name")
    if class_name in ALIASES:
        return ALIASES[class_name].from_config(dict(config.get("config") or {}))
    if class_name == "function":
        return FUNCTIONS.get(config.get("config"))
    return None


def deserialize(config: Any, custom_objects: dict | None = None) -> Any:
    """The quantizer a `serialize` config describes; larq's configs (either form) too.

    Example:
        >>> import keras_bnn
        >>> keras_bnn.quantizers.deserialize({"class_name": "SteSign", "config": {"clip_value": 0.5}}).clip_value
        0.5
    """
    if isinstance(config, dict):
        found = _larq_object(config)
        if found is not None:
            return found
    return keras.saving.deserialize_keras_object(config, custom_objects=custom_objects)


def get(identifier: str | dict | Callable | None) -> Callable | None:
    """Resolve a quantizer argument: None, a registered name (``"ste_sign"``), a config dict, or a callable.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
        TypeError: a value of another type.

    Example:
        >>> import keras_bnn
        >>> keras_bnn.quantizers.get("ste_sign").clip_value
        1.0
    """
    if identifier is None:
        return None
    if isinstance(identifier, str):
        if identifier not in ALIASES:
            raise ValueError(f"Unknown quantizer {identifier!r}. Known quantizers: "
                             f"{', '.join(known_quantizer_names())}.")
        return ALIASES[identifier]()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise TypeError(f"Cannot interpret {identifier!r} of type {type(identifier).__name__} as a quantizer; pass a "
                    "name, a config dict, a callable or None.")


def get_kernel_quantizer(identifier: str | dict | Callable | None) -> Callable | None:
    """`get`, for a kernel quantizer (larq's name; no metric is attached on Keras 3)."""
    return get(identifier)


_PROBE = (-3.0, -1.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 1.0, 3.0)


def is_binary(quantizer: Any) -> bool:
    """Whether `quantizer` binarizes: ``precision == 1`` (not a `NoOp`), or, for a plain callable without a
    ``precision``, whether it maps values around 0 to exactly -1 and +1 (both present).

    Example:
        >>> import keras_bnn
        >>> keras_bnn.quantizers.is_binary("ste_sign"), keras_bnn.quantizers.is_binary(keras.activations.relu)
        (True, False)
    """
    if quantizer is None:
        return False
    if isinstance(quantizer, str):
        quantizer = get(quantizer)
    precision = getattr(quantizer, "precision", None)
    if precision is not None or isinstance(quantizer, keras.layers.Layer):
        return precision == 1 and not isinstance(quantizer, NoOp)
    if not callable(quantizer):
        return False
    try:
        values = set(ops.convert_to_numpy(quantizer(ops.convert_to_tensor(_PROBE))).ravel().tolist())
    except Exception:  # noqa: BLE001  (an arbitrary user function: not a recognisable binarizer)
        return False
    return values == {-1.0, 1.0}


@keras.saving.register_keras_serializable(package=PACKAGE)
def hard_tanh(x):
    """clip(x, -1, 1): the real-valued stand-in for sign() in a float twin.

    Example:
        >>> import keras_bnn
        >>> from keras import ops
        >>> ops.convert_to_numpy(keras_bnn.quantizers.hard_tanh(ops.convert_to_tensor([-3.0, 0.5]))).tolist()
        [-1.0, 0.5]
    """
    return ops.clip(x, -1.0, 1.0)
