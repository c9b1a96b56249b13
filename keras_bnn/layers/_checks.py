"""Argument and shape checks shared by keras-bnn's own layers (backend-neutral: plain Python on shapes)."""

from __future__ import annotations

from collections.abc import Sequence


def check_channels_last(class_name: str, data_format: str | None) -> None:
    """Raise ValueError unless `data_format` is None or "channels_last" (LCE's only layout)."""
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{class_name} supports data_format='channels_last' only, got {data_format!r}.")


def check_input_rank(layer_name: str, input_shape: Sequence[int | None], rank: int, meaning: str) -> None:
    """Raise ValueError unless `input_shape` has exactly `rank` dimensions (batch included)."""
    if len(input_shape) != rank:
        raise ValueError(f"Layer {layer_name!r} expects inputs of rank {rank} {meaning}, but got shape "
                         f"{tuple(input_shape)} (rank {len(input_shape)}).")


def check_kernel_fits(layer_name: str, spatial_shape: Sequence[int | None], kernel_size: Sequence[int],
                      dilation_rate: Sequence[int], padding: str) -> None:
    """Raise ValueError when a VALID-padded kernel is larger than the input it slides over."""
    if padding != "valid":
        return
    for size, kernel, dilation in zip(spatial_shape, kernel_size, dilation_rate):
        if size is not None and (kernel - 1) * dilation + 1 > size:
            raise ValueError(
                f"Layer {layer_name!r}: kernel_size {tuple(kernel_size)} (dilation {tuple(dilation_rate)}) does not "
                f"fit the spatial input shape {tuple(spatial_shape)} with padding='valid'. Use a smaller kernel or "
                "padding='same'.")
