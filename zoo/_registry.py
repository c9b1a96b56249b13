"""The model registry: `architecture.dataset` names mapped to entry points that build Functional models.

An entry point is a plain function registered with `register_model`; it receives keyword arguments only
(`input_shape`, `num_classes`, `include_top`, `batch_size`, `binary`) and returns a `tf.keras.Model`. What a
name means for its pretrained weights lives apart, as data, in `keras_bnn.zoo.pretrained`.

A spec's `task` says what the model maps to what (`TASKS`): images to class probabilities, token ids to
next-token logits, or token ids to sentence-class logits.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from collections.abc import Callable

import tensorflow as tf

__all__ = ["ModelSpec", "Task", "TASKS", "register_model", "list_registered", "spec"]

EntryPoint = Callable[..., tf.keras.Model]


@dataclasses.dataclass(frozen=True)
class Task:
    """What the models of one task take and give.

    Attributes:
        inputs: The input, in words.
        outputs: The output, in words.
        examples: What one test example is (plural), e.g. "images".
        fixed_input: Whether pretrained weights fix the input shape (an image model's dense layers do; a text
            model reads token ids of any length its positions allow).
    """

    inputs: str
    outputs: str
    examples: str
    fixed_input: bool


TASKS: dict[str, Task] = {
    "image_classification": Task("float32 pixel values 0..255", "class probabilities (softmax)", "images",
                                 fixed_input=True),
    "language_modeling": Task("int32 character ids (batch, length)",
                              "next-character logits (batch, length, vocabulary)", "characters",
                              fixed_input=False),
    "text_classification": Task("int32 word ids (batch, length), 0 = padding", "class logits (batch, classes)",
                                "sentences", fixed_input=False),
}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one model name.

    Attributes:
        name: `architecture.dataset`, e.g. `"binarynet_mlp.mnist"`.
        entry_point: Builds the model from keyword arguments (see the module docstring).
        input_shape: Default input shape, without the batch dimension (None: any length of a text model).
        num_classes: Default number of classes of the classification head (a language model's vocabulary).
        dataset: The dataset the defaults (and any pretrained weights) are for.
        feature_layer: Name of the layer whose output is the model's output when `include_top=False`.
        summary: One line: what the architecture is.
        paper: Reference of the architecture.
        task: A key of `TASKS`.
    """

    name: str
    entry_point: EntryPoint
    input_shape: tuple[int | None, ...]
    num_classes: int
    dataset: str
    feature_layer: str
    summary: str
    paper: str
    task: str = "image_classification"

    @property
    def architecture(self) -> str:
        """The part of the name before the dot."""
        return self.name.split(".", 1)[0]


_SPECS: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    *,
    input_shape: tuple[int | None, ...],
    num_classes: int,
    dataset: str,
    feature_layer: str,
    summary: str,
    paper: str,
    task: str = "image_classification",
) -> Callable[[EntryPoint], EntryPoint]:
    """Decorator that registers a model entry point under `name` (`architecture.dataset`).

    Args:
        name: The registry name; must contain exactly one dot and be new.
        input_shape: Default input shape (no batch dimension).
        num_classes: Default number of output classes.
        dataset: Dataset the defaults are for.
        feature_layer: Layer whose output the model ends at when built with `include_top=False`.
        summary: One-line description for cards and listings.
        paper: Reference of the architecture.
        task: What the model does, a key of `TASKS`.

    Returns:
        The decorator, which returns the entry point unchanged.

    Raises:
        ValueError: `name` is malformed or already registered, or `task` is unknown.

    Example:
        >>> import keras_bnn
        >>> from keras_bnn.zoo import _registry
        >>> _registry.spec("binary_cnn.mnist").dataset
        'mnist'
    """
    if name.count(".") != 1 or not all(name.split(".")):
        raise ValueError(f"Model names are 'architecture.dataset' (one dot), got {name!r}.")
    if task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}.")

    def decorator(entry_point: EntryPoint) -> EntryPoint:
        if name in _SPECS:
            existing = _SPECS[name].entry_point
            if _same_definition(existing, entry_point):  # One module imported twice under two names.
                return entry_point
            owner = f"{existing.__module__}.{existing.__qualname__}"
            raise ValueError(f"Model {name!r} is already registered (by {owner}).")
        _SPECS[name] = ModelSpec(
            name=name,
            entry_point=entry_point,
            input_shape=tuple(input_shape),
            num_classes=num_classes,
            dataset=dataset,
            feature_layer=feature_layer,
            summary=summary,
            paper=paper,
            task=task,
        )
        return entry_point

    return decorator


def _same_definition(first: EntryPoint, second: EntryPoint) -> bool:
    """Whether two functions are the same definition, e.g. `keras_bnn.zoo.imagenet` loaded as `zoo.imagenet`."""
    return first.__qualname__ == second.__qualname__ and (
        first.__module__.rsplit(".", 1)[-1] == second.__module__.rsplit(".", 1)[-1]
    )


def list_registered(pattern: str = "*") -> list[str]:
    """Sorted registered names matching the shell-style `pattern` (`fnmatch`)."""
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a str such as '*.mnist', got {pattern!r}.")
    return sorted(name for name in _SPECS if fnmatch.fnmatchcase(name, pattern))


def spec(name: str) -> ModelSpec:
    """The `ModelSpec` of `name`.

    Raises:
        TypeError: `name` is not a str.
        ValueError: `name` is not registered; the message lists the closest registered names.
    """
    if not isinstance(name, str):
        raise TypeError(f"Model name must be a str such as 'binary_cnn.mnist', got {name!r}.")
    if name not in _SPECS:
        close = difflib.get_close_matches(name, list(_SPECS), n=3, cutoff=0.4)
        if not close:  # A bare architecture or dataset name: offer the names that contain it.
            close = [known for known in sorted(_SPECS) if name and name in known][:3]
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"Unknown model {name!r}.{hint} keras_bnn.zoo.list_models() gives all {len(_SPECS)} names."
        )
    return _SPECS[name]
