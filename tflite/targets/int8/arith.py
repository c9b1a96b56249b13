"""Integer arithmetic of the int8 lowering: quantization parameters, weight quantization, exact sign thresholds.

The key routine is :func:`sign_thresholds`: given, per output channel, the function from an op's integer
accumulator ``A`` to the sign Keras computes (``A -> sign(post(a*A + b))`` evaluated with Keras' own float32
layers), it finds for every channel whether the sign grows with ``A`` (``+1`` iff ``A >= t``), falls with ``A``
(``+1`` iff ``A <= t``) or is constant, and the exact integer ``t``. Every function a Keras BNN applies between
an accumulator and its sign (scales, BatchNorm, biases, thresholds) is monotone per channel, even with float32
rounding, so a binary search over the accumulator's lattice finds ``t`` exactly.

Example:
    >>> import numpy as np
    >>> from keras_bnn.tflite.targets.int8.arith import sign_thresholds
    >>> f = lambda acc: (acc * np.array([0.5, -2.0]) + np.array([-1.0, 3.0])) >= 0  # sign(+-A + b) per channel
    >>> direction, threshold = sign_thresholds(f, channels=2, lattice=1, bound=100)
    >>> direction.tolist(), threshold.tolist()   # ch 0: +1 iff A >= 2; ch 1: +1 iff A <= 1
    ([1, -1], [2, 1])
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["INT32_SAFE", "activation_params", "quantize_weights", "sign_thresholds", "threshold_requantization"]

INT32_SAFE = 2**31 - 1
MAX_XNNPACK_MULTIPLIER = 256.0  # XNNPACK refuses (fatally, at delegate preparation) requantization scales >= 256


def activation_params(low: float, high: float, *, symmetric: bool = False) -> tuple[float, int]:
    """(scale, zero point) of an int8 tensor covering [low, high] (widened to hold 0), as TFLite's quantizer does.

    Example:
        >>> activation_params(0.0, 255.0)
        (1.0, -128)
    """
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    if symmetric:
        bound = max(-low, high)
        return (bound / 127.0 if bound > 0 else 1.0), 0
    if high == low:
        return 1.0, 0
    scale = (high - low) / 255.0
    zero_point = int(np.clip(round(-128 - low / scale), -128, 127))
    return scale, zero_point


def quantize_weights(kernel: np.ndarray, max_int: int = 127) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-output-channel quantization of a kernel whose FIRST axis is the output channel.

    Returns:
        (integer weights in [-max_int, max_int] as int64, scale per channel) with ``kernel ~= scale * weights``.
    """
    flat = np.abs(kernel.reshape(kernel.shape[0], -1)).max(axis=1) if kernel.size else np.zeros(kernel.shape[0])
    scale = np.where(flat > 0, flat / max_int, 1.0)
    weights = np.clip(np.round(kernel / scale.reshape((-1,) + (1,) * (kernel.ndim - 1))), -max_int, max_int)
    return weights.astype(np.int64), scale


def sign_thresholds(
    f: Callable[[np.ndarray], np.ndarray], *, channels: int, lattice: int, bound: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel direction and integer threshold of a monotone sign of an accumulator.

    Args:
        f: maps int64 accumulators of shape (n, channels) to booleans "sign is +1"; monotone in each column.
        channels: number of channels.
        lattice: every reachable accumulator is a multiple of `lattice`.
        bound: every reachable accumulator lies in [-bound, bound].

    Returns:
        (direction, threshold): direction +1 (sign is +1 iff A >= threshold), -1 (iff A <= threshold), or 0
        (constant over the reachable range; threshold is then 1 for +1 and 0 for -1).
    """
    top = -(-int(bound) // lattice) + 1
    low = np.full(channels, -top, np.int64)
    high = np.full(channels, top, np.int64)
    f_low = np.asarray(f((low * lattice)[None, :]))[0]
    f_high = np.asarray(f((high * lattice)[None, :]))[0]
    rising = ~f_low & f_high
    falling = f_low & ~f_high
    # Invariant for rising channels: f(low) = 0, f(high) = 1; for falling ones: f(low) = 1, f(high) = 0.
    while np.any((high - low > 1) & (rising | falling)):
        middle = (low + high) // 2
        f_middle = np.asarray(f((middle * lattice)[None, :]))[0]
        move_high = np.where(rising, f_middle, ~f_middle)
        high = np.where(move_high, middle, high)
        low = np.where(move_high, low, middle)
    direction = np.where(rising, 1, np.where(falling, -1, 0)).astype(np.int64)
    threshold = np.where(rising, high * lattice, np.where(falling, low * lattice, f_low.astype(np.int64)))
    return direction, threshold.astype(np.int64)


def _left_shift(multiplier: float) -> int:
    """The left shift TFLite's QuantizeMultiplier gives a multiplier > 1 (reference kernels shift before the
    fixed-point multiply, in int32)."""
    return max(0, math.frexp(multiplier)[1])


def threshold_requantization(lattice: int, max_weight: int, bound: int) -> tuple[int, int, float]:
    """Choose (k, r, M) for a thresholding op ``acc' = k * d * (A - t) + r`` followed by requantization by M.

    ``A`` lies on multiples of `lattice` in [-bound, bound], the integer weights behind it are at most
    `max_weight` in magnitude. The emitted weights are ``k * weights`` (so ``k * max_weight <= 127``), and
    ``0 < r < k * lattice`` makes ``acc'`` never zero: positive exactly when the sign is +1. M makes every
    ``acc'`` saturate to +-127 (``M * min|acc'| >= 127``), stays below XNNPACK's limit of 256 and keeps
    ``|acc'| * 2**shift`` inside int32 for reference kernels that shift before multiplying.

    Raises:
        ValueError: no such choice exists (weights too wide for a threshold on a lattice of 1, or an
            accumulator too large for int32 after the shift).
    """
    for k in range(1, 127 // max(max_weight, 1) + 1):  # the smallest k: small weights, small accumulators
        if k * lattice < 2:
            continue
        r = (k * lattice) // 2
        smallest = min(r, k * lattice - r)
        multiplier = float(2 ** math.ceil(math.log2(127.0 / smallest))) if smallest < 127 else 1.0
        largest = k * (2 * bound) + r
        if multiplier < MAX_XNNPACK_MULTIPLIER and largest * 2 ** _left_shift(multiplier) < INT32_SAFE:
            return k, r, multiplier
    raise ValueError(f"no exact int8 threshold for accumulators on a lattice of {lattice} up to {bound} with "
                     f"weights up to {max_weight} (need weights <= 63 on a lattice of 1, and int32 headroom)")
