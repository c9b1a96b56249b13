"""larq's weight constraint on Keras 3: `WeightClip` (alias ``"weight_clip"``).

Example:
    >>> import keras_bnn
    >>> from keras import ops
    >>> clip = keras_bnn.constraints.get("weight_clip")
    >>> ops.convert_to_numpy(clip(ops.convert_to_tensor([-2.0, 0.5, 3.0]))).tolist()
    [-1.0, 0.5, 1.0]
"""

from __future__ import annotations

from typing import Any

import keras_bnn._backend_guard  # noqa: F401  (first: a missing JAX/PyTorch names its extra)
import keras
from keras import ops

from keras_bnn.quantizers.base import PACKAGE

__all__ = ["WeightClip", "get", "weight_clip"]


@keras.saving.register_keras_serializable(package=PACKAGE)
class WeightClip(keras.constraints.Constraint):
    """Clip weights to [-clip_value, clip_value] after each update (larq's `WeightClip`)."""

    def __init__(self, clip_value: float = 1.0):
        if isinstance(clip_value, bool) or not isinstance(clip_value, (int, float)) or clip_value <= 0:
            raise ValueError(f"clip_value must be a positive number, got {clip_value!r}.")
        self.clip_value = clip_value

    def __call__(self, w):
        return ops.clip(w, -self.clip_value, self.clip_value)

    def get_config(self) -> dict[str, Any]:
        return {"clip_value": self.clip_value}


@keras.saving.register_keras_serializable(package=PACKAGE)
class weight_clip(WeightClip):  # noqa: N801  (larq's name)
    """larq's alias of `WeightClip`."""


_ALIASES = {"weight_clip": WeightClip, "WeightClip": WeightClip}


def get(identifier: Any) -> Any:
    """A constraint from None, ``"weight_clip"``, a config dict, a Keras constraint name or a callable."""
    if isinstance(identifier, str) and identifier in _ALIASES:
        return _ALIASES[identifier]()
    if isinstance(identifier, dict) and "module" not in identifier and identifier.get("class_name") in _ALIASES:
        return _ALIASES[identifier["class_name"]](**(identifier.get("config") or {}))
    return keras.constraints.get(identifier)
