"""Re-measure a pretrained model's card metric on the real data: top-1 accuracy or bits per character."""

from __future__ import annotations

import math
import os

import numpy as np
import tensorflow as tf

import keras_bnn.datasets
from keras_bnn.zoo import _registry
from keras_bnn.zoo.pretrained import METRICS, pretrained_config, weights_path
from keras_bnn.zoo.weights import load_compact

__all__ = [
    "EVAL_BATCH_SIZE",
    "LM_STREAMS",
    "LM_WINDOW",
    "load_split",
    "accuracy",
    "streamed_bits_per_character",
    "measure",
    "evaluate",
]

# One fixed batch size: the same batches, in the same order, give the same float sums every time.
EVAL_BATCH_SIZE = 500
# A language model reads its split as LM_STREAMS contiguous streams, LM_WINDOW characters per call, the
# state carried across calls (as benchmarks/gru_lm.py's streamed_bpc).
LM_STREAMS = 32
LM_WINDOW = 100


def load_split(dataset: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A split of a real image dataset as (float32 pixel images, int64 labels), in the dataset's own order.

    Example:
        >>> import keras_bnn
        >>> images, labels = keras_bnn.zoo.evaluation.load_split("mnist", "test[:3]")
        >>> images.shape, images.dtype.name, labels.tolist()
        ((3, 28, 28, 1), 'float32', [2, 0, 4])
    """
    images, labels = [], []
    for image_batch, label_batch in keras_bnn.datasets.load(dataset, split, as_supervised=True).batch(4096):
        images.append(image_batch.numpy())
        labels.append(label_batch.numpy())
    return np.concatenate(images).astype(np.float32), np.concatenate(labels).astype(np.int64)


def accuracy(model: tf.keras.Model, inputs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in inference mode (BatchNorm moving statistics), fixed batch size and order."""
    predictions = model.predict(inputs, batch_size=EVAL_BATCH_SIZE, verbose=0)
    return float(np.mean(np.argmax(predictions, axis=-1) == labels))


def streamed_bits_per_character(model: tf.keras.Model, ids: np.ndarray) -> tuple[float, int]:
    """Bits per character of a stateful language model over `ids`, read as contiguous streams.

    `ids` is cut into `model`'s batch size of contiguous streams (the last `len(ids) - 1` mod streams
    characters are left out); each call reads the next `LM_WINDOW` characters of every stream and the state
    carries over, so every character but the first of a stream is predicted with all its past.

    Args:
        model: A `stateful=True` model with a fixed batch size (the number of streams), ids -> logits.
        ids: The character ids of the whole split.

    Returns:
        (bits per character, number of predicted characters).
    """
    streams = int(model.inputs[0].shape[0])
    length = (len(ids) - 1) // streams
    inputs = np.stack([ids[i * length:(i + 1) * length] for i in range(streams)])
    targets = np.stack([ids[i * length + 1:(i + 1) * length + 1] for i in range(streams)])
    model.reset_states()
    total, count = 0.0, 0
    for start in range(0, length, LM_WINDOW):
        logits = model(inputs[:, start:start + LM_WINDOW], training=False)
        loss = tf.keras.losses.sparse_categorical_crossentropy(
            targets[:, start:start + LM_WINDOW], logits, from_logits=True)
        total += float(tf.reduce_sum(loss))
        count += int(np.prod(loss.shape))
    return total / count / math.log(2), count


def measure(
    name: str, split: str, weights: str | os.PathLike | None = None, *, binary: bool = True
) -> tuple[float, int]:
    """The task's metric of `name` on `split` (accuracy, or bits per character for a language model).

    Args:
        name: A registered model.
        split: The dataset split.
        weights: A compact weights file of `name` (not sha256-checked); default the packaged, checked one.
            A text model's vocabulary is read from the same file.
        binary: False measures the float twin (`weights` must then be the twin's).

    Returns:
        (value of the metric, number of examples).
    """
    spec = _registry.spec(name)
    check, vocabulary_file = {}, weights
    if weights is None:
        config = pretrained_config(name)
        check = {"sha256": config.sha256, "size": config.size_bytes}
        weights = weights_path(config)
    if spec.task == "language_modeling":
        from keras_bnn.zoo.text import load_text, tokenizer

        vocabulary = tokenizer(name, vocabulary_file)
        model = spec.entry_point(batch_size=LM_STREAMS, stateful=True, binary=binary)
        load_compact(model, weights, **check)
        return streamed_bits_per_character(model, vocabulary.encode(load_text(spec.dataset, split)))
    model = spec.entry_point(binary=binary)
    load_compact(model, weights, **check)
    if spec.task == "text_classification":
        from keras_bnn.zoo.text import load_sentences, tokenizer

        sentences, labels = load_sentences(spec.dataset, split)
        inputs = tokenizer(name, vocabulary_file)(sentences)
    else:
        inputs, labels = load_split(spec.dataset, split)
    return accuracy(model, inputs, labels), int(len(labels))


def evaluate(name: str, split: str | None = None) -> dict:
    """Measure the pretrained `name` on its dataset's test split, next to the figure its card states.

    Args:
        name: A model with pretrained weights (`keras_bnn.zoo.list_models(pretrained=True)`).
        split: The split to measure; default (None) the card's test split (`PretrainedConfig.test_split`:
            "test", or "validation" for GLUE SST-2, whose test labels are not public).

    Returns:
        `{"name", "dataset", "split", "examples", "metric", "card", "measured", "matches"}`; `metric` is the
        config's (`"top1_accuracy"` or `"bits_per_character"`), `card` is None for a split other than the
        card's, and `matches` says whether the measured value equals the card's: the same count of correct
        examples for an accuracy, the same value at the card's decimals otherwise.

    Raises:
        ValueError: `name` is unknown or has no pretrained weights.

    Example:
        >>> import keras_bnn
        >>> result = keras_bnn.zoo.evaluate("binary_cnn.mnist")
        >>> result["matches"]
        True
    """
    _registry.spec(name)
    config = pretrained_config(name)
    split = config.test_split if split is None else split
    measured, examples = measure(name, split)
    card = config.test_score if split == config.test_split else None
    metric = METRICS[config.metric]
    if card is None:
        matches = False
    elif metric.percent:
        matches = round(measured * examples) == round(card * examples)
    else:
        matches = round(measured, metric.decimals) == round(card, metric.decimals)
    return {
        "name": name,
        "dataset": config.dataset,
        "split": split,
        "examples": examples,
        "metric": config.metric,
        "card": card,
        "measured": measured,
        "matches": matches,
    }
