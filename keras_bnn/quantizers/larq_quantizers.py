"""larq's quantizers on Keras 3: the same names, arguments, config keys and forward/backward math.

Each is a class (``SteSign``, ...) registered as ``keras_bnn>ClassName`` and under larq's snake_case name
(``"ste_sign"``, ...), so ``QuantDense(input_quantizer="ste_sign")`` works as in larq; the plain functions
(``ste_sign(x)``, ...) are larq's functional forms.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_bnn.quantizers.base import PACKAGE, Quantizer, clipped_gradient, sign, straight_through

__all__ = [
    "ApproxSign", "DoReFa", "DoReFaQuantizer", "MagnitudeAwareSign", "NoOp", "SteHeaviside", "SteSign", "SteTern",
    "SwishSign", "approx_sign", "heaviside", "magnitude_aware_sign", "ste_heaviside", "ste_sign", "ste_tern",
    "swish_sign", "ALIASES",
]

#: larq's snake_case names of its quantizer classes (filled by `_alias`).
ALIASES: dict[str, type] = {}


def _alias(name: str):
    def decorator(cls: type) -> type:
        cls = keras.saving.register_keras_serializable(package=PACKAGE)(cls)
        ALIASES[name] = cls
        return cls
    return decorator


def _check_clip(clip_value: Any) -> float | None:
    if clip_value is None:
        return None
    if isinstance(clip_value, bool) or not isinstance(clip_value, (int, float)) or clip_value <= 0:
        raise ValueError(f"clip_value must be a positive number or None, got {clip_value!r}.")
    return float(clip_value)


def heaviside(x):
    """1 where x > 0, else 0 (larq's `larq.math.heaviside`)."""
    x = ops.convert_to_tensor(x)
    return ops.where(ops.greater(x, ops.zeros_like(x)), ops.ones_like(x), ops.zeros_like(x))


def ste_sign(x, clip_value: float | None = 1.0):
    """sign(x) (sign(0) = 1) with the straight-through gradient `upstream * (|x| <= clip_value)`.

    Example:
        >>> from keras import ops
        >>> ops.convert_to_numpy(ste_sign(ops.convert_to_tensor([-0.3, 0.0, 4.0]))).tolist()
        [-1.0, 1.0, 1.0]
    """
    return straight_through(sign, lambda x, dy: clipped_gradient(x, dy, clip_value))(x)


def _approx_sign_gradient(x, dy):
    abs_x = ops.abs(x)
    return ops.where(ops.less_equal(abs_x, 1.0), (1.0 - abs_x) * 2.0 * dy, ops.zeros_like(dy))


def approx_sign(x):
    """sign(x) with Bi-Real Net's piecewise-polynomial gradient `2 - 2|x|` on |x| <= 1."""
    return straight_through(sign, _approx_sign_gradient)(x)


def swish_sign(x, beta: float = 5.0):
    """sign(x) with the SignSwish gradient (BNN+) of steepness `beta`."""

    def gradient(x, dy):
        b_x = beta * x
        return dy * beta * (2.0 - b_x * ops.tanh(b_x * 0.5)) / (1.0 + ops.cosh(b_x))

    return straight_through(sign, gradient)(x)


def ste_heaviside(x, clip_value: float | None = 1.0):
    """heaviside(x) (0 or 1) with the straight-through gradient `upstream * (|x| <= clip_value)`."""
    return straight_through(heaviside, lambda x, dy: clipped_gradient(x, dy, clip_value))(x)


def ste_tern(x, threshold_value: float = 0.05, ternary_weight_networks: bool = False,
             clip_value: float | None = 1.0):
    """Ternarization to {-1, 0, 1} around a threshold (fixed, or TWN's 0.7·mean|x|), straight-through gradient."""

    def forward(x):
        if ternary_weight_networks:
            threshold = 0.7 * ops.mean(ops.abs(x))
        else:
            threshold = threshold_value
        return ops.sign(ops.sign(x + threshold) + ops.sign(x - threshold))

    return straight_through(forward, lambda x, dy: clipped_gradient(x, dy, clip_value))(x)


def magnitude_aware_sign(x, clip_value: float | None = 1.0):
    """Bi-Real Net's weight binarization: mean|x| per output channel (last axis) times ste_sign(x)."""
    x = ops.convert_to_tensor(x)
    scale = ops.stop_gradient(ops.mean(ops.abs(x), axis=tuple(range(len(x.shape) - 1))))
    return scale * ste_sign(x, clip_value=clip_value)


@_alias("no_op")
class NoOp(Quantizer):
    """The identity, marking a tensor with a `precision` (larq's `NoOp`; optimizers like Bop read it)."""

    def __init__(self, precision: int, **kwargs):
        super().__init__(**kwargs)
        if isinstance(precision, bool) or not isinstance(precision, int) or precision < 1:
            raise ValueError(f"precision must be a positive int, got {precision!r}.")
        self.precision = precision

    def call(self, inputs):
        return inputs

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "precision": self.precision}


