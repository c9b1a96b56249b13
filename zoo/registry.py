"""The zoo as data: one :class:`ZooEntry` per model name, defined next to the model's builder.

A name is ``architecture.tag`` (one architecture can have several entries, e.g. several weight sets); an entry
holds everything known about that model: how to build it (`builder` and its defaults), what it does (`task`), its
pretrained weights and their measured scores (:class:`Pretrained`), the recipe that trains them
(``keras_bnn.zoo.training.recipes``), figures from its paper, and the name of the Markdown file (package data in
``zoo/cards/``) that holds the card's prose. Entries register themselves with :func:`register` when their family
module is imported (``keras_bnn.zoo.models``).

Example:
    >>> import keras_bnn.zoo as zoo
    >>> entry = zoo.entry("binary_cnn.mnist")
    >>> entry.architecture, entry.tag, entry.pretrained.metric, entry.pretrained.test_score
    ('binary_cnn', 'mnist', 'top1_accuracy', 0.9938)
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["METRICS", "TASKS", "Metric", "Pretrained", "Task", "ZooEntry", "entry", "list_registered", "register"]


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
class Metric:
    """A card metric.

    Attributes:
        label: Its name in cards and in `keras-bnn zoo evaluate`.
        higher_is_better: Whether a larger value is better.
        decimals: Decimals a card states (of the percentage for an accuracy); `evaluate` matches the card at this
            precision (for an accuracy that is the exact count of correct examples).
        percent: Whether it prints as a percentage.
    """

    label: str
    higher_is_better: bool
    decimals: int
    percent: bool

    def format(self, value: float | None) -> str:
        """The value as a card states it, e.g. `"99.38%"` or `"2.0123 bpc"`; `"-"` for None."""
        if value is None:
            return "-"
        return f"{value:.{self.decimals}%}" if self.percent else f"{value:.{self.decimals}f} bpc"


METRICS: dict[str, Metric] = {
    "top1_accuracy": Metric("top-1 accuracy", higher_is_better=True, decimals=2, percent=True),
    "bits_per_character": Metric("bits per character", higher_is_better=False, decimals=4, percent=False),
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Pretrained:
    """One set of pretrained weights and what was measured with it (keyword arguments only).

    Attributes:
        weights_file: File name in `zoo/weights/` (compact `.npz`, see `keras_bnn.zoo.weights`).
        sha256: Hex sha256 of that file; checked before every load.
        size_bytes: Size of that file.
        metric: A key of `METRICS`.
        scores: The metric by split: each key a split as ``keras_bnn.datasets.load`` names it (``"test"``,
            ``"train[90%:]"``) or a described held-out part of one; values measured from the compact file.
        test_split: The key of `scores` a card states as its test figure (GLUE SST-2 has no public test labels,
            so its dev set, ``"validation"``, is the test split there).
        test_examples: Number of examples of the test figure (images, sentences, or predicted characters).
        float_twin_scores: The same architecture without quantizers, by split (empty when not trained).
        preprocessing: What the model expects as input.
        flatbuffer_bytes: Size of the LCE flatbuffer from ``keras_bnn.tflite.convert`` (batch 1).
        bitpacked_share: Share of binary MACs that run bitpacked in that flatbuffer (None: no binary MACs).
        flatbuffer_macs: MACs of one inference of that flatbuffer by category (``keras_bnn.tflite.inspect``), or
            None when not recorded. A text model's card counts MACs from here.
        epochs: Training epochs (or passes over the training streams).
        seed: Training seed.
        train_wall_time_s: Wall time of training, in seconds.
        command: The one command that trains the model and writes this file.
        license: License of the weights and data.
        url: Release URL of the weights file, or None when it only ships inside the package.
    """

    weights_file: str
    sha256: str
    size_bytes: int
    metric: str
    scores: Mapping[str, float]
    test_split: str
    test_examples: int
    float_twin_scores: Mapping[str, float] = dataclasses.field(default_factory=dict)
    preprocessing: str
    flatbuffer_bytes: int
    bitpacked_share: float | None
    flatbuffer_macs: Mapping[str, int] | None = None
    epochs: int
    seed: int
    train_wall_time_s: float
    command: str
    license: str
    url: str | None = None

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {sorted(METRICS)}, got {self.metric!r}.")
        if self.test_split not in self.scores:
            raise ValueError(f"scores {dict(self.scores)} have no value for the test split {self.test_split!r}.")

    @property
    def test_score(self) -> float:
        """The card's test figure, in the unit of `metric`."""
        return self.scores[self.test_split]

    @property
    def float_twin_test_score(self) -> float | None:
        """The float twin's test figure, or None."""
        return self.float_twin_scores.get(self.test_split)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ZooEntry:
    """Everything the zoo knows about one model name.

    Attributes:
        name: ``architecture.tag``, e.g. ``"binarynet_mlp.mnist"``.
        builder: Builds the model from keyword arguments (`input_shape`, `num_classes`, `include_top`,
            `batch_size`, `binary`; text models also others, see their builders).
        task: A key of `TASKS`.
        dataset: The dataset the defaults (and any pretrained weights) are for (a ``keras_bnn.datasets`` name).
        input_shape: Default input shape, without the batch dimension (None: any length of a text model).
        num_classes: Default number of classes of the head (a language model's vocabulary).
        feature_layer: Name of the layer whose output is the model's output when `include_top=False`.
        summary: One paragraph: what the architecture is.
        paper: Reference of the architecture.
        pretrained: The weights trained here, or None for a definition only.
        recipe: How the weights were trained (``keras_bnn.zoo.training.recipes``), or None.
        paper_figures: Figures of the paper to compare the definition's counts with, or None.
        card: File name of the card's prose in ``zoo/cards/`` (None: no prose).
    """

    name: str
    builder: Callable[..., Any]
    task: str
    dataset: str
    input_shape: tuple[int | None, ...]
    num_classes: int
    feature_layer: str
    summary: str
    paper: str
    pretrained: Pretrained | None = None
    recipe: Any = None
    paper_figures: Mapping[str, float] | None = None
    card: str | None = None

    def __post_init__(self) -> None:
        if self.name.count(".") != 1 or not all(self.name.split(".")):
            raise ValueError(f"Model names are 'architecture.tag' (one dot), got {self.name!r}.")
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {sorted(TASKS)}, got {self.task!r}.")

    @property
    def architecture(self) -> str:
        """The part of the name before the dot."""
        return self.name.split(".", 1)[0]

    @property
    def tag(self) -> str:
        """The part of the name after the dot (the dataset, or a weight set's name)."""
        return self.name.split(".", 1)[1]


