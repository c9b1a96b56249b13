"""XNOR-Net binary convolution (Rastegari et al., ECCV 2016)."""

from __future__ import annotations

from typing import Any

import larq
import tensorflow as tf

from keras_bnn import _compat
from keras_bnn.legacy.layers._exact import ExactScaleMixin
from keras_bnn._validation import check_channels_last, check_input_rank, check_kernel_fits


@tf.keras.utils.register_keras_serializable(package="keras_bnn")
class XNORConv2D(ExactScaleMixin, larq.layers.QuantConv2D):
    """XNOR-Net binary 2D convolution: sign(I) ⊛ sign(W), scaled by α = mean|W| per output channel.

    The weight scale α is larq's `magnitude_aware_sign` kernel quantizer (α = mean |W| over the kernel's
    height, width and input channels, one per output channel), so the binarized kernel is ±α per output
    channel. Larq Compute Engine folds such a per-output-channel scale into `LceBconv2d`'s output
    multiplier, so the scaling costs nothing at inference (a test checks the converted op list).

    XNOR-Net also scales by the input magnitude K = (mean over channels of |I|) ⊛ (box filter of the kernel's
    size). That is `input_scaling=True` (off by default: it adds a float reduction, a box filter and a
    multiply per output pixel, which LCE runs as separate float ops next to the bitpacked convolution; many
    reproductions drop it with little loss).

    All `larq.layers.QuantConv2D` / `tf.keras.layers.Conv2D` arguments are accepted; only the defaults below
    differ. `data_format` must be "channels_last" (the only layout LCE supports).

    Args:
        filters: Number of output channels.
        kernel_size: Height and width of the kernel (int or pair).
        strides: Stride (int or pair).
        padding: "valid" or "same".
        pad_values: Value used for SAME padding. Default 1.0: padding with +1 keeps the padded input binary,
            which LCE runs without a correction term on every target.
        input_quantizer: Quantizer of the input activations. Default "ste_sign".
        kernel_quantizer: Quantizer of the kernel. Default "magnitude_aware_sign" (α = mean|W|).
        kernel_constraint: Default "weight_clip" (larq's clip to [-1, 1]), which keeps latent weights where the
            straight-through gradient is non-zero.
        use_bias: Default False (a BatchNormalization usually follows).
        input_scaling: Multiply the output by XNOR-Net's input magnitude map K.
        **kwargs: Any other `larq.layers.QuantConv2D` argument.

    Example:
        >>> import keras_bnn, tensorflow as tf
        >>> layer = keras_bnn.legacy.layers.XNORConv2D(16, 3, padding="same")
        >>> layer(tf.ones((2, 8, 8, 4))).shape
        TensorShape([2, 8, 8, 16])
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        strides: int | tuple[int, int] = (1, 1),
        padding: str = "valid",
        pad_values: float = 1.0,
        use_bias: bool = False,
        input_quantizer: Any = "ste_sign",
        kernel_quantizer: Any = "magnitude_aware_sign",
        kernel_constraint: Any = "weight_clip",
        input_scaling: bool = False,
        **kwargs: Any,
    ):
        check_channels_last("XNORConv2D", kwargs)
        if not isinstance(input_scaling, bool):
            raise TypeError(f"input_scaling must be a bool, got {input_scaling!r}.")
        self.input_scaling = input_scaling
        super().__init__(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            pad_values=pad_values,
            input_quantizer=input_quantizer,
            kernel_quantizer=kernel_quantizer,
            kernel_constraint=kernel_constraint,
            use_bias=use_bias,
            **kwargs,
        )

    def build(self, input_shape: tf.TensorShape) -> None:
        input_shape = tf.TensorShape(input_shape)
        check_input_rank(self.name, input_shape, 4, "(batch, height, width, channels)")
        check_kernel_fits(self.name, input_shape[1:3], self.kernel_size, self.dilation_rate, self.padding)
        super().build(input_shape)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        outputs = super().call(inputs)
        if not self.input_scaling:
            return outputs
        return outputs * self._input_magnitude(inputs)

    def _input_magnitude(self, inputs: tf.Tensor) -> tf.Tensor:
        """K: channel-mean of |I| averaged over each kernel window (zero/|pad_values| padded like the conv)."""
        magnitude = tf.reduce_mean(tf.abs(inputs), axis=-1, keepdims=True)
        padding = self.padding.upper()
        pads = _compat.larq_explicit_padding(self, inputs)
        if pads is not None:
            magnitude = tf.pad(magnitude, pads, constant_values=abs(float(self.pad_values)))
            padding = "VALID"
        box = tf.ones((*self.kernel_size, 1, 1), dtype=magnitude.dtype) / float(
            self.kernel_size[0] * self.kernel_size[1]
        )
        return tf.nn.conv2d(magnitude, box, strides=self.strides, padding=padding, dilations=self.dilation_rate)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "input_scaling": self.input_scaling}
