"""Rules of Keras' wrappers around rewritable layers: ``Bidirectional`` and ``RNN`` (one cell or a list).

``Bidirectional(BinaryGRU(...))``, ``RNN(BinaryGRUCell(...))`` and ``RNN([BinaryGRUCell(...), ...])`` convert with
every binary matmul bitpacked: the same wrapper around the rewritten layers. A wrapper with nothing rewritable
inside (e.g. around a float ``GRU``) is kept as it is; a subclass of ``RNN`` with no rule of its own whose cell has
one is refused (register a rule for it).

Example:
    >>> import keras_bnn, tensorflow as tf
    >>> from keras_bnn.legacy.layers import BinaryGRU
    >>> from keras_bnn.tflite import rewrite_for_lce
    >>> inputs = tf.keras.Input((5, 32))
    >>> outputs = tf.keras.layers.Bidirectional(BinaryGRU(16), name="bi")(inputs)
    >>> result = rewrite_for_lce(tf.keras.Model(inputs, outputs))
    >>> type(result.model.get_layer("bi").forward_layer).__name__, len(result.bitpackable), result.not_bitpacked
    ('BinaryGRUAsConv2D', 4, [])
"""

from __future__ import annotations

import tensorflow as tf

from keras_bnn.tflite.copying import from_config
from keras_bnn.tflite.registry import Action, Rule, Verdict, register_rule, rule_for, verdict
from keras_bnn.tflite.rules._lce import NOT_BUILT

__all__: list[str] = []


def _rewritten(layer: tf.keras.layers.Layer, target: str) -> tf.keras.layers.Layer:
    """`layer`'s rewrite when its verdict is REWRITE, else `layer` itself."""
    if verdict(layer, target).action is Action.REWRITE:
        return rule_for(layer).apply(layer, target=target)
    return layer


def _wrapped_verdict(wrapper: tf.keras.layers.Layer, inner: list[tf.keras.layers.Layer], target: str) -> Verdict:
    verdicts = [verdict(layer, target) for layer in inner]
    if not any(v.action is Action.REWRITE for v in verdicts):
        return Verdict.keep()  # refused inner layers are reported by the audit, inside the kept wrapper
    return Verdict.rewrite() if wrapper.built else Verdict.refuse(NOT_BUILT)


def _rebuild(layer: tf.keras.layers.Layer, config: dict, inner, sources: list) -> tf.keras.layers.Layer:
    """`type(layer)` from `config`, built like `layer`; `inner(new)` lists its inner layers, given the weights
    of `sources` in the same order."""
    new = from_config(type(layer), config, layer)
    new.build_from_config(layer.get_build_config())
    for target, source in zip(inner(new), sources):
        target.set_weights(source.get_weights())
    return new


@register_rule(tf.keras.layers.Bidirectional)
class BidirectionalRule(Rule):
    """Bidirectional around rewritable layers -> the same Bidirectional around their rewritten forms."""

    def check(self, layer, *, target: str) -> Verdict:
        return _wrapped_verdict(layer, [layer.forward_layer, layer.backward_layer], target)

    def apply(self, layer, *, target: str) -> tf.keras.layers.Layer:
        sources = [_rewritten(layer.forward_layer, target), _rewritten(layer.backward_layer, target)]
        config = layer.get_config()
        config["layer"] = tf.keras.layers.serialize(sources[0])
        config["backward_layer"] = tf.keras.layers.serialize(sources[1])
        return _rebuild(layer, config, lambda new: [new.forward_layer, new.backward_layer], sources)


def _cells(layer: tf.keras.layers.RNN) -> tuple[bool, list]:
    stacked = isinstance(layer.cell, tf.keras.layers.StackedRNNCells)
    return stacked, list(layer.cell.cells) if stacked else [layer.cell]


@register_rule(tf.keras.layers.RNN)
class RNNRule(Rule):
    """RNN over rewritable cells (one cell or a list) -> the same RNN over their rewritten forms.

    Subclasses of RNN with a rule of their own (e.g. BinaryGRU) use theirs; float ones (GRU, LSTM, ...) have no
    rewritable cell and are kept.
    """

    def check(self, layer, *, target: str) -> Verdict:
        found = _wrapped_verdict(layer, _cells(layer)[1], target)
        if found.action is Action.REWRITE and type(layer) is not tf.keras.layers.RNN:
            return Verdict.refuse(f"its cell has a rule, but {type(layer).__name__} is a subclass of RNN without one "
                                  f"of its own; register a rule for {type(layer).__name__}")
        return found

    def apply(self, layer, *, target: str) -> tf.keras.layers.Layer:
        stacked, cells = _cells(layer)
        sources = [_rewritten(cell, target) for cell in cells]
        config = layer.get_config()
        serialized = [tf.keras.layers.serialize(source) for source in sources]
        if stacked:
            config["cell"]["config"]["cells"] = serialized
        else:
            config["cell"] = serialized[0]
        return _rebuild(layer, config, lambda new: list(new.cell.cells) if stacked else [new.cell], sources)
