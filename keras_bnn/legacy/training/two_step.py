"""Two-step training: copy a trained model with other quantizers on its quantized layers, weights carried over.

Two-step training of binary networks (e.g. Martinez et al., ICLR 2020, Real-to-Binary Net, section 4.2; Liu et
al., ReActNet, 2020) first trains a network with binary activations and real weights, then initialises the fully
binary network from it:

    step1 = requantize(binary_model, kernel_quantizer=None, kernel_constraint=None)   # binary activations only
    step1.compile(...); step1.fit(...)
    step2 = requantize(step1, kernel_quantizer="ste_sign", kernel_constraint="weight_clip")  # both binary
    step2.compile(...); step2.fit(...)

`requantize` works on any Functional or Sequential model: it rebuilds the model with Keras' ``clone_model``,
changing only the quantizer (and, if asked, constraint) entries in the configs of layers that have them (all
``larq.layers.Quant*`` layers and keras_bnn's layers), then copies every weight of the old model into the new one.
Weights owned by a quantizer (e.g. a learned threshold) are copied when that quantizer is kept and left at their
initial values when it is replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import larq
import tensorflow as tf

from keras_bnn import _compat

__all__ = ["KEEP", "requantize"]


class _Keep:
    """Sentinel: leave this setting as the layer has it."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()

_INPUT_KEYS = ("input_quantizer",)
_KERNEL_KEYS = ("kernel_quantizer", "depthwise_quantizer", "pointwise_quantizer")
_CONSTRAINT_KEYS = ("kernel_constraint", "depthwise_constraint", "pointwise_constraint")


def _quantizer_config(identifier: Any) -> Any:
    """The serialized form of a quantizer (fresh instance per layer; None stays None)."""
    return larq.quantizers.serialize(larq.quantizers.get(identifier))


def _constraint_config(identifier: Any) -> Any:
    return tf.keras.constraints.serialize(tf.keras.constraints.get(identifier))


def _owned_by_quantizers(layer: tf.keras.layers.Layer) -> set[int]:
    owned: set[int] = set()
    for key in _INPUT_KEYS + _KERNEL_KEYS:
        quantizer = getattr(layer, key, None)
        if isinstance(quantizer, tf.keras.layers.Layer):
            owned.update(id(weight) for weight in quantizer.weights)
    return owned


def _copy_weights(old: tf.keras.layers.Layer, new: tf.keras.layers.Layer, changed: set[str]) -> None:
    """Copy `old`'s weights into `new`: the layer's own weights always, quantizer weights of unchanged quantizers."""
    old_owned, new_owned = _owned_by_quantizers(old), _owned_by_quantizers(new)
    old_own = [w for w in old.weights if id(w) not in old_owned]
    new_own = [w for w in new.weights if id(w) not in new_owned]
    if [w.shape for w in old_own] != [w.shape for w in new_own]:
        raise ValueError(
            f"Layer {old.name!r}: its weights {[tuple(w.shape) for w in old_own]} do not match the requantized "
            f"layer's {[tuple(w.shape) for w in new_own]}."
        )
    pairs = list(zip(old_own, new_own))
    for key in _INPUT_KEYS + _KERNEL_KEYS:
        if key in changed:
            continue
        old_q, new_q = getattr(old, key, None), getattr(new, key, None)
        if isinstance(old_q, tf.keras.layers.Layer) and isinstance(new_q, tf.keras.layers.Layer):
            if [w.shape for w in old_q.weights] == [w.shape for w in new_q.weights]:
                pairs.extend(zip(old_q.weights, new_q.weights))
    for source, target in pairs:
        target.assign(source)


