"""Binary quantizers that extend larq's: stochastic, elastic (learned scale/threshold) and learned-threshold sign.

Each quantizer is a larq quantizer (a subclass of larq's quantizer base, so it has `precision = 1` and supports
larq's `flip_ratio` metric), a serializable Keras layer registered as ``keras_bnn>ClassName`` (and, like larq's
quantizers, as ``ClassName``, which .h5 loading looks up), and is also registered under a snake_case alias
so that any ``larq.layers.Quant*`` layer accepts it by string name:

* ``"stochastic_sign"``: `StochasticSign`, ±1 sampled while training (BinaryConnect/BinaryNet), sign at inference;
* ``"elastic_sign"``: `ElasticSign`, ±α with a learned scale α > 0 and threshold β (BiT);
* ``"learnable_threshold_sign"``: `LearnableThresholdSign`, ±1 with a learned per-channel threshold (ReActNet).

larq's own quantizers (``"ste_sign"``, ``"approx_sign"``, ``"magnitude_aware_sign"``, ``"swish_sign"``,
``"ste_heaviside"``, ...) are untouched and are what these classes are built from: the forward binarization is
always `larq.math.sign` (the form the LCE converter recognises), and the pseudo-gradients come from
`larq.quantizers.ste_sign` / `larq.quantizers.approx_sign` composed with ordinary differentiable ops.

Example:
    >>> import keras_bnn
    >>> import larq as lq
    >>> import tensorflow as tf
    >>> layer = lq.layers.QuantDense(4, input_quantizer="learnable_threshold_sign")
    >>> layer(tf.ones((2, 3))).shape
    TensorShape([2, 4])
    >>> type(layer.input_quantizer).__name__
    'LearnableThresholdSign'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import larq as lq
import tensorflow as tf

from keras_bnn import _compat
from keras_bnn.legacy.quantizers.signs import PACKAGE, ElasticSign, LearnableThresholdSign, StochasticSign

__all__ = ["ElasticSign", "LearnableThresholdSign", "StochasticSign", "get", "hard_tanh", "is_binary",
           "known_quantizer_names", "resolve"]


def known_quantizer_names() -> list[str]:
    """All names that larq's ``quantizers.get`` resolves to a quantizer class: larq's and keras_bnn's.

    Example:
        >>> import keras_bnn
        >>> {"ste_sign", "stochastic_sign"} <= set(keras_bnn.legacy.quantizers.known_quantizer_names())
        True
    """
    return sorted(
        name
        for name, obj in tf.keras.utils.get_custom_objects().items()
        if isinstance(obj, type) and issubclass(obj, lq.quantizers.Quantizer)
    )


def get(identifier: str | dict | Callable | None) -> Callable | None:
    """Resolve a quantizer like `larq.quantizers.get`, but name every known quantizer when a name is unknown.

    Args:
        identifier: None, a registered name (e.g. ``"stochastic_sign"``, ``"ste_sign"``), a serialized config
            dict, or a callable (returned as is).

    Returns:
        A quantizer instance, the callable, or None.

    Raises:
        ValueError: `identifier` is a string that names no registered quantizer.
        TypeError: `identifier` is of another type.

    Example:
        >>> import keras_bnn
        >>> type(keras_bnn.legacy.quantizers.get("elastic_sign")).__name__
        'ElasticSign'
    """
    if isinstance(identifier, str):
        known = known_quantizer_names()
        if identifier not in known:
            raise ValueError(f"Unknown quantizer {identifier!r}. Known quantizers: {', '.join(known)}.")
    elif identifier is not None and not isinstance(identifier, dict) and not callable(identifier):
        raise TypeError(
            f"Cannot interpret {identifier!r} of type {type(identifier).__name__} as a quantizer; "
            "pass a name, a config dict, a callable or None."
        )
    return lq.quantizers.get(identifier)


def resolve(argument: str, identifier: Any, *, kernel: bool = False) -> Callable | None:
    """A layer argument's quantizer, as :func:`get` resolves it, with errors naming the argument.

    Args:
        argument: The argument's name, for messages (e.g. ``"recurrent_input_quantizer"``).
        identifier: What the user passed (name, config dict, callable or None).
        kernel: A kernel quantizer: also give it larq's default kernel metrics (``flip_ratio``), as larq's layers do.

    Raises:
        ValueError: :func:`get` cannot resolve `identifier` (an unknown name or a value of another type); the
            message names the argument.

    Example:
        >>> import keras_bnn
        >>> keras_bnn.legacy.quantizers.resolve("kernel_quantizer", "nope")
        Traceback (most recent call last):
        ...
        ValueError: kernel_quantizer: Unknown quantizer 'nope'. Known quantizers: ...
    """
    try:
        quantizer = get(identifier)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{argument}: {error}") from None
    return lq.quantizers.get_kernel_quantizer(quantizer) if kernel else quantizer


_PROBE = (-3.0, -1.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 1.0, 3.0)


def is_binary(quantizer: Any) -> bool:
    """Whether `quantizer` binarizes: larq's test (``precision == 1``), or, for a plain function or lambda with no
    ``precision`` (a sign written with ``tf.where``, say), whether it maps a probe of values around 0 to exactly
    -1 and +1 (both present). A Keras-layer quantizer without ``precision`` is not probed (calling it would build it).

    Example:
        >>> import keras_bnn, tensorflow as tf
        >>> keras_bnn.legacy.quantizers.is_binary(lambda x: tf.where(x >= 0, 1.0, -1.0))
        True
        >>> keras_bnn.legacy.quantizers.is_binary(tf.nn.relu), keras_bnn.legacy.quantizers.is_binary("ste_sign")
        (False, True)
    """
    if quantizer is None:
        return False
    if isinstance(quantizer, str):
        quantizer = get(quantizer)
    if _compat.is_binary_quantizer(quantizer):
        return True
    if getattr(quantizer, "precision", None) is not None or isinstance(quantizer, tf.keras.layers.Layer):
        return False
    if not callable(quantizer):
        return False
    try:
        values = set(tf.convert_to_tensor(quantizer(tf.constant(_PROBE))).numpy().ravel().tolist())
    except Exception:  # noqa: BLE001  (an arbitrary user function: not a recognisable binarizer)
        return False
    return values == {-1.0, 1.0}


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
def hard_tanh(x: tf.Tensor) -> tf.Tensor:
    """clip(x, -1, 1): the real-valued stand-in for sign() in a float twin (Bi-Real Net's pre-training).

    Example:
        >>> import keras_bnn, tensorflow as tf
        >>> keras_bnn.legacy.quantizers.hard_tanh(tf.constant([-3.0, 0.5, 2.0])).numpy().tolist()
        [-1.0, 0.5, 1.0]
    """
    return tf.clip_by_value(x, -1.0, 1.0)
