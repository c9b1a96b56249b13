"""Re-measure a pretrained model's card metric on the real test split."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

import keras_bnn.datasets
from keras_bnn.zoo import _registry
from keras_bnn.zoo.pretrained import pretrained_config

__all__ = ["EVAL_BATCH_SIZE", "load_split", "accuracy", "evaluate"]

# One fixed batch size: the same batches, in the same order, give the same float sums every time.
EVAL_BATCH_SIZE = 500


def load_split(dataset: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A split of a real dataset as (float32 pixel images, int64 labels), in the dataset's own order.

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


def accuracy(model: tf.keras.Model, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in inference mode (BatchNorm moving statistics), fixed batch size and order."""
    predictions = model.predict(images, batch_size=EVAL_BATCH_SIZE, verbose=0)
    return float(np.mean(np.argmax(predictions, axis=-1) == labels))


def evaluate(name: str, split: str = "test") -> dict:
    """Measure the pretrained `name` on its dataset's test split, next to the figure its card states.

    Args:
        name: A model with pretrained weights (`keras_bnn.zoo.list_models(pretrained=True)`).
        split: The split to measure; the card's figure is for "test".

    Returns:
        `{"name", "dataset", "split", "examples", "metric": "top1_accuracy", "card", "measured",
        "matches"}`; `card` is None for a split other than "test", and `matches` says whether the measured
        accuracy equals the card's to the last example.

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
    from keras_bnn.zoo.api import get

    images, labels = load_split(config.dataset, split)
    measured = accuracy(get(name, pretrained=True), images, labels)
    card = config.test_accuracy if split == "test" else None
    return {
        "name": name,
        "dataset": config.dataset,
        "split": split,
        "examples": int(len(labels)),
        "metric": "top1_accuracy",
        "card": card,
        "measured": measured,
        "matches": card is not None and round(measured * len(labels)) == round(card * len(labels)),
    }
