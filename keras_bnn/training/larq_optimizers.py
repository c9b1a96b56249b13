"""larq's optimizers on Keras 3 (every backend): `Bop` and `CaseOptimizer`, same arguments, update and routing.

Keras 3's optimizer API: `Bop` implements ``update_step`` (its moving averages are optimizer variables), and
`CaseOptimizer` builds each wrapped optimizer on its own variables (``build``) and hands each its gradients
(``apply``), so both work in ``fit`` on TensorFlow (tf.distribute included), JAX (stateless) and PyTorch.

Example:
    >>> import keras
    >>> from keras_bnn.training import Bop, CaseOptimizer
    >>> type(CaseOptimizer((Bop.is_binary_variable, Bop()), default_optimizer=keras.optimizers.Adam())).__name__
    'CaseOptimizer'
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import keras
from keras import ops

from keras_bnn.layers.quantized_base import variable_precision
from keras_bnn.quantizers.base import PACKAGE, sign

__all__ = ["Bop", "CaseOptimizer"]

Optimizer = keras.optimizers.Optimizer
Schedule = keras.optimizers.schedules.LearningRateSchedule


def _check_hyper(owner: str, name: str, value: Any, *, positive: bool) -> float | Schedule:
    if isinstance(value, Schedule):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or (
            value <= 0 if positive else value < 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{owner} {name} must be a finite number {bound} or a LearningRateSchedule, got {value!r}.")
    return float(value)


def _serialize_hyper(value: Any) -> Any:
    if isinstance(value, Schedule):
        return keras.optimizers.schedules.serialize(value)
    if isinstance(value, keras.Variable):
        return float(ops.convert_to_numpy(value))
    return float(value)


@keras.saving.register_keras_serializable(package=PACKAGE)
class Bop(Optimizer):
    r"""larq's binary optimizer (Bop): flips a binary weight when its gradient average is strong and agrees in sign.

    Per binary weight w (±1) with gradient g, a moving average m is kept and

    \[ m \leftarrow m + \gamma (g - m), \qquad w \leftarrow \mathrm{sign}(-\mathrm{sign}(w m - \tau)\, w) \]

    (larq's exact expression: w flips where w·m > τ; ``sign(0) = +1``). Bop trains only binary variables: route
    them to it with `CaseOptimizer` and `Bop.is_binary_variable`, as `case_optimizer` does.

    `gamma` plays the part of a learning rate (it is Keras' ``learning_rate`` here, so learning-rate callbacks
    and schedules act on it); `threshold` may be a schedule too, evaluated at ``iterations``.

    Args:
        threshold: τ ≥ 0, the magnitude of average gradient signal required to flip a weight.
        gamma: γ > 0, the adaptivity rate.
        name: Name of the optimizer.
        **kwargs: Keras optimizer arguments (``clipnorm``, ``clipvalue``, ...); not ``weight_decay`` (the weights
            are ±1: decay would un-binarize them).

    Raises:
        ValueError: a negative threshold, a non-positive gamma, or ``weight_decay``.

    Example:
        >>> import keras
        >>> from keras_bnn.training import Bop
        >>> w = keras.Variable([1.0, -1.0, 1.0])
        >>> Bop(threshold=0.1, gamma=0.5).apply([keras.ops.convert_to_tensor([1.0, 1.0, -1.0])], [w])
        >>> keras.ops.convert_to_numpy(w).tolist()  # m = 0.5 g: only w₀ (w·m = 0.5 > 0.1) flips
        [-1.0, -1.0, 1.0]
    """

    def __init__(self, threshold: float | Schedule = 1e-8, gamma: float | Schedule = 1e-4, name: str = "Bop",
                 **kwargs: Any):
        if kwargs.get("weight_decay") is not None:
            raise ValueError("Bop takes no weight_decay: its weights are ±1 and decay would un-binarize them.")
        kwargs.pop("learning_rate", None)  # a config of the base class; gamma is the learning rate
        gamma = _check_hyper("Bop", "gamma", gamma, positive=True)
        super().__init__(learning_rate=gamma, name=name, **kwargs)
        self._threshold = _check_hyper("Bop", "threshold", threshold, positive=False)

    @property
    def gamma(self) -> Any:
        """The current γ (Keras' ``learning_rate``)."""
        return self.learning_rate

    @property
    def threshold(self) -> Any:
        """The current τ."""
        if isinstance(self._threshold, Schedule):
            return self._threshold(self.iterations)
        return self._threshold

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._momentums = self.add_optimizer_variables(variables, "m")

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        gamma = ops.cast(learning_rate, dtype)
        threshold = ops.cast(self.threshold, dtype)
        gradient = ops.cast(gradient, dtype)
        m = self._momentums[self._get_variable_index(variable)]
        m_t = ops.add(m, ops.multiply(gamma, ops.subtract(gradient, m)))
        self.assign(m, m_t)
        weights = ops.convert_to_tensor(variable)
        flipped = sign(ops.multiply(ops.negative(ops.sign(ops.subtract(ops.multiply(weights, m_t), threshold))),
                                    weights))
        self.assign(variable, flipped)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["gamma"] = config.pop("learning_rate")
        config["threshold"] = _serialize_hyper(self._threshold)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None) -> Bop:
        config = dict(config)
        for hyper in ("gamma", "threshold"):
            if isinstance(config.get(hyper), dict):
                config[hyper] = keras.saving.deserialize_keras_object(config[hyper], custom_objects=custom_objects)
        return cls(**config)

    @staticmethod
    def is_binary_variable(var: Any) -> bool:
        """Whether a quantized layer binarizes `var` (its quantizer's precision is 1; larq's predicate).

        Example:
            >>> import keras, keras_bnn
            >>> layer = keras_bnn.layers.QuantDense(2, kernel_quantizer="ste_sign")
            >>> layer.build((None, 3))
            >>> Bop.is_binary_variable(layer.kernel), Bop.is_binary_variable(layer.bias)
            (True, False)
        """
        return variable_precision(var) == 1


@keras.saving.register_keras_serializable(package=PACKAGE)
class CaseOptimizer(Optimizer):
    """larq's `CaseOptimizer` on Keras 3: each variable is trained by the optimizer whose predicate claims it.

    For each variable at most one predicate may be true (two is a ValueError, as in larq); a variable that no
    predicate claims goes to `default_optimizer` (without one it is not trained, with a warning). The routing is
    decided when the optimizer is built (``fit`` builds it; so does a first `apply` with variables) and kept in
    the config as ``var_opt_mapping`` (per trainable variable, in build order, the index of its optimizer, or
    None), since predicates do not serialize. Each wrapped optimizer keeps its own
    arguments, state and iteration count; ``learning_rate`` reads and sets the default optimizer's.

    Args:
        *predicate_optimizer_pairs: ``(predicate, optimizer)`` pairs; ``predicate(variable) -> bool``.
        default_optimizer: Keras optimizer for the unclaimed variables (keyword only), or None.
        name: Name of the optimizer.

    Raises:
        TypeError: a predicate that is not callable, or an optimizer that is not a Keras 3 optimizer.
        ValueError: at build, a variable claimed twice, or an optimizer that claims no variable.

    Example:
        >>> import keras, keras_bnn
        >>> from keras_bnn.training import Bop, CaseOptimizer
        >>> model = keras.Sequential([keras.Input((4,)), keras_bnn.layers.QuantDense(2, kernel_quantizer="ste_sign")])
        >>> optimizer = CaseOptimizer((Bop.is_binary_variable, Bop()), default_optimizer=keras.optimizers.Adam())
        >>> model.compile(optimizer, "mse")
        >>> _ = model.fit(keras.ops.ones((8, 4)), keras.ops.ones((8, 2)), verbose=0)
        >>> optimizer.var_opt_mapping  # kernel -> Bop (0), bias -> Adam (1)
        [0, 1]
    """

    def __init__(self, *predicate_optimizer_pairs: tuple[Callable[[Any], bool], Optimizer],
                 default_optimizer: Optimizer | None = None, name: str = "optimizer_case"):
        super().__init__(learning_rate=0.0, name=name)
        pairs = []
        for i, pair in enumerate(predicate_optimizer_pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"Expected a (predicate, optimizer) pair at `predicate_optimizer_pairs[{i}]` but "
                                f"got {pair!r}.")
            predicate, optimizer = pair
            if not callable(predicate):
                raise TypeError(f"Expected callable predicate at `predicate_optimizer_pairs[{i}][0]` but got "
                                f"`{type(predicate)}`.")
            if not isinstance(optimizer, Optimizer):
                raise TypeError(f"Expected a Keras 3 `keras.optimizers.Optimizer` at "
                                f"`predicate_optimizer_pairs[{i}][1]` but got `{type(optimizer)}`.")
            pairs.append((predicate, optimizer))
        if default_optimizer is not None and not isinstance(default_optimizer, Optimizer):
            raise TypeError(f"Expected a Keras 3 `keras.optimizers.Optimizer` for `default_optimizer` but got "
                            f"`{type(default_optimizer)}`.")
        self.pred_opt_pairs = tuple(pairs)
        self.default = default_optimizer
        self.optimizers = tuple(opt for _, opt in pairs) + ((default_optimizer,) if default_optimizer else ())
        self.DEFAULT_OPT_INDEX = len(pairs) if default_optimizer is not None else None
        #: per trainable variable (build order), the index into `optimizers` or None (set at build or by
        #: `from_config`).
        self.var_opt_mapping: list[int | None] | None = None
        self._assignment: dict[Any, int] = {}

    @property
    def variables(self) -> list:
        return self._variables[:] + [v for optimizer in self.optimizers for v in optimizer.variables]

    @property
    def learning_rate(self) -> Any:
        return self._get_current_learning_rate() if self.default is None else self.default.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate: Any) -> None:
        if self.default is None:
            raise ValueError("CaseOptimizer without a default_optimizer has no learning_rate to set.")
        self.default.learning_rate = learning_rate

    def _route(self, variable: Any) -> int | None:
        claims = [index for index, (predicate, _) in enumerate(self.pred_opt_pairs) if predicate(variable)]
        if len(claims) > 1:
            raise ValueError(f"Variable `{variable.path}` claimed by multiple optimizers.")
        if claims:
            return claims[0]
        if self.default is None:
            warnings.warn(f"No `default_optimizer` provided to train variable `{variable.path}`.", stacklevel=3)
        return self.DEFAULT_OPT_INDEX

    def build(self, variables):
        if self.built:
            return
        variables = list(variables)
        if self.var_opt_mapping is not None:  # from a config: the routing of the variables it was built with
            routes = list(self.var_opt_mapping)
            if len(routes) != len(variables) or any(
                    r is not None and not 0 <= r < len(self.optimizers) for r in routes):
                raise ValueError(f"CaseOptimizer {self.name!r} was saved with a routing of {len(routes)} variables "
                                 f"to {len(self.optimizers)} optimizers, and cannot route these {len(variables)}.")
        else:
            routes = [self._route(variable) for variable in variables]
            for index, (_, optimizer) in enumerate(self.pred_opt_pairs):
                if index not in routes:
                    raise ValueError(f"Optimizer `{optimizer.name}` did not claim any variables.")
            self.var_opt_mapping = routes
        self._assignment = {self._var_key(v): r for v, r in zip(variables, routes) if r is not None}
        for index, optimizer in enumerate(self.optimizers):
            if not optimizer.built:
                optimizer.build([v for v, r in zip(variables, routes) if r == index])
        super().build(variables)

    def apply(self, grads, trainable_variables=None):
        if len(grads) == 0:
            return
        if trainable_variables is None:
            if not self.built:
                raise ValueError("When passing `grads` without `variables`, the optimizer must already be built; "
                                 "call `optimizer.build(trainable_variables)` first.")
            trainable_variables = self._trainable_variables
        else:
            trainable_variables = list(trainable_variables)
            if not self.built:
                self.build(trainable_variables)
            self._check_variables_are_known(trainable_variables)
        groups: list[tuple[list, list]] = [([], []) for _ in self.optimizers]
        for grad, variable in zip(grads, trainable_variables):
            index = self._assignment.get(self._var_key(variable))
            if index is not None:
                groups[index][0].append(grad)
                groups[index][1].append(variable)
        for optimizer, (optimizer_grads, optimizer_variables) in zip(self.optimizers, groups):
            if optimizer_variables:
                optimizer.apply(optimizer_grads, optimizer_variables)
        self._iterations.assign_add(1)

    def finalize_variable_values(self, var_list):
        for index, optimizer in enumerate(self.optimizers):
            own = [v for v in var_list if self._assignment.get(self._var_key(v)) == index]
            if own:
                optimizer.finalize_variable_values(own)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "optimizer_configs": [keras.optimizers.serialize(opt) for _, opt in self.pred_opt_pairs],
            "default_config": None if self.default is None else keras.optimizers.serialize(self.default),
            "var_opt_mapping": self.var_opt_mapping,  # serialized instead of the predicates
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None) -> CaseOptimizer:
        pairs = [(_claims_nothing, keras.optimizers.deserialize(c, custom_objects=custom_objects))
                 for c in config["optimizer_configs"]]
        default = config.get("default_config")
        default = None if default is None else keras.optimizers.deserialize(default, custom_objects=custom_objects)
        optimizer = cls(*pairs, default_optimizer=default, name=config.get("name", "optimizer_case"))
        mapping = config.get("var_opt_mapping")
        optimizer.var_opt_mapping = None if mapping is None else list(mapping)
        return optimizer


def _claims_nothing(variable: Any) -> bool:
    """Placeholder predicate of a deserialized CaseOptimizer (its routing comes from `var_opt_mapping`)."""
    return False