def requantize(
    model: tf.keras.Model,
    input_quantizer: Any = KEEP,
    kernel_quantizer: Any = KEEP,
    kernel_constraint: Any = KEEP,
    layers: Iterable[str] | Callable[[tf.keras.layers.Layer], bool] | None = None,
) -> tf.keras.Model:
    """A copy of a trained Functional/Sequential model with other quantizers on its quantized layers.

    Each argument left at `KEEP` is unchanged; ``None`` removes the quantizer (real values) or constraint; any
    other value is what larq's layers accept (a name such as ``"ste_sign"``, a quantizer instance or config).
    `kernel_quantizer` / `kernel_constraint` also apply to the depthwise and pointwise kernels of separable and
    depthwise layers. Layers whose config has no such entry (plain Keras layers) are copied unchanged.

    The copy has the same layer names and weights (every non-quantizer weight is copied, so BatchNorm moving
    statistics and latent kernels carry over). It is not compiled.

    Args:
        model: A built Functional or Sequential model.
        input_quantizer: New input (activation) quantizer, None, or `KEEP`.
        kernel_quantizer: New weight quantizer, None, or `KEEP`.
        kernel_constraint: New weight constraint (e.g. ``"weight_clip"``), None, or `KEEP`.
        layers: Which layers to change: names, or a predicate on the layer; default every layer with
            quantizer entries.

    Returns:
        The new model.

    Raises:
        TypeError: `model` is a subclassed model (no layer graph to clone).
        ValueError: a name in `layers` is not a layer of `model`, or a requantized layer's weights do not match.

    Example:
        >>> import keras_bnn, larq
        >>> import tensorflow as tf
        >>> from keras_bnn.legacy.training import requantize
        >>> model = tf.keras.Sequential([tf.keras.Input((4,)), larq.layers.QuantDense(
        ...     3, input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip")])
        >>> step1 = requantize(model, kernel_quantizer=None, kernel_constraint=None)
        >>> step1.layers[0].kernel_quantizer is None, type(step1.layers[0].input_quantizer).__name__
        (True, 'SteSign')
        >>> bool(tf.reduce_all(step1.layers[0].kernel == model.layers[0].kernel.latent_variable))
        True
    """
    if not isinstance(model, tf.keras.Model) or not _compat.is_graph_model(model):
        raise TypeError(
            "requantize needs a Functional or Sequential model (it clones the layer graph), "
            f"got {type(model).__name__}."
        )
    if layers is None:
        selected: Callable[[tf.keras.layers.Layer], bool] = lambda layer: True  # noqa: E731
    elif callable(layers):
        selected = layers
    else:
        names = set(layers)
        unknown = names - {layer.name for layer in model.layers}
        if unknown:
            raise ValueError(f"requantize: model {model.name!r} has no layers named {sorted(unknown)}.")
        selected = lambda layer: layer.name in names  # noqa: E731

    updates: dict[str, Any] = {}
    for keys, value, to_config in (
        (_INPUT_KEYS, input_quantizer, _quantizer_config),
        (_KERNEL_KEYS, kernel_quantizer, _quantizer_config),
        (_CONSTRAINT_KEYS, kernel_constraint, _constraint_config),
    ):
        if value is not KEEP:
            for key in keys:
                updates[key] = value
    changed_by_layer: dict[str, set[str]] = {}

    def clone(layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
        config = layer.get_config()
        if getattr(layer, "synchronized", False) and "synchronized" not in config:
            config["synchronized"] = True  # tf-keras' BatchNormalization.get_config drops synchronized=True
        changed = {key for key in updates if key in config} if selected(layer) else set()
        for key in changed:
            convert = _constraint_config if key in _CONSTRAINT_KEYS else _quantizer_config
            config[key] = convert(updates[key])
        changed_by_layer[layer.name] = changed
        return layer.__class__.from_config(config)

    new_model = tf.keras.models.clone_model(model, clone_function=clone)
    for old_layer in model.layers:
        if isinstance(old_layer, tf.keras.layers.InputLayer):
            continue
        _copy_weights(old_layer, new_model.get_layer(old_layer.name), changed_by_layer.get(old_layer.name, set()))
    return new_model
