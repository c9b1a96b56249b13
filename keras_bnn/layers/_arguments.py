"""Argument checks of the sequence layers (the messages of `keras_bnn._validation`, without TensorFlow)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_fraction", "check_positive_int"]


def check_positive_int(name: str, value: Any, *, allow_none: bool = False) -> int | None:
    """`value` as an int; ValueError unless it is a positive integer (or None, with `allow_none`).

    Example:
        >>> check_positive_int("units", 3)
        3
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer{' or None' if allow_none else ''}, got {value!r}.")
    return int(value)


def check_fraction(name: str, value: Any, *, high_inclusive: bool = False) -> float:
    """`value` as a float; ValueError unless it is a number in [0, 1) (or [0, 1] with `high_inclusive`).

    Example:
        >>> check_fraction("dropout", 0.25)
        0.25
    """
    number = not isinstance(value, bool) and isinstance(value, (int, float, np.floating))
    if not number or not (0 <= value and (value <= 1 if high_inclusive else value < 1)):
        interval = "[0, 1]" if high_inclusive else "[0, 1)"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}.")
    return float(value)
