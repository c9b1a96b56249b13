"""Optimizers for binary networks on Keras 3 (every backend): the recipes over larq's `Bop` and `CaseOptimizer`
(in `keras_bnn.training.larq_optimizers`).

* `case_optimizer` (Bop on the binary kernels, Adam/AdamW on the rest, in one call), `real_optimizer`,
  `binary_connect` / `BinaryConnect` (the BinaryConnect recipe) and `AdamW`.

Changed from the tf-keras version (``keras_bnn.legacy.training``): any Keras 3 optimizer can be routed (larq
needed legacy ones), so `AdamW` is Keras 3's own ``keras.optimizers.AdamW`` (decoupled decay by learning rate ×
weight_decay before Adam's step, as before; ``real_optimizer("adamw")`` keeps the old default weight_decay 1e-4).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import keras

from keras_bnn import constraints as bnn_constraints
from keras_bnn import quantizers as bnn_quantizers
from keras_bnn.training.larq_optimizers import Bop, CaseOptimizer

__all__ = ["AdamW", "BinaryConnect", "Bop", "CaseOptimizer", "binary_connect", "case_optimizer", "real_optimizer"]

Optimizer = keras.optimizers.Optimizer

#: Adam with decoupled weight decay: Keras 3's own (the legacy module wrapped its own for larq's CaseOptimizer).
AdamW = keras.optimizers.AdamW


def real_optimizer(identifier: str | Optimizer, learning_rate: float = 1e-3) -> Optimizer:
    """A Keras 3 optimizer for the real-valued variables.

    Args:
        identifier: ``"adam"``, ``"adamw"`` (weight_decay 1e-4), ``"sgd"`` or ``"rmsprop"`` (built with
            `learning_rate`), or a Keras 3 optimizer instance (returned as is).
        learning_rate: Learning rate for an optimizer built from a name.

    Raises:
        ValueError: an unknown name.
        TypeError: another object (e.g. a tf-keras 2 optimizer).

    Example:
        >>> from keras_bnn.training import real_optimizer
        >>> type(real_optimizer("adamw")).__name__
        'AdamW'
    """
    builders: dict[str, Callable[[], Optimizer]] = {
        "adam": lambda: keras.optimizers.Adam(learning_rate),
        "adamw": lambda: keras.optimizers.AdamW(learning_rate, weight_decay=1e-4),
        "sgd": lambda: keras.optimizers.SGD(learning_rate),
        "rmsprop": lambda: keras.optimizers.RMSprop(learning_rate),
    }
    if isinstance(identifier, str):
        if identifier.lower() not in builders:
            raise ValueError(f"Unknown optimizer name {identifier!r}; known names: {', '.join(builders)}.")
        return builders[identifier.lower()]()
    if isinstance(identifier, Optimizer):
        return identifier
    raise TypeError(f"Expected an optimizer name or a Keras 3 optimizer (keras.optimizers.*), got {identifier!r}.")


def case_optimizer(model: keras.Model | None = None, binary: Optimizer | None = None, real: str | Optimizer = "adam",
                   predicate: Callable[[Any], bool] = Bop.is_binary_variable) -> CaseOptimizer:
    """One call for a `CaseOptimizer`: Bop trains the binary kernels, Adam (or AdamW ...) everything else.

    Args:
        model: Optional built model, checked now instead of at the first training step: it must have at least
            one trainable variable that `predicate` claims.
        binary: Optimizer for the binary variables; default ``Bop()`` (τ = 1e-8, γ = 1e-4).
        real: Optimizer for all other variables: a Keras 3 optimizer or a name accepted by `real_optimizer`.
        predicate: Which variables go to `binary`; default `Bop.is_binary_variable`.

    Returns:
        A `CaseOptimizer` to pass to ``model.compile``.

    Raises:
        ValueError: `model` is not built or has no variable that `predicate` claims.
        TypeError: `binary` or `real` is not a Keras 3 optimizer (see `real_optimizer`).

    Example:
        >>> import keras, keras_bnn
        >>> from keras_bnn.training import case_optimizer
        >>> model = keras.Sequential([keras.Input((4,)), keras_bnn.layers.QuantDense(
        ...     2, kernel_quantizer="ste_sign", kernel_constraint="weight_clip")])
        >>> model.compile(case_optimizer(model, real="adamw"), "mse")
        >>> _ = model.fit(keras.ops.ones((8, 4)), keras.ops.ones((8, 2)), verbose=0)
    """
    binary = Bop() if binary is None else binary
    if not isinstance(binary, Optimizer):
        raise TypeError(f"binary must be a Keras 3 optimizer such as keras_bnn.training.Bop(), got {binary!r}.")
    real = real_optimizer(real)
    if model is not None:
        if not model.built:
            raise ValueError(f"Model {model.name!r} is not built; build it (or call it once) before case_optimizer.")
        if not any(predicate(variable) for variable in model.trainable_variables):
            raise ValueError(
                f"No trainable variable of model {model.name!r} is binary (precision 1) for predicate "
                f"{getattr(predicate, '__qualname__', predicate)!r}, so {type(binary).__name__} would train "
                "nothing; give its quantized layers a binary kernel_quantizer such as 'ste_sign'.")
    return CaseOptimizer((predicate, binary), default_optimizer=real)


@dataclasses.dataclass(frozen=True)
class BinaryConnect:
    """The BinaryConnect recipe (Courbariaux et al., NeurIPS 2015): latent real weights, binary forward pass.

    * forward: the kernel is binarized, deterministically (``ste_sign``: +1 for w ≥ 0, else −1) or
      stochastically (keras_bnn's ``StochasticSign``: +1 with probability clip((w+1)/2, 0, 1));
    * backward: the straight-through gradient (passed where |w| ≤ clip_value) updates the latent weight;
    * after every update the latent weights are clipped to [−clip_value, clip_value] (``WeightClip``);
    * the update rule is Adam, as in the paper's experiments.

    Build it with `binary_connect`; pass ``**recipe.layer_kwargs()`` to each quantized layer with a binary
    kernel and ``recipe.optimizer()`` to ``compile``.

    Attributes:
        stochastic: Stochastic instead of deterministic binarization of the kernel.
        clip_value: Bound of the latent weights.
        learning_rate: Adam's learning rate.
    """

    stochastic: bool = False
    clip_value: float = 1.0
    learning_rate: float = 1e-3

    def kernel_quantizer(self) -> bnn_quantizers.Quantizer:
        """A new kernel quantizer: ``SteSign`` or ``StochasticSign``, both with STE window `clip_value`."""
        if self.stochastic:
            return bnn_quantizers.StochasticSign(clip_value=self.clip_value)
        return bnn_quantizers.SteSign(clip_value=self.clip_value)

    def layer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for a quantized layer: ``kernel_quantizer`` and ``kernel_constraint``."""
        return {"kernel_quantizer": self.kernel_quantizer(),
                "kernel_constraint": bnn_constraints.WeightClip(self.clip_value)}

    def optimizer(self) -> Optimizer:
        """A new Adam optimizer with the recipe's learning rate."""
        return keras.optimizers.Adam(self.learning_rate)


def binary_connect(stochastic: bool = False, clip_value: float = 1.0, learning_rate: float = 1e-3) -> BinaryConnect:
    """The BinaryConnect recipe (see `BinaryConnect`), with its arguments checked.

    Args:
        stochastic: Stochastic binarization of the kernels (default deterministic).
        clip_value: Latent weights are clipped to [−clip_value, clip_value]; must be > 0.
        learning_rate: Adam's learning rate; must be > 0.

    Raises:
        ValueError: `clip_value` or `learning_rate` is not positive.
        TypeError: `stochastic` is not a bool.

    Example:
        >>> import keras, keras_bnn
        >>> from keras_bnn.training import binary_connect
        >>> recipe = binary_connect()
        >>> model = keras.Sequential([keras.Input((4,)), keras_bnn.layers.QuantDense(2, **recipe.layer_kwargs())])
        >>> model.compile(recipe.optimizer(), "mse")
        >>> _ = model.fit(keras.ops.ones((8, 4)), keras.ops.ones((8, 2)), verbose=0)
        >>> float(keras.ops.convert_to_numpy(keras.ops.max(keras.ops.abs(model.layers[0].kernel)))) <= 1.0
        True
    """
    if not isinstance(stochastic, bool):
        raise TypeError(f"stochastic must be a bool, got {stochastic!r}.")
    for name, value in (("clip_value", clip_value), ("learning_rate", learning_rate)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"binary_connect {name} must be a number > 0, got {value!r}.")
    return BinaryConnect(stochastic=stochastic, clip_value=float(clip_value), learning_rate=float(learning_rate))
