"""larq's `QuantConv2DTranspose` and `QuantConv3DTranspose` on Keras 3: transposed convolutions with quantized input
and kernel.

Same arguments (order and defaults) and config keys as larq 0.14 (no ``pad_values``: larq has none for transposed
convolutions); weight names as Keras' (``kernel``, ``bias``).

Example:
    >>> import keras, keras_bnn
    >>> layer = keras_bnn.layers.QuantConv2DTranspose(2, 3, strides=2, padding="same",
    ...                                               input_quantizer="ste_sign", kernel_quantizer="ste_sign")
    >>> tuple(layer(keras.ops.ones((1, 4, 4, 3))).shape)
    (1, 8, 8, 2)
"""

from __future__ import annotations

import keras
from keras import ops

from keras_bnn.layers.quantized import bias_and_activation
from keras_bnn.layers.quantized_base import QuantizerBase, drop_tf_keras_entries
from keras_bnn.quantizers.base import PACKAGE

__all__ = ["QuantConv2DTranspose", "QuantConv3DTranspose"]


class _QuantConvTranspose(QuantizerBase):
    """The quantized part of QuantConv2DTranspose/3DTranspose: Keras' transposed convolution of the quantized
    input with the quantized kernel. Keras 3's transposed convolutions have no ``groups``; the ``groups: 1`` of
    tf-keras' (so larq's) configs is accepted and dropped."""

    def __init__(self, *args, **kwargs):
        drop_tf_keras_entries(kwargs, ("groups",))
        super().__init__(*args, **kwargs)

    def call(self, inputs):
        outputs = ops.conv_transpose(self.quantize_input(inputs), self.quantized("kernel"), strides=list(self.strides),
                                     padding=self.padding, output_padding=self.output_padding,
                                     dilation_rate=self.dilation_rate, data_format=self.data_format)
        return bias_and_activation(self, outputs, self.filters)


def _transpose_class(base: type, name: str, doc: str) -> type:
    """A larq `QuantConv{2D,3D}Transpose` class over Keras' `base`, with larq's signature (order and defaults)."""
    one = (1, 1) if base is keras.layers.Conv2DTranspose else (1, 1, 1)

    def __init__(self, filters, kernel_size, strides=one, padding="valid", output_padding=None, data_format=None,
                 dilation_rate=one, activation=None, use_bias=True, input_quantizer=None, kernel_quantizer=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 metrics=None, **kwargs):
        _QuantConvTranspose.__init__(
            self, filters, kernel_size, strides=strides, padding=padding, output_padding=output_padding,
            data_format=data_format, dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
            input_quantizer=input_quantizer, kernel_quantizer=kernel_quantizer,
            kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint, metrics=metrics, **kwargs)

    cls = type(name, (_QuantConvTranspose, base), {"__init__": __init__, "__doc__": doc, "__module__": __name__})
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


QuantConv2DTranspose = _transpose_class(keras.layers.Conv2DTranspose, "QuantConv2DTranspose", """larq's
    `QuantConv2DTranspose`: Conv2DTranspose with quantized input and kernel.

    Example:
        >>> import keras, keras_bnn
        >>> layer = keras_bnn.layers.QuantConv2DTranspose(2, 2, kernel_quantizer="ste_sign")
        >>> tuple(layer(keras.ops.ones((1, 3, 3, 1))).shape)
        (1, 4, 4, 2)
    """)
QuantConv3DTranspose = _transpose_class(keras.layers.Conv3DTranspose, "QuantConv3DTranspose", """larq's
    `QuantConv3DTranspose`: Conv3DTranspose with quantized input and kernel.

    Example:
        >>> import keras, keras_bnn
        >>> layer = keras_bnn.layers.QuantConv3DTranspose(2, 2, kernel_quantizer="ste_sign")
        >>> tuple(layer(keras.ops.ones((1, 2, 2, 2, 1))).shape)
        (1, 3, 3, 3, 2)
    """)
