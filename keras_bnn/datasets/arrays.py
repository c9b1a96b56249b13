"""Whole splits as numpy arrays / Python strings, in the dataset's own order (through :func:`load`).

Example:
    >>> import keras_bnn
    >>> images, labels = keras_bnn.datasets.load_images("mnist", "test[:3]", data_dir="/tmp/keras_bnn_doc_data")
    >>> images.shape, images.dtype.name, labels.tolist()
    ((3, 28, 28, 1), 'float32', [2, 0, 4])
"""

from __future__ import annotations

import os

import numpy as np

from keras_bnn.datasets._loader import load

__all__ = ["load_images", "load_sentences", "load_text"]


def load_images(name: str, split: str, *, signed: bool = False, data_dir: str | os.PathLike | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """A split of an image dataset as (float32 images, int64 labels).

    Args:
        name: An image dataset (`mnist`, `fashion_mnist`).
        split: The split (tfds slicing allowed).
        signed: Pixel values scaled to [-1, 1] (x / 127.5 - 1, larq's tutorial preprocessing) instead of 0..255.
        data_dir: Folder for prepared data (see `load`).
    """
    images, labels = [], []
    for image_batch, label_batch in load(name, split, as_supervised=True, data_dir=data_dir).batch(4096):
        images.append(image_batch.numpy())
        labels.append(label_batch.numpy())
    pixels = np.concatenate(images).astype(np.float32)
    return (pixels / 127.5 - 1.0 if signed else pixels), np.concatenate(labels).astype(np.int64)


def load_text(name: str, split: str, *, data_dir: str | os.PathLike | None = None) -> str:
    """The whole text of a split of a one-text dataset such as `tiny_shakespeare`."""
    return load(name, split, data_dir=data_dir).get_single_element().numpy().decode("utf-8")


def load_sentences(name: str, split: str, *, data_dir: str | os.PathLike | None = None
                   ) -> tuple[list[str], np.ndarray]:
    """(sentences, int64 labels) of a split of a sentence dataset such as `sst2`."""
    sentences, labels = [], []
    for sentence, label in load(name, split, as_supervised=True, data_dir=data_dir).as_numpy_iterator():
        sentences.append(sentence.decode("utf-8"))
        labels.append(int(label))
    return sentences, np.asarray(labels, np.int64)
