"""Optimizers for binary networks: Bop on binary kernels + Adam/AdamW on the rest, and the BinaryConnect recipe.

Larq already has the pieces (`larq.optimizers.Bop`, `larq.optimizers.CaseOptimizer`,
`larq.constraints.WeightClip`); this module puts them together in one call and adds `AdamW`, a decoupled
weight-decay Adam built on Keras' *legacy* Adam, because larq's `CaseOptimizer` only accepts legacy optimizers
(`tf.keras.optimizers.legacy.*`) and Keras has no legacy AdamW.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable
from typing import Any

import larq
import tensorflow as tf

from keras_bnn.legacy import quantizers as _quantizers

__all__ = ["AdamW", "BinaryConnect", "binary_connect", "case_optimizer", "real_optimizer"]

LegacyOptimizer = tf.keras.optimizers.legacy.Optimizer


@tf.keras.utils.register_keras_serializable(package="keras_bnn")
class AdamW(tf.keras.optimizers.legacy.Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, ICLR 2019), as a legacy Keras optimizer.

    Each step, before Keras' Adam update, the weight decays by the (scheduled) learning rate η_t times
    `weight_decay` λ:

    \[ w \leftarrow w - \eta_t \lambda w - \eta_t \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon} \]

    (Adam's step does not depend on w, so decaying first or last gives the same result). For sparse gradients
    only the rows that receive a gradient decay, as in TensorFlow Addons' ``AdamW``.

    It exists because `larq.optimizers.CaseOptimizer` takes legacy optimizers only and
    ``tf.keras.optimizers.AdamW`` is not one.

    Args:
        learning_rate: Learning rate or schedule.
        weight_decay: Decoupled weight decay λ ≥ 0 (multiplied by the learning rate).
        **kwargs: Any `tf.keras.optimizers.legacy.Adam` argument (``beta_1``, ``epsilon``, ``amsgrad`` ...).

    Raises:
        ValueError: `weight_decay` is negative.

    Example:
        >>> import keras_bnn
        >>> import tensorflow as tf
        >>> from keras_bnn.legacy.training import AdamW
        >>> w = tf.Variable([1.0])
        >>> _ = AdamW(learning_rate=0.1, weight_decay=0.5).apply_gradients([(tf.constant([0.0]), w)])
        >>> round(float(w.numpy()[0]), 6)  # 1 - 0.1 * 0.5 * 1 (Adam's step is 0 for a zero gradient)
        0.95
    """

    def __init__(self, learning_rate: Any = 1e-3, weight_decay: float = 1e-4, name: str = "AdamW", **kwargs: Any):
        if isinstance(weight_decay, bool) or not isinstance(weight_decay, numbers.Real) or not weight_decay >= 0:
            raise ValueError(f"AdamW weight_decay must be a number >= 0, got {weight_decay!r}.")
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self._set_hyper("weight_decay", float(weight_decay))

    def _decay_coefficient(self, var: tf.Variable, apply_state: dict | None) -> tf.Tensor:
        var_device, var_dtype = var.device, var.dtype.base_dtype
        coefficients = (apply_state or {}).get((var_device, var_dtype)) or self._fallback_apply_state(
            var_device, var_dtype
        )
        return coefficients["lr_t"] * self._get_hyper("weight_decay", var_dtype)

    def _resource_apply_dense(self, grad, var, apply_state=None):
        decay = var.assign_sub(self._decay_coefficient(var, apply_state) * var, read_value=False)
        with tf.control_dependencies([decay]):
            return super()._resource_apply_dense(grad, var, apply_state=apply_state)

    def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
        rows = tf.gather(var, indices) * self._decay_coefficient(var, apply_state)
        decay = var.scatter_sub(tf.IndexedSlices(rows, indices))
        with tf.control_dependencies([decay]):
            return super()._resource_apply_sparse(grad, var, indices, apply_state=apply_state)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "weight_decay": self._serialize_hyperparameter("weight_decay")}