_ENTRIES: dict[str, ZooEntry] = {}


def register(new: ZooEntry) -> ZooEntry:
    """Add an entry to the zoo.

    Raises:
        ValueError: the name is already registered by another entry.
    """
    existing = _ENTRIES.get(new.name)
    if existing is not None and existing.builder.__qualname__ != new.builder.__qualname__:
        raise ValueError(f"Model {new.name!r} is already registered (by {existing.builder.__module__}).")
    _ENTRIES[new.name] = new
    return new


def list_registered(pattern: str = "*") -> list[str]:
    """Sorted registered names matching the shell-style `pattern` (`fnmatch`)."""
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a str such as '*.mnist', got {pattern!r}.")
    return sorted(name for name in _ENTRIES if fnmatch.fnmatchcase(name, pattern))


def entry(name: str) -> ZooEntry:
    """The :class:`ZooEntry` of `name`.

    Raises:
        TypeError: `name` is not a str.
        ValueError: `name` is not registered; the message lists the closest registered names.
    """
    if not isinstance(name, str):
        raise TypeError(f"Model name must be a str such as 'binary_cnn.mnist', got {name!r}.")
    if name not in _ENTRIES:
        close = difflib.get_close_matches(name, list(_ENTRIES), n=3, cutoff=0.4)
        if not close:  # A bare architecture or dataset name: offer the names that contain it.
            close = [known for known in sorted(_ENTRIES) if name and name in known][:3]
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"Unknown model {name!r}.{hint} keras_bnn.zoo.list_models() gives all {len(_ENTRIES)} "
                         "names.")
    return _ENTRIES[name]
