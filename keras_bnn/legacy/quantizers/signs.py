"""keras_bnn's binarizing quantizers: stochastic (BinaryConnect), elastic (BiT) and learned-threshold (ReActNet) sign.

Each is a larq quantizer (a subclass of larq's quantizer base, so it has ``precision = 1`` and supports larq's
``flip_ratio`` metric) and a serializable Keras layer, registered as ``keras_bnn>ClassName``, as ``ClassName`` and
under its snake_case alias (see :mod:`keras_bnn.legacy.quantizers`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import larq as lq
import tensorflow as tf

# larq's private base adds the `flip_ratio` metric and is what `larq.quantizers.get_kernel_quantizer` configures;
# every built-in larq quantizer derives from it, so ours do too.
from keras_bnn import _compat

_BaseQuantizer = _compat.larq_base_quantizer()

__all__ = ["PACKAGE", "ElasticSign", "LearnableThresholdSign", "StochasticSign"]

PACKAGE = "keras_bnn"


def _register(alias: str) -> Callable[[type], type]:
    """Register a quantizer class under ``keras_bnn>ClassName``, ``ClassName`` and `alias`.

    ``keras_bnn>ClassName`` is the Keras-serializable name; the plain class name is what larq's quantizer
    lookup sees when a model is loaded through Keras' legacy deserialization (.h5), as for larq's own
    quantizers; `alias` is the snake_case name for ``larq.layers.Quant*(input_quantizer=...)``. An existing
    registration of either short name by another class (e.g. one of larq's) is never overwritten.
    """

    def decorator(cls: type) -> type:
        objects = tf.keras.utils.get_custom_objects()
        for name in (alias, cls.__name__):
            existing = objects.get(name)
            if existing is not None and (existing.__module__, existing.__qualname__) != (
                cls.__module__,
                cls.__qualname__,
            ):
                raise ValueError(
                    f"Quantizer name {name!r} is already registered to {existing!r}; "
                    f"keras_bnn will not shadow it with {cls.__qualname__}."
                )
        cls = tf.keras.utils.register_keras_serializable(package=PACKAGE)(cls)
        cls = lq.utils.register_keras_custom_object(cls)
        return lq.utils.register_alias(alias)(cls)

    return decorator


def _check_real(name: str, value: Any, *, positive: bool = False) -> float:
    """Return `value` as a finite float, or raise TypeError/ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}.")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}.")
    return float(value)


def _check_floating(layer: tf.keras.layers.Layer, inputs: tf.Tensor) -> None:
    if not tf.as_dtype(inputs.dtype).is_floating:
        raise TypeError(
            f"Quantizer {layer.name!r} ({type(layer).__name__}) needs floating-point inputs, "
            f"got dtype {tf.as_dtype(inputs.dtype).name}."
        )


