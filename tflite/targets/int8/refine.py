"""Calibrated thresholds for real weights rounded to int8 in front of a sign (the first layer of XNOR / Bi-Real).

A threshold on a binary layer is exact. A real-weight layer feeding a sign (a real stem conv + BatchNorm, then
the next binary layer's sign) cannot be: its weights are rounded to int8, so near the threshold the int8
accumulator can fall on the other side. Trained BNNs put such thresholds where it hurts: on MNIST-like data the
background (x = -1 everywhere) lands within 0.05% of some channels' thresholds, and the rounded weights flip
the sign of the whole background of those channels.

When the op's input is exact and computable from the model input (the quantized pixels), this module runs the
int8 op in numpy on the representative data and moves each channel's integer threshold, within the range the
weight rounding can explain, to where the int8 signs disagree least with Keras' own signs.

Example:
    >>> import numpy as np
    >>> from keras_bnn.tflite.targets.int8.refine import best_threshold
    >>> a = np.array([0, 1, 2, 3, 4, 5])
    >>> keras_positive = np.array([False, False, True, True, True, True])
    >>> best_threshold(a, keras_positive, rising=True, start=4, reach=3)  # A >= 2 matches Keras everywhere
    2
"""

from __future__ import annotations

import numpy as np

__all__ = ["best_threshold", "refine_thresholds", "simulate"]


def simulate(prep, p, q: np.ndarray) -> np.ndarray:
    """The op's int64 accumulators for int8 input values `q` (a batch of the source tensor)."""
    x = q.astype(np.int64)
    if prep.pads:
        x = np.concatenate([np.pad(x, prep.pads, constant_values=value) for value in prep.pad_values], axis=-1)
    x = x - prep.zero_point
    if p.kind == "fc":
        return x.reshape(len(x), -1) @ prep.weights.T
    weights = prep.weights if p.kind == "conv" else prep.weights[..., None]  # depthwise: (C, kh, kw, 1)
    kh, kw = weights.shape[1:3]
    (sh, sw), (dh, dw) = p.strides, p.dilation
    if prep.padding == "SAME":
        from keras_bnn.tflite.targets.int8.materialize import same_padding

        x = np.pad(x, [(0, 0), same_padding(x.shape[1], kh, sh, dh), same_padding(x.shape[2], kw, sw, dw), (0, 0)])
    out_h = (x.shape[1] - (kh - 1) * dh - 1) // sh + 1
    out_w = (x.shape[2] - (kw - 1) * dw - 1) // sw + 1
    result = np.zeros((len(x), out_h, out_w, weights.shape[0]), np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i * dh:i * dh + (out_h - 1) * sh + 1:sh, j * dw:j * dw + (out_w - 1) * sw + 1:sw, :]
            if p.kind == "conv":
                result += patch @ weights[:, i, j, :].T
            else:
                result += patch * weights[:, i, j, 0]
    return result


def best_threshold(accumulators: np.ndarray, keras_positive: np.ndarray, *, rising: bool, start: int,
                   reach: float) -> int:
    """The threshold within ``start +- reach`` with the fewest disagreements (ties: the one nearest `start`).

    Rising: +1 iff A >= t; falling: +1 iff A <= t.
    """
    a = np.asarray(accumulators, np.int64).ravel()
    positive = np.asarray(keras_positive, bool).ravel()
    if not rising:
        a, start = -a, -start
    near = a[np.abs(a - start) <= reach + 1]
    candidates = np.unique(np.concatenate([near, near + 1, [start]]))  # t = a value, or one past it
    candidates = candidates[np.abs(candidates - start) <= reach]
    order = np.argsort(a)
    a_sorted, pos_sorted = a[order], positive[order]
    pos_below = np.concatenate([[0], np.cumsum(pos_sorted)])
    neg_below = np.concatenate([[0], np.cumsum(~pos_sorted)])
    below = np.searchsorted(a_sorted, candidates, side="left")  # elements with A < t
    mistakes = pos_below[below] + (neg_below[-1] - neg_below[below])
    best = candidates[np.lexsort((np.abs(candidates - start), mistakes))[0]]
    return int(best if rising else -best)


def refine_thresholds(prep, p, spec, direction: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """Thresholds moved (per channel, within the weight-rounding error) to agree best with Keras on the data."""
    source = prep.source
    if p.binary or p.pool is not None or getattr(source, "int_batches", None) is None or not hasattr(
            p.calibration, "batches"):
        return threshold
    accumulators, positives = [], []
    for q, keras in zip(source.int_batches(), p.calibration.batches()):
        accumulators.append(simulate(prep, p, q).reshape(-1, p.channels))
        positives.append(spec.positive(keras).reshape(-1, p.channels))
    accumulators, positives = np.concatenate(accumulators), np.concatenate(positives)
    refined = threshold.copy()
    for c in np.flatnonzero(direction):
        refined[c] = best_threshold(accumulators[:, c], positives[:, c], rising=bool(direction[c] > 0),
                                    start=int(threshold[c]), reach=float(prep.error[c]) + 1)
    return refined
