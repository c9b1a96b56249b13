"""larq's `QuantSeparableConv1D` and `QuantSeparableConv2D` on Keras 3: separable convolutions whose input,
depthwise kernel and pointwise kernel are quantized.

Same arguments (order and defaults) and config keys as larq 0.14 (``depthwise_quantizer``,
``pointwise_quantizer``, ``pad_values``, ...); weight names as Keras' (``depthwise_kernel``, ``pointwise_kernel``,
``bias``).

Example:
    >>> import keras, keras_bnn
    >>> layer = keras_bnn.layers.QuantSeparableConv2D(4, 3, padding="same", pad_values=1.0,
    ...     input_quantizer="ste_sign", depthwise_quantizer="ste_sign", pointwise_quantizer="ste_sign")
    >>> tuple(layer(keras.ops.ones((1, 5, 5, 2))).shape)
    (1, 5, 5, 4)
"""

from __future__ import annotations

from typing import ClassVar

import keras
from keras import ops

from keras_bnn.layers.conv_padding import PadValuesMixin
from keras_bnn.layers.quantized import bias_and_activation
from keras_bnn.layers.quantized_base import QuantizerBase, drop_tf_keras_entries

# Conv entries of tf-keras' (so larq's) configs that Keras 3's class has no argument for: accepted, dropped.
_TF_KERAS_ENTRIES = ("groups", "kernel_initializer", "kernel_regularizer", "kernel_constraint")
from keras_bnn.quantizers.base import PACKAGE

__all__ = ["QuantSeparableConv1D", "QuantSeparableConv2D"]


class _QuantSeparable(PadValuesMixin, QuantizerBase):
    """The quantized part of QuantSeparableConv1D/2D: pad (``pad_values``), then Keras' separable convolution with
    the quantized depthwise and pointwise kernels."""

    quantized_weights: ClassVar[dict[str, str]] = {"depthwise_kernel": "depthwise_quantizer",
                                                   "pointwise_kernel": "pointwise_quantizer"}

    def __init__(self, filters, kernel_size, *, pad_values=0.0, **kwargs):
        drop_tf_keras_entries(kwargs, _TF_KERAS_ENTRIES)
        super().__init__(filters, kernel_size, **kwargs)
        self._set_pad_values(pad_values)

    def call(self, inputs):
        inputs, padding = self._padded(self.quantize_input(inputs))
        outputs = ops.separable_conv(inputs, self.quantized("depthwise_kernel"), self.quantized("pointwise_kernel"),
                                     strides=self.strides, padding=padding, dilation_rate=self.dilation_rate,
                                     data_format=self.data_format)
        return bias_and_activation(self, outputs, self.filters)


def _separable_class(base: type, name: str, doc: str) -> type:
    """A larq `QuantSeparableConv{1D,2D}` class over Keras' `base`, with larq's signature (order and defaults)."""
    one = 1 if base is keras.layers.SeparableConv1D else (1, 1)

    def __init__(self, filters, kernel_size, strides=one, padding="valid", pad_values=0.0, data_format=None,
                 dilation_rate=one, depth_multiplier=1, activation=None, use_bias=True, input_quantizer=None,
                 depthwise_quantizer=None, pointwise_quantizer=None, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None, metrics=None, **kwargs):
        _QuantSeparable.__init__(
            self, filters, kernel_size, strides=strides, padding=padding, pad_values=pad_values,
            data_format=data_format, dilation_rate=dilation_rate, depth_multiplier=depth_multiplier,
            activation=activation, use_bias=use_bias, input_quantizer=input_quantizer,
            depthwise_quantizer=depthwise_quantizer, pointwise_quantizer=pointwise_quantizer,
            depthwise_initializer=depthwise_initializer, pointwise_initializer=pointwise_initializer,
            bias_initializer=bias_initializer, depthwise_regularizer=depthwise_regularizer,
            pointwise_regularizer=pointwise_regularizer, bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer, depthwise_constraint=depthwise_constraint,
            pointwise_constraint=pointwise_constraint, bias_constraint=bias_constraint, metrics=metrics, **kwargs)

    cls = type(name, (_QuantSeparable, base), {"__init__": __init__, "__doc__": doc, "__module__": __name__})
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


QuantSeparableConv1D = _separable_class(keras.layers.SeparableConv1D, "QuantSeparableConv1D", """larq's
    `QuantSeparableConv1D`: SeparableConv1D with quantized input, depthwise and pointwise kernels, and `pad_values`.

    Example:
        >>> import keras, keras_bnn
        >>> layer = keras_bnn.layers.QuantSeparableConv1D(3, 2, depthwise_quantizer="ste_sign")
        >>> tuple(layer(keras.ops.ones((1, 5, 2))).shape)
        (1, 4, 3)
    """)
QuantSeparableConv2D = _separable_class(keras.layers.SeparableConv2D, "QuantSeparableConv2D", """larq's
    `QuantSeparableConv2D`: SeparableConv2D with quantized input, depthwise and pointwise kernels, and `pad_values`.

    Example:
        >>> import keras, keras_bnn
        >>> layer = keras_bnn.layers.QuantSeparableConv2D(3, 2, pointwise_quantizer="ste_sign")
        >>> tuple(layer(keras.ops.ones((1, 4, 4, 2))).shape)
        (1, 3, 3, 3)
    """)