@_register("stochastic_sign")
class StochasticSign(_BaseQuantizer):
    r"""Stochastic binarization of BinaryConnect / BinaryNet, with a straight-through gradient.

    While training, each element is sampled independently:

    \[ q(x) = \begin{cases} +1 & \text{with probability } p = \sigma(x) \\ -1 & \text{with probability } 1 - p
    \end{cases}, \qquad \sigma(x) = \mathrm{clip}\left(\frac{x + 1}{2}, 0, 1\right) \]

    (σ is the "hard sigmoid" of Courbariaux et al., *not* Keras' ``hard_sigmoid`` = clip(0.2x + 0.5)). At
    inference the output is the deterministic `larq.math.sign` (+1 for x ≥ 0), so a converted model sees the
    same op as for ``"ste_sign"``. In both modes the gradient is larq's clipped straight-through estimator:
    ∂q/∂x = 1 where |x| ≤ `clip_value`, else 0.

    The mode comes from Keras' call context: ``training=True`` inside ``fit`` (or an explicit
    ``quantizer(x, training=True)``), inference otherwise; a ``training`` left as None falls back to the
    global Keras learning phase when one is set, and to inference when not.

    Args:
        clip_value: Threshold for the straight-through gradient; None passes every gradient.
        seed: Optional op-level seed of the uniform sampler (combined with the global TF seed).
        **kwargs: Passed to `larq.quantizers.Quantizer` (e.g. ``name``, ``metrics=["flip_ratio"]``).

    Raises:
        ValueError: `clip_value` is not positive.
        TypeError: `clip_value` is not a number or None, `seed` is not an int or None; at call, a
            non-floating-point input.

    Example:
        >>> import keras_bnn
        >>> import tensorflow as tf
        >>> quantizer = keras_bnn.legacy.quantizers.StochasticSign(seed=1)
        >>> quantizer(tf.constant([-2.0, -0.5, 0.0, 0.5])).numpy()  # inference: deterministic sign
        array([-1., -1.,  1.,  1.], dtype=float32)
        >>> sampled = quantizer(tf.constant([-2.0, 0.0, 2.0]), training=True).numpy()
        >>> sampled[0], sampled[2]  # p(+1) is 0 at x = -2 and 1 at x = 2
        (-1.0, 1.0)

    References:
        - Courbariaux et al., "BinaryConnect", NeurIPS 2015 (stochastic binarization with the hard sigmoid),
          https://arxiv.org/abs/1511.00363
        - Hubara et al., "Binarized Neural Networks", NeurIPS 2016, https://arxiv.org/abs/1602.02830
    """

    precision = 1

    def __init__(self, clip_value: float | None = 1.0, seed: int | None = None, **kwargs: Any) -> None:
        if clip_value is not None:
            clip_value = _check_real("StochasticSign clip_value", clip_value, positive=True)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"StochasticSign seed must be an int or None, got {seed!r}.")
        self.clip_value = clip_value
        self.seed = seed
        super().__init__(**kwargs)

    def call(self, inputs: tf.Tensor, training: bool | tf.Tensor | None = None) -> tf.Tensor:
        _check_floating(self, inputs)
        deterministic = lq.quantizers.ste_sign(inputs, clip_value=self.clip_value)
        if training is None:
            # Keras' __call__ already resolved the call context and a set learning phase; None means inference.
            training = False
        if isinstance(training, (bool, int)):
            outputs = self._sample(inputs, deterministic) if training else deterministic
        else:
            outputs = tf.cond(
                tf.cast(training, tf.bool),
                lambda: self._sample(inputs, deterministic),
                lambda: tf.identity(deterministic),
            )
        return super().call(outputs)

    def _sample(self, inputs: tf.Tensor, deterministic: tf.Tensor) -> tf.Tensor:
        """±1 with P(+1) = clip((x+1)/2, 0, 1); the gradient is that of `deterministic` (larq's STE)."""
        probability = tf.clip_by_value((inputs + 1.0) / 2.0, 0.0, 1.0)
        uniform = tf.random.uniform(tf.shape(inputs), dtype=inputs.dtype, seed=self.seed)  # in [0, 1)
        sampled = tf.where(uniform < probability, tf.ones_like(inputs), -tf.ones_like(inputs))
        # Forward value `sampled` (exact: both terms are ±1), backward gradient of ste_sign.
        return deterministic + tf.stop_gradient(sampled - deterministic)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "clip_value": self.clip_value, "seed": self.seed}


def _min_value_constraint(minimum: float) -> Callable[[tf.Tensor], tf.Tensor]:
    def constraint(weight: tf.Tensor) -> tf.Tensor:
        return tf.maximum(weight, tf.cast(minimum, weight.dtype))

    return constraint


