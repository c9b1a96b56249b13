"""Bi-Real Net block on Keras 3: binary convolution + BatchNorm + real-valued shortcut (Liu et al., ECCV 2018)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_bnn.layers._checks import check_channels_last, check_input_rank, check_kernel_fits
from keras_bnn.layers._exact import ExactScaleMixin
from keras_bnn.layers.quantized import QuantConv2D
from keras_bnn.quantizers.base import PACKAGE

__all__ = ["BiRealConv2D"]


@keras.saving.register_keras_serializable(package=PACKAGE)
class BiRealConv2D(ExactScaleMixin, QuantConv2D):
    """Bi-Real Net block: `BN(binary_conv(x)) + shortcut(x)`, with a real-valued shortcut.

    The layer *is* a `QuantConv2D` (so `keras_bnn.models.summary` sees its binary kernel and input quantizer),
    followed by a BatchNormalization (sublayer `batch_norm`) and the real identity shortcut that carries the
    real-valued activations past the binary convolution. When the stride is not 1 or the channel count changes,
    the shortcut is, as in the paper's downsampling block, AvgPool(stride) + real 1×1 convolution + BatchNorm
    (sublayers `shortcut_pool`, `shortcut_conv`, `shortcut_norm`). The binary convolution runs with the ±1 kernel
    and scales afterwards (`ExactScaleMixin`).

    Paper defaults: ApproxSign input quantizer, magnitude-aware sign weights (scale mean|W| per output channel,
    which LCE folds into `LceBconv2d`), 3×3 kernel, SAME padding with +1 values. Every quantizer can be
    overridden. `activation`, if given, is applied after the addition. Arguments, config and weight names are
    those of the tf-keras `keras_bnn.legacy.layers.BiRealConv2D`.

    Args:
        filters: Output channels.
        kernel_size: Kernel height and width. Default 3.
        strides: Stride of the binary convolution (and of the shortcut's average pooling).
        padding: "same" (default) or "valid". With "valid" the identity shortcut needs a matching shape, so it
            is only allowed for a 1×1 kernel.
        pad_values: SAME padding value. Default 1.0 (binary padding).
        activation: Applied to the sum (default None).
        use_bias: Default False (BatchNorm follows).
        input_quantizer: Default "approx_sign" (Bi-Real's approximation of the sign's derivative).
        kernel_quantizer: Default "magnitude_aware_sign".
        kernel_constraint: Default "weight_clip".
        momentum: BatchNorm momentum (both norms).
        epsilon: BatchNorm epsilon (both norms).
        shortcut_kernel_initializer: Initializer of the real 1×1 shortcut convolution.
        **kwargs: Any other `QuantConv2D` argument.

    Example:
        >>> import keras, keras_bnn
        >>> block = keras_bnn.layers.BiRealConv2D(32, strides=2)
        >>> tuple(block(keras.ops.ones((2, 16, 16, 16))).shape)
        (2, 8, 8, 32)
    """

    def __init__(self, filters: int, kernel_size: int | tuple[int, int] = 3, strides: int | tuple[int, int] = (1, 1),
                 padding: str = "same", pad_values: float = 1.0, activation: Any = None, use_bias: bool = False,
                 input_quantizer: Any = "approx_sign", kernel_quantizer: Any = "magnitude_aware_sign",
                 kernel_constraint: Any = "weight_clip", momentum: float = 0.99, epsilon: float = 1e-3,
                 shortcut_kernel_initializer: Any = "he_normal", **kwargs: Any):
        check_channels_last("BiRealConv2D", kwargs.get("data_format"))
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}.")
        if epsilon <= 0:
            raise ValueError(f"epsilon must be positive, got {epsilon!r}.")
        super().__init__(filters, kernel_size, strides=strides, padding=padding, pad_values=pad_values,
                         activation=None, input_quantizer=input_quantizer, kernel_quantizer=kernel_quantizer,
                         kernel_constraint=kernel_constraint, use_bias=use_bias, **kwargs)
        if self.padding not in ("same", "valid"):
            raise ValueError(f"BiRealConv2D padding must be 'same' or 'valid', got {padding!r}.")
        if self.padding == "valid" and tuple(self.kernel_size) != (1, 1):
            raise ValueError(
                f"BiRealConv2D with padding='valid' and kernel_size {tuple(self.kernel_size)} changes the spatial "
                "size, which the shortcut cannot follow; use padding='same'.")
        self.output_activation = keras.activations.get(activation)
        self.momentum = momentum
        self.epsilon = epsilon
        self.shortcut_kernel_initializer = keras.initializers.get(shortcut_kernel_initializer)
        self._projection = None

    @property
    def has_projection_shortcut(self) -> bool:
        """True when the shortcut is AvgPool + 1×1 conv + BN instead of the identity (known once built)."""
        if self._projection is None:
            raise ValueError(f"Layer {self.name!r} is not built yet: its shortcut depends on the input shape.")
        return self._projection

    def build(self, input_shape):
        check_input_rank(self.name, input_shape, 4, "(batch, height, width, channels)")
        check_kernel_fits(self.name, input_shape[1:3], self.kernel_size, self.dilation_rate, self.padding)
        super().build(input_shape)
        conv_shape = self.compute_output_shape(input_shape)
        self.batch_norm = keras.layers.BatchNormalization(momentum=self.momentum, epsilon=self.epsilon,
                                                          name="batch_norm")
        self.batch_norm.build(conv_shape)
        self._projection = tuple(self.strides) != (1, 1) or input_shape[-1] != self.filters
        if self._projection:
            self.shortcut_pool = keras.layers.AveragePooling2D(pool_size=self.strides, strides=self.strides,
                                                               padding="same", name="shortcut_pool")
            pooled_shape = self.shortcut_pool.compute_output_shape(input_shape)
            self.shortcut_conv = keras.layers.Conv2D(self.filters, 1, use_bias=False, name="shortcut_conv",
                                                     kernel_initializer=self.shortcut_kernel_initializer)
            self.shortcut_conv.build(pooled_shape)
            self.shortcut_norm = keras.layers.BatchNormalization(momentum=self.momentum, epsilon=self.epsilon,
                                                                 name="shortcut_norm")
            self.shortcut_norm.build(self.shortcut_conv.compute_output_shape(pooled_shape))

    def call(self, inputs, training=None):
        residual = self.batch_norm(super().call(inputs), training=training)
        shortcut = inputs
        if self._projection:
            shortcut = self.shortcut_norm(self.shortcut_conv(self.shortcut_pool(inputs)), training=training)
        outputs = ops.add(residual, shortcut)
        if self.output_activation is not None:
            outputs = self.output_activation(outputs)
        return outputs

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "activation": keras.activations.serialize(self.output_activation),
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "shortcut_kernel_initializer": keras.initializers.serialize(self.shortcut_kernel_initializer),
        }
