"""keras-bnn's own binarizing quantizers on Keras 3: stochastic (BinaryConnect), elastic (BiT) and
learned-threshold (ReActNet) sign.

Each is a `Quantizer` with ``precision = 1``, registered as ``keras_bnn>ClassName`` and, for
`keras_bnn.quantizers.get`, under its class name and snake_case alias (``"stochastic_sign"``,
``"elastic_sign"``, ``"learnable_threshold_sign"``). The forward binarization is always `sign` (+1 at 0, the form
LCE's converter recognises); the pseudo-gradients are larq's `ste_sign` / `approx_sign` composed with ordinary
differentiable ops. Randomness comes from `keras.random` with a `keras.random.SeedGenerator`, trainable
parameters from `add_weight` in `build`, so all three train on TensorFlow, JAX and PyTorch.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from keras_bnn.quantizers.base import PACKAGE, Quantizer
from keras_bnn.quantizers.larq_quantizers import approx_sign, ste_sign
from keras_bnn.quantizers.registry import serializable

__all__ = ["ElasticSign", "LearnableThresholdSign", "MinValue", "StochasticSign"]


def _check_real(name: str, value: Any, *, positive: bool = False) -> float:
    """`value` as a finite float, or a TypeError/ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}.")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}.")
    return float(value)


def _check_floating(layer: keras.layers.Layer, inputs) -> None:
    dtype = keras.backend.standardize_dtype(inputs.dtype)
    if not keras.backend.is_float_dtype(dtype):
        raise TypeError(f"Quantizer {layer.name!r} ({type(layer).__name__}) needs floating-point inputs, "
                        f"got dtype {dtype}.")


@serializable("stochastic_sign")
class StochasticSign(Quantizer):
    r"""Stochastic binarization of BinaryConnect / BinaryNet, with a straight-through gradient.

    While training, each element is +1 with probability p = clip((x + 1) / 2, 0, 1) (Courbariaux et al.'s
    "hard sigmoid", *not* Keras' ``hard_sigmoid``) and -1 otherwise. At inference the output is the
    deterministic `sign` (+1 for x >= 0), the same op as ``"ste_sign"``. In both modes the gradient is larq's
    clipped straight-through estimator: dq/dx = 1 where |x| <= `clip_value`, else 0.

    The mode is Keras' ``training`` argument: True inside ``fit`` or in ``quantizer(x, training=True)``;
    inference otherwise (None is inference). A boolean tensor picks per call.

    Args:
        clip_value: Threshold of the straight-through gradient; None passes every gradient.
        seed: Optional int seed of the sampler's `keras.random.SeedGenerator`.
        **kwargs: Passed to `Quantizer` (e.g. ``name``).

    Raises:
        ValueError: `clip_value` is not positive or not finite.
        TypeError: `clip_value` is not a number or None, `seed` is not an int or None; at call, a
            non-floating-point input.

    Example:
        >>> from keras import ops
        >>> quantizer = StochasticSign(seed=1)
        >>> ops.convert_to_numpy(quantizer(ops.convert_to_tensor([-2.0, -0.5, 0.0, 0.5]))).tolist()
        [-1.0, -1.0, 1.0, 1.0]
        >>> ops.convert_to_numpy(quantizer(ops.convert_to_tensor([-2.0, 2.0]), training=True)).tolist()
        [-1.0, 1.0]

    References:
        - Courbariaux et al., "BinaryConnect", NeurIPS 2015, https://arxiv.org/abs/1511.00363
        - Hubara et al., "Binarized Neural Networks", NeurIPS 2016, https://arxiv.org/abs/1602.02830
    """

    precision = 1

    def __init__(self, clip_value: float | None = 1.0, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if clip_value is not None:
            clip_value = _check_real("StochasticSign clip_value", clip_value, positive=True)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"StochasticSign seed must be an int or None, got {seed!r}.")
        self.clip_value = clip_value
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        _check_floating(self, inputs)
        deterministic = ste_sign(inputs, clip_value=self.clip_value)
        if training is None or isinstance(training, (bool, int)):
            return self._sample(inputs, deterministic) if training else deterministic
        return ops.where(ops.cast(training, "bool"), self._sample(inputs, deterministic), deterministic)

    def _sample(self, inputs, deterministic):
        """±1 with P(+1) = clip((x + 1) / 2, 0, 1), with the gradient of `deterministic` (larq's STE)."""
        probability = ops.clip((inputs + 1.0) / 2.0, 0.0, 1.0)
        uniform = keras.random.uniform(ops.shape(inputs), dtype=inputs.dtype, seed=self.seed_generator)  # [0, 1)
        one = ops.ones_like(inputs)
        sampled = ops.where(ops.less(uniform, probability), one, ops.negative(one))
        # Forward value exactly `sampled` (both terms are ±1), backward the custom gradient of ste_sign.
        return deterministic + ops.stop_gradient(sampled - deterministic)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "clip_value": self.clip_value, "seed": self.seed}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MinValue(keras.constraints.Constraint):
    """Keep a variable at least `minimum` after each optimizer step (`ElasticSign`'s α > 0).

    Example:
        >>> from keras import ops
        >>> ops.convert_to_numpy(MinValue(0.5)(ops.convert_to_tensor([0.1, 2.0]))).tolist()
        [0.5, 2.0]
    """

    def __init__(self, minimum: float):
        self.minimum = _check_real("MinValue minimum", minimum)

    def __call__(self, w):
        return ops.maximum(w, ops.cast(self.minimum, w.dtype))

    def get_config(self) -> dict[str, Any]:
        return {"minimum": self.minimum}


