"""A model's weights as compact files see them, for Keras 3 and for tf-keras (larq) models alike.

`slots(model)` lists every weight in the files' order, tf-keras's ``model.weights`` order: layer by layer, each
layer's trainable weights (its own, then its sublayers') and then its non-trainable ones. A Keras 3 model lists
its weights per layer in creation order instead (a Bi-Real block's BatchNorm statistics come before the shortcut's
kernel), so its slots are put in tf-keras's order here; the same definition then reads and writes the same file in
both. Each slot knows whether it is a binary kernel and with which quantizer: larq marks one with a
``QuantizedVariable``; a Keras 3 layer (``keras_bnn.layers``) names its quantized weights in `quantized_weights`,
marks their latent variables with the quantizer's precision (``keras_bnn.layers.variable_precision``) and holds
the quantizer itself (``layer.kernel_quantizer``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from keras_bnn import _compat

__all__ = ["Slot", "is_built_model", "is_legacy", "slots"]


@dataclasses.dataclass(frozen=True)
class Slot:
    """One weight of a model.

    Attributes:
        name: Its tf-keras name (``"conv1/kernel:0"``), as stored in a file's ``__names__``.
        shape: Its shape.
        quantizer: The binarizing quantizer of a binary kernel (precision 1), else None.
        read: The latent (stored) value, as numpy.
        assign: Set the latent value.
        quantize: `quantizer` applied to a numpy value as in the model's forward pass (binary kernels only).
    """

    name: str
    shape: tuple[int, ...]
    quantizer: Any
    read: Callable[[], np.ndarray]
    assign: Callable[[np.ndarray], None]
    quantize: Callable[[np.ndarray], np.ndarray] | None


def is_legacy(model: Any) -> bool:
    """Whether `model` is a tf-keras (Keras 2) model rather than a Keras 3 one."""
    return any(cls.__module__.startswith("tf_keras.") for cls in type(model).__mro__)


def is_built_model(model: Any) -> bool:
    """Whether `model` is a built Keras model of either implementation."""
    if is_legacy(model):
        import tensorflow as tf

        return isinstance(model, tf.keras.Model) and model.built
    import keras

    return isinstance(model, keras.Model) and model.built


def slots(model: Any) -> list[Slot]:
    """Every weight of a built `model` (Keras 3 or tf-keras), in the compact files' order."""
    return _legacy_slots(model) if is_legacy(model) else _keras3_slots(model)


def _legacy_slots(model: Any) -> list[Slot]:
    import tensorflow as tf

    from keras_bnn import _compat

    quantized_class = _compat.quantized_variable_class()

    @tf.function(reduce_retracing=True)
    def graph_call(quantizer, value):
        return quantizer(value)

    found = []
    for weight in model.weights:
        quantizer = None
        if isinstance(weight, quantized_class) and _compat.is_binary_quantizer(weight.quantizer):
            quantizer = weight.quantizer
        target = weight.latent_variable if isinstance(weight, quantized_class) else weight
        found.append(Slot(
            name=weight.name,
            shape=tuple(weight.shape),
            quantizer=quantizer,
            read=target.numpy,
            assign=lambda value, target=target: target.assign(value.astype(target.dtype.as_numpy_dtype)),
            quantize=None if quantizer is None else (
                lambda value, quantizer=quantizer: graph_call(quantizer, tf.constant(value)).numpy()),
        ))
    return found


def _sublayers(layer: Any) -> list[Any]:
    """`layer` and every layer inside it."""
    return _compat.keras_sublayers(layer)


def _keras3_binary_quantizers(model: Any) -> dict[int, Any]:
    """id(latent variable) -> binarizing quantizer, for every quantized weight of a keras_bnn layer in `model`."""
    from keras_bnn import quantizers
    from keras_bnn.layers import variable_precision

    found = {}
    for layer in _sublayers(model):
        for weight, argument in getattr(layer, "quantized_weights", {}).items():
            variable = getattr(layer, weight, None)
            quantizer = getattr(layer, argument, None)
            if variable is not None and variable_precision(variable) == 1 and quantizers.is_binary(quantizer):
                found[id(variable)] = quantizer
    return found


def _keras3_order(model: Any) -> list[Any]:
    """The variables of a Keras 3 model in tf-keras's ``model.weights`` order (see the module docstring)."""
    ordered, seen = [], set()
    for layer in model.layers:
        for variable in [*layer.trainable_weights, *layer.non_trainable_weights]:
            if id(variable) not in seen:
                seen.add(id(variable))
                ordered.append(variable)
    return ordered


def _keras3_slots(model: Any) -> list[Slot]:
    import keras

    binary = _keras3_binary_quantizers(model)

    def quantize(value, quantizer):
        return keras.ops.convert_to_numpy(quantizer(keras.ops.convert_to_tensor(value)))

    found = []
    for variable in _keras3_order(model):
        quantizer = binary.get(id(variable))
        found.append(Slot(
            name=f"{variable.path}:0",
            shape=tuple(variable.shape),
            quantizer=quantizer,
            read=lambda variable=variable: keras.ops.convert_to_numpy(variable.value),
            assign=lambda value, variable=variable: variable.assign(value.astype(variable.dtype)),
            quantize=None if quantizer is None else (lambda value, quantizer=quantizer: quantize(value, quantizer)),
        ))
    return found
