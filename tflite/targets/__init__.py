"""Conversion targets as plug-ins: what kind of flatbuffer ``keras_bnn.tflite.convert(model, kernels=...)`` makes.

A target takes the model and its options and returns the flatbuffer with what it could not do. Built in:

* ``"lce"`` (:mod:`keras_bnn.tflite.targets.lce`): a Larq Compute Engine flatbuffer in which every binary matmul
  is a bitpacked ``LceBconv2d`` (for LCE's runtime on ARM phones and Raspberry Pi);
* ``"int8"`` (:mod:`keras_bnn.tflite.targets.int8`): TFLite builtin int8 ops only, binary layers exact as integer
  thresholds (stock LiteRT and TFLite, TFLite Micro, int8 accelerators);
* ``"float"`` (:mod:`keras_bnn.tflite.targets.float`): stock TFLite float ops, the reference to measure against.

A new target registers with :func:`register_target`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf

from keras_bnn.tflite.audit import NotBitpackedLayer

__all__ = ["Target", "TargetOutput", "get_target", "register_target", "target_names"]


@dataclasses.dataclass
class TargetOutput:
    """What a target made.

    Attributes:
        flatbuffer: The bytes.
        not_bitpacked: Binary layers that stay in float, with the reason (each was warned about).
        bitpacked_layers: Number of binary layers that run bitpacked (LCE) or as exact integer ops (int8); 0 makes
            ``convert`` warn that the model has no binary layer; None: the target does not bitpack (float).
        notes: Anything else the user should know (e.g. layers used as they are because they cannot be copied).
    """

    flatbuffer: bytes
    not_bitpacked: list[NotBitpackedLayer]
    bitpacked_layers: int | None
    notes: list[str] = dataclasses.field(default_factory=list)


class Target:
    """Base class of conversion targets: `validate` the options before any work, then `convert`."""

    name = ""

    def validate(self, model: tf.keras.Model, options: dict[str, Any]) -> None:
        """Raise TypeError/ValueError for options this target does not accept."""

    def convert(self, model: tf.keras.Model, *, strict: bool, batch_size: int | None,
                options: dict[str, Any]) -> TargetOutput:
        raise NotImplementedError


_TARGETS: dict[str, Target] = {}


def register_target(target: Target) -> Target:
    """Make ``convert(model, kernels=target.name)`` use `target`."""
    _TARGETS[target.name] = target
    return target


def target_names() -> list[str]:
    return sorted(_TARGETS)


def get_target(name: Any) -> Target:
    """The target called `name`; ValueError naming the known ones otherwise."""
    if not isinstance(name, str) or name not in _TARGETS:
        raise ValueError(f"kernels must be one of {', '.join(map(repr, target_names()))}, got {name!r}")
    return _TARGETS[name]