@serializable("elastic_sign")
class ElasticSign(Quantizer):
    r"""BiT's elastic binary activation for signed inputs: a learned scale α > 0 and threshold β.

    q(x) = α · sign(u) = α · sign(x - β), with u = (x - β) / α. α and β are trainable scalars (weights
    ``alpha`` and ``beta``, made in `build`). `precision` is 1 but the output is ±α (one bit per element plus
    one shared real scale), like larq's ``MagnitudeAwareSign``.

    Gradients (straight-through on the sign inside |u| <= 1, larq's `ste_sign` on u):

    * dq/dx = 1 if |u| <= 1 else 0, and dq/dβ = -1 if |u| <= 1 else 0;
    * dq/dα depends on `alpha_gradient`: ``"bit"`` (default) gives sign(u) everywhere, BiT's gradient for
      signed activations (α·Sign((X−β)/α) = α·Sign(X−β), without BiT's LSQ 1/sqrt(numel) scale);
      ``"lsq"`` gives the full derivative of α·ste_sign(u) (LSQ, Esser et al. 2020): sign(u) - u if |u| <= 1
      else sign(u).

    α is kept at least `min_alpha` by a `MinValue` constraint, applied by the optimizer after every step.

    Args:
        alpha: Initial α; > 0 (BiT starts from the mean |x|, e.g. 1.0 for unit-scale x).
        beta: Initial β.
        alpha_gradient: ``"bit"`` or ``"lsq"``, see above.
        min_alpha: The lower bound kept on α; 0 < min_alpha <= alpha.
        **kwargs: Passed to `Quantizer` (e.g. ``name``).

    Raises:
        ValueError: `alpha` <= 0, `min_alpha` out of range, a non-finite value, or an unknown `alpha_gradient`.
        TypeError: a non-numeric `alpha`, `beta` or `min_alpha`; at call, a non-floating-point input.

    Example:
        >>> from keras import ops
        >>> quantizer = ElasticSign(alpha=0.5, beta=0.25)
        >>> ops.convert_to_numpy(quantizer(ops.convert_to_tensor([-1.0, 0.0, 0.25, 2.0]))).tolist()
        [-0.5, -0.5, 0.5, 0.5]
        >>> float(ops.convert_to_numpy(quantizer.alpha)), float(ops.convert_to_numpy(quantizer.beta))
        (0.5, 0.25)

    References:
        - Liu et al., "BiT: Robustly Binarized Multi-distilled Transformer", NeurIPS 2022,
          https://arxiv.org/abs/2205.13016
        - Esser et al., "Learned Step Size Quantization", ICLR 2020, https://arxiv.org/abs/1902.08153
    """

    precision = 1
    ALPHA_GRADIENTS = ("bit", "lsq")

    def __init__(self, alpha: float = 1.0, beta: float = 0.0, alpha_gradient: str = "bit",
                 min_alpha: float = 1e-3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        alpha = _check_real("ElasticSign alpha", alpha, positive=True)
        beta = _check_real("ElasticSign beta", beta)
        min_alpha = _check_real("ElasticSign min_alpha", min_alpha, positive=True)
        if min_alpha > alpha:
            raise ValueError(f"ElasticSign min_alpha must be <= alpha ({alpha!r}), got {min_alpha!r}.")
        if alpha_gradient not in self.ALPHA_GRADIENTS:
            raise ValueError(f"ElasticSign alpha_gradient must be one of {self.ALPHA_GRADIENTS}, "
                             f"got {alpha_gradient!r}.")
        self.initial_alpha = alpha
        self.initial_beta = beta
        self.alpha_gradient = alpha_gradient
        self.min_alpha = min_alpha

    def build(self, input_shape):
        self.alpha = self.add_weight(name="alpha", shape=(), initializer=keras.initializers.Constant(
            self.initial_alpha), constraint=MinValue(self.min_alpha), trainable=True)
        self.beta = self.add_weight(name="beta", shape=(), initializer=keras.initializers.Constant(
            self.initial_beta), trainable=True)

    def call(self, inputs):
        _check_floating(self, inputs)
        alpha = ops.cast(self.alpha, inputs.dtype)
        beta = ops.cast(self.beta, inputs.dtype)
        # "bit": α inside u only places the STE window, so it gets no gradient through u.
        scale = alpha if self.alpha_gradient == "lsq" else ops.stop_gradient(alpha)
        return alpha * ste_sign((inputs - beta) / scale, clip_value=1.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.initial_alpha, "beta": self.initial_beta,
                "alpha_gradient": self.alpha_gradient, "min_alpha": self.min_alpha}


@serializable("learnable_threshold_sign")
class LearnableThresholdSign(Quantizer):
    r"""ReActNet's RSign: sign with a learned threshold β_c per channel (last axis), q(x)_c = sign(x_c - β_c).

    `sign` gives +1 where x >= β_c (ReActNet's paper writes x > β_c, a measure-zero difference). The gradient
    w.r.t. x is Bi-Real Net's ApproxSign, 2 - 2|x - β_c| inside |x - β_c| <= 1 and 0 outside, as in ReActNet's
    official code (``LearnableBias`` then ``BinaryActivation``); here larq's `approx_sign` of x - β. Hence
    dL/dβ_c = -Σ dL/dx over every element of channel c.

    Args:
        beta_initializer: Keras initializer of β (ReActNet starts at zero).
        **kwargs: Passed to `Quantizer` (e.g. ``name``).

    Raises:
        ValueError: an unknown initializer; at build, an input of rank 0 or with an unknown last dimension.
        TypeError: at call, an input that is not floating point.

    Example:
        >>> from keras import ops
        >>> quantizer = LearnableThresholdSign()
        >>> ops.convert_to_numpy(quantizer(ops.convert_to_tensor([[-0.5, 0.5], [0.0, -2.0]]))).tolist()
        [[-1.0, 1.0], [1.0, -1.0]]
        >>> tuple(quantizer.beta.shape)
        (2,)

    References:
        - Liu et al., "ReActNet", ECCV 2020, https://arxiv.org/abs/2003.03488
        - Liu et al., "Bi-Real Net", ECCV 2018, https://arxiv.org/abs/1808.00278 (ApproxSign)
    """

    precision = 1

    def __init__(self, beta_initializer: str | dict | keras.initializers.Initializer = "zeros",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.beta_initializer = keras.initializers.get(beta_initializer)

    def build(self, input_shape):
        if input_shape is None or len(input_shape) < 1 or input_shape[-1] is None:
            raise ValueError(f"LearnableThresholdSign {self.name!r} needs inputs of rank >= 1 with a known last "
                             f"(channel) dimension, got shape {input_shape}.")
        self.beta = self.add_weight(name="beta", shape=(input_shape[-1],), initializer=self.beta_initializer,
                                    trainable=True)

    def call(self, inputs):
        _check_floating(self, inputs)
        return approx_sign(inputs - ops.cast(self.beta, inputs.dtype))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(),
                "beta_initializer": keras.initializers.serialize(self.beta_initializer)}