@_register("elastic_sign")
class ElasticSign(_BaseQuantizer):
    r"""BiT's elastic binary activation for signed inputs: a learned scale α > 0 and threshold β.

    \[ q(x) = \alpha \cdot \mathrm{sign}(u) = \alpha \cdot \mathrm{sign}(x - \beta),
    \qquad u = \frac{x - \beta}{\alpha} \]

    α and β are trainable scalars (weights ``alpha`` and ``beta``, created in `build`). `precision` is 1, but
    the output is the *scaled* binary value ±α, not ±1 (like larq's ``MagnitudeAwareSign``): a binary op
    consuming it sees one bit per element plus one shared real scale.

    Gradients (straight-through on the sign inside |u| ≤ 1, via `larq.quantizers.ste_sign` on u):

    * ∂q/∂x = 1 if |u| ≤ 1 else 0, and ∂q/∂β = −1 if |u| ≤ 1 else 0 (BiT's β gradient, whose official code
      masks the input gradient the same way);
    * ∂q/∂α depends on `alpha_gradient`:

      - ``"bit"`` (default): ∂q/∂α = sign(u) everywhere. This is what BiT uses for activations with both signs:
        in its section "Elastic binarization function", after the α and β gradient equations of the {0, 1}
        case, the signed case is stated (unnumbered) as: since α·Sign((X−β)/α) = α·Sign(X−β), the gradient
        w.r.t. α is simply Sign(X−β). The 1-bit branch of ``ElasticQuantBinarizerSigned`` in BiT's code
        computes the same, times LSQ's 1/sqrt(numel) gradient scale, which is *not* applied here.
      - ``"lsq"``: the full derivative of α·ste_sign(u) (LSQ-style, Esser et al. 2020): ∂q/∂α = sign(u) − u if
        |u| ≤ 1 else sign(u).

    α is kept positive during training by a constraint that clips it to at least `min_alpha` after every
    optimizer step (Keras applies variable constraints in ``apply_gradients``); BiT's code clips at 1e-5 in
    the forward pass instead.

    Args:
        alpha: Initial value of α; must be > 0 (BiT initialises it from the mean |x|, e.g. 1.0 for unit-scale x).
        beta: Initial value of β.
        alpha_gradient: ``"bit"`` or ``"lsq"``, see above.
        min_alpha: Lower bound that the constraint keeps α at; must satisfy 0 < min_alpha ≤ alpha.
        **kwargs: Passed to `larq.quantizers.Quantizer` (e.g. ``name``, ``metrics=["flip_ratio"]``).

    Raises:
        ValueError: `alpha` ≤ 0, `min_alpha` out of range, a non-finite value, or an unknown `alpha_gradient`.
        TypeError: a non-numeric `alpha`, `beta` or `min_alpha`; at call, a non-floating-point input.

    Example:
        >>> import keras_bnn
        >>> import tensorflow as tf
        >>> quantizer = keras_bnn.legacy.quantizers.ElasticSign(alpha=0.5, beta=0.25)
        >>> quantizer(tf.constant([-1.0, 0.0, 0.25, 2.0])).numpy()
        array([-0.5, -0.5,  0.5,  0.5], dtype=float32)
        >>> float(quantizer.alpha.numpy()), float(quantizer.beta.numpy())
        (0.5, 0.25)

    References:
        - Liu et al., "BiT: Robustly Binarized Multi-distilled Transformer", NeurIPS 2022,
          https://arxiv.org/abs/2205.13016, code https://github.com/facebookresearch/bit
        - Esser et al., "Learned Step Size Quantization", ICLR 2020, https://arxiv.org/abs/1902.08153
    """

    precision = 1
    ALPHA_GRADIENTS = ("bit", "lsq")

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 0.0,
        alpha_gradient: str = "bit",
        min_alpha: float = 1e-3,
        **kwargs: Any,
    ) -> None:
        alpha = _check_real("ElasticSign alpha", alpha, positive=True)
        beta = _check_real("ElasticSign beta", beta)
        min_alpha = _check_real("ElasticSign min_alpha", min_alpha, positive=True)
        if min_alpha > alpha:
            raise ValueError(f"ElasticSign min_alpha must be <= alpha ({alpha!r}), got {min_alpha!r}.")
        if alpha_gradient not in self.ALPHA_GRADIENTS:
            raise ValueError(
                f"ElasticSign alpha_gradient must be one of {self.ALPHA_GRADIENTS}, got {alpha_gradient!r}."
            )
        self.initial_alpha = alpha
        self.initial_beta = beta
        self.alpha_gradient = alpha_gradient
        self.min_alpha = min_alpha
        super().__init__(**kwargs)

    def build(self, input_shape: tf.TensorShape) -> None:
        self.alpha = self.add_weight(
            name="alpha",
            shape=(),
            initializer=tf.keras.initializers.Constant(self.initial_alpha),
            constraint=_min_value_constraint(self.min_alpha),
            trainable=True,
        )
        self.beta = self.add_weight(
            name="beta",
            shape=(),
            initializer=tf.keras.initializers.Constant(self.initial_beta),
            trainable=True,
        )
        super().build(input_shape)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        _check_floating(self, inputs)
        alpha = tf.cast(self.alpha, inputs.dtype)
        beta = tf.cast(self.beta, inputs.dtype)
        # "bit": α inside u only defines the STE window, so it gets no gradient through u.
        scale = alpha if self.alpha_gradient == "lsq" else tf.stop_gradient(alpha)
        binary = lq.quantizers.ste_sign((inputs - beta) / scale, clip_value=1.0)
        return alpha * super().call(binary)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "alpha": self.initial_alpha,
            "beta": self.initial_beta,
            "alpha_gradient": self.alpha_gradient,
            "min_alpha": self.min_alpha,
        }


