"""larq's quantizers on Keras 3: the same names, arguments, config keys and forward/backward math (larq 0.14).

Each class (``SteSign``, ...) is registered with Keras as ``keras_bnn>ClassName`` and, for
`keras_bnn.quantizers.get`, under its class name and larq's snake_case alias (``"ste_sign"``, ...), so
``QuantDense(input_quantizer="ste_sign")`` works as in larq; larq's older names ``DoReFaQuantizer`` and
``NoOpQuantizer`` are the same classes. The plain functions (``ste_sign(x)``, ...) are larq's functional forms.

Example:
    >>> from keras import ops
    >>> ops.convert_to_numpy(SteTern()(ops.convert_to_tensor([-0.5, 0.01, 0.5]))).tolist()
    [-1.0, 0.0, 1.0]
"""

from __future__ import annotations

import math
from typing import Any

from keras import ops

from keras_bnn.quantizers.base import Quantizer, clipped_gradient, sign, straight_through
from keras_bnn.quantizers.registry import ALIASES, serializable, serializable_function

__all__ = [
    "ALIASES", "ApproxSign", "DoReFa", "DoReFaQuantizer", "MagnitudeAwareSign", "NoOp", "NoOpQuantizer",
    "SteHeaviside", "SteSign", "SteTern", "SwishSign", "approx_sign", "heaviside", "magnitude_aware_sign",
    "ste_heaviside", "ste_sign", "ste_tern", "swish_sign",
]


def _is_real(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and not math.isnan(value)


def _check_clip(owner: str, clip_value: Any) -> float | None:
    if clip_value is not None and not (_is_real(clip_value) and clip_value > 0):
        raise ValueError(f"{owner} clip_value must be a positive number or None, got {clip_value!r}.")
    return clip_value


def heaviside(x):
    """1 where x > 0, else 0 (larq's `larq.math.heaviside`), in the input's dtype.

    Example:
        >>> from keras import ops
        >>> ops.convert_to_numpy(heaviside(ops.convert_to_tensor([-1.0, 0.0, 2.0]))).tolist()
        [0.0, 0.0, 1.0]
    """
    x = ops.convert_to_tensor(x)
    return ops.where(ops.greater(x, ops.zeros_like(x)), ops.ones_like(x), ops.zeros_like(x))


@serializable_function
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


@serializable_function
def approx_sign(x):
    """sign(x) with Bi-Real Net's piecewise-polynomial gradient `upstream * (2 - 2|x|)` on |x| <= 1, else 0.

    Example:
        >>> from keras import ops
        >>> ops.convert_to_numpy(approx_sign(ops.convert_to_tensor([-0.3, 0.0]))).tolist()
        [-1.0, 1.0]
    """
    return straight_through(sign, _approx_sign_gradient)(x)


@serializable_function
def swish_sign(x, beta: float = 5.0):
    """sign(x) with the SignSwish gradient of steepness `beta` (BNN+):
    `upstream * beta (2 - beta x tanh(beta x / 2)) / (1 + cosh(beta x))`.

    Example:
        >>> from keras import ops
        >>> ops.convert_to_numpy(swish_sign(ops.convert_to_tensor([-0.3, 0.0]))).tolist()
        [-1.0, 1.0]
    """

    def gradient(x, dy):
        b_x = beta * x
        return dy * beta * (2.0 - b_x * ops.tanh(b_x * 0.5)) / (1.0 + ops.cosh(b_x))

    return straight_through(sign, gradient)(x)


@serializable_function
def ste_heaviside(x, clip_value: float | None = 1.0):
    """heaviside(x) (0 or 1) with the straight-through gradient `upstream * (|x| <= clip_value)`.

    Example:
        >>> from keras import ops
        >>> ops.convert_to_numpy(ste_heaviside(ops.convert_to_tensor([-0.3, 0.0, 0.2]))).tolist()
        [0.0, 0.0, 1.0]
    """
    return straight_through(heaviside, lambda x, dy: clipped_gradient(x, dy, clip_value))(x)


@serializable_function
def ste_tern(x, threshold_value: float = 0.05, ternary_weight_networks: bool = False,
             clip_value: float | None = 1.0):
    """-1, 0 or 1 around a threshold (`threshold_value`, or TWN's 0.7·mean|x| when `ternary_weight_networks`),
    with the straight-through gradient `upstream * (|x| <= clip_value)`.

    Example:
        >>> from keras import ops
        >>> ops.convert_to_numpy(ste_tern(ops.convert_to_tensor([-0.3, 0.01, 0.2]))).tolist()
        [-1.0, 0.0, 1.0]
    """

    def forward(x):
        if ternary_weight_networks:
            # larq's form: sum / size (not a mean op), so the threshold rounds the same way.
            threshold = 0.7 * ops.sum(ops.abs(x)) / ops.cast(ops.size(x), x.dtype)
        else:
            threshold = threshold_value
        return ops.sign(ops.sign(x + threshold) + ops.sign(x - threshold))

    return straight_through(forward, lambda x, dy: clipped_gradient(x, dy, clip_value))(x)


@serializable_function
def magnitude_aware_sign(x, clip_value: float | None = 1.0):
    """Bi-Real Net's weight binarization: mean|x| over every axis but the last (the output channels), times
    ste_sign(x); the scale gets no gradient. A rank-0 or rank-1 input has no axis to average: the scale is |x|.

    Example:
        >>> from keras import ops
        >>> ops.convert_to_numpy(magnitude_aware_sign(ops.convert_to_tensor([[-1.0, 2.0], [3.0, -4.0]]))).tolist()
        [[-2.0, 3.0], [2.0, -3.0]]
    """
    x = ops.convert_to_tensor(x)
    axes = tuple(range(len(x.shape) - 1))
    if axes:
        # sum / count, as TensorFlow's reduce_mean rounds (jnp.mean and torch.mean may differ by an ulp).
        count = ops.cast(ops.size(x), x.dtype) / ops.cast(ops.shape(x)[-1], x.dtype)
        scale = ops.sum(ops.abs(x), axis=axes) / count
    else:
        scale = ops.abs(x)
    return ops.stop_gradient(scale) * ste_sign(x, clip_value=clip_value)


@serializable("NoOpQuantizer")
class NoOp(Quantizer):
    """The identity, marking a variable with a `precision` (larq's `NoOp`; optimizers such as Bop read it).

    Args:
        precision: The bits the variable is meant to have (a positive int).
        **kwargs: Passed to `Quantizer` (``name``, ``metrics``, ...).

    Raises:
        ValueError: `precision` is not a positive int.

    Example:
        >>> NoOp(precision=1).precision
        1
    """

    precision = None

    def __init__(self, precision: int, **kwargs):
        super().__init__(**kwargs)
        if isinstance(precision, bool) or not isinstance(precision, int) or precision < 1:
            raise ValueError(f"NoOp precision must be a positive int, got {precision!r}.")
        self.precision = precision

    def call(self, inputs):
        return inputs

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "precision": self.precision}


