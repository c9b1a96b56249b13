"""What a Keras tensor is in the int8 graph while the lowering walks the model.

* :class:`Real`: an int8 tensor holding the Keras value (rounded to the tensor's quantization, exactly for the
  model's integer input pixels), possibly through an exact scalar affine map (a folded ``Rescaling``) and with
  some elements stored negated (``neg``).
* :class:`Signs`: an int8 tensor of +-127 (scale 1/127: real +-1) holding the **sign** of the Keras value, as
  one input quantizer (:class:`~keras_bnn.tflite.targets.int8.quantizers.SignSpec`) computes it; exact.
* :class:`Pending`: a linear op (conv, depthwise conv or dense) not yet emitted, followed by at most one
  max-pool and a chain of per-channel affine maps (scale, bias, BatchNorm). It becomes a :class:`Signs` tensor
  (one thresholding op: exact) or a :class:`Real` tensor (one requantizing op) when a consumer needs one; see
  :mod:`keras_bnn.tflite.targets.int8.materialize`.

Example:
    >>> import numpy as np
    >>> from keras_bnn.tflite.targets.int8.values import ChannelAffine
    >>> double = ChannelAffine("x2", np.array([2.0]), np.array([0.0]), lambda x: x * np.float32(2))
    >>> double.probe(np.float32([[1.5]])).tolist()
    [[3.0]]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from keras_bnn.tflite.targets.int8.ir import Tensor

__all__ = ["ChannelAffine", "Deferred", "Float", "Pending", "Pool", "Real", "Signs", "Value", "full_mask"]


def full_mask(neg: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """`neg` broadcast to the per-sample `shape` (None stays None, an all-False mask becomes None)."""
    if neg is None:
        return None
    mask = np.broadcast_to(np.asarray(neg, bool), shape).copy()
    return mask if mask.any() else None


@dataclass
class Real:
    """An int8 tensor whose real value ``r`` gives the Keras value ``affine[0] * r + affine[1]``.

    Attributes:
        tensor: the int8 tensor.
        neg: per-sample boolean mask of elements stored negated (None: none).
        affine: exact scalar map from the tensor's real value to the Keras value.
        is_sign: the Keras value itself is +-1 (the output of a quantizer layer): the tensor holds +-127.
        exact: the tensor holds the Keras value exactly (the model's integer input; signs).
        int_batches: for an exact tensor computed from the model input alone, the tensor's int8 values on the
            representative data, batch by batch (used to calibrate thresholds of rounded real weights).
    """

    tensor: Tensor
    neg: np.ndarray | None = None
    affine: tuple[float, float] = (1.0, 0.0)
    is_sign: bool = False
    exact: bool = False
    int_batches: Callable | None = field(default=None, repr=False)
    _signs: dict = field(default_factory=dict, repr=False)


@dataclass
class Signs:
    """int8 +-127 (scale 1/127, zero point 0): the sign, per `spec`, of a Keras tensor; ``neg`` marks elements
    stored as minus the sign."""

    tensor: Tensor
    spec: object
    neg: np.ndarray | None = None


@dataclass(frozen=True)
class ChannelAffine:
    """A per-channel map ``y = scale * x + offset`` (float64) between an accumulator and the next sign or tensor.

    `probe` computes it on float32 arrays whose last axis is the channel, with Keras' own float32 arithmetic
    (for exact thresholds); `scale`/`offset` are the same map in float64 (for requantization).
    """

    name: str
    scale: np.ndarray
    offset: np.ndarray
    probe: Callable[[np.ndarray], np.ndarray]
    layer: object = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Pool:
    """A max-pool between the linear op and the affine chain (Keras order: op, pool, chain)."""

    size: tuple[int, int]
    strides: tuple[int, int]
    padding: str  # "VALID" or "SAME"


@dataclass
class Pending:
    """A linear op not yet emitted, and what follows it up to the Keras tensor it stands for.

    Attributes:
        name: base name of the ops emitted for it.
        kind: "conv" (kernel (O, kh, kw, I)), "depthwise" (kernel (C, kh, kw)) or "fc" (kernel (O, I)).
        source: the op's input.
        kernel: effective float64 kernel, output channel first.
        binary: the kernel is +-alpha per output channel.
        bias: float64 bias per output channel.
        strides, padding, dilation: convolution geometry ("VALID"/"SAME").
        pad_value: the Keras value SAME padding inserts (larq's pad_values; 0 for Keras layers).
        source_scale: Keras value of a +1 of a Signs source (ElasticSign's alpha; else 1).
        digits: when real weights on a real input feed a sign, the input is repeated this many times and each
            copy carries one int8 part of the weight: effective weights up to 63 * digits instead of 63.
        pool: a max-pool applied to the op's output before `post`.
        post: per-channel affine maps after the op (and pool), in order.
        calibration: the Keras tensor at the end of the chain on representative data (``.range()`` and
            ``.batches()``, see :class:`~keras_bnn.tflite.targets.int8.calibration.Tap`).
        keras_rank: rank of that Keras tensor (batch included).
    """

    name: str
    kind: str
    source: Real | Signs
    kernel: np.ndarray
    binary: bool
    bias: np.ndarray
    calibration: object
    keras_rank: int
    strides: tuple[int, int] = (1, 1)
    padding: str = "VALID"
    dilation: tuple[int, int] = (1, 1)
    pad_value: float = 0.0
    source_scale: float = 1.0
    digits: int = 1
    pool: Pool | None = None
    post: tuple[ChannelAffine, ...] = ()
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def channels(self) -> int:
        return int(self.kernel.shape[0])

    def then(self, step: ChannelAffine | Pool, calibration) -> Pending:
        """This op followed by one more affine map or by a max-pool (a new Pending; this one is unchanged)."""
        if isinstance(step, Pool):
            if self.pool is not None or self.post:
                raise ValueError("only one max-pool, directly after the op, can join a pending op")
            return replace(self, pool=step, calibration=calibration, _cache={})
        return replace(self, post=self.post + (step,), calibration=calibration, _cache={})

    def post_affine(self) -> tuple[np.ndarray, np.ndarray]:
        """The chain as one float64 map ``y = P * v + Q`` per channel."""
        scale, offset = np.ones(self.channels), np.zeros(self.channels)
        for step in self.post:
            scale, offset = step.scale * scale, step.scale * offset + step.offset
        return scale, offset

    def probe(self, v: np.ndarray) -> np.ndarray:
        """The chain on float32 values of shape (n, channels), with Keras' float32 arithmetic."""
        y = np.asarray(v, np.float32)
        for step in self.post:
            y = np.asarray(step.probe(y), np.float32).reshape(y.shape)
        return y


@dataclass
class Deferred:
    """A value computed from another one only once a consumer says whether it needs signs or the real value
    (for example a max-pool after BatchNorm: pool the exact signs, or pool the requantized values)."""

    make_signs: Callable[[object], Signs]
    make_real: Callable[[], Real]
    _cache: dict = field(default_factory=dict, repr=False)


@dataclass
class Float:
    """A float32 tensor (only in the optional float head, after the last int8 op)."""

    tensor: Tensor


Value = Real | Signs | Pending | Deferred | Float