def real_optimizer(identifier: str | LegacyOptimizer, learning_rate: float = 1e-3) -> LegacyOptimizer:
    """A legacy Keras optimizer, the only kind `larq.optimizers.CaseOptimizer` accepts.

    Args:
        identifier: ``"adam"``, ``"adamw"``, ``"sgd"`` or ``"rmsprop"`` (built with `learning_rate`), or a
            ``tf.keras.optimizers.legacy`` optimizer instance (returned as is).
        learning_rate: Learning rate for an optimizer built from a name.

    Returns:
        A `tf.keras.optimizers.legacy.Optimizer`.

    Raises:
        ValueError: unknown name.
        TypeError: a new-style (non-legacy) Keras optimizer or another object.

    Example:
        >>> import keras_bnn
        >>> from keras_bnn.legacy.training import real_optimizer
        >>> type(real_optimizer("adamw")).__name__
        'AdamW'
    """
    builders: dict[str, Callable[[], LegacyOptimizer]] = {
        "adam": lambda: tf.keras.optimizers.legacy.Adam(learning_rate),
        "adamw": lambda: AdamW(learning_rate),
        "sgd": lambda: tf.keras.optimizers.legacy.SGD(learning_rate),
        "rmsprop": lambda: tf.keras.optimizers.legacy.RMSprop(learning_rate),
    }
    if isinstance(identifier, str):
        if identifier.lower() not in builders:
            raise ValueError(f"Unknown optimizer name {identifier!r}; known names: {', '.join(builders)}.")
        return builders[identifier.lower()]()
    if isinstance(identifier, LegacyOptimizer):
        return identifier
    if isinstance(identifier, tf.keras.optimizers.Optimizer):
        raise TypeError(
            f"{type(identifier).__name__} is a new-style Keras optimizer, but larq's CaseOptimizer needs a legacy "
            "one: use tf.keras.optimizers.legacy.<Name>(...) or keras_bnn.legacy.training.AdamW(...)."
        )
    raise TypeError(f"Expected an optimizer name or a legacy Keras optimizer, got {identifier!r}.")


def case_optimizer(
    model: tf.keras.Model | None = None,
    binary: LegacyOptimizer | None = None,
    real: str | LegacyOptimizer = "adam",
    predicate: Callable[[tf.Variable], bool] = larq.optimizers.Bop.is_binary_variable,
) -> larq.optimizers.CaseOptimizer:
    r"""One call for larq's `CaseOptimizer`: Bop trains the binary kernels, Adam (or AdamW ...) everything else.

    Bop (Helwegen et al., NeurIPS 2019) keeps a gradient moving average m per binary weight and flips the
    weight when the average is strong enough and agrees in sign:

    \[ m \leftarrow (1-\gamma) m + \gamma g, \qquad
       w \leftarrow \begin{cases} -w & |m| > \tau \text{ and } \mathrm{sign}(m) = \mathrm{sign}(w) \\
       w & \text{otherwise} \end{cases} \]

    Larq marks a variable binary when its quantizer has ``precision == 1`` (``ste_sign``,
    ``magnitude_aware_sign``, keras_bnn's binary quantizers); `predicate` decides which variables Bop takes.

    Args:
        model: Optional built model, checked now instead of at the first training step: it must have at least
            one trainable variable that `predicate` claims (else CaseOptimizer fails later).
        binary: Optimizer for the binary variables; default ``larq.optimizers.Bop()`` (τ = 1e-8, γ = 1e-4).
        real: Optimizer for all other variables: a legacy optimizer or a name accepted by `real_optimizer`.
        predicate: Which variables go to `binary`; default `larq.optimizers.Bop.is_binary_variable`.

    Returns:
        A `larq.optimizers.CaseOptimizer` to pass to ``model.compile``.

    Raises:
        ValueError: `model` is not built or has no variable that `predicate` claims.
        TypeError: `binary` or `real` is not a legacy optimizer (see `real_optimizer`).

    Example:
        >>> import keras_bnn, larq
        >>> import tensorflow as tf
        >>> from keras_bnn.legacy.training import case_optimizer
        >>> model = tf.keras.Sequential([tf.keras.Input((4,)), larq.layers.QuantDense(
        ...     2, kernel_quantizer="ste_sign", kernel_constraint="weight_clip")])
        >>> model.compile(case_optimizer(model, real="adamw"), "mse")
        >>> _ = model.fit(tf.ones((8, 4)), tf.ones((8, 2)), verbose=0)
    """
    binary = larq.optimizers.Bop() if binary is None else binary
    if not isinstance(binary, LegacyOptimizer):
        raise TypeError(f"binary must be a legacy Keras optimizer such as larq.optimizers.Bop(), got {binary!r}.")
    real = real_optimizer(real)
    if model is not None:
        if not model.built:
            raise ValueError(f"Model {model.name!r} is not built; build it (or call it once) before case_optimizer.")
        if not any(predicate(variable) for variable in model.trainable_variables):
            raise ValueError(
                f"No trainable variable of model {model.name!r} is binary (precision 1) for predicate "
                f"{getattr(predicate, '__qualname__', predicate)!r}, so {type(binary).__name__} would train "
                "nothing; give its quantized layers a binary kernel_quantizer such as 'ste_sign'."
            )
    return larq.optimizers.CaseOptimizer((predicate, binary), default_optimizer=real)