#: larq's older name of `NoOp`.
NoOpQuantizer = NoOp


@serializable("ste_sign")
class SteSign(Quantizer):
    """larq's `SteSign`: sign (+1 at 0) with a straight-through gradient clipped at `clip_value`.

    Args:
        clip_value: The gradient passes where |x| <= clip_value (None: everywhere).
        **kwargs: Passed to `Quantizer`.

    Example:
        >>> from keras import ops
        >>> ops.convert_to_numpy(SteSign(clip_value=0.5)(ops.convert_to_tensor([-2.0, 0.0]))).tolist()
        [-1.0, 1.0]
    """

    precision = 1

    def __init__(self, clip_value: float | None = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.clip_value = _check_clip("SteSign", clip_value)

    def call(self, inputs):
        return ste_sign(inputs, clip_value=self.clip_value)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "clip_value": self.clip_value}


@serializable("approx_sign")
class ApproxSign(Quantizer):
    """larq's `ApproxSign` (Bi-Real Net's activation binarization): sign with the gradient 2 - 2|x| on |x| <= 1.

    Example:
        >>> from keras import ops
        >>> ops.convert_to_numpy(ApproxSign()(ops.convert_to_tensor([-2.0, 0.0]))).tolist()
        [-1.0, 1.0]
    """

    precision = 1

    def call(self, inputs):
        return approx_sign(inputs)


@serializable("ste_heaviside")
class SteHeaviside(Quantizer):
    """larq's `SteHeaviside`: 1 where x > 0, else 0, with a straight-through gradient clipped at `clip_value`.

    Example:
        >>> from keras import ops
        >>> ops.convert_to_numpy(SteHeaviside()(ops.convert_to_tensor([-2.0, 0.0, 0.1]))).tolist()
        [0.0, 0.0, 1.0]
    """

    precision = 1

    def __init__(self, clip_value: float | None = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.clip_value = _check_clip("SteHeaviside", clip_value)

    def call(self, inputs):
        return ste_heaviside(inputs, clip_value=self.clip_value)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "clip_value": self.clip_value}


@serializable("swish_sign")
class SwishSign(Quantizer):
    """larq's `SwishSign`: sign with the SignSwish gradient of steepness `beta` (> 0).

    Example:
        >>> SwishSign(beta=2.0).get_config()["beta"]
        2.0
    """

    precision = 1

    def __init__(self, beta: float = 5.0, **kwargs):
        super().__init__(**kwargs)
        if not (_is_real(beta) and 0 < beta < math.inf):
            raise ValueError(f"SwishSign beta must be a positive finite number, got {beta!r}.")
        self.beta = beta

    def call(self, inputs):
        return swish_sign(inputs, beta=self.beta)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta": self.beta}


