"""Rules of keras_bnn's attention layers: a copy whose binary ``QuantDense`` projections are 1x1 binary convolutions.

``BinaryMultiHeadAttention``: its four projections; ``BinaryTransformerEncoder``: its attention's projections and
both feed-forward matmuls. The copy's config is the original's; only the projection sublayers differ. A projection
whose input quantizer is ``ElasticSign`` (±α after a threshold β) is first folded into the equal
``LearnableThresholdSign`` input (threshold β) with the kernel ``α Q(W)`` (larq's ``magnitude_aware_sign``), since
LCE does not bitpack a convolution whose input is multiplied after the sign. A projection that cannot be bitpacked
is kept as it is (the converter reports it with the reason).
"""

from __future__ import annotations

from typing import Any

import larq as lq
import numpy as np
import tensorflow as tf

from keras_bnn.legacy.layers.attention import PROJECTIONS, BinaryMultiHeadAttention, build_sublayer
from keras_bnn.legacy.layers.transformer import BinaryTransformerEncoder
from keras_bnn.legacy.quantizers import ElasticSign, is_binary
from keras_bnn.tflite.registry import Action, Rule, Verdict, register_rule, rule_for, verdict
from keras_bnn.tflite.rules._lce import NOT_BUILT

__all__: list[str] = []


def _elastic_binary_kernel(dense: Any) -> np.ndarray | None:
    """The quantized kernel of a QuantDense with an ElasticSign input when it is ±c per output unit, else None."""
    quantizer = getattr(dense, "input_quantizer", None)
    if not (isinstance(dense, lq.layers.QuantDense) and isinstance(quantizer, ElasticSign) and dense.built
            and quantizer.built and dense.kernel_quantizer is not None):
        return None
    latent = tf.convert_to_tensor(getattr(dense.kernel, "latent_variable", dense.kernel))
    kernel = dense.kernel_quantizer(latent).numpy()
    return kernel if np.all(np.abs(kernel) == np.abs(kernel)[:1]) else None


def _fold_elastic_input(dense: Any) -> Any:
    """``(α sign(x - β)) @ Q(W) = sign(x - β) @ (α Q(W))``: an equal QuantDense that LCE bitpacks, or `dense`."""
    kernel = _elastic_binary_kernel(dense)
    if kernel is None:
        return dense
    quantizer = dense.input_quantizer
    config = dense.get_config()
    config.update(input_quantizer="learnable_threshold_sign", kernel_quantizer="magnitude_aware_sign",
                  kernel_constraint=None)
    folded = lq.layers.QuantDense.from_config(config)
    build_sublayer(folded, [None, kernel.shape[0]])
    folded.kernel.assign(float(quantizer.alpha.numpy()) * kernel)
    if folded.use_bias:
        folded.bias.assign(dense.bias)
    folded.input_quantizer.beta.assign(tf.fill(folded.input_quantizer.beta.shape, quantizer.beta))
    return folded


def _sublayer_verdict(sublayer: Any, target: str) -> Verdict:
    if _elastic_binary_kernel(sublayer) is not None:
        return Verdict.rewrite()  # folded, then rewritten as a binary convolution
    return verdict(sublayer, target)


class _SublayersRule(Rule):
    """A copy of the layer in which the sublayers named by `attributes(layer)` are replaced by their rewrites."""

    def attributes(self, layer) -> tuple[str, ...]:
        raise NotImplementedError

    def built(self, layer) -> bool:
        return layer.built

    def binary(self, layer) -> bool:
        raise NotImplementedError

    def make_copy(self, layer) -> tf.keras.layers.Layer:
        """A built copy of `layer` with the same structure (and its weights)."""
        raise NotImplementedError

    def check(self, layer, *, target: str) -> Verdict:
        if not self.built(layer):
            return Verdict.refuse(NOT_BUILT) if self.binary(layer) else Verdict.keep()
        verdicts = [_sublayer_verdict(getattr(layer, name), target) for name in self.attributes(layer)]
        return Verdict.rewrite() if any(v.action is Action.REWRITE for v in verdicts) else Verdict.keep()

    def apply(self, layer, *, target: str) -> tf.keras.layers.Layer:
        copy = self.make_copy(layer)
        copy.set_weights(layer.get_weights())
        for name in self.attributes(layer):
            sublayer = getattr(layer, name)
            if _sublayer_verdict(sublayer, target).action is Action.REWRITE:
                folded = _fold_elastic_input(sublayer)
                setattr(copy, name, rule_for(folded).apply(folded, target=target))  # Keras untracks the old one
        return copy


@register_rule(BinaryMultiHeadAttention)
class BinaryMultiHeadAttentionRule(_SublayersRule):
    def attributes(self, layer) -> tuple[str, ...]:
        return PROJECTIONS

    def built(self, layer) -> bool:
        return layer.get_config().get("query_shape") is not None

    def binary(self, layer) -> bool:
        return is_binary(lq.quantizers.get(layer.get_config()["input_quantizer"]))

    def make_copy(self, layer) -> BinaryMultiHeadAttention:
        return type(layer).from_config(layer.get_config())


@register_rule(BinaryTransformerEncoder)
class BinaryTransformerEncoderRule(_SublayersRule):
    def attributes(self, layer) -> tuple[str, ...]:
        return ("attention", "intermediate_dense", "output_dense")

    def binary(self, layer) -> bool:
        return is_binary(lq.quantizers.get(layer.get_config()["input_quantizer"]))

    def make_copy(self, layer) -> BinaryTransformerEncoder:
        copy = type(layer).from_config(layer.get_config())
        copy.build_from_config(layer.get_build_config())
        return copy

