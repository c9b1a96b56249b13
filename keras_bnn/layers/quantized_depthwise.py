"""larq's `QuantDepthwiseConv2D` on Keras 3: a depthwise convolution with quantized input and depthwise kernel.

Same arguments (order and defaults) and config keys as larq 0.14 (``depthwise_quantizer``, ``pad_values``, ...);
the weight names are Keras 3's (``kernel``, ``bias``: Keras 3's DepthwiseConv2D calls its depthwise kernel
``kernel``; tf-keras called it ``depthwise_kernel``).

Example:
    >>> import keras, keras_bnn
    >>> layer = keras_bnn.layers.QuantDepthwiseConv2D(3, padding="same", pad_values=1.0,
    ...                                               input_quantizer="ste_sign", depthwise_quantizer="ste_sign")
    >>> tuple(layer(keras.ops.ones((1, 5, 5, 2))).shape)
    (1, 5, 5, 2)
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

__all__ = ["QuantDepthwiseConv2D"]


@keras.saving.register_keras_serializable(package=PACKAGE)
class QuantDepthwiseConv2D(PadValuesMixin, QuantizerBase, keras.layers.DepthwiseConv2D):
    """larq's `QuantDepthwiseConv2D`: DepthwiseConv2D with quantized input (``input_quantizer``) and depthwise
    kernel (``depthwise_quantizer``), and SAME padding with ``pad_values``.

    Example:
        >>> import keras, keras_bnn
        >>> layer = keras_bnn.layers.QuantDepthwiseConv2D(3, depth_multiplier=2, depthwise_quantizer="ste_sign",
        ...                                               depthwise_constraint="weight_clip")
        >>> tuple(layer(keras.ops.ones((1, 4, 4, 3))).shape)
        (1, 2, 2, 6)
    """

    quantized_weights: ClassVar[dict[str, str]] = {"kernel": "depthwise_quantizer"}

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", pad_values=0.0, depth_multiplier=1,
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True, input_quantizer=None,
                 depthwise_quantizer=None, depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, metrics=None, **kwargs):
        drop_tf_keras_entries(kwargs, _TF_KERAS_ENTRIES)
        super().__init__(
            kernel_size=kernel_size, strides=strides, padding=padding, depth_multiplier=depth_multiplier,
            data_format=data_format, dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
            input_quantizer=input_quantizer, depthwise_quantizer=depthwise_quantizer,
            depthwise_initializer=depthwise_initializer, bias_initializer=bias_initializer,
            depthwise_regularizer=depthwise_regularizer, bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer, depthwise_constraint=depthwise_constraint,
            bias_constraint=bias_constraint, metrics=metrics, **kwargs)
        self._set_pad_values(pad_values)

    def call(self, inputs):
        inputs, padding = self._padded(self.quantize_input(inputs))
        outputs = ops.depthwise_conv(inputs, self.quantized("kernel"), strides=self.strides, padding=padding,
                                     dilation_rate=self.dilation_rate, data_format=self.data_format)
        channels = self.depth_multiplier * self._get_input_channel(inputs.shape)
        return bias_and_activation(self, outputs, channels)
