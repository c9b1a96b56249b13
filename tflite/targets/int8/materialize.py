"""Turn pending ops into int8 ops: exact thresholds for signs, requantization for real values.

A :class:`~keras_bnn.tflite.targets.int8.values.Pending` op computes an integer accumulator ``A`` per output element;
its Keras value before the affine chain is ``v = a*A + b`` per channel (exactly: Rescaling offsets, SAME padding
and XNOR's alpha are folded into a and b).

* :func:`to_signs` finds, per channel, the integer threshold where Keras' sign flips (evaluating the chain with
  Keras' float32 arithmetic) and emits one op whose accumulator ``k*(A - t) + r`` is never zero and whose
  requantization saturates every output to +-127. Negative BatchNorm scales flip the channel's weights. A
  max-pool before the chain commutes with the sign when the chain rises; where it falls, the channel is stored
  negated (max of -sign is -min of sign) and the consumer folds the negation into its weights.
* :func:`to_real` folds the chain into per-channel weight scales and biases and requantizes to the int8
  range the Keras tensor takes on the representative data.

Example:
    >>> from keras_bnn.tflite.targets.int8.materialize import same_padding
    >>> same_padding(28, kernel=3, stride=1)
    (1, 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_bnn.tflite.targets.int8 import emit
from keras_bnn.tflite.targets.int8.arith import activation_params, quantize_weights, sign_thresholds, \
    threshold_requantization
from keras_bnn.tflite.targets.int8.emit import SIGN_SCALE
from keras_bnn.tflite.targets.int8.ir import Graph, Tensor
from keras_bnn.tflite.targets.int8.refine import refine_thresholds
from keras_bnn.tflite.targets.int8.values import Deferred, Pending, Real, Signs, full_mask

__all__ = ["InexactLowering", "Prepared", "identity_pending", "plain_real", "prepare", "same_padding", "to_real",
           "to_signs", "unnegate"]

_TOLERANCE = 1e-6


class InexactLowering(ValueError):
    """The value cannot be lowered exactly where exactness is required; the message says why."""


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) of TensorFlow's SAME padding (larq pads the same way)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _channel_vector(mask: np.ndarray | None, channels: int) -> np.ndarray | None:
    """A per-sample mask as one flag per channel (last axis), or None if it varies along other axes."""
    if mask is None:
        return np.zeros(channels, bool)
    flat = mask.reshape(-1, channels)
    return flat[0] if np.all(flat == flat[0]) else None


def unnegate(graph: Graph, value: Real | Signs, name: str) -> Real | Signs:
    """The same value with no negated element: a depthwise 1x1 op with weights +-1 (exact: the tensor is
    symmetric, zero point 0, and its requantization multiplier is 1)."""
    if value.neg is None:
        return value
    x = value.tensor
    if x.scalar_zero_point != 0:
        raise InexactLowering(f"cannot negate {x.name!r} exactly: its zero point is not 0")
    per_sample = x.shape[1:]
    channels = _channel_vector(value.neg, per_sample[-1])
    flat = x if channels is not None and len(x.shape) == 4 else emit.reshape(
        graph, x, (x.shape[0], 1, 1, int(np.prod(per_sample))), f"{name}/flat")
    signs = np.where(channels if channels is not None and len(x.shape) == 4 else value.neg.reshape(-1), -1, 1)
    y = emit.conv(graph, "depthwise", flat, signs.reshape(-1, 1, 1), 1.0, np.zeros(len(signs), np.int64),
                  x.scalar_scale, 0, name=f"{name}/unnegate")
    if y.shape != x.shape:
        y = emit.reshape(graph, y, x.shape, f"{name}/unflat")
    if isinstance(value, Signs):
        return Signs(y, value.spec)
    return Real(y, None, value.affine, value.is_sign, value.exact)


@dataclass
class Prepared:
    """The emitted op's input and integer weights, and the exact map ``v = a*A + b`` from its accumulator A.

    ``pads``/``pad_values`` describe explicit padding of the source (one PADV2 per value, concatenated), and
    ``error`` bounds, per channel in units of A, how far Keras' v can be from ``a*A + b`` because real weights
    were rounded to int8 (0 for binary weights).
    """

    x: Tensor
    source: Real | Signs
    weights: np.ndarray  # int64, output channel first, input channels of the emitted op (copies included)
    a: np.ndarray
    b: np.ndarray
    lattice: int
    bound: int
    padding: str
    zero_point: int
    pads: list | None
    pad_values: list
    error: np.ndarray
    digits: int = 1

    def emitted_weights(self) -> np.ndarray:
        """The int8 weights of the emitted op: `weights` split into `digits` parts along the input channels
        (each part at most ceil(|w| / digits); the op's input is repeated `digits` times)."""
        if self.digits == 1:
            return self.weights
        magnitude, sign = np.abs(self.weights), np.sign(self.weights)
        parts = [sign * ((magnitude + self.digits - 1 - i) // self.digits) for i in range(self.digits)]
        return np.concatenate(parts, axis=-1)


def prepare(graph: Graph, p: Pending, max_int: int, digits: int = 1) -> Prepared:
    """The emitted op's input tensor and integer weights, and the exact map from its accumulator to Keras' v."""
    source, kind = p.source, p.kind
    spatial = kind in ("conv", "depthwise")
    native = not spatial or p.padding == "VALID"
    if isinstance(source, Signs) and source.neg is not None and not native and p.pad_value != 0:
        source = unnegate(graph, source, f"{p.name}/input")
    x = source.tensor
    if isinstance(source, Signs):
        u, zp, offset, top = p.source_scale * SIGN_SCALE, 0, 0.0, 127
    else:
        u, zp, offset = source.affine[0] * x.scalar_scale, x.scalar_zero_point, source.affine[1]
        top = max(127 - zp, zp + 128)
    in_axis_channels = x.shape[-1] if kind != "fc" else x.shape[1]
    flags = _channel_vector(source.neg, in_axis_channels) if kind != "fc" else \
        (np.zeros(in_axis_channels, bool) if source.neg is None else source.neg.reshape(-1))
    if flags is None:
        source = unnegate(graph, source, f"{p.name}/input")
        x, flags = source.tensor, np.zeros(in_axis_channels, bool)
    flip = np.where(flags, -1.0, 1.0)  # fold negated inputs into the weights
    kernel = p.kernel * (flip[:, None, None] if kind == "depthwise" else flip)  # input channel: axis 0 / last
    if p.binary:
        alpha = np.abs(kernel.reshape(p.channels, -1)).max(axis=1)
        weights, scale = np.sign(kernel).astype(np.int64), np.where(alpha > 0, alpha, 1.0)
    else:
        weights, scale = quantize_weights(kernel, max_int * digits)
    taps_sum = weights.reshape(p.channels, -1).sum(axis=1)
    copies, padding, pads, pad_values = 1, p.padding if spatial else "VALID", None, []
    if spatial and p.padding == "SAME":
        target = zp + (p.pad_value - offset) / u  # the integer a padded element must hold
        if abs(target - zp) < _TOLERANCE:
            padding = "SAME"
        else:
            kh, kw = p.kernel.shape[1:3]
            pads = [(0, 0), same_padding(x.shape[1], kh, p.strides[0], p.dilation[0]),
                    same_padding(x.shape[2], kw, p.strides[1], p.dilation[1]), (0, 0)]
            exact = isinstance(source, Signs) or source.exact
            if abs(target - round(target)) < _TOLERANCE and -128 <= round(target) <= 127:
                pad_values = [int(round(target))]
                x = emit.pad(graph, x, pads, pad_values[0], f"{p.name}/pad")
            elif abs(2 * target - round(2 * target)) < _TOLERANCE and kind == "conv" and \
                    -128 <= np.floor(target) and np.ceil(target) <= 127:
                # Half-way value: pad one copy with floor, one with ceil; their sum is exact (2x the value).
                pad_values = [int(np.floor(target)), int(np.ceil(target))]
                halves = [emit.pad(graph, x, pads, pad_values[0], f"{p.name}/pad_low"),
                          emit.pad(graph, x, pads, pad_values[1], f"{p.name}/pad_high")]
                x = emit.concatenate(graph, halves, 3, f"{p.name}/pad_pair")
                weights, copies = np.concatenate([weights, weights], axis=-1), 2
            elif not exact and -128 <= round(target) <= 127:
                pad_values = [int(round(target))]
                x = emit.pad(graph, x, pads, pad_values[0], f"{p.name}/pad")
            else:
                raise InexactLowering(f"SAME padding with value {p.pad_value} is not representable in the "
                                      f"int8 input (it would be {target:.3f})")
            padding, top = "VALID", max(top, abs(int(np.ceil(abs(target - zp)))))
    bound = int(np.abs(weights).reshape(p.channels, -1).sum(axis=1).max(initial=0)) * top
    a = scale * u / copies
    b = scale * offset * taps_sum + p.bias
    rounding = np.abs(kernel - scale.reshape((-1,) + (1,) * (kernel.ndim - 1)) * weights[..., :kernel.shape[-1]])
    error = rounding.reshape(p.channels, -1).sum(axis=1) * (u * top + abs(offset)) / np.where(a != 0, np.abs(a), 1)
    return Prepared(x, source, weights, a, b, 127 if isinstance(source, Signs) else 1, bound, padding, zp,
                    None if padding == p.padding or not spatial else pads, pad_values, error, digits)


def _emit(graph: Graph, p: Pending, prep: Prepared, weights, weight_scale, bias, scale, zero_point,
          activation: str, suffix: str) -> Tensor:
    x = prep.x
    if prep.digits > 1:
        x = emit.concatenate(graph, [x] * prep.digits, len(x.shape) - 1, f"{p.name}/digits")
    flat_depthwise = p.kind == "depthwise" and len(x.shape) == 2
    if flat_depthwise:
        x = emit.reshape(graph, x, (x.shape[0], 1, 1, x.shape[1]), f"{p.name}/as_image")
    y = emit.conv(graph, p.kind, x, weights, weight_scale, bias, scale, zero_point, strides=p.strides,
                  padding=prep.padding, dilation=p.dilation, activation=activation, name=f"{p.name}{suffix}")
    if flat_depthwise:
        y = emit.reshape(graph, y, prep.x.shape[:1] + (p.channels,), f"{p.name}{suffix}/flat")
    if p.pool is not None:
        y = emit.pool(graph, "MAX_POOL_2D", y, p.pool.size, p.pool.strides, p.pool.padding, f"{p.name}{suffix}/pool")
    return y


def _post_mask(p: Pending, flags: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    return full_mask(flags, shape[1:]) if p.pool is not None else None


def to_signs(graph: Graph, value, spec, name: str) -> Signs:
    """The exact signs (per `spec`) of a value: one thresholding op for a Pending or a Real tensor."""
    if isinstance(value, Signs):
        if value.spec != spec:
            raise InexactLowering(f"signs of {value.tensor.name!r} were made for {value.spec.description}, "
                                  f"not {spec.description}")
        return value
    if isinstance(value, Deferred):
        if spec.key not in value._cache:
            value._cache[spec.key] = value.make_signs(spec)
        return value._cache[spec.key]
    if isinstance(value, Real):
        if value.is_sign and spec.pre is None and value.affine == (1.0, 0.0):
            return Signs(value.tensor, spec, value.neg)
        if spec.key not in value._signs:
            value._signs[spec.key] = to_signs(graph, identity_pending(value, name), spec, name)
        return value._signs[spec.key]
    if spec.key in value._cache:
        return value._cache[spec.key]
    p = value
    # On a real input (lattice 1) the threshold needs even weights: each int8 part is at most 63, doubled.
    real_on_real = not p.binary and not isinstance(p.source, Signs)
    if real_on_real and p.kind == "depthwise" and p.digits > 1:
        raise InexactLowering("weight digits are not supported for depthwise ops")
    prep = prepare(graph, p, 63 if real_on_real else 127, p.digits if real_on_real else 1)
    max_weight = max(int(np.abs(prep.emitted_weights()).max(initial=1)), 1)

    def positive(accumulator: np.ndarray) -> np.ndarray:
        v = (prep.a * accumulator + prep.b).astype(np.float32)
        return spec.positive(p.probe(v))

    direction, threshold = sign_thresholds(positive, channels=p.channels, lattice=prep.lattice, bound=prep.bound)
    threshold = refine_thresholds(prep, p, spec, direction, threshold)
    try:
        k, r, multiplier = threshold_requantization(prep.lattice, max_weight, prep.bound)
    except ValueError as error:
        raise InexactLowering(str(error)) from None
    shape = (-1,) + (1,) * (prep.weights.ndim - 1)
    weights = (direction * k).reshape(shape) * prep.emitted_weights()
    bias = np.where(direction != 0, -direction * k * threshold + r, np.where(threshold > 0, r, -r))
    # After a max-pool, channels whose sign falls with v are stored negated (max of -sign = -(min of sign)).
    falling = (direction * np.sign(prep.a) < 0) if p.pool is not None else np.zeros(p.channels, bool)
    weights = np.where(falling.reshape(shape), -weights, weights)
    bias = np.where(falling, -bias, bias)
    weight_scale = multiplier * SIGN_SCALE / prep.x.scalar_scale
    y = _emit(graph, p, prep, weights, weight_scale, bias.astype(np.int64), SIGN_SCALE, 0, "RELU_N1_TO_1", "/sign")
    signs = Signs(y, spec, _post_mask(p, falling, y.shape))
    value._cache[spec.key] = signs
    return signs


def to_real(graph: Graph, value, name: str) -> Real:
    """The value as an int8 tensor (Real values pass through; Pending ops are requantized)."""
    if isinstance(value, Real):
        return value
    if isinstance(value, Deferred):
        if "real" not in value._cache:
            value._cache["real"] = value.make_real()
        return value._cache["real"]
    if isinstance(value, Signs):
        raise InexactLowering(f"{name}: only the sign of this tensor exists in the int8 graph, its value is needed")
    p = value
    if "real" in p._cache:
        return p._cache["real"]
    prep = prepare(graph, p, 127)
    big_p, big_q = p.post_affine()
    alpha, beta = big_p * prep.a, big_p * prep.b + big_q
    falling = (big_p < 0) if p.pool is not None else np.zeros(p.channels, bool)
    alpha, beta = np.where(falling, -alpha, alpha), np.where(falling, -beta, beta)
    low, high = p.calibration.range()
    scale, zero_point = activation_params(low, high, symmetric=bool(falling.any()))
    s_in = prep.x.scalar_scale
    live = (alpha != 0) & (np.abs(beta) < 2**30 * np.abs(alpha))
    weight_scale = np.where(live, np.abs(alpha) / s_in, scale / s_in)
    constant = np.clip(np.round(beta / scale), -2**20, 2**20)  # a channel whose slope vanishes: its value
    bias = np.where(live, np.round(beta / np.where(live, np.abs(alpha), 1.0)), constant)
    shape = (-1,) + (1,) * (prep.weights.ndim - 1)
    weights = np.where(live, np.sign(alpha), 0).reshape(shape) * prep.weights
    if np.any(np.abs(alpha[live]) / scale >= 256):
        raise InexactLowering(f"{p.name}: requantization multiplier >= 256 (XNNPACK refuses it)")
    y = _emit(graph, p, prep, weights.astype(np.int64), weight_scale, bias.astype(np.int64), scale, zero_point,
              "NONE", "")
    real = Real(y, _post_mask(p, falling, y.shape))
    p._cache["real"] = real
    return real


def identity_pending(value: Real, name: str, calibration=None) -> Pending:
    """A Real tensor as a pending per-channel identity (a depthwise 1x1 op with weight 1), so that affine maps
    and thresholds can join it."""
    x = value.tensor
    channels = x.shape[-1]
    kernel = np.ones((channels, 1, 1))

    return Pending(name=name, kind="depthwise", source=value, kernel=kernel, binary=True,
                   bias=np.zeros(channels), calibration=calibration or _TensorRange(value),
                   keras_rank=len(x.shape))


class _TensorRange:
    """The range a Real tensor can hold (for requantizing it when no Keras tensor stands behind it)."""

    def __init__(self, value: Real):
        self.value = value

    def range(self) -> tuple[float, float]:
        x, (a, b) = self.value.tensor, self.value.affine
        ends = [a * x.scalar_scale * (q - x.scalar_zero_point) + b for q in (-128, 127)]
        return min(ends), max(ends)

    def batches(self):
        raise NotImplementedError("no Keras tensor behind this range")


def plain_real(graph: Graph, value, name: str, calibration=None) -> Real:
    """The value as an int8 tensor with no negated element and no pending affine map."""
    real = to_real(graph, value, name)
    if real.neg is not None and real.affine == (1.0, 0.0):
        real = unnegate(graph, real, name)
    if real.neg is not None or real.affine != (1.0, 0.0):
        real = to_real(graph, identity_pending(real, name, calibration), name)
    return real
