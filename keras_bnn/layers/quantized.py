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

from keras_bnn.layers.conv_padding import PadValuesMixin, same_padding
from keras_bnn.layers.quantized_base import QuantizerBase
from keras_bnn.quantizers.base import PACKAGE

__all__ = ["QuantConv1D", "QuantConv2D", "QuantConv3D", "QuantDense", "bias_and_activation", "same_padding"]


def bias_and_activation(layer, outputs, channels: int):
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
        return bias_and_activation(self, outputs, self.units)

    def get_config(self) -> dict[str, Any]:
        # Keras 3's Dense leaves its activity_regularizer out of the config; tf-keras' (so larq's) keeps it.
        return {**super().get_config(),
                "activity_regularizer": keras.regularizers.serialize(self.activity_regularizer)}


class _QuantConv(PadValuesMixin, QuantizerBase):
    """The quantized-convolution part shared by QuantConv1D/2D/3D (and XNORConv2D, BiRealConv2D): quantize the
    input and the kernel, then `convolution_op(quantized_inputs, quantized_kernel)`, which pads (larq's
    `pad_values`, Keras' causal padding) and convolves. A subclass that changes how the quantized kernel is applied
    (see `ExactScaleMixin`) overrides `convolution_op`."""

    def __init__(self, *args, pad_values: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self._set_pad_values(pad_values)

    def convolution_op(self, inputs, kernel):
        inputs, padding = self._padded(inputs)
        return ops.conv(inputs, kernel, strides=list(self.strides), padding=padding,
                        dilation_rate=self.dilation_rate, data_format=self.data_format)

    def call(self, inputs):
        outputs = self.convolution_op(self.quantize_input(inputs), self.quantized("kernel"))
        return bias_and_activation(self, outputs, self.filters)


def _conv_class(base: type, name: str, doc: str, data_format: str | None = None) -> type:
    """A larq `Quant{Conv1D,2D,3D}` class over Keras' `base`, with larq's signature (order and defaults)."""
    one = 1 if base is keras.layers.Conv1D else (1,) * (2 if base is keras.layers.Conv2D else 3)

    def __init__(self, filters, kernel_size, strides=one, padding="valid", pad_values=0.0, data_format=data_format,
                 dilation_rate=one, groups=1, activation=None, use_bias=True, input_quantizer=None,
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


QuantConv1D = _conv_class(keras.layers.Conv1D, "QuantConv1D", """larq's `QuantConv1D`: Conv1D with quantized input
    and kernel, and `pad_values` (causal padding as Keras', with zeros).

    Example:
        >>> import keras, keras_bnn
        >>> layer = keras_bnn.layers.QuantConv1D(2, 3, padding="causal", kernel_quantizer="ste_sign")
        >>> tuple(layer(keras.ops.ones((1, 6, 4))).shape)
        (1, 6, 2)
    """, data_format="channels_last")
QuantConv2D = _conv_class(keras.layers.Conv2D, "QuantConv2D", """larq's `QuantConv2D`: Conv2D with quantized input
    and kernel, and `pad_values`.

    Example:
        >>> import keras, keras_bnn
        >>> layer = keras_bnn.layers.QuantConv2D(2, 3, strides=2, padding="same", pad_values=1.0,
        ...                                      input_quantizer="ste_sign", kernel_quantizer="ste_sign")
        >>> tuple(layer(keras.ops.ones((1, 5, 5, 3))).shape)
        (1, 3, 3, 2)
    """)
QuantConv3D = _conv_class(keras.layers.Conv3D, "QuantConv3D", """larq's `QuantConv3D`: Conv3D with quantized input
    and kernel, and `pad_values`.

    Example:
        >>> import keras, keras_bnn
        >>> layer = keras_bnn.layers.QuantConv3D(2, 2, kernel_quantizer="ste_sign")
        >>> tuple(layer(keras.ops.ones((1, 3, 3, 3, 1))).shape)
        (1, 2, 2, 2, 2)
    """)
