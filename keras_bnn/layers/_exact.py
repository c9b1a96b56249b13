"""Binary convolutions whose ties are exact, as they are in a bitpacked kernel (Keras 3, every backend).

A binary kernel scaled per output channel (XNOR-Net's α = mean|W|, Bi-Real, PCNN) is ``±c``. Convolving the ±1
inputs with ``±c`` in float32 rounds every partial sum, so an output that is exactly 0 in real arithmetic comes out
as a residue of about ±1e-7, and the next sign flips where Larq Compute Engine, which counts bits exactly and
scales afterwards, gives 0 (sign +1). Convolving with the ±1 kernel first is exact in float32 (integer sums up to
2^24 terms) and the one multiplication by c afterwards rounds the same way as LCE's output transform.

A float op between two binary layers (an average pool, a real shortcut) still rounds: ties through it are not exact.
"""

from __future__ import annotations

from keras import ops

from keras_bnn.quantizers import is_binary

__all__ = ["ExactScaleMixin"]


class ExactScaleMixin:
    """For a quantized convolution with a binary kernel quantizer: convolve with the ±1 kernel, then scale.

    Mix it in before a `QuantConv2D` subclass (``class MyConv(ExactScaleMixin, QuantConv2D)``). It overrides the
    ``convolution_op(inputs, kernel)`` hook, which those layers call with the quantized input and the quantized
    kernel: the kernel is split into its per-output-channel magnitude ``c = max |kernel|`` and ``kernel / c``
    (exactly ±1 for a ``±c`` kernel; any other kernel gives the same product up to rounding), the convolution runs
    with ``kernel / c`` and its output is multiplied by ``c``. An all-zero output channel stays 0. Layers whose
    ``kernel_quantizer`` is not binary are unchanged.

    Example:
        >>> import keras, keras_bnn
        >>> from keras_bnn.layers._exact import ExactScaleMixin
        >>> class ExactConv(ExactScaleMixin, keras_bnn.layers.QuantConv2D):
        ...     pass
        >>> layer = ExactConv(2, 3, input_quantizer="ste_sign", kernel_quantizer="magnitude_aware_sign")
        >>> tuple(layer(keras.ops.ones((1, 4, 4, 3))).shape)
        (1, 2, 2, 2)
    """

    def build(self, input_shape):
        super().build(input_shape)
        # Decided once, eagerly: `is_binary` may probe a plain function, which cannot run inside a traced call.
        self._exact_scale = is_binary(getattr(self, "kernel_quantizer", None))

    def convolution_op(self, inputs, kernel):
        exact_scale = getattr(self, "_exact_scale", None)
        if exact_scale is None:
            exact_scale = is_binary(getattr(self, "kernel_quantizer", None))
        if not exact_scale:
            return super().convolution_op(inputs, kernel)
        magnitude = ops.max(ops.abs(kernel), axis=tuple(range(len(kernel.shape) - 1)))
        magnitude = ops.where(ops.greater(magnitude, 0.0), magnitude, ops.ones_like(magnitude))
        return ops.multiply(super().convolution_op(inputs, ops.divide(kernel, magnitude)), magnitude)
