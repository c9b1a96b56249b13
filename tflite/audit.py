"""Every binary layer of a (rewritten) model: the convolutions LCE should bitpack, and the rest with the reason.

The audit walks the model's layers and their sublayers and asks each layer's rule for its verdict: it builds
nothing. A layer that still needs a rewrite after the rules were applied sits inside a layer the rules cannot enter.
"""

from __future__ import annotations

import dataclasses

import larq as lq
import tensorflow as tf

from keras_bnn._compat import direct_sublayers
from keras_bnn.legacy.quantizers import is_binary
from keras_bnn.tflite.registry import Action, rule_for

__all__ = ["BitpackableLayer", "NotBitpackedLayer", "audit"]


@dataclasses.dataclass(frozen=True)
class NotBitpackedLayer:
    """A binary layer that stays in float after conversion.

    Attributes:
        name: the layer's path in the model, nested models and layers joined by ``/``.
        class_name: the layer's class name.
        reason: why it is not bitpacked.
    """

    name: str
    class_name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name} ({self.class_name}): {self.reason}"


@dataclasses.dataclass(frozen=True)
class BitpackableLayer:
    """A binary convolution of the rewritten copy that LCE should turn into ``LceBconv2d``.

    Attributes:
        name: path of the original layer in the model.
        class_name: class name of the original layer (e.g. ``QuantDense`` for a rewritten dense layer).
        layer: the ``QuantConv2D`` of the copy.
    """

    name: str
    class_name: str
    layer: tf.keras.layers.Layer


def _reason(layer: tf.keras.layers.Layer, parent: tf.keras.layers.Layer, target: str) -> tuple[str | None, bool]:
    """(why `layer` stays in float or None, whether it is a bitpackable binary convolution)."""
    rule = rule_for(layer)
    if rule is None:
        if is_binary(getattr(layer, "input_quantizer", None)):
            return (f"no conversion rule is registered for {type(layer).__name__}; LCE bitpacks only binary "
                    "Conv2D (see keras_bnn.tflite.register_rule)"), False
        return None, False
    found = rule.check(layer, target=target)
    if found.action is Action.REFUSE:
        return found.reason, False
    if found.action is Action.REWRITE:
        return (f"it has a rule, but it sits inside {parent.name!r} ({type(parent).__name__}), which the "
                f"conversion cannot enter; register a rule for {type(parent).__name__}"), False
    return None, found.action is Action.BITPACKED and isinstance(layer, lq.layers.QuantConv2D)


def audit(model: tf.keras.Model, target: str, origins: dict[int, str]
          ) -> tuple[list[BitpackableLayer], list[NotBitpackedLayer]]:
    """(bitpackable convolutions, binary layers that stay in float) of `model`; `origins` maps a replacement
    layer's ``id`` to the class name of the layer it replaced (reported under that name)."""
    bitpackable: list[BitpackableLayer] = []
    not_bitpacked: list[NotBitpackedLayer] = []
    seen: set[int] = set()

    def walk(parent, path: str, class_name: str) -> None:
        for child in direct_sublayers(parent):
            if id(child) in seen or isinstance(child, lq.quantizers.Quantizer):
                continue
            seen.add(id(child))
            # A rewritten layer wraps a conv of the same name: report it under the original's path and class.
            same = bool(path) and child.name == path.rsplit("/", 1)[-1]
            child_path = path if same else f"{path}/{child.name}" if path else child.name
            child_class = class_name if same else origins.get(id(child), type(child).__name__)
            reason, bitpacked = _reason(child, parent, target)
            if reason is not None:
                not_bitpacked.append(NotBitpackedLayer(child_path, child_class, reason))
            elif bitpacked:
                bitpackable.append(BitpackableLayer(child_path, child_class, child))
            walk(child, child_path, child_class)

    walk(model, "", type(model).__name__)
    return bitpackable, not_bitpacked
