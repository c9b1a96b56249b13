"""What LCE bitpacks, and helpers shared by the rules: LCE's constraints on a binary Conv2D, copying layers."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from keras_bnn.legacy.quantizers import is_binary
from keras_bnn.tflite.flatbuffer import BITPACK_WIDTH

__all__ = ["NOT_BUILT", "conv2d_obstacle"]


def _quantizer_name(quantizer: Any) -> str:
    return "None" if quantizer is None else getattr(quantizer, "__name__", type(quantizer).__name__)


def conv2d_obstacle(*, kernel_quantizer: Any, in_channels: int, groups: int, padding: str, pad_values: Any,
                    data_format: str, target: str) -> str | None:
    """Why LCE would not bitpack a Conv2D with a binary input quantizer and these settings (None: it will)."""
    if not is_binary(kernel_quantizer):
        return (f"its input is binarized but its kernel quantizer {_quantizer_name(kernel_quantizer)} is not "
                "binary; LCE needs +-1 weights (up to a per-output-channel scale)")
    if data_format != "channels_last":
        return f"data_format={data_format!r}; LCE bitpacks channels_last convolutions only"
    if groups > 1 and (in_channels // groups) % BITPACK_WIDTH:
        return (f"{in_channels // groups} input channels per group ({in_channels} channels, groups={groups}); "
                f"LCE needs a multiple of {BITPACK_WIDTH}")
    if padding == "same":
        value = float(tf.keras.backend.get_value(pad_values))
        if value not in (0.0, 1.0):
            return f"SAME padding with pad_values={value:g}; LCE bitpacks pad_values 0 or 1 only"
        if value == 0.0 and target != "arm":
            return (f"SAME padding with pad_values=0 is bitpacked for target 'arm' only (got {target!r}); "
                    "use pad_values=1")
    return None


NOT_BUILT = "the layer is not built, so its weights cannot be converted"
