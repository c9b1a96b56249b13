"""The quantizer mixin over Keras layers (larq's `QuantizerBase`, on Keras 3).

A quantized layer is `QuantizerBase` mixed into a Keras layer class. It quantizes its input with
`input_quantizer`, and each weight named in `quantized_weights` (``{"kernel": "kernel_quantizer"}``) with the
quantizer of that argument, at call time; the latent (real) variables are what the optimizer updates. The weight
names are a contract: Bop, the converter and the larq reader key on them. Only `keras.ops` in `call`.
Each quantized latent variable is marked with its quantizer's precision (`variable_precision`) and reads as its
quantized value inside `keras_bnn.layers.quantized_scope(True)` (see `keras_bnn.layers.scope`).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from keras_bnn import constraints as bnn_constraints
from keras_bnn import quantizers as bnn_quantizers
from keras_bnn.layers.scope import install_quantized_read

__all__ = ["QuantizerBase", "drop_tf_keras_entries", "variable_precision"]

_PRECISION_ATTRIBUTE = "_keras_bnn_precision"
_LOG = logging.getLogger(__name__)


def variable_precision(variable: Any) -> int | None:
    """The precision of the quantizer that a quantized layer applies to `variable` (None: not quantized).

    Bop and the case optimizer use it to find binary latent weights (precision 1, `NoOp(1)` included, as in larq).
    """
    return getattr(variable, _PRECISION_ATTRIBUTE, None)


class QuantizerBase:
    """Mixin of larq's quantizer arguments over a Keras layer class: ``input_quantizer``, one quantizer argument per
    quantized weight (`quantized_weights`), larq's ``"weight_clip"`` constraint names, and ``metrics`` (accepted
    for larq compatibility).

    Subclasses set `quantized_weights` and use `quantize_input` and `quantized` in `call`.
    """

    #: weight attribute name -> the argument naming its quantizer.
    quantized_weights: ClassVar[dict[str, str]] = {"kernel": "kernel_quantizer"}

    def __init__(self, *args, input_quantizer=None, metrics: list[str] | None = None, **kwargs):
        quantizer_arguments = {argument: kwargs.pop(argument, None)
                               for argument in self.quantized_weights.values()}
        for name in [key for key in kwargs if key.endswith("_constraint")]:
            kwargs[name] = bnn_constraints.get(kwargs[name])
        super().__init__(*args, **kwargs)
        self.input_quantizer = _resolve("input_quantizer", input_quantizer)
        for argument, identifier in quantizer_arguments.items():
            setattr(self, argument, _resolve(argument, identifier))
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            raise TypeError(f"metrics must be a list of metric names or None, got {metrics!r}.")
        self._quantizer_metrics = list(metrics) if metrics else None
        for weight, argument in self.quantized_weights.items():
            constraint = argument.replace("_quantizer", "_constraint")
            if bnn_quantizers.is_binary(getattr(self, argument)) and not getattr(self, constraint, None):
                _LOG.warning(f"Using a binary `{argument}` without setting `{constraint}` may result in starved "
                             "weights (where the gradient is always zero).")

    def build(self, input_shape):
        super().build(input_shape)
        for weight, argument in self.quantized_weights.items():
            quantizer = getattr(self, argument)
            variable = getattr(self, weight, None)
            if variable is not None and quantizer is not None:
                setattr(variable, _PRECISION_ATTRIBUTE, getattr(quantizer, "precision", None))
                install_quantized_read(variable, self, weight)

    def quantize_input(self, inputs):
        """`inputs` through `input_quantizer` (as they are when it is None)."""
        return inputs if self.input_quantizer is None else self.input_quantizer(inputs)

    def quantized(self, weight: str, value=None):
        """Weight `weight` (or `value` in its place) through its quantizer (as it is when that is None)."""
        quantizer = getattr(self, self.quantized_weights[weight])
        value = getattr(self, weight) if value is None else value
        if quantizer is None:
            return value
        return quantizer(value)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["input_quantizer"] = bnn_quantizers.serialize(self.input_quantizer)
        for argument in self.quantized_weights.values():
            config[argument] = bnn_quantizers.serialize(getattr(self, argument))
        if self._quantizer_metrics:
            config["metrics"] = list(self._quantizer_metrics)
        return config


def drop_tf_keras_entries(kwargs: dict[str, Any], names: tuple[str, ...]) -> None:
    """Remove from `kwargs` the entries that tf-keras (so larq) writes into the config of a layer class whose
    Keras 3 counterpart has no such argument (a depthwise convolution's ``kernel_*``, ``groups``): a larq config
    loads, and the entries, which do nothing there either, are dropped. ``groups`` must be 1."""
    for name in names:
        value = kwargs.pop(name, None)
        if name == "groups" and value not in (None, 1):
            raise ValueError(f"groups must be 1 for this layer, got groups={value!r}.")


def _resolve(argument: str, identifier: Any):
    try:
        return bnn_quantizers.get(identifier)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{argument}: {error}") from None
