"""Reading the quantized weights of quantized layers (larq's ``quantized_scope``, on Keras 3).

A quantized layer keeps latent (real) weights, which the optimizer updates, and quantizes them at call time.
Inside ``quantized_scope(True)``, reading a quantized layer's latent weight as numpy (``variable.numpy()``,
``layer.get_weights()``, ``model.get_weights()``) gives its quantized value instead (±1 for ``ste_sign``, ±α for
``magnitude_aware_sign``), as larq's ``larq.context.quantized_scope(True)`` does. Outside the scope (the default)
reads give the latent values. Only these numpy reads change: the layers compute the same outputs in and out of the
scope, assignments (``set_weights``) always set the latent values, and a ``.keras`` file always holds the latent
weights (so that training can resume from it).

`quantized_weight(layer, name)` reads one quantized weight anywhere, without the scope.

Example:
    >>> import keras, keras_bnn
    >>> layer = keras_bnn.layers.QuantDense(2, kernel_quantizer="ste_sign", use_bias=False)
    >>> layer.build((None, 3))
    >>> with keras_bnn.layers.quantized_scope(True):
    ...     binary = layer.get_weights()[0]
    >>> sorted(set(binary.ravel().tolist())) in ([-1.0, 1.0], [-1.0], [1.0])
    True
    >>> bool((layer.get_weights()[0] == binary).all())  # latent values outside the scope
    False
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np
from keras import ops

__all__ = ["quantized_scope", "quantized_weight", "should_quantize"]

_STATE = threading.local()


@contextlib.contextmanager
def quantized_scope(quantize: bool) -> Iterator[bool]:
    """Within the block, numpy reads of quantized layers' latent weights give their quantized values.

    Args:
        quantize: True: reads give quantized values; False: latent values (to step out of an enclosing scope).

    Yields:
        `quantize`.

    Example:
        >>> import keras_bnn
        >>> with keras_bnn.layers.quantized_scope(True):
        ...     keras_bnn.layers.should_quantize()
        True
    """
    if not isinstance(quantize, bool):
        raise TypeError(f"quantize must be a bool, got {quantize!r}.")
    previous = should_quantize()
    _STATE.quantize = quantize
    try:
        yield quantize
    finally:
        _STATE.quantize = previous


def should_quantize() -> bool:
    """Whether the current thread is inside ``quantized_scope(True)``.

    Example:
        >>> import keras_bnn
        >>> keras_bnn.layers.should_quantize()
        False
    """
    return getattr(_STATE, "quantize", False)


def quantized_weight(layer: Any, name: str = "kernel") -> np.ndarray:
    """The quantized value of weight `name` of a quantized layer, as numpy (the latent value when the layer has
    no quantizer for it).

    Args:
        layer: A built layer mixing in `QuantizerBase` (`QuantDense`, `QuantConv2D`, `XNORConv2D`, ...).
        name: The weight's attribute, a key of the layer's ``quantized_weights`` (``"kernel"``;
            ``"depthwise_kernel"``/``"pointwise_kernel"`` for separable convolutions).

    Raises:
        ValueError: the layer quantizes no weight of that name, or is not built.

    Example:
        >>> import keras_bnn
        >>> layer = keras_bnn.layers.QuantConv2D(2, 1, kernel_quantizer="ste_sign")
        >>> layer.build((None, 4, 4, 1))
        >>> set(keras_bnn.layers.quantized_weight(layer).ravel().tolist()) <= {-1.0, 1.0}
        True
    """
    names = getattr(layer, "quantized_weights", None)
    if not names or name not in names:
        raise ValueError(f"Layer {getattr(layer, 'name', layer)!r} quantizes no weight named {name!r}; its "
                         f"quantized weights are {sorted(names or [])}.")
    if getattr(layer, name, None) is None:
        raise ValueError(f"Layer {layer.name!r} is not built yet: build it before reading its weights.")
    return np.asarray(ops.convert_to_numpy(layer.quantized(name)))


def install_quantized_read(variable: Any, layer: Any, name: str) -> None:
    """Make ``variable.numpy()`` give ``quantized_weight(layer, name)`` inside ``quantized_scope(True)``.

    Called by `QuantizerBase.build` for each quantized weight (an instance attribute: the variable's class and
    every other variable are unchanged). The layer is held weakly.
    """
    layer_reference = weakref.ref(layer)
    latent_numpy = type(variable).numpy

    def numpy():
        owner = layer_reference()
        if should_quantize() and owner is not None:
            return quantized_weight(owner, name)
        return latent_numpy(variable)

    variable.numpy = numpy
