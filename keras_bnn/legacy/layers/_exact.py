"""Binary convolutions whose ties are exact in Keras, as they are in a bitpacked kernel.

A binary kernel scaled per output channel (XNOR-Net's α = mean|W|, Bi-Real, PCNN) is ``±c``. Convolving the ±1
inputs with ``±c`` in float32 rounds every partial sum, so an output that is exactly 0 in real arithmetic comes out
as a residue of about ±1e-7, and the next sign flips where Larq Compute Engine, which counts bits exactly and
scales afterwards, gives 0 (sign +1). Convolving with the ±1 kernel first is exact in float32 (integer sums up to
2^24 terms) and the one multiplication by c afterwards rounds the same way as LCE's output transform.

A float op between two binary layers (an average pool, a real shortcut) still rounds: ties through it are not exact.
"""

from __future__ import annotations

import tensorflow as tf

from keras_bnn._compat import is_binary_quantizer

__all__ = ["ExactScaleMixin"]


class ExactScaleMixin:
    """For a ``tf.keras`` convolution with a binary kernel quantizer: convolve with the ±1 kernel, then scale.

    Overrides Keras' ``convolution_op(inputs, kernel)`` hook: the kernel is split into its per-output-channel
    magnitude ``c = max |kernel|`` and ``kernel / c`` (exactly ±1 for a ``±c`` kernel; any other kernel gives the
    same product up to rounding). Layers with a real kernel quantizer are unchanged.
    """

    def convolution_op(self, inputs: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        if not is_binary_quantizer(getattr(self, "kernel_quantizer", None)):
            return super().convolution_op(inputs, kernel)
        magnitude = tf.reduce_max(tf.abs(kernel), axis=list(range(kernel.shape.rank - 1)))
        magnitude = tf.where(magnitude > 0, magnitude, tf.ones_like(magnitude))  # an all-zero channel stays 0
        return super().convolution_op(inputs, kernel / magnitude) * magnitude
