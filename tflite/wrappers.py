"""Rewrites for Keras layers that wrap rewritable layers: ``Bidirectional(layer)`` and ``RNN(cell or cells)``.

The rewrite pass replaces a layer by a rewritten copy, but it cannot reach inside a wrapper on its own: the
wrapper owns its inner layers. These rewrites rebuild the wrapper around the rewritten inner layers (from the
wrapper's config, with each inner layer's config replaced by its rewritten form's), build it with the original
input shape and copy the weights, so ``Bidirectional(BinaryGRU(...))``, ``RNN(BinaryGRUCell(...))`` and
``RNN([BinaryGRUCell(...), ...])`` convert with every binary matmul bitpacked. A wrapper with nothing
rewritable inside (e.g. around a float ``GRU``) is kept as it is.

Example:
    >>> import keras_bnn, tensorflow as tf
    >>> from keras_bnn.layers import BinaryGRU
    >>> from keras_bnn.tflite.rewrite import rewrite_for_lce
    >>> inputs = tf.keras.Input((5, 32))
    >>> outputs = tf.keras.layers.Bidirectional(BinaryGRU(16), name="bi")(inputs)
    >>> result = rewrite_for_lce(tf.keras.Model(inputs, outputs))
    >>> result.model.get_layer("bi").forward_layer.matmul_form, len(result.bitpackable), result.not_bitpacked
    ('conv2d', 4, [])
"""

from __future__ import annotations

import tensorflow as tf

from keras_bnn.tflite.rewrite import CannotBitpack, _from_config, _require_built, get_rewrite, register_rewrite

__all__: list[str] = []


def _rewritten(layer: tf.keras.layers.Layer, target: str) -> tf.keras.layers.Layer | None:
    """The rewrite of `layer`, or None when it has none (CannotBitpack propagates: the wrapper stays float)."""
    function = get_rewrite(layer)
    return None if function is None else function(layer, target=target)


def _rebuild(layer: tf.keras.layers.Layer, config: dict, inner, sources: list) -> tf.keras.layers.Layer:
    """`type(layer)` from `config`, built like `layer`; `inner(new)` lists its inner layers, given the weights
    of `sources` in the same order."""
    new = _from_config(type(layer), config, layer)
    new.build_from_config(layer.get_build_config())
    for target, source in zip(inner(new), sources):
        target.set_weights(source.get_weights())
    return new


@register_rewrite(tf.keras.layers.Bidirectional)
def _bidirectional(layer: tf.keras.layers.Bidirectional, *, target: str) -> tf.keras.layers.Layer | None:
    """Bidirectional around rewritable layers -> the same Bidirectional around their rewritten forms."""
    forward = _rewritten(layer.forward_layer, target)
    backward = _rewritten(layer.backward_layer, target)
    if forward is None and backward is None:
        return None
    _require_built(layer)
    sources = [forward or layer.forward_layer, backward or layer.backward_layer]
    config = layer.get_config()
    config["layer"] = tf.keras.layers.serialize(sources[0])
    config["backward_layer"] = tf.keras.layers.serialize(sources[1])
    return _rebuild(layer, config, lambda new: [new.forward_layer, new.backward_layer], sources)


@register_rewrite(tf.keras.layers.RNN)
def _rnn(layer: tf.keras.layers.RNN, *, target: str) -> tf.keras.layers.Layer | None:
    """RNN over rewritable cells (one cell or a list) -> the same RNN over their rewritten forms.

    Subclasses of RNN with a rewrite of their own (e.g. BinaryGRU) use theirs; float ones (GRU, LSTM, ...) have
    no rewritable cell and are kept.
    """
    stacked = isinstance(layer.cell, tf.keras.layers.StackedRNNCells)
    cells = list(layer.cell.cells) if stacked else [layer.cell]
    replacements = [_rewritten(cell, target) for cell in cells]
    if all(replacement is None for replacement in replacements):
        return None
    if type(layer) is not tf.keras.layers.RNN:
        raise CannotBitpack(f"its cell has a rewrite, but {type(layer).__name__} is a subclass of RNN without one "
                            f"of its own; register a rewrite for {type(layer).__name__}")
    _require_built(layer)
    sources = [replacement or cell for replacement, cell in zip(replacements, cells)]
    config = layer.get_config()
    serialized = [tf.keras.layers.serialize(source) for source in sources]
    if stacked:
        config["cell"]["config"]["cells"] = serialized
    else:
        config["cell"] = serialized[0]
    return _rebuild(layer, config, lambda new: list(new.cell.cells) if stacked else [new.cell], sources)
