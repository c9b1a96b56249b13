"""Conversion rules keyed by Keras layer class: how each binary layer family becomes what LCE bitpacks.

LCE bitpacks a binary ``Conv2D`` (as ``LceBconv2d``) whose input comes from a binary quantizer and whose filter is
±1 up to a per-output-channel scale. A :class:`Rule` answers two questions about one layer, in two phases:

* ``check(layer, target=...) -> Verdict``, without building anything: keep the layer as it is (not binary, or
  nothing for the converter to do), it is a binary convolution LCE bitpacks as it is, it must be rewritten, or it
  is binary but cannot be bitpacked (with the reason);
* ``apply(layer, target=...) -> Layer``, only after a ``REWRITE`` verdict: a built replacement holding the
  converted weights, computing the same outputs from the same inputs in the binary-``Conv2D`` form.

Lookup walks the class's MRO, so a subclass uses its parent's rule unless it registers its own. The rules of
keras_bnn's and larq's layers live in ``keras_bnn.tflite.rules`` (one module per family). A new layer family
registers its own:

    from keras_bnn.tflite import Rule, Verdict, register_rule

    @register_rule(MyBinaryLayer)
    class MyBinaryLayerRule(Rule):
        def check(self, layer, *, target):
            return Verdict.rewrite()
        def apply(self, layer, *, target):
            ...  # a built layer, weights set, whose binary matmuls are binary QuantConv2D

Example:
    >>> import keras_bnn, larq as lq, tensorflow as tf
    >>> from keras_bnn.tflite.registry import rule_for
    >>> layer = lq.layers.QuantDense(4, input_quantizer="ste_sign", kernel_quantizer="ste_sign")
    >>> layer.build((None, 8))
    >>> rule_for(layer).check(layer, target="arm")
    Verdict(action=<Action.REWRITE: 'rewrite'>, reason='')
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Callable, TypeVar

import tensorflow as tf

__all__ = ["Action", "Rule", "Verdict", "register_rule", "rule_for"]


class Action(enum.Enum):
    """What the converter does with a layer."""

    KEEP = "keep"  # not binary, or nothing to do: copied as it is
    BITPACKED = "bitpacked"  # a binary convolution LCE bitpacks as it is (expected as an LceBconv2d op)
    REWRITE = "rewrite"  # replaced by the rule's `apply`
    REFUSE = "refuse"  # binary, but LCE cannot bitpack it: stays in float, reported with the reason


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A rule's answer about one layer (see :class:`Action`); `reason` says why for ``REFUSE``."""

    action: Action
    reason: str = ""

    @classmethod
    def keep(cls) -> Verdict:
        return cls(Action.KEEP)

    @classmethod
    def bitpacked(cls) -> Verdict:
        return cls(Action.BITPACKED)

    @classmethod
    def rewrite(cls) -> Verdict:
        return cls(Action.REWRITE)

    @classmethod
    def refuse(cls, reason: str) -> Verdict:
        return cls(Action.REFUSE, reason)


class Rule:
    """Base class of conversion rules: override :meth:`check`, and :meth:`apply` if `check` can say ``REWRITE``."""

    def check(self, layer: tf.keras.layers.Layer, *, target: str) -> Verdict:
        """What the converter should do with `layer` for LCE target `target` ("arm" or "xcore"); builds nothing."""
        raise NotImplementedError

    def apply(self, layer: tf.keras.layers.Layer, *, target: str) -> tf.keras.layers.Layer:
        """The built replacement of a layer whose verdict is ``REWRITE``."""
        raise NotImplementedError(f"{type(self).__name__} rewrites nothing")


_RULES: dict[type, Rule] = {}
RuleType = TypeVar("RuleType", bound=type)


def register_rule(layer_class: type) -> Callable[[RuleType], RuleType]:
    """Class decorator: an instance of the decorated :class:`Rule` subclass converts `layer_class` (and its
    subclasses that register none of their own).

    Raises:
        TypeError: `layer_class` is not a Keras layer class, or the decorated class is not a `Rule`.
    """
    if not (isinstance(layer_class, type) and issubclass(layer_class, tf.keras.layers.Layer)):
        raise TypeError(f"register_rule needs a Keras layer class, got {layer_class!r}")

    def decorator(rule_class: RuleType) -> RuleType:
        if not (isinstance(rule_class, type) and issubclass(rule_class, Rule)):
            raise TypeError(f"register_rule decorates a subclass of keras_bnn.tflite.Rule, got {rule_class!r}")
        _RULES[layer_class] = rule_class()
        return rule_class

    return decorator


def rule_for(layer: tf.keras.layers.Layer | type) -> Rule | None:
    """The rule of a layer or layer class: that of the most specific registered class in its MRO (None if none)."""
    cls = layer if isinstance(layer, type) else type(layer)
    for base in cls.__mro__:
        if base in _RULES:
            return _RULES[base]
    return None


def verdict(layer: tf.keras.layers.Layer, target: str) -> Verdict:
    """The verdict of `layer`'s rule; ``KEEP`` for a layer without a rule."""
    rule = rule_for(layer)
    return Verdict.keep() if rule is None else rule.check(layer, target=target)
