"""A pretrained zoo model as it is deployed, with real samples to check its flatbuffers on.

* :func:`deployment_model`: the model a flatbuffer is made of (a language model: its one-character step model with
  the recurrent state as input and output, ``keras_bnn.text.step_model``), a tf-keras model (``legacy=True``: what
  ``keras_bnn.tflite`` converts until it takes Keras 3 models);
* :func:`test_samples`: inputs of that model from the card's test split, with the true classes;
* :func:`calibration_samples`: inputs from the training split (for the int8 target's calibration).

Example:
    >>> import keras_bnn.zoo as zoo
    >>> inputs, labels = zoo.samples.test_samples("binary_gru_lm.tiny_shakespeare", 5)
    >>> [x.shape for x in inputs], labels.shape  # (token, state before it), the next character
    ([(5, 1), (5, 256)], (5,))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_bnn.zoo.api import get
from keras_bnn.zoo.registry import entry

__all__ = ["calibration_samples", "deployment_model", "test_samples"]


def deployment_model(name: str, batch_size: int | None = 1) -> Any:
    """The pretrained tf-keras model a flatbuffer of `name` is made of (the converter takes tf-keras models), at
    `batch_size` (a language model's step model is always batch 1)."""
    if entry(name).task == "language_modeling":
        from keras_bnn.text import step_model

        return step_model(get(name, pretrained=True, legacy=True))
    return get(name, pretrained=True, batch_size=batch_size, legacy=True)


def _language_model_samples(name: str, split: str, examples: int | None) -> tuple[list[np.ndarray], np.ndarray]:
    """(token, state before it) pairs along the split's text, the state carried by the Keras step model."""
    import keras_bnn.datasets
    from keras_bnn.text import KerasStepper
    from keras_bnn.zoo.tokenizers import tokenizer

    text = keras_bnn.datasets.load_text(entry(name).dataset, split)
    ids = tokenizer(name).encode(text if examples is None else text[:examples + 1])
    stepper = KerasStepper(deployment_model(name))
    tokens, states = [], []
    for token in ids[:-1]:
        tokens.append([token])
        states.append(stepper.states[0][0])  # the state the token is read with
        stepper.step(int(token))
    return [np.asarray(tokens, np.int32), np.asarray(states, np.float32)], ids[1:].astype(np.int64)


def _samples(name: str, split: str, examples: int | None) -> tuple[list[np.ndarray], np.ndarray]:
    import keras_bnn.datasets

    if examples is not None and examples < 1:
        raise ValueError(f"examples must be a positive number of samples or None (the whole split), got {examples}")
    found = entry(name)
    if found.task == "language_modeling":
        return _language_model_samples(name, split, examples)
    if found.task == "text_classification":
        from keras_bnn.zoo.tokenizers import tokenizer

        sentences, labels = keras_bnn.datasets.load_sentences(found.dataset, split)
        return [tokenizer(name)(sentences[:examples])], labels[:examples]
    images, labels = keras_bnn.datasets.load_images(found.dataset, split if examples is None else f"{split}[:{examples}]")
    return [images], labels


def test_samples(name: str, examples: int | None) -> tuple[list[np.ndarray], np.ndarray]:
    """The first `examples` (None: all) of the card's test split as inputs of :func:`deployment_model` (one array
    per input), and their true classes (a language model: the next character)."""
    return _samples(name, entry(name).pretrained.test_split, examples)


def calibration_samples(name: str, examples: int = 500) -> list[np.ndarray]:
    """The first `examples` of the training split as model inputs (raw pixels for an image model)."""
    return _samples(name, "train", examples)[0]
