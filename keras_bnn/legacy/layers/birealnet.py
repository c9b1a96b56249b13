"""Bi-Real Net block: binary convolution + BatchNorm + real-valued shortcut (Liu et al., ECCV 2018)."""

from __future__ import annotations

from typing import Any

import larq
import tensorflow as tf

from keras_bnn.legacy.layers._exact import ExactScaleMixin
from keras_bnn._validation import check_channels_last, check_input_rank, check_kernel_fits


@tf.keras.utils.register_keras_serializable(package="keras_bnn")
class BiRealConv2D(ExactScaleMixin, larq.layers.QuantConv2D):
    """Bi-Real Net block: `BN(binary_conv(x)) + shortcut(x)`, with a real-valued shortcut.

    The layer *is* a `larq.layers.QuantConv2D` (so larq's tools see its binary kernel and input quantizer),
    followed by a BatchNormalization (sublayer `batch_norm`) and the real identity shortcut that carries the
    real-valued activations past the binary convolution. When the stride is not 1 or the channel count
    changes, the shortcut is, as in the paper's downsampling block, AvgPool(stride) + real 1×1 convolution +
    BatchNorm (sublayers `shortcut_pool`, `shortcut_conv`, `shortcut_norm`).

    Paper defaults: ApproxSign input quantizer (its piecewise-polynomial gradient), magnitude-aware sign
    weights (scale mean|W| per output channel, which LCE folds into `LceBconv2d`), 3×3 kernel, SAME
    padding with +1 values (binary padding, bitpacked on every LCE target). Every quantizer can be overridden.

    `activation`, if given, is applied after the addition (a Bi-Real block has none; the next block's input
    quantizer is its nonlinearity).

    In `larq.models.summary` the binary kernel counts as 1-bit parameters and its MACs as binary MACs. The
    block's 32-bit parameters (BatchNorm, shortcut convolution) are listed in the same row; larq counts each
    32-bit weight of a convolution-like layer as MACs per output pixel, so the BatchNorm parameters appear there
    as 4 float operations per output element (a fused inference BatchNorm costs 1 multiply-add).

    Args:
        filters: Output channels.
        kernel_size: Kernel height and width. Default 3.
        strides: Stride of the binary convolution (and of the shortcut's average pooling).
        padding: "same" (default) or "valid". With "valid" the identity shortcut needs a matching shape, so
            it is only allowed for a 1×1 kernel.
        pad_values: SAME padding value. Default 1.0 (binary padding).
        input_quantizer: Default "approx_sign" (Bi-Real's approximation of the sign's derivative).
        kernel_quantizer: Default "magnitude_aware_sign".
        kernel_constraint: Default "weight_clip".
        use_bias: Default False (BatchNorm follows).
        momentum: BatchNorm momentum (both norms).
        epsilon: BatchNorm epsilon (both norms).
        shortcut_kernel_initializer: Initializer of the real 1×1 shortcut convolution.
        **kwargs: Any other `larq.layers.QuantConv2D` argument.

    Example:
        >>> import keras_bnn, tensorflow as tf
        >>> block = keras_bnn.legacy.layers.BiRealConv2D(32, strides=2)
        >>> block(tf.ones((2, 16, 16, 16))).shape
        TensorShape([2, 8, 8, 32])
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int] = 3,
        strides: int | tuple[int, int] = (1, 1),
        padding: str = "same",
        pad_values: float = 1.0,
        activation: Any = None,
        use_bias: bool = False,
        input_quantizer: Any = "approx_sign",
        kernel_quantizer: Any = "magnitude_aware_sign",
        kernel_constraint: Any = "weight_clip",
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        shortcut_kernel_initializer: Any = "he_normal",
        **kwargs: Any,
    ):
        check_channels_last("BiRealConv2D", kwargs)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}.")
        if epsilon <= 0:
            raise ValueError(f"epsilon must be positive, got {epsilon!r}.")
        super().__init__(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            pad_values=pad_values,
            activation=None,
            input_quantizer=input_quantizer,
            kernel_quantizer=kernel_quantizer,
            kernel_constraint=kernel_constraint,
            use_bias=use_bias,
            **kwargs,
        )
        if self.padding not in ("same", "valid"):
            raise ValueError(f"BiRealConv2D padding must be 'same' or 'valid', got {padding!r}.")
        if self.padding == "valid" and tuple(self.kernel_size) != (1, 1):
            raise ValueError(
                f"BiRealConv2D with padding='valid' and kernel_size {tuple(self.kernel_size)} changes the "
                "spatial size, which the shortcut cannot follow; use padding='same'."
            )
        self.output_activation = tf.keras.activations.get(activation)
        self.momentum = momentum
        self.epsilon = epsilon
        self.shortcut_kernel_initializer = tf.keras.initializers.get(shortcut_kernel_initializer)

    @property
    def has_projection_shortcut(self) -> bool:
        """True when the shortcut is AvgPool + 1×1 conv + BN instead of the identity."""
        return self._projection

    def build(self, input_shape: tf.TensorShape) -> None:
        input_shape = tf.TensorShape(input_shape)
        check_input_rank(self.name, input_shape, 4, "(batch, height, width, channels)")
        check_kernel_fits(self.name, input_shape[1:3], self.kernel_size, self.dilation_rate, self.padding)
        super().build(input_shape)
        conv_shape = super().compute_output_shape(input_shape)
        self.batch_norm = tf.keras.layers.BatchNormalization(
            momentum=self.momentum, epsilon=self.epsilon, name="batch_norm"
        )
        with tf.name_scope(self.batch_norm.name):
            self.batch_norm.build(conv_shape)
        self._projection = tuple(self.strides) != (1, 1) or input_shape[-1] != self.filters
        if self._projection:
            self.shortcut_pool = tf.keras.layers.AveragePooling2D(
                pool_size=self.strides, strides=self.strides, padding="same", name="shortcut_pool"
            )
            pooled_shape = self.shortcut_pool.compute_output_shape(input_shape)
            self.shortcut_conv = tf.keras.layers.Conv2D(
                self.filters,
                1,
                use_bias=False,
                kernel_initializer=self.shortcut_kernel_initializer,
                name="shortcut_conv",
            )
            with tf.name_scope(self.shortcut_conv.name):
                self.shortcut_conv.build(pooled_shape)
            self.shortcut_norm = tf.keras.layers.BatchNormalization(
                momentum=self.momentum, epsilon=self.epsilon, name="shortcut_norm"
            )
            with tf.name_scope(self.shortcut_norm.name):
                self.shortcut_norm.build(self.shortcut_conv.compute_output_shape(pooled_shape))

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        residual = self.batch_norm(super().call(inputs), training=training)
        shortcut = inputs
        if self._projection:
            shortcut = self.shortcut_norm(
                self.shortcut_conv(self.shortcut_pool(inputs)), training=training
            )
        outputs = residual + shortcut
        if self.output_activation is not None:
            outputs = self.output_activation(outputs)
        return outputs

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "activation": tf.keras.activations.serialize(self.output_activation),
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "shortcut_kernel_initializer": tf.keras.initializers.serialize(self.shortcut_kernel_initializer),
        }
