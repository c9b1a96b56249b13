"""larq's weight constraint on Keras 3: `WeightClip` (alias ``"weight_clip"``, larq's class `weight_clip`).

Example:
    >>> import keras_bnn
    >>> from keras import ops
    >>> clip = keras_bnn.constraints.get("weight_clip")
    >>> ops.convert_to_numpy(clip(ops.convert_to_tensor([-2.0, 0.5, 3.0]))).tolist()
    [-1.0, 0.5, 1.0]
"""

from __future__ import annotations

import math
from typing import Any

import keras_bnn._backend_guard  # noqa: F401  (first: a missing JAX/PyTorch names its extra)
import keras
from keras import ops

from keras_bnn.quantizers.base import PACKAGE

__all__ = ["WeightClip", "get", "weight_clip"]


@keras.saving.register_keras_serializable(package=PACKAGE)
class WeightClip(keras.constraints.Constraint):
    """Clip weights to [-clip_value, clip_value] after each optimizer step (larq's `WeightClip`).

    Args:
        clip_value: The bound (a positive number).

    Raises:
        ValueError: `clip_value` is not a positive number.

    Example:
        >>> from keras import ops
        >>> ops.convert_to_numpy(WeightClip(0.5)(ops.convert_to_tensor([-2.0, 0.25]))).tolist()
        [-0.5, 0.25]
    """

    def __init__(self, clip_value: float = 1):
        if (isinstance(clip_value, bool) or not isinstance(clip_value, (int, float)) or math.isnan(clip_value)
                or clip_value <= 0):
            raise ValueError(f"WeightClip clip_value must be a positive number, got {clip_value!r}.")
        self.clip_value = clip_value

    def __call__(self, w):
        return ops.clip(w, -self.clip_value, self.clip_value)

    def get_config(self) -> dict[str, Any]:
        return {"clip_value": self.clip_value}


@keras.saving.register_keras_serializable(package=PACKAGE)
class weight_clip(WeightClip):  # noqa: N801  (larq's name)
    """larq's alias of `WeightClip` (a subclass, as in larq)."""


_ALIASES = {"weight_clip": weight_clip, "WeightClip": WeightClip}


def get(identifier: Any) -> Any:
    """A constraint from None, ``"weight_clip"``/``"WeightClip"``, a config dict (Keras 3's, or larq's with or
    without ``module``), a Keras constraint name or a callable.

    Raises:
        ValueError: an identifier neither larq's names nor Keras can interpret.

    Example:
        >>> import keras_bnn
        >>> keras_bnn.constraints.get({"class_name": "WeightClip", "config": {"clip_value": 0.5}}).clip_value
        0.5
    """
    if isinstance(identifier, str) and identifier in _ALIASES:
        return _ALIASES[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _ALIASES:
        module = identifier.get("module")
        if module is None or str(module).startswith("larq"):
            return _ALIASES[identifier["class_name"]](**(identifier.get("config") or {}))
    return keras.constraints.get(identifier)