@dataclasses.dataclass(frozen=True)
class BinaryConnect:
    """The BinaryConnect recipe (Courbariaux et al., NeurIPS 2015): latent real weights, binary forward pass.

    * forward: the kernel is binarized, deterministically (``ste_sign``: +1 for w ≥ 0, else −1) or
      stochastically (keras_bnn's ``StochasticSign``: +1 with probability clip((w+1)/2, 0, 1));
    * backward: the gradient with respect to the binary weight updates the latent real weight (larq's
      straight-through estimator, which passes it where |w| ≤ 1);
    * after every update the latent weights are clipped to [−clip_value, clip_value] (``WeightClip``), so they
      stay where the binarization can still change;
    * the update rule is Adam, as in the paper's experiments.

    Build it with `binary_connect`; pass ``**recipe.layer_kwargs()`` to each larq/keras_bnn layer with a binary
    kernel and ``recipe.optimizer()`` to ``compile``.

    Attributes:
        stochastic: Stochastic instead of deterministic binarization of the kernel.
        clip_value: Bound of the latent weights.
        learning_rate: Adam's learning rate.
    """

    stochastic: bool = False
    clip_value: float = 1.0
    learning_rate: float = 1e-3

    def kernel_quantizer(self) -> larq.quantizers.Quantizer:
        """A new kernel quantizer: ``SteSign`` or ``StochasticSign``, both with STE window `clip_value`."""
        if self.stochastic:
            return _quantizers.StochasticSign(clip_value=self.clip_value)
        return larq.quantizers.SteSign(clip_value=self.clip_value)

    def layer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for a quantized layer: ``kernel_quantizer`` and ``kernel_constraint``."""
        return {
            "kernel_quantizer": self.kernel_quantizer(),
            "kernel_constraint": larq.constraints.WeightClip(self.clip_value),
        }

    def optimizer(self) -> tf.keras.optimizers.legacy.Adam:
        """A new Adam optimizer with the recipe's learning rate."""
        return tf.keras.optimizers.legacy.Adam(self.learning_rate)


def binary_connect(stochastic: bool = False, clip_value: float = 1.0, learning_rate: float = 1e-3) -> BinaryConnect:
    """The BinaryConnect recipe (see `BinaryConnect`), with its arguments checked.

    Args:
        stochastic: Stochastic binarization of the kernels (default deterministic).
        clip_value: Latent weights are clipped to [−clip_value, clip_value]; must be > 0.
        learning_rate: Adam's learning rate; must be > 0.

    Returns:
        A `BinaryConnect` recipe.

    Raises:
        ValueError: `clip_value` or `learning_rate` is not positive.
        TypeError: `stochastic` is not a bool.

    Example:
        >>> import keras_bnn, larq
        >>> import tensorflow as tf
        >>> from keras_bnn.legacy.training import binary_connect
        >>> recipe = binary_connect()
        >>> model = tf.keras.Sequential([tf.keras.Input((4,)), larq.layers.QuantDense(2, **recipe.layer_kwargs())])
        >>> model.compile(recipe.optimizer(), "mse")
        >>> _ = model.fit(tf.ones((8, 4)), tf.ones((8, 2)), verbose=0)
        >>> bool(tf.reduce_max(tf.abs(model.layers[0].kernel.latent_variable)) <= 1.0)
        True
    """
    if not isinstance(stochastic, bool):
        raise TypeError(f"stochastic must be a bool, got {stochastic!r}.")
    for name, value in (("clip_value", clip_value), ("learning_rate", learning_rate)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"binary_connect {name} must be a number > 0, got {value!r}.")
    return BinaryConnect(stochastic=stochastic, clip_value=float(clip_value), learning_rate=float(learning_rate))