@_register("learnable_threshold_sign")
class LearnableThresholdSign(_BaseQuantizer):
    r"""ReActNet's RSign: sign with a learned threshold β_c per channel (last axis).

    \[ q(x)_{\dots c} = \mathrm{sign}(x_{\dots c} - \beta_c) \]

    with `larq.math.sign` (+1 where x ≥ β_c; ReActNet's paper writes +1 for x > β_c, a measure-zero difference).
    The gradient w.r.t. x is Bi-Real Net's ApproxSign, 2 − 2|x − β_c| inside |x − β_c| ≤ 1 and 0 outside, as
    in ReActNet's official code (``LearnableBias`` followed by ``BinaryActivation``, whose piecewise quadratic
    has exactly that derivative); here it is `larq.quantizers.approx_sign` applied to x − β. Hence
    ∂L/∂β_c = −Σ ∂L/∂x over every element of channel c (all other axes).

    Args:
        beta_initializer: Keras initializer of β (ReActNet starts at zero).
        **kwargs: Passed to `larq.quantizers.Quantizer` (e.g. ``name``, ``metrics=["flip_ratio"]``).

    Raises:
        ValueError: at build, the input has rank 0 or an unknown last dimension.
        TypeError: at call, the input is not floating point.

    Example:
        >>> import keras_bnn
        >>> import tensorflow as tf
        >>> quantizer = keras_bnn.legacy.quantizers.LearnableThresholdSign()
        >>> quantizer(tf.constant([[-0.5, 0.5], [0.0, -2.0]])).numpy()
        array([[-1.,  1.],
               [ 1., -1.]], dtype=float32)
        >>> quantizer.beta.shape
        TensorShape([2])

    References:
        - Liu et al., "ReActNet: Towards Precise Binary Neural Network with Generalized Activation Functions",
          ECCV 2020, https://arxiv.org/abs/2003.03488, code https://github.com/liuzechun/ReActNet
        - Liu et al., "Bi-Real Net", ECCV 2018, https://arxiv.org/abs/1808.00278 (ApproxSign)
    """

    precision = 1

    def __init__(
        self, beta_initializer: str | dict | tf.keras.initializers.Initializer = "zeros", **kwargs: Any
    ) -> None:
        self.beta_initializer = tf.keras.initializers.get(beta_initializer)
        super().__init__(**kwargs)

    def build(self, input_shape: tf.TensorShape) -> None:
        input_shape = tf.TensorShape(input_shape)
        if input_shape.rank is None or input_shape.rank < 1 or input_shape[-1] is None:
            raise ValueError(
                f"LearnableThresholdSign {self.name!r} needs inputs of rank >= 1 with a known last (channel) "
                f"dimension, got shape {input_shape}."
            )
        self.beta = self.add_weight(
            name="beta", shape=(input_shape[-1],), initializer=self.beta_initializer, trainable=True
        )
        super().build(input_shape)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        _check_floating(self, inputs)
        return super().call(lq.quantizers.approx_sign(inputs - tf.cast(self.beta, inputs.dtype)))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta_initializer": tf.keras.initializers.serialize(self.beta_initializer),
        }
