"""BinaryRelax (Yin et al., 2018) on Keras 3: train with relaxed weights pushed towards their binary projection.

Phase I evaluates the loss at the relaxed weights u = (w + λ·proj(w)) / (1 + λ), the minimiser of
f(u) + (λ/2)·dist(u, Q)² around w (the Moreau envelope of the binary set Q), and applies the gradient taken at u
to the real weights w. λ grows geometrically, λ_{t+1} = ρ·λ_t with ρ > 1, once per epoch, so u slides from w
towards proj(w). Phase II uses u = proj(w) exactly (λ = ∞), and the model is then an ordinary binary model.

proj is the projection onto the scaled binary set {−α, +α}: proj(w) = α·sign(w) with α = mean|w| over the
whole kernel, as in the paper's reference code (``quantize_bw``).

* `BinaryRelaxSign`: a kernel quantizer (precision 1, alias ``"binary_relax_sign"``) holding λ in a
  non-trainable variable.
* `BinaryRelaxScheduler`: a callback that sets λ = λ₀·ρ^epoch at the start of every epoch and λ = ∞ from
  `quantize_epoch` on.
* `enter_phase_two`: sets λ = ∞ in every BinaryRelax quantizer of a model (what the callback does).

Reference: Yin, Zhang, Lyu, Osher, Qi, Xin, "BinaryRelax: A Relaxation Approach For Training Deep Neural
Networks With Quantized Weights", SIAM J. Imaging Sciences 11(4), 2018, https://arxiv.org/abs/1801.06313.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from keras_bnn import quantizers as bnn_quantizers
from keras_bnn.quantizers.base import PACKAGE, Quantizer, sign, straight_through
from keras_bnn.training._walk import layers_of_type

__all__ = ["BinaryRelaxScheduler", "BinaryRelaxSign", "binary_relax_quantizers", "enter_phase_two"]


def _check_relaxation(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        raise ValueError(f"BinaryRelax relaxation λ must be a number >= 0 (inf for phase II), got {value!r}.")
    return float(value)


@keras.saving.register_keras_serializable(package=PACKAGE)
class BinaryRelaxSign(Quantizer):
    r"""BinaryRelax's relaxed binary kernel quantizer: u = (w + λ·α·sign(w)) / (1 + λ), α = mean|w|.

    Computed as u = p + (w − p)/(1 + λ) with p = α·sign(w) (+1 for w ≥ 0), so that with λ = ∞ (phase II) the
    output is exactly p: every kernel value is ±α, a binary convolution with a scale. The gradient with respect
    to w is the identity (the gradient at u updates w, as in the paper's algorithm).

    λ lives in the non-trainable weight ``relaxation`` (saved with the model); `BinaryRelaxScheduler` grows it.

    Args:
        relaxation: Initial λ ≥ 0 (the paper starts at 1); ``float("inf")`` gives phase II from the start.
        **kwargs: Passed to `keras.layers.Layer` (e.g. ``name``).

    Raises:
        ValueError: `relaxation` is negative, NaN or not a number.
        TypeError: at call, weights that are not floating-point.

    Example:
        >>> import keras
        >>> from keras_bnn.training import BinaryRelaxSign
        >>> quantizer = BinaryRelaxSign(relaxation=1.0)
        >>> w = keras.ops.convert_to_tensor([-0.5, 0.1, 0.3])
        >>> [round(v, 4) for v in keras.ops.convert_to_numpy(quantizer(w)).tolist()]  # α = 0.3: (w + 0.3 sign w) / 2
        [-0.4, 0.2, 0.3]
        >>> _ = quantizer.relaxation.assign(float("inf"))
        >>> [round(v, 4) for v in keras.ops.convert_to_numpy(quantizer(w)).tolist()]
        [-0.3, 0.3, 0.3]
    """

    precision = 1

    def __init__(self, relaxation: float = 1.0, **kwargs: Any) -> None:
        self.initial_relaxation = _check_relaxation(relaxation)
        super().__init__(**kwargs)
        # Made here, not in build: λ's shape does not depend on the kernel, and the variable then exists as soon
        # as the layer that owns this quantizer does (before any traced training step, and for callbacks).
        self.relaxation = self.add_weight(
            name="relaxation", shape=(), initializer=keras.initializers.Constant(self.initial_relaxation),
            trainable=False, aggregation="only_first_replica")
        self.built = True

    def call(self, inputs):
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        if "float" not in dtype:
            raise TypeError(f"BinaryRelaxSign {self.name!r} needs floating-point weights, got {dtype}.")
        mix = 1.0 / (1.0 + ops.cast(self.relaxation, dtype))  # exactly 0 for λ = inf

        def relaxed(weights):
            projection = ops.mean(ops.abs(weights)) * sign(weights)
            return projection + mix * (weights - projection)

        return straight_through(relaxed, lambda weights, upstream: upstream)(inputs)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "relaxation": self.initial_relaxation}


for _alias in ("binary_relax_sign", "BinaryRelaxSign"):
    bnn_quantizers.register_alias(_alias, BinaryRelaxSign)


def binary_relax_quantizers(model: keras.layers.Layer) -> list[BinaryRelaxSign]:
    """Every `BinaryRelaxSign` in `model`, nested layers included, in tracking order.

    Example:
        >>> import keras, keras_bnn
        >>> from keras_bnn.training import binary_relax_quantizers
        >>> model = keras.Sequential([keras.Input((3,)), keras_bnn.layers.QuantDense(2,
        ...     kernel_quantizer="binary_relax_sign")])
        >>> len(binary_relax_quantizers(model))
        1
    """
    return layers_of_type(model, BinaryRelaxSign)


def _built_quantizers(model: keras.layers.Layer) -> list[BinaryRelaxSign]:
    quantizers = [q for q in binary_relax_quantizers(model) if q.built]
    if not quantizers:
        raise ValueError(
            f"Model {model.name!r} has no built BinaryRelaxSign kernel quantizer; use "
            "kernel_quantizer='binary_relax_sign' on its binary layers and build the model.")
    return quantizers


def enter_phase_two(model: keras.layers.Layer) -> int:
    """Switch every BinaryRelax quantizer of `model` to phase II (λ = ∞: exact binary projection).

    Returns:
        The number of quantizers switched.

    Raises:
        ValueError: `model` has no built `BinaryRelaxSign`.
    """
    quantizers = _built_quantizers(model)
    for quantizer in quantizers:
        quantizer.relaxation.assign(math.inf)
    return len(quantizers)


class BinaryRelaxScheduler(keras.callbacks.Callback):
    """Grows BinaryRelax's λ geometrically every epoch, then switches to phase II (exact binary weights).

    At the start of epoch e (counted from 0, as Keras does, so resuming with ``initial_epoch`` continues the
    schedule), every `BinaryRelaxSign` of the model gets λ = λ₀·ρ^e, λ₀ being its ``relaxation`` argument; from
    epoch `quantize_epoch` on, λ = ∞. The epoch's λ is added to the logs as ``binary_relax_lambda`` (the first
    quantizer's), so it shows in ``History``.

    Args:
        growth: ρ > 1, the factor λ grows by per epoch (the reference code uses 1.05).
        quantize_epoch: First epoch of phase II; None never switches (call `enter_phase_two` yourself).

    Raises:
        ValueError: `growth` ≤ 1 or not finite, or `quantize_epoch` is negative; at train begin, the model has
            no BinaryRelax quantizer.
        TypeError: `quantize_epoch` is not an int or None.

    Example:
        >>> import keras, keras_bnn
        >>> from keras_bnn.training import BinaryRelaxScheduler
        >>> model = keras.Sequential([keras.Input((3,)), keras_bnn.layers.QuantDense(2,
        ...     kernel_quantizer="binary_relax_sign")])
        >>> model.compile("adam", "mse")
        >>> history = model.fit(keras.ops.ones((4, 3)), keras.ops.ones((4, 2)), epochs=3, verbose=0,
        ...     callbacks=[BinaryRelaxScheduler(growth=2.0, quantize_epoch=2)])
        >>> history.history["binary_relax_lambda"]
        [1.0, 2.0, inf]
    """

    def __init__(self, growth: float = 1.05, quantize_epoch: int | None = None) -> None:
        super().__init__()
        if isinstance(growth, bool) or not isinstance(growth, (int, float)) or not math.isfinite(growth):
            raise ValueError(f"BinaryRelaxScheduler growth must be a finite number > 1, got {growth!r}.")
        if growth <= 1:
            raise ValueError(f"BinaryRelaxScheduler growth must be > 1 so that λ grows, got {growth!r}.")
        if quantize_epoch is not None:
            if isinstance(quantize_epoch, bool) or not isinstance(quantize_epoch, int):
                raise TypeError(f"quantize_epoch must be an int or None, got {quantize_epoch!r}.")
            if quantize_epoch < 0:
                raise ValueError(f"quantize_epoch must be >= 0, got {quantize_epoch!r}.")
        self.growth = float(growth)
        self.quantize_epoch = quantize_epoch

    def relaxation_at(self, epoch: int, initial: float) -> float:
        """λ for `epoch` of a quantizer whose initial λ is `initial`."""
        if self.quantize_epoch is not None and epoch >= self.quantize_epoch:
            return math.inf
        try:
            return initial * self.growth**epoch
        except OverflowError:
            return math.inf

    def on_train_begin(self, logs: dict | None = None) -> None:
        _built_quantizers(self.model)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        for quantizer in _built_quantizers(self.model):
            quantizer.relaxation.assign(self.relaxation_at(epoch, quantizer.initial_relaxation))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["binary_relax_lambda"] = float(ops.convert_to_numpy(_built_quantizers(self.model)[0].relaxation))
