"""What larq / keras_bnn quantizers compute at inference, in the terms the int8 lowering needs.

* An input quantizer is either absent (a real input), a **sign** described by a :class:`SignSpec` (an optional
  float32 pre-threshold computed exactly as Keras does, then larq's sign, +1 for >= 0, times a scale), or
  unsupported (:class:`UnsupportedQuantizer`, with the reason).
* A kernel quantizer is evaluated on the layer's latent kernel; a binary one must give ``+-alpha`` per output
  channel (larq's ``ste_sign``: alpha = 1; ``magnitude_aware_sign``: XNOR-Net's alpha = mean|W|).

Example:
    >>> import keras_bnn, larq
    >>> from keras_bnn.tflite.targets.int8.quantizers import input_sign_spec
    >>> input_sign_spec(larq.quantizers.SteSign()).description
    'sign'
    >>> input_sign_spec(None) is None
    True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import larq
import numpy as np
import tensorflow as tf

from keras_bnn._compat import is_binary_quantizer
from keras_bnn.legacy.quantizers import ElasticSign, LearnableThresholdSign, StochasticSign

__all__ = ["SignSpec", "UnsupportedQuantizer", "effective_kernel", "input_sign_spec"]

_PLAIN_SIGNS = (larq.quantizers.SteSign, larq.quantizers.ApproxSign, larq.quantizers.SwishSign, StochasticSign)
_PLAIN_SIGN_FUNCTIONS = (larq.quantizers.ste_sign, larq.quantizers.approx_sign, larq.quantizers.swish_sign)


class UnsupportedQuantizer(ValueError):
    """A quantizer the int8 lowering cannot express exactly; the message says why."""


@dataclass(frozen=True)
class SignSpec:
    """A binary input quantizer: ``scale * sign(pre(x))`` with larq's sign (+1 where ``pre(x) >= 0``).

    Attributes:
        key: identity of the computation (two quantizers with the same key give the same signs).
        description: for messages.
        pre: Keras' float32 pre-threshold on arrays whose last axis is the channel (None: the identity).
        scale: the quantizer's output magnitude (ElasticSign's alpha; 1 for plain signs).
        per_channel: whether `pre` differs per channel (then the signs cannot pass through a Flatten/Reshape).
    """

    key: tuple
    description: str
    pre: Callable[[np.ndarray], np.ndarray] | None = field(default=None, compare=False)
    scale: float = field(default=1.0, compare=False)
    per_channel: bool = field(default=False, compare=False)

    def positive(self, x: np.ndarray) -> np.ndarray:
        """Whether the sign of float32 values `x` is +1."""
        x = np.asarray(x, np.float32)
        return (x if self.pre is None else self.pre(x)) >= 0


PLAIN_SIGN = SignSpec(("sign",), "sign")


def input_sign_spec(quantizer) -> SignSpec | None:
    """The :class:`SignSpec` of a layer's input quantizer, None for no quantizer.

    Raises:
        UnsupportedQuantizer: a quantizer that is not a sign the lowering knows (the message names it).
    """
    if quantizer is None:
        return None
    name = getattr(quantizer, "name", None) or getattr(quantizer, "__name__", repr(quantizer))
    if isinstance(quantizer, _PLAIN_SIGNS) or quantizer in _PLAIN_SIGN_FUNCTIONS:
        return PLAIN_SIGN
    if isinstance(quantizer, LearnableThresholdSign):
        beta = np.asarray(quantizer.beta.numpy(), np.float32)
        return SignSpec(("threshold", tuple(beta.tolist())), f"sign(x - beta) of {name}",
                        pre=lambda x, beta=beta: x - beta, per_channel=True)
    if isinstance(quantizer, ElasticSign):
        alpha, beta = np.float32(quantizer.alpha.numpy()), np.float32(quantizer.beta.numpy())
        if not alpha > 0:
            raise UnsupportedQuantizer(f"ElasticSign {name!r} has alpha {alpha} <= 0")
        return SignSpec(("elastic", float(alpha), float(beta)), f"alpha*sign(x - beta) of {name}",
                        pre=lambda x, a=alpha, b=beta: (x - b) / a, scale=float(alpha))
    if is_binary_quantizer(quantizer):
        raise UnsupportedQuantizer(f"binary input quantizer {type(quantizer).__name__} ({name}) has no int8 "
                                   "lowering; supported: ste_sign, approx_sign, swish_sign, stochastic_sign, "
                                   "learnable_threshold_sign, elastic_sign")
    raise UnsupportedQuantizer(f"input quantizer {type(quantizer).__name__} ({name}) is not binary; the int8 "
                               "target lowers binary (sign) input quantizers or none")


def _latent(variable) -> np.ndarray:
    latent = getattr(variable, "latent_variable", variable)
    return np.asarray(tf.convert_to_tensor(latent).numpy(), np.float64)


def effective_kernel(layer, attribute: str = "kernel") -> tuple[np.ndarray, bool]:
    """The kernel a (Quant)Conv/Dense layer multiplies by at inference, and whether it is binary.

    Returns:
        (kernel in Keras layout as float64, binary). A binary kernel is ``alpha * (+-1)`` with one alpha per
        output channel (last axis).

    Raises:
        UnsupportedQuantizer: a binary kernel quantizer whose output is not +-alpha per output channel.
    """
    variable = getattr(layer, attribute)
    quantizer = getattr(layer, f"{attribute}_quantizer", None)
    latent = _latent(variable)
    if quantizer is None:
        return latent, False
    kernel = np.asarray(quantizer(tf.constant(latent, tf.float32)).numpy(), np.float64)
    if not is_binary_quantizer(quantizer):
        return kernel, False
    magnitude = np.abs(kernel).reshape(-1, kernel.shape[-1])
    if not np.all(magnitude == magnitude.max(axis=0, keepdims=True)):
        raise UnsupportedQuantizer(f"binary kernel quantizer {type(quantizer).__name__} does not give +-alpha per "
                                   "output channel")
    return kernel, True
