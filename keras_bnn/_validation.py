"""Argument and input checks shared across keras_bnn: clear errors that name the argument and the bad value.

TensorFlow is imported only by `check_input_rank` (the tf-keras layers' check), so the Keras 3 layers can use the
rest on every backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def check_positive_int(name: str, value: Any, *, allow_none: bool = False) -> int | None:
    """`value` as an int; ValueError unless it is a positive integer (or None, with `allow_none`).

    Example:
        >>> from keras_bnn._validation import check_positive_int
        >>> check_positive_int("units", 3)
        3
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer{' or None' if allow_none else ''}, got {value!r}.")
    return int(value)


def check_fraction(name: str, value: Any, *, high_inclusive: bool = False) -> float:
    """`value` as a float; ValueError unless it is a number in [0, 1) (or [0, 1] with `high_inclusive`)."""
    number = not isinstance(value, bool) and isinstance(value, (int, float, np.floating))
    if not number or not (0 <= value and (value <= 1 if high_inclusive else value < 1)):
        interval = "[0, 1]" if high_inclusive else "[0, 1)"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}.")
    return float(value)


def check_input_rank(layer_name: str, input_shape: Any, rank: int, meaning: str) -> None:
    """Raise ValueError unless `input_shape` has exactly `rank` dimensions.

    Args:
        layer_name: Name of the layer, for the message.
        input_shape: Shape the layer is built with.
        rank: Expected number of dimensions, batch included.
        meaning: What the dimensions are, e.g. "(batch, height, width, channels)".
    """
    import tensorflow as tf

    input_shape = tf.TensorShape(input_shape)
    if input_shape.rank != rank:
        raise ValueError(
            f"Layer {layer_name!r} expects inputs of rank {rank} {meaning}, "
            f"but got shape {input_shape} (rank {input_shape.rank})."
        )


def check_kernel_fits(
    layer_name: str,
    spatial_shape: Sequence[int | None],
    kernel_size: Sequence[int],
    dilation_rate: Sequence[int],
    padding: str,
) -> None:
    """Raise ValueError when a VALID-padded kernel is larger than the input it slides over."""
    if padding != "valid":
        return
    for size, kernel, dilation in zip(spatial_shape, kernel_size, dilation_rate):
        effective = (kernel - 1) * dilation + 1
        if size is not None and effective > size:
            raise ValueError(
                f"Layer {layer_name!r}: kernel_size {tuple(kernel_size)} (dilation {tuple(dilation_rate)}) "
                f"does not fit the spatial input shape {tuple(spatial_shape)} with padding='valid'. "
                "Use a smaller kernel or padding='same'."
            )


def check_channels_last(class_name: str, layer_kwargs: dict) -> None:
    """Raise ValueError unless `layer_kwargs` leaves `data_format` unset or "channels_last" (LCE's only layout)."""
    data_format = layer_kwargs.get("data_format", "channels_last")
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{class_name} supports data_format='channels_last' only, got {data_format!r}.")
