"""A copy of a Functional or Sequential model with the conversion rules applied (the user's model is untouched).

Each layer whose rule says ``REWRITE`` is replaced by the rule's built replacement; every other layer is copied
through its config (keeping the user's quantizer functions, see :mod:`keras_bnn.tflite.copying`) and given the
original's weights; nested Functional models are cloned the same way. A layer that cannot be copied is used as it
is (the original object, so its weights are shared), and reported.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from keras_bnn._compat import is_graph_model
from keras_bnn.tflite.copying import CannotCopy, copy_layer
from keras_bnn.tflite.registry import Action, rule_for, verdict

__all__ = ["Clone", "clone_with_rules", "contains_rewrite"]


@dataclasses.dataclass
class Clone:
    """What :func:`clone_with_rules` made.

    Attributes:
        model: The copy.
        origins: For each replacement layer (by ``id``), the class name of the layer it replaces.
        reused: ``"name (Class): why"`` for each layer used as it is because it cannot be copied.
    """

    model: tf.keras.Model
    origins: dict[int, str] = dataclasses.field(default_factory=dict)
    reused: list[str] = dataclasses.field(default_factory=list)


def contains_rewrite(layer: tf.keras.layers.Layer, target: str) -> bool:
    """Whether `layer` or any layer under it has a ``REWRITE`` verdict (builds nothing)."""
    layers = [layer, *(m for m in layer.submodules if isinstance(m, tf.keras.layers.Layer))]
    return any(verdict(sub, target).action is Action.REWRITE for sub in layers)


def subclassed_error(model: tf.keras.Model) -> TypeError:
    return TypeError(
        f"model {model.name!r} ({type(model).__name__}) is a subclassed Keras model, which cannot be copied "
        "layer by layer, and it holds binary layers that must be rewritten to be bitpacked. Build it as a "
        "Functional or Sequential model (with a known input shape) to convert it.")


def clone_with_rules(model: tf.keras.Model, target: str, input_tensors=None, clone: Clone | None = None) -> Clone:
    """Copy `model` with every ``REWRITE`` verdict applied, weights copied, nested graph models too.

    Raises:
        TypeError: a nested subclassed model holds layers that need a rewrite.
        ValueError: the model has no known input shape.
    """
    result = clone or Clone(model=model)
    copies: list[tuple[tf.keras.layers.Layer, tf.keras.layers.Layer]] = []

    def clone_layer(layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
        if isinstance(layer, tf.keras.Model):
            if is_graph_model(layer):
                return clone_with_rules(layer, target, clone=result).model
            if contains_rewrite(layer, target):
                raise subclassed_error(layer)
        elif verdict(layer, target).action is Action.REWRITE:
            replacement = rule_for(layer).apply(layer, target=target)
            result.origins[id(replacement)] = type(layer).__name__
            return replacement
        try:
            new = copy_layer(layer)
        except CannotCopy as error:
            result.reused.append(f"{layer.name} ({type(layer).__name__}): {error}")
            return layer
        copies.append((layer, new))
        return new

    copied = tf.keras.models.clone_model(model, input_tensors=input_tensors, clone_function=clone_layer)
    if not copied.built:
        raise ValueError(f"model {model.name!r} has no known input shape; give it an Input (or input_shape)")
    for original, new in copies:
        if original.built:
            new.set_weights(original.get_weights())
    result.model = copied
    return result
