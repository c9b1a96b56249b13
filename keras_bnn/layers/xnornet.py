"""XNOR-Net binary convolution (Rastegari et al., ECCV 2016) on Keras 3 (every backend)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_bnn.layers._checks import check_channels_last, check_input_rank, check_kernel_fits
from keras_bnn.layers._exact import ExactScaleMixin
from keras_bnn.layers.quantized import QuantConv2D
from keras_bnn.quantizers.base import PACKAGE

__all__ = ["XNORConv2D"]


@keras.saving.register_keras_serializable(package=PACKAGE)
class XNORConv2D(ExactScaleMixin, QuantConv2D):
    """XNOR-Net binary 2D convolution: sign(I) ⊛ sign(W), scaled by α = mean|W| per output channel.

    The weight scale α is the ``magnitude_aware_sign`` kernel quantizer (α = mean |W| over the kernel's height,
    width and input channels, one per output channel), so the binarized kernel is ±α per output channel. Larq
    Compute Engine folds such a per-output-channel scale into `LceBconv2d`'s output multiplier. The convolution
    runs with the ±1 kernel and scales afterwards (`ExactScaleMixin`), so ties are exact as in LCE.

    XNOR-Net also scales by the input magnitude K = (mean over channels of |I|) ⊛ (box filter of the kernel's
    size). That is ``input_scaling=True`` (off by default: it adds a float reduction, a box filter and a multiply
    per output pixel, which LCE runs as separate float ops next to the bitpacked convolution).

    All `QuantConv2D` arguments are accepted; only the defaults below differ. `data_format` must be
    "channels_last" (the only layout LCE supports). Arguments, config and weight names are those of the tf-keras
    `keras_bnn.legacy.layers.XNORConv2D`.

    Args:
        filters: Number of output channels.
        kernel_size: Height and width of the kernel (int or pair).
        strides: Stride (int or pair).
        padding: "valid" or "same".
        pad_values: Value used for SAME padding. Default 1.0: padding with +1 keeps the padded input binary.
        use_bias: Default False (a BatchNormalization usually follows).
        input_quantizer: Quantizer of the input activations. Default "ste_sign".
        kernel_quantizer: Quantizer of the kernel. Default "magnitude_aware_sign" (α = mean|W|).
        kernel_constraint: Default "weight_clip" (clip to [-1, 1]), which keeps latent weights where the
            straight-through gradient is non-zero.
        input_scaling: Multiply the output by XNOR-Net's input magnitude map K.
        **kwargs: Any other `QuantConv2D` argument.

    Example:
        >>> import keras, keras_bnn
        >>> layer = keras_bnn.layers.XNORConv2D(16, 3, padding="same")
        >>> tuple(layer(keras.ops.ones((2, 8, 8, 4))).shape)
        (2, 8, 8, 16)
    """

    def __init__(self, filters: int, kernel_size: int | tuple[int, int], strides: int | tuple[int, int] = (1, 1),
                 padding: str = "valid", pad_values: float = 1.0, use_bias: bool = False,
                 input_quantizer: Any = "ste_sign", kernel_quantizer: Any = "magnitude_aware_sign",
                 kernel_constraint: Any = "weight_clip", input_scaling: bool = False, **kwargs: Any):
        check_channels_last("XNORConv2D", kwargs.get("data_format"))
        if not isinstance(input_scaling, bool):
            raise TypeError(f"input_scaling must be a bool, got {input_scaling!r}.")
        super().__init__(filters, kernel_size, strides=strides, padding=padding, pad_values=pad_values,
                         input_quantizer=input_quantizer, kernel_quantizer=kernel_quantizer,
                         kernel_constraint=kernel_constraint, use_bias=use_bias, **kwargs)
        self.input_scaling = input_scaling

    def build(self, input_shape):
        check_input_rank(self.name, input_shape, 4, "(batch, height, width, channels)")
        check_kernel_fits(self.name, input_shape[1:3], self.kernel_size, self.dilation_rate, self.padding)
        super().build(input_shape)

    def call(self, inputs):
        outputs = super().call(inputs)
        if not self.input_scaling:
            return outputs
        return ops.multiply(outputs, self._input_magnitude(inputs))

    def _input_magnitude(self, inputs):
        """K: channel-mean of |I| averaged over each kernel window (padded like the convolution, with
        |pad_values|)."""
        magnitude = ops.mean(ops.abs(inputs), axis=-1, keepdims=True)
        magnitude, padding = self._padded(magnitude, abs(self.pad_values))
        height, width = self.kernel_size
        box = ops.full((height, width, 1, 1), 1.0 / (height * width), dtype=magnitude.dtype)
        return ops.conv(magnitude, box, strides=list(self.strides), padding=padding,
                        dilation_rate=self.dilation_rate, data_format="channels_last")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "input_scaling": self.input_scaling}
