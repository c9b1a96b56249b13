"""The quantizer base class and the straight-through building blocks every quantizer is made of.

Backend-neutral: only `keras` and `keras.ops`. A custom gradient is written once with `straight_through` and
behaves the same on TensorFlow, JAX and PyTorch (each calls the gradient function its own way).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import ops

__all__ = ["PACKAGE", "Quantizer", "clipped_gradient", "sign", "straight_through"]

PACKAGE = "keras_bnn"


def sign(x):
    """sign(x) with sign(0) = +1 (larq's `larq.math.sign`), in the input's dtype.

    Written as a `where` with float constants, the form LCE's converter turns into `LceQuantize`.

    Example:
        >>> from keras import ops
        >>> ops.convert_to_numpy(sign(ops.convert_to_tensor([-2.0, 0.0, 0.5]))).tolist()
        [-1.0, 1.0, 1.0]
    """
    x = ops.convert_to_tensor(x)
    one = ops.ones_like(x)
    return ops.where(ops.greater_equal(x, ops.zeros_like(x)), one, ops.negative(one))


def clipped_gradient(x, upstream, clip_value: float | None):
    """`upstream` where |x| <= clip_value, else 0 (all of `upstream` when `clip_value` is None)."""
    if clip_value is None:
        return upstream
    return ops.where(ops.less_equal(ops.abs(x), clip_value), upstream, ops.zeros_like(upstream))


def straight_through(forward: Callable[[Any], Any], gradient: Callable[[Any, Any], Any]) -> Callable[[Any], Any]:
    """A function whose value is `forward(x)` and whose gradient is `gradient(x, upstream)`, on every backend.

    Args:
        forward: The quantization (no useful gradient of its own).
        gradient: `(x, upstream) -> d loss / d x`, the pseudo-gradient.

    Returns:
        A one-argument function of a tensor.

    Example:
        >>> from keras import ops
        >>> f = straight_through(sign, lambda x, dy: clipped_gradient(x, dy, 1.0))
        >>> ops.convert_to_numpy(f(ops.convert_to_tensor([-0.5, 2.0]))).tolist()
        [-1.0, 1.0]
    """

    @ops.custom_gradient
    def apply(x):
        def grad(*args, upstream=None):
            # TensorFlow and JAX call grad(upstream); PyTorch calls grad(*inputs, upstream=upstream).
            if upstream is None:
                (upstream,) = args
            return gradient(x, upstream)

        return forward(x), grad

    def function(x):
        # A keras.Variable is read into a tensor first: TensorFlow's custom_gradient would otherwise see the
        # variable and ask for a `variables` argument.
        if isinstance(x, keras.Variable):
            x = ops.copy(x)
        return apply(ops.convert_to_tensor(x))

    return function


class Quantizer(keras.layers.Layer):
    """Base class of quantizers: a Keras layer with a `precision` (bits of its output; None: not quantizing).

    larq's quantizer base, on Keras 3. Subclasses implement `call` with `keras.ops` only. The `metrics` argument
    is accepted for larq compatibility (larq's `flip_ratio`); no metric is computed.

    Example:
        >>> from keras import ops
        >>> class Halve(Quantizer):
        ...     precision = 32
        ...     def call(self, inputs):
        ...         return inputs / 2
        >>> ops.convert_to_numpy(Halve()(ops.ones((2,)))).tolist()
        [0.5, 0.5]
    """

    precision: int | None = None

    def __init__(self, *args, metrics: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if metrics is not None and not (isinstance(metrics, (list, tuple)) and all(
                isinstance(m, str) for m in metrics)):
            raise TypeError(f"metrics must be a list of metric names or None, got {metrics!r}.")
        self._custom_metrics = list(metrics) if metrics else None
        self.supports_masking = True

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype=inputs.dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if self._custom_metrics:
            config["metrics"] = list(self._custom_metrics)
        return config
