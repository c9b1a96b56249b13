"""Rules of keras_bnn's binary GRU: ``BinaryGRU`` -> ``BinaryGRUAsConv2D``, ``BinaryGRUCell`` ->
``BinaryGRUCellAsConv2D`` (``keras_bnn.tflite.forms``): both binary matmuls become 1x1 binary ``QuantConv2D``."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_bnn.legacy.layers.recurrent import BinaryGRU, BinaryGRUCell
from keras_bnn.legacy.quantizers import is_binary
from keras_bnn.tflite.copying import from_config, layer_config
from keras_bnn.tflite.forms import BinaryGRUAsConv2D, BinaryGRUCellAsConv2D
from keras_bnn.tflite.registry import Rule, Verdict, register_rule
from keras_bnn.tflite.rules._lce import NOT_BUILT

__all__: list[str] = []

_INFERENCE = {"dropout": 0.0, "recurrent_dropout": 0.0}


def _latent(variable) -> np.ndarray:
    return tf.keras.backend.get_value(getattr(variable, "latent_variable", variable))


def _cell_verdict(cell: BinaryGRUCell) -> Verdict:
    """REWRITE when a matmul of `cell` has a binary input (LCE should bitpack it), REFUSE when such a matmul has a
    kernel that is not binary, KEEP when no matmul input is binary or the cell is already in the conv form."""
    if isinstance(cell, BinaryGRUCellAsConv2D):
        return Verdict.keep()
    paths = (("input", cell.input_quantizer, cell.kernel_quantizer),
             ("recurrent", cell.recurrent_input_quantizer, cell.recurrent_kernel_quantizer))
    binary = False
    for path, input_quantizer, kernel_quantizer in paths:
        if not is_binary(input_quantizer):
            continue
        if not is_binary(kernel_quantizer):
            name = getattr(kernel_quantizer, "name", kernel_quantizer)
            return Verdict.refuse(f"the {path} matmul has a binary input but kernel quantizer {name!r} is not "
                                  "binary; LCE needs +-1 weights")
        binary = True
    if not binary:
        return Verdict.keep()
    return Verdict.rewrite() if cell.built else Verdict.refuse(NOT_BUILT)


def _copy_weights(old: BinaryGRUCell, new: BinaryGRUCellAsConv2D) -> None:
    """Give the conv-form cell `new` the weights of the matmul-form cell `old`."""
    units = old.units
    kernel, recurrent = _latent(old.kernel), _latent(old.recurrent_kernel)
    new.kernel_conv.kernel.assign(kernel.reshape((1, 1, *kernel.shape)))
    if old.reset_after:
        new.recurrent_kernel_conv.kernel.assign(recurrent.reshape((1, 1, *recurrent.shape)))
    else:
        new.recurrent_kernel_conv.kernel.assign(recurrent[:, : 2 * units].reshape((1, 1, units, 2 * units)))
        new.recurrent_candidate_conv.kernel.assign(recurrent[:, 2 * units:].reshape((1, 1, units, units)))
    for name in ("bias", "kernel_scale", "recurrent_kernel_scale"):
        if getattr(old, name) is not None:
            getattr(new, name).assign(_latent(getattr(old, name)))


@register_rule(BinaryGRUCell)
class BinaryGRUCellRule(Rule):
    """A binary cell -> the same cell in conv form (it projects its step input itself)."""

    def check(self, layer, *, target: str) -> Verdict:
        return _cell_verdict(layer)

    def apply(self, layer, *, target: str) -> BinaryGRUCellAsConv2D:
        new = from_config(BinaryGRUCellAsConv2D, {**layer_config(layer), **_INFERENCE}, layer)
        new.build(tf.TensorShape([None, _latent(layer.kernel).shape[0]]))
        _copy_weights(layer, new)
        return new


@register_rule(BinaryGRU)
class BinaryGRURule(Rule):
    """BinaryGRU -> BinaryGRUAsConv2D: the input matmul before the loop, the recurrent one inside, both bitpacked."""

    def check(self, layer, *, target: str) -> Verdict:
        if isinstance(layer, BinaryGRUAsConv2D):
            return Verdict.keep()
        return _cell_verdict(layer.cell)  # the cell is built with the layer

    def apply(self, layer, *, target: str) -> BinaryGRUAsConv2D:
        replacement = from_config(BinaryGRUAsConv2D, {**layer_config(layer), **_INFERENCE}, layer)
        batch = int(layer.states[0].shape[0]) if layer.stateful else None
        features = _latent(layer.cell.kernel).shape[0]
        replacement.build(tf.TensorShape([None, batch, features] if layer.time_major else [batch, None, features]))
        _copy_weights(layer.cell, replacement.cell)
        return replacement
