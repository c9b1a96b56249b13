"""Two-step training on Keras 3: copy a trained model with other quantizers on its quantized layers.

Two-step training of binary networks (e.g. Martinez et al., ICLR 2020, Real-to-Binary Net, section 4.2; Liu et
al., ReActNet, 2020) first trains a network with binary activations and real weights, then initialises the fully
binary network from it:

    step1 = requantize(binary_model, kernel_quantizer=None, kernel_constraint=None)   # binary activations only
    step1.compile(...); step1.fit(...)
    step2 = requantize(step1, kernel_quantizer="ste_sign", kernel_constraint="weight_clip")  # both binary
    step2.compile(...); step2.fit(...)

`requantize` works on any Functional or Sequential model: it rebuilds the model with Keras' ``clone_model``,
changing only the quantizer (and, if asked, constraint) entries in the configs of layers that have them (every
``keras_bnn.layers`` quantized layer), then copies every weight of the old model into the new one. Weights owned
by a quantizer (e.g. BinaryRelax's λ) are copied when that quantizer is kept and left at their initial values
when it is replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import keras

from keras_bnn import _compat
from keras_bnn import constraints as bnn_constraints
from keras_bnn import quantizers as bnn_quantizers

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
    return bnn_quantizers.serialize(bnn_quantizers.get(identifier))


def _constraint_config(identifier: Any) -> Any:
    return keras.constraints.serialize(bnn_constraints.get(identifier))


def _is_graph_model(model: Any) -> bool:
    return isinstance(model, keras.Sequential) or (
        isinstance(model, keras.Model) and any(cls.__name__ == "Functional" for cls in type(model).__mro__))


def _owned_by_quantizers(layer: keras.layers.Layer) -> set[int]:
    owned: set[int] = set()
    for key in _INPUT_KEYS + _KERNEL_KEYS:
        quantizer = getattr(layer, key, None)
        if isinstance(quantizer, keras.layers.Layer):
            owned.update(id(weight) for weight in quantizer.weights)
    return owned


def _copy_weights(old: keras.layers.Layer, new: keras.layers.Layer, changed: set[str]) -> None:
    """Copy `old`'s weights into `new`: the layer's own weights always, quantizer weights of unchanged quantizers."""
    old_owned, new_owned = _owned_by_quantizers(old), _owned_by_quantizers(new)
    old_own = [w for w in old.weights if id(w) not in old_owned]
    new_own = [w for w in new.weights if id(w) not in new_owned]
    if [tuple(w.shape) for w in old_own] != [tuple(w.shape) for w in new_own]:
        raise ValueError(
            f"Layer {old.name!r}: its weights {[tuple(w.shape) for w in old_own]} do not match the requantized "
            f"layer's {[tuple(w.shape) for w in new_own]}.")
    pairs = list(zip(old_own, new_own))
    for key in _INPUT_KEYS + _KERNEL_KEYS:
        if key in changed:
            continue
        old_q, new_q = getattr(old, key, None), getattr(new, key, None)
        if isinstance(old_q, keras.layers.Layer) and isinstance(new_q, keras.layers.Layer):
            if [tuple(w.shape) for w in old_q.weights] == [tuple(w.shape) for w in new_q.weights]:
                pairs.extend(zip(old_q.weights, new_q.weights))
    for source, target in pairs:
        target.assign(source)


def requantize(
    model: keras.Model,
    input_quantizer: Any = KEEP,
    kernel_quantizer: Any = KEEP,
    kernel_constraint: Any = KEEP,
    layers: Iterable[str] | Callable[[keras.layers.Layer], bool] | None = None,
) -> keras.Model:
    """A copy of a trained Functional/Sequential model with other quantizers on its quantized layers.

    Each argument left at `KEEP` is unchanged; ``None`` removes the quantizer (real values) or constraint; any
    other value is what keras_bnn's layers accept (a name such as ``"ste_sign"``, a quantizer instance or
    config). `kernel_quantizer` / `kernel_constraint` also apply to the depthwise and pointwise kernels of
    separable and depthwise layers. Layers whose config has no such entry (plain Keras layers) are copied
    unchanged.

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
        >>> import keras, keras_bnn
        >>> from keras_bnn.training import requantize
        >>> model = keras.Sequential([keras.Input((4,)), keras_bnn.layers.QuantDense(
        ...     3, input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip")])
        >>> step1 = requantize(model, kernel_quantizer=None, kernel_constraint=None)
        >>> step1.layers[0].kernel_quantizer is None, type(step1.layers[0].input_quantizer).__name__
        (True, 'SteSign')
        >>> bool(keras.ops.all(step1.layers[0].kernel == model.layers[0].kernel))
        True
    """
    if not _is_graph_model(model):
        raise TypeError("requantize needs a Functional or Sequential model (it clones the layer graph), "
                        f"got {type(model).__name__}.")
    if layers is None:
        selected: Callable[[keras.layers.Layer], bool] = lambda layer: True  # noqa: E731
    elif callable(layers):
        selected = layers
    else:
        names = set(layers)
        unknown = names - {layer.name for layer in model.layers}
        if unknown:
            raise ValueError(f"requantize: model {model.name!r} has no layers named {sorted(unknown)}.")
        selected = lambda layer: layer.name in names  # noqa: E731

    updates: dict[str, Any] = {}
    for keys, value in ((_INPUT_KEYS, input_quantizer), (_KERNEL_KEYS, kernel_quantizer),
                        (_CONSTRAINT_KEYS, kernel_constraint)):
        if value is not KEEP:
            for key in keys:
                updates[key] = value
    changed_by_layer: dict[str, set[str]] = {}

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        changed = {key for key in updates if key in config} if selected(layer) else set()
        for key in changed:
            convert = _constraint_config if key in _CONSTRAINT_KEYS else _quantizer_config
            config[key] = convert(updates[key])
        changed_by_layer[layer.name] = changed
        return layer.__class__.from_config(config)

    if isinstance(model, keras.Sequential):
        new_model = keras.models.clone_model(model, clone_function=clone)
    else:  # new inputs of the same names (Keras' clone would rename an unnamed input layer)
        inputs = keras.tree.map_structure(
            lambda t: keras.Input(batch_shape=t.shape, dtype=t.dtype, name=_compat.keras_tensor_layer(t).name), model.input)
        new_model = keras.models.clone_model(model, input_tensors=inputs, clone_function=clone)
    for old_layer in model.layers:
        if isinstance(old_layer, keras.layers.InputLayer):
            continue
        _copy_weights(old_layer, new_model.get_layer(old_layer.name), changed_by_layer.get(old_layer.name, set()))
    return new_model