@serializable("magnitude_aware_sign")
class MagnitudeAwareSign(Quantizer):
    """larq's `MagnitudeAwareSign`: per-output-channel mean|w| times sign(w) (Bi-Real Net's weights).

    Example:
        >>> from keras import ops
        >>> ops.convert_to_numpy(MagnitudeAwareSign()(ops.convert_to_tensor([[-1.0], [3.0]]))).tolist()
        [[-2.0], [2.0]]
    """

    precision = 1

    def __init__(self, clip_value: float | None = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.clip_value = _check_clip("MagnitudeAwareSign", clip_value)

    def call(self, inputs):
        return magnitude_aware_sign(inputs, clip_value=self.clip_value)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "clip_value": self.clip_value}


@serializable("ste_tern")
class SteTern(Quantizer):
    """larq's `SteTern`: -1, 0 or 1 around `threshold_value` (or TWN's 0.7·mean|x| when
    `ternary_weight_networks`), with a straight-through gradient clipped at `clip_value`.

    Example:
        >>> SteTern(threshold_value=0.1).precision
        2
    """

    precision = 2

    def __init__(self, threshold_value: float = 0.05, ternary_weight_networks: bool = False,
                 clip_value: float | None = 1.0, **kwargs):
        super().__init__(**kwargs)
        if not (_is_real(threshold_value) and 0 <= threshold_value < math.inf):
            raise ValueError(f"SteTern threshold_value must be a finite number >= 0, got {threshold_value!r}.")
        if not isinstance(ternary_weight_networks, bool):
            raise TypeError(f"SteTern ternary_weight_networks must be a bool, got {ternary_weight_networks!r}.")
        self.threshold_value = threshold_value
        self.ternary_weight_networks = ternary_weight_networks
        self.clip_value = _check_clip("SteTern", clip_value)

    def call(self, inputs):
        return ste_tern(inputs, threshold_value=self.threshold_value,
                        ternary_weight_networks=self.ternary_weight_networks, clip_value=self.clip_value)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "threshold_value": self.threshold_value,
                "ternary_weight_networks": self.ternary_weight_networks, "clip_value": self.clip_value}


def _unit_interval_gradient(x, dy):
    # tf.clip_by_value's gradient in larq: dy on 0 <= x <= 1, both ends included (JAX's clip gives dy/2 there).
    inside = ops.logical_and(ops.greater_equal(x, 0.0), ops.less_equal(x, 1.0))
    return ops.where(inside, dy, ops.zeros_like(dy))


@serializable("dorefa_quantizer", "DoReFaQuantizer")
class DoReFa(Quantizer):
    """larq's `DoReFa`: `k_bit`-bit uniform quantization of activations (clipped to [0, 1]) or of weights
    (tanh, normalized by max|tanh|, quantized on [0, 1] and mapped back to [-1, 1]), straight-through gradient.

    Args:
        k_bit: Bits of the output (a positive int; `precision`).
        mode: ``"activations"`` or ``"weights"``.
        **kwargs: Passed to `Quantizer`.

    Raises:
        ValueError: an unknown `mode` (larq's message) or a `k_bit` that is not a positive int.

    Example:
        >>> from keras import ops
        >>> ops.convert_to_numpy(DoReFa(k_bit=2)(ops.convert_to_tensor([-1.0, 0.2, 0.5, 2.0]))).tolist()
        [0.0, 0.3333333432674408, 0.6666666865348816, 1.0]
    """

    precision = None

    def __init__(self, k_bit: int = 2, mode: str = "activations", **kwargs):
        super().__init__(**kwargs)
        if isinstance(k_bit, bool) or not isinstance(k_bit, int) or k_bit < 1:
            raise ValueError(f"DoReFa k_bit must be a positive int, got {k_bit!r}.")
        if mode not in ("activations", "weights"):
            raise ValueError(f"Invalid DoReFa quantizer mode {mode}. Valid values are 'activations' and 'weights'.")
        self.precision = k_bit
        self.mode = mode

    def weight_preprocess(self, inputs):
        """tanh(w) / (2 max|tanh(w)|) + 0.5, in [0, 1] (the max gets no gradient; all-zero weights give 0.5)."""
        limited = ops.tanh(inputs)
        dividend = ops.stop_gradient(ops.max(ops.abs(limited)))
        return ops.divide_no_nan(limited, 2.0 * dividend) + 0.5

    def call(self, inputs):
        inputs = ops.convert_to_tensor(inputs)
        levels = 2.0 ** self.precision - 1.0

        def quantize(x):
            return ops.round(x * levels) / levels

        if self.mode == "activations":
            return straight_through(lambda x: quantize(ops.clip(x, 0.0, 1.0)), _unit_interval_gradient)(inputs)
        outputs = straight_through(quantize, lambda x, dy: dy)(self.weight_preprocess(inputs))
        return 2.0 * outputs - 1.0

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k_bit": self.precision, "mode": self.mode}


#: larq's older name of `DoReFa`.
DoReFaQuantizer = DoReFa
