"""larq's quantized layers on Keras 3: `QuantDense` and the quantized convolutions.

Same names, arguments (``input_quantizer``, ``kernel_quantizer``, ``pad_values``, ...) and config keys as larq;
weight names as Keras' (``kernel``, ``bias``).

Example:
    >>> import keras, keras_bnn
    >>> layer = keras_bnn.layers.QuantConv2D(4, 3, padding="same", pad_values=1.0, input_quantizer="ste_sign",
    ...                                      kernel_quantizer="ste_sign", kernel_constraint="weight_clip")
    >>> tuple(layer(keras.ops.ones((1, 5, 5, 2))).shape)
    (1, 5, 5, 4)
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_bnn.layers.quantized_base import QuantizerBase
from keras_bnn.quantizers.base import PACKAGE

__all__ = ["QuantConv1D", "QuantConv2D", "QuantConv3D", "QuantDense", "same_padding"]


def _bias_and_activation(layer, outputs, channels: int):
    """`outputs` + the layer's bias (on the channel axis) through its activation, as Keras' layers do."""
    if getattr(layer, "use_bias", False) and layer.bias is not None:
        if getattr(layer, "data_format", "channels_last") == "channels_first" and len(outputs.shape) > 2:
            shape = (1, channels) + (1,) * (len(outputs.shape) - 2)
        else:
            shape = (1,) * (len(outputs.shape) - 1) + (channels,)
        outputs = ops.add(outputs, ops.reshape(layer.bias, shape))
    if layer.activation is not None:
        outputs = layer.activation(outputs)
    return outputs


@keras.saving.register_keras_serializable(package=PACKAGE)
class QuantDense(QuantizerBase, keras.layers.Dense):
    """larq's `QuantDense`: a Dense layer whose input and kernel are quantized.

    Example:
        >>> import keras, keras_bnn
        >>> layer = keras_bnn.layers.QuantDense(3, input_quantizer="ste_sign", kernel_quantizer="ste_sign")
        >>> tuple(layer(keras.ops.ones((2, 4))).shape)
        (2, 3)
    """

    def __init__(self, units: int, activation=None, use_bias: bool = True, input_quantizer=None,
                 kernel_quantizer=None, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, metrics=None, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias, input_quantizer=input_quantizer,
                         kernel_quantizer=kernel_quantizer, kernel_initializer=kernel_initializer,
                         bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
                         bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
                         kernel_constraint=kernel_constraint, bias_constraint=bias_constraint, metrics=metrics,
                         **kwargs)

    def call(self, inputs, training=None):
        outputs = ops.matmul(self.quantize_input(inputs), self.quantized("kernel"))
        return _bias_and_activation(self, outputs, self.units)


def same_padding(size: int | None, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """(before, after) padding that makes a VALID convolution give SAME's output (TensorFlow's split)."""
    effective = (kernel - 1) * dilation + 1
    output = (size + stride - 1) // stride
    total = max((output - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


class _QuantConv(QuantizerBase):
    """The quantized-convolution part shared by QuantConv1D/2D/3D: larq's `pad_values` (SAME padding with a
    constant other than 0, done as an explicit pad + VALID) in Keras' `convolution_op` hook."""

    def __init__(self, *args, pad_values: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        if isinstance(pad_values, bool) or not isinstance(pad_values, (int, float)):
            raise ValueError(f"pad_values must be a number, got {pad_values!r}.")
        self.pad_values = float(pad_values)

    def _explicit_padding(self, inputs) -> list[tuple[int, int]] | None:
        if self.padding != "same" or self.pad_values == 0.0:
            return None
        spatial = (range(1, self.rank + 1) if self.data_format == "channels_last"
                   else range(2, self.rank + 2))
        pads = [same_padding(inputs.shape[axis], k, s, d) for axis, k, s, d in
                zip(spatial, self.kernel_size, self.strides, self.dilation_rate)]
        if self.data_format == "channels_last":
            return [(0, 0), *pads, (0, 0)]
        return [(0, 0), (0, 0), *pads]

    def convolution_op(self, inputs, kernel):
        inputs = self.quantize_input(inputs)
        kernel = self.quantized("kernel", kernel)
        padding = self._explicit_padding(inputs)
        if padding is None:
            return super().convolution_op(inputs, kernel)
        inputs = ops.pad(inputs, padding, constant_values=self.pad_values)
        return ops.conv(inputs, kernel, strides=list(self.strides), padding="valid",
                        dilation_rate=self.dilation_rate, data_format=self.data_format)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pad_values": self.pad_values}


def _conv_class(base: type, name: str, doc: str) -> type:
    def __init__(self, filters, kernel_size, strides=1, padding="valid", pad_values=0.0, data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True, input_quantizer=None,
                 kernel_quantizer=None, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, metrics=None, **kwargs):
        _QuantConv.__init__(
            self, filters, kernel_size, strides=strides, padding=padding, pad_values=pad_values,
            data_format=data_format, dilation_rate=dilation_rate, groups=groups, activation=activation,
            use_bias=use_bias, input_quantizer=input_quantizer, kernel_quantizer=kernel_quantizer,
            kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint, metrics=metrics, **kwargs)

    cls = type(name, (_QuantConv, base), {"__init__": __init__, "__doc__": doc, "__module__": __name__})
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


QuantConv1D = _conv_class(keras.layers.Conv1D, "QuantConv1D",
                          "larq's `QuantConv1D`: Conv1D with quantized input and kernel, and `pad_values`.")
QuantConv2D = _conv_class(keras.layers.Conv2D, "QuantConv2D",
                          "larq's `QuantConv2D`: Conv2D with quantized input and kernel, and `pad_values`.")
QuantConv3D = _conv_class(keras.layers.Conv3D, "QuantConv3D",
                          "larq's `QuantConv3D`: Conv3D with quantized input and kernel, and `pad_values`.")
