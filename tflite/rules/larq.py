"""Rules of larq's layers: binary QuantConv2D is LCE's form; binary QuantDense / QuantConv1D are rewritten to it.

* ``QuantConv2D`` (and subclasses: ``XNORConv2D``, ``BiRealConv2D``, ``PCNNConv2D``): kept; ``BITPACKED`` when its
  input quantizer is binary and LCE's constraints hold, else refused with LCE's reason.
* ``QuantDense`` (any input rank): ``(B, ..., F)`` -> ``(B, 1, N, F)`` -> 1x1 binary ``QuantConv2D`` with the same
  weights -> back (:class:`~keras_bnn.tflite.forms.BinaryDenseAsConv2D`).
* ``QuantConv1D``: ``(B, T, C)`` -> ``(B, 1, T, C)`` -> ``(1, k)`` binary ``QuantConv2D`` (strides, dilation,
  padding and ``pad_values`` carried over); causal padding is refused.
* Binary depthwise, separable, transposed, 3D and locally-connected layers: refused (LCE has no kernel).

A layer's input is binary when :func:`keras_bnn.legacy.quantizers.is_binary` says so (larq's ``precision == 1``, or a
plain function that maps to ±1, such as a sign written with ``tf.where``).
"""

from __future__ import annotations

import larq as lq
import tensorflow as tf

from keras_bnn.legacy.quantizers import is_binary
from keras_bnn.tflite.copying import from_config, layer_config
from keras_bnn.tflite.forms import BinaryConv1DAsConv2D, BinaryDenseAsConv2D
from keras_bnn.tflite.registry import Rule, Verdict, register_rule
from keras_bnn.tflite.rules._lce import NOT_BUILT, conv2d_obstacle

__all__: list[str] = []


@register_rule(lq.layers.QuantConv2D)
class QuantConv2DRule(Rule):
    """LCE's own form: keep it, but say when LCE will not bitpack it."""

    def check(self, layer, *, target: str) -> Verdict:
        if not is_binary(layer.input_quantizer):
            return Verdict.keep()
        if not layer.built:
            return Verdict.refuse(NOT_BUILT)
        obstacle = conv2d_obstacle(
            kernel_quantizer=layer.kernel_quantizer, in_channels=int(layer.kernel.shape[2]) * layer.groups,
            groups=layer.groups, padding=layer.padding, pad_values=layer.pad_values,
            data_format=layer.data_format, target=target)
        return Verdict.refuse(obstacle) if obstacle else Verdict.bitpacked()


@register_rule(lq.layers.QuantDense)
class QuantDenseRule(Rule):
    """Binary QuantDense -> BinaryDenseAsConv2D (1x1 QuantConv2D, kernel reshaped to (1, 1, F, units))."""

    def check(self, layer, *, target: str) -> Verdict:
        if not is_binary(layer.input_quantizer):
            return Verdict.keep()
        if not layer.built:
            return Verdict.refuse(NOT_BUILT)
        obstacle = conv2d_obstacle(kernel_quantizer=layer.kernel_quantizer, in_channels=int(layer.kernel.shape[0]),
                                   groups=1, padding="valid", pad_values=0.0, data_format="channels_last",
                                   target=target)
        return Verdict.refuse(obstacle) if obstacle else Verdict.rewrite()

    def apply(self, layer, *, target: str) -> BinaryDenseAsConv2D:
        kernel, *rest = layer.get_weights()
        config = layer_config(layer)
        config["filters"] = config.pop("units")
        conv = from_config(lq.layers.QuantConv2D, {**config, "kernel_size": 1}, layer)
        replacement = BinaryDenseAsConv2D(conv, name=layer.name)
        replacement.build(tf.TensorShape([None, kernel.shape[0]]))
        replacement.set_weights([kernel.reshape((1, 1, *kernel.shape)), *rest])
        return replacement


@register_rule(lq.layers.QuantConv1D)
class QuantConv1DRule(Rule):
    """Binary QuantConv1D -> BinaryConv1DAsConv2D ((1, k) QuantConv2D on (B, 1, T, C))."""

    def check(self, layer, *, target: str) -> Verdict:
        if not is_binary(layer.input_quantizer):
            return Verdict.keep()
        if not layer.built:
            return Verdict.refuse(NOT_BUILT)
        if layer.padding == "causal":
            return Verdict.refuse("causal padding; LCE's binary conv pads both sides. Use padding='valid' after "
                                  "an explicit left padding, or padding='same'")
        obstacle = conv2d_obstacle(
            kernel_quantizer=layer.kernel_quantizer, in_channels=int(layer.kernel.shape[1]) * layer.groups,
            groups=layer.groups, padding=layer.padding, pad_values=layer.pad_values,
            data_format=layer.data_format, target=target)
        return Verdict.refuse(obstacle) if obstacle else Verdict.rewrite()

    def apply(self, layer, *, target: str) -> BinaryConv1DAsConv2D:
        kernel, *rest = layer.get_weights()
        config = layer_config(layer)
        config.update(kernel_size=(1, *layer.kernel_size), strides=(1, *layer.strides),
                      dilation_rate=(1, *layer.dilation_rate))
        replacement = BinaryConv1DAsConv2D(from_config(lq.layers.QuantConv2D, config, layer), name=layer.name)
        replacement.build(tf.TensorShape([None, None, kernel.shape[1] * layer.groups]))
        replacement.set_weights([kernel.reshape((1, *kernel.shape)), *rest])
        return replacement


class _NoKernel(Rule):
    """A binary layer type LCE has no bitpacked kernel for: refused with `reason` when its input is binary."""

    reason = ""

    def check(self, layer, *, target: str) -> Verdict:
        return Verdict.refuse(self.reason) if is_binary(getattr(layer, "input_quantizer", None)) else Verdict.keep()


_SEPARABLE = "LCE has no bitpacked separable convolution (only the 1x1 part of a depthwise + 1x1 pair can be)"
for _class, _reason in {
    lq.layers.QuantDepthwiseConv2D: "LCE has no bitpacked depthwise convolution",
    lq.layers.QuantSeparableConv1D: _SEPARABLE,
    lq.layers.QuantSeparableConv2D: _SEPARABLE,
    lq.layers.QuantConv2DTranspose: "LCE has no bitpacked transposed convolution",
    lq.layers.QuantConv3D: "LCE has no bitpacked 3D convolution",
    lq.layers.QuantConv3DTranspose: "LCE has no bitpacked 3D transposed convolution",
    lq.layers.QuantLocallyConnected1D: "LCE has no bitpacked locally connected layer",
    lq.layers.QuantLocallyConnected2D: "LCE has no bitpacked locally connected layer",
}.items():
    register_rule(_class)(type(f"{_class.__name__}Rule", (_NoKernel,), {"reason": _reason}))