@_alias("ste_sign")
class SteSign(Quantizer):
    """larq's `SteSign`: sign with a straight-through gradient clipped at `clip_value` (None: not clipped)."""

    precision = 1

    def __init__(self, clip_value: float | None = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.clip_value = _check_clip(clip_value)

    def call(self, inputs):
        return ste_sign(inputs, clip_value=self.clip_value)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "clip_value": self.clip_value}


@_alias("approx_sign")
class ApproxSign(Quantizer):
    """larq's `ApproxSign` (Bi-Real Net's activation binarization)."""

    precision = 1

    def call(self, inputs):
        return approx_sign(inputs)


@_alias("ste_heaviside")
class SteHeaviside(Quantizer):
    """larq's `SteHeaviside`: {0, 1} with a straight-through gradient clipped at `clip_value`."""

    precision = 1

    def __init__(self, clip_value: float | None = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.clip_value = _check_clip(clip_value)

    def call(self, inputs):
        return ste_heaviside(inputs, clip_value=self.clip_value)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "clip_value": self.clip_value}


@_alias("swish_sign")
class SwishSign(Quantizer):
    """larq's `SwishSign`: sign with the SignSwish gradient of steepness `beta`."""

    precision = 1

    def __init__(self, beta: float = 5.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(beta, bool) or not isinstance(beta, (int, float)):
            raise ValueError(f"beta must be a number, got {beta!r}.")
        self.beta = float(beta)

    def call(self, inputs):
        return swish_sign(inputs, beta=self.beta)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta": self.beta}


@_alias("magnitude_aware_sign")
class MagnitudeAwareSign(Quantizer):
    """larq's `MagnitudeAwareSign`: per-output-channel mean|w| times sign(w) (Bi-Real Net's weights)."""

    precision = 1

    def __init__(self, clip_value: float | None = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.clip_value = _check_clip(clip_value)

    def call(self, inputs):
        return magnitude_aware_sign(inputs, clip_value=self.clip_value)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "clip_value": self.clip_value}


@_alias("ste_tern")
class SteTern(Quantizer):
    """larq's `SteTern`: {-1, 0, 1} around `threshold_value` (or TWN's adaptive threshold)."""

    precision = 2

    def __init__(self, threshold_value: float = 0.05, ternary_weight_networks: bool = False,
                 clip_value: float | None = 1.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(threshold_value, bool) or not isinstance(threshold_value, (int, float)) or threshold_value < 0:
            raise ValueError(f"threshold_value must be a number >= 0, got {threshold_value!r}.")
        if not isinstance(ternary_weight_networks, bool):
            raise TypeError(f"ternary_weight_networks must be a bool, got {ternary_weight_networks!r}.")
        self.threshold_value = float(threshold_value)
        self.ternary_weight_networks = ternary_weight_networks
        self.clip_value = _check_clip(clip_value)

    def call(self, inputs):
        return ste_tern(inputs, threshold_value=self.threshold_value,
                        ternary_weight_networks=self.ternary_weight_networks, clip_value=self.clip_value)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "threshold_value": self.threshold_value,
                "ternary_weight_networks": self.ternary_weight_networks, "clip_value": self.clip_value}


@_alias("dorefa_quantizer")
class DoReFa(Quantizer):
    """larq's `DoReFa`: k-bit uniform quantization of activations (clipped to [0, 1]) or of weights
    (tanh-normalized to [-1, 1]), with a straight-through gradient."""

    def __init__(self, k_bit: int = 2, mode: str = "activations", **kwargs):
        super().__init__(**kwargs)
        if isinstance(k_bit, bool) or not isinstance(k_bit, int) or k_bit < 1:
            raise ValueError(f"k_bit must be a positive int, got {k_bit!r}.")
        if mode not in ("activations", "weights"):
            raise ValueError(f"mode must be 'activations' or 'weights', got {mode!r}.")
        self.precision = k_bit
        self.mode = mode

    def weight_preprocess(self, inputs):
        """tanh(w) mapped to [0, 1] (the DoReFa weight transform before quantization)."""
        tanh = ops.tanh(inputs)
        dividend = ops.stop_gradient(ops.max(ops.abs(tanh)))
        return ops.divide_no_nan(tanh, 2.0 * dividend) + 0.5

    def call(self, inputs):
        inputs = ops.convert_to_tensor(inputs)
        if self.mode == "activations":
            inputs = ops.clip(inputs, 0.0, 1.0)
        else:
            inputs = self.weight_preprocess(inputs)
        levels = 2.0 ** self.precision - 1.0
        quantize = straight_through(lambda x: ops.round(x * levels) / levels, lambda x, dy: dy)
        outputs = quantize(inputs)
        if self.mode == "weights":
            outputs = 2.0 * outputs - 1.0
        return outputs

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k_bit": self.precision, "mode": self.mode}


#: larq's older name of `DoReFa`.
DoReFaQuantizer = DoReFa
