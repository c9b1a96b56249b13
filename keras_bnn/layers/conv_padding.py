"""larq's ``pad_values`` for convolutions on Keras 3: SAME padding with a constant other than 0.

A binary convolution padded with zeros sees a third input value (0) next to ±1; larq's ``pad_values=1.0`` pads with
+1 instead, which keeps the padded input binary (what Larq Compute Engine bitpacks without a correction). It is done
as an explicit `ops.pad` followed by a VALID convolution, with TensorFlow's split of the SAME padding (the extra
pixel after). Keras' causal padding (Conv1D) is done the same way, with zeros, so that every convolution of a
quantized layer goes through one padding path.

Example:
    >>> same_padding(5, 3, 1, 1), same_padding(6, 3, 2, 1)
    ((1, 1), (0, 1))
"""

from __future__ import annotations

from typing import Any

from keras import ops

__all__ = ["PadValuesMixin", "same_padding"]


def same_padding(size, kernel: int, stride: int, dilation: int) -> tuple[Any, Any]:
    """(before, after) padding that makes a VALID convolution give SAME's output (TensorFlow's split).

    `size` may be a Python int or, for a dimension unknown until run time, a scalar tensor.

    Example:
        >>> same_padding(7, 3, 2, 1)
        (1, 1)
    """
    effective = (kernel - 1) * dilation + 1
    output = (size + stride - 1) // stride
    needed = (output - 1) * stride + effective - size
    total = max(needed, 0) if isinstance(needed, int) else ops.maximum(needed, 0)
    return total // 2, total - total // 2


class PadValuesMixin:
    """larq's ``pad_values`` argument for a Keras convolution class (mixed in before it).

    Subclasses call `_set_pad_values(pad_values)` in ``__init__`` (after Keras' ``__init__``, which sets
    ``padding``), and `_padded(inputs)` before convolving: it returns the inputs to convolve and the padding
    argument to convolve them with.
    """

    def _set_pad_values(self, pad_values: float) -> None:
        if isinstance(pad_values, bool) or not isinstance(pad_values, (int, float)):
            raise ValueError(f"pad_values must be a number, got {pad_values!r}.")
        if self.padding == "causal" and pad_values != 0:
            raise ValueError("Causal padding with `pad_values != 0` is not supported.")
        self.pad_values = float(pad_values)

    def _spatial_axes(self) -> range:
        return range(1, self.rank + 1) if self.data_format == "channels_last" else range(2, self.rank + 2)

    def _padded(self, inputs, value: float | None = None) -> tuple[Any, str]:
        """(inputs, padding): `inputs` padded explicitly and "valid", or as they are and the layer's padding.

        `value` replaces ``pad_values`` as the SAME padding constant (the choice of explicit padding is the same).
        """
        if self.padding == "causal":
            left = self.dilation_rate[0] * (self.kernel_size[0] - 1)
            pads = [(0, 0), (left, 0), (0, 0)] if self.data_format == "channels_last" else [(0, 0), (0, 0),
                                                                                              (left, 0)]
            return ops.pad(inputs, pads), "valid"
        if self.padding != "same" or self.pad_values == 0.0:
            return inputs, self.padding
        pads = []
        for axis, kernel, stride, dilation in zip(self._spatial_axes(), self.kernel_size, self.strides,
                                                  self.dilation_rate):
            size = inputs.shape[axis]
            pads.append(same_padding(ops.shape(inputs)[axis] if size is None else size, kernel, stride, dilation))
        pads = [(0, 0), *pads, (0, 0)] if self.data_format == "channels_last" else [(0, 0), (0, 0), *pads]
        value = self.pad_values if value is None else value
        return ops.pad(inputs, pads, constant_values=value), "valid"

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pad_values": self.pad_values}
