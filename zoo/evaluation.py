"""Re-measure a pretrained model's card metric on the real data: top-1 accuracy or bits per character.

The Keras 3 model is measured by default (any backend; TensorFlow only reads the datasets); ``legacy=True`` measures
the tf-keras model of the same definition and weights file.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from keras_bnn.zoo.registry import METRICS, entry
from keras_bnn.zoo.weights import load_compact, weights_path

__all__ = ["EVAL_BATCH_SIZE", "LM_STREAMS", "LM_WINDOW", "accuracy", "evaluate", "measure",
           "streamed_bits_per_character"]

# One fixed batch size: the same batches, in the same order, give the same float sums every time.
EVAL_BATCH_SIZE = 500
# A language model reads its split as LM_STREAMS contiguous streams, LM_WINDOW characters per call, the state
# carried across calls (keras_bnn.text.streamed_bits_per_character).
LM_STREAMS = 32
LM_WINDOW = 100


def accuracy(model: Any, inputs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in inference mode (BatchNorm moving statistics), fixed batch size and order."""
    predictions = model.predict(inputs, batch_size=EVAL_BATCH_SIZE, verbose=0)
    return float(np.mean(np.argmax(predictions, axis=-1) == labels))


def streamed_bits_per_character(model: Any, ids: np.ndarray, *, window: int = LM_WINDOW) -> tuple[float, int]:
    """Bits per character of a stateful Keras 3 language model over `ids`, read as contiguous streams.

    As ``keras_bnn.text.streamed_bits_per_character`` (tf-keras models) does: `ids` is cut into `model`'s batch
    size of contiguous streams (the last ``(len(ids) - 1) % streams`` characters are left out); each call reads the
    next `window` characters of every stream with the recurrent state carried over.

    Returns:
        (bits per character, number of predicted characters).
    """
    import keras

    streams = int(model.inputs[0].shape[0])
    length = (len(ids) - 1) // streams
    inputs = np.stack([ids[i * length:(i + 1) * length] for i in range(streams)])
    targets = np.stack([ids[i * length + 1:(i + 1) * length + 1] for i in range(streams)])
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()
    total, count = 0.0, 0
    for start in range(0, length, window):
        logits = model(inputs[:, start:start + window], training=False)
        loss = keras.ops.sparse_categorical_crossentropy(targets[:, start:start + window], logits, from_logits=True)
        loss = keras.ops.convert_to_numpy(loss)
        total, count = total + float(np.sum(loss, dtype=np.float32)), count + loss.size
    return total / math.log(2) / count, count


def measure(name: str, split: str, weights: str | os.PathLike | None = None, *, binary: bool = True,
            legacy: bool = False) -> tuple[float, int]:
    """The task's metric of `name` on `split` (accuracy, or bits per character for a language model).

    Args:
        name: A registered model.
        split: The dataset split.
        weights: A compact weights file of `name` (not sha256-checked); default the packaged, checked one. A
            text model's vocabulary is read from the same file.
        binary: False measures the float twin (`weights` must then be the twin's).
        legacy: Measure the tf-keras model instead of the Keras 3 one.

    Returns:
        (value of the metric, number of examples).
    """
    import keras_bnn.datasets
    from keras_bnn.zoo.tokenizers import tokenizer

    found = entry(name)
    check, vocabulary_file = {}, weights
    if weights is None:
        check = {"sha256": found.pretrained.sha256, "size": found.pretrained.size_bytes}
        weights = weights_path(found.pretrained)
    if found.task == "language_modeling":
        vocabulary = tokenizer(name, vocabulary_file)
        model = found.builder(batch_size=LM_STREAMS, stateful=True, binary=binary, legacy=legacy)
        load_compact(model, weights, **check)
        ids = vocabulary.encode(keras_bnn.datasets.load_text(found.dataset, split))
        if legacy:
            from keras_bnn.text import streamed_bits_per_character as legacy_bits_per_character

            return legacy_bits_per_character(model, ids, window=LM_WINDOW)
        return streamed_bits_per_character(model, ids, window=LM_WINDOW)
    model = found.builder(binary=binary, legacy=legacy)
    load_compact(model, weights, **check)
    if found.task == "text_classification":
        sentences, labels = keras_bnn.datasets.load_sentences(found.dataset, split)
        inputs = tokenizer(name, vocabulary_file)(sentences)
    else:
        inputs, labels = keras_bnn.datasets.load_images(found.dataset, split)
    return accuracy(model, inputs, labels), int(len(labels))


def evaluate(name: str, split: str | None = None, *, legacy: bool = False) -> dict:
    """Measure the pretrained `name` on its dataset's test split, next to the figure its card states.

    Args:
        name: A model with pretrained weights (`keras_bnn.zoo.list_models(pretrained=True)`).
        split: The split to measure; default (None) the card's test split (`Pretrained.test_split`: "test", or
            "validation" for GLUE SST-2, whose test labels are not public).
        legacy: Measure the tf-keras model (what the converter takes) instead of the Keras 3 one.

    Returns:
        `{"name", "dataset", "split", "examples", "metric", "card", "measured", "matches"}`; `card` is None for a
        split the card states no figure for, and `matches` says whether the measured value equals the card's: the
        same count of correct examples for an accuracy, the same value at the card's decimals otherwise.

    Raises:
        ValueError: `name` is unknown or has no pretrained weights.

    Example:
        >>> import keras_bnn.zoo as zoo
        >>> zoo.evaluate("binary_cnn.mnist")["matches"]
        True
    """
    found = entry(name)
    pretrained = found.pretrained
    if pretrained is None:
        raise ValueError(f"Model {name!r} has no pretrained weights to evaluate; build it with pretrained=False.")
    split = pretrained.test_split if split is None else split
    measured, examples = measure(name, split, legacy=legacy)
    card = pretrained.scores.get(split)
    metric = METRICS[pretrained.metric]
    if card is None:
        matches = False
    elif metric.percent:
        matches = round(measured * examples) == round(card * examples)
    else:
        matches = round(measured, metric.decimals) == round(card, metric.decimals)
    return {"name": name, "dataset": found.dataset, "split": split, "examples": examples,
            "metric": pretrained.metric, "card": card, "measured": measured, "matches": matches}
