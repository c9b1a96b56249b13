"""Sentence classification data: batches of sentences of similar length, trimmed to their longest one.

SST-2 phrases are short: bucketing by length cuts the padded positions, and the training time, several times.

Example:
    >>> import numpy as np
    >>> from keras_bnn.text import length_batches
    >>> ids = np.array([[5, 0, 0], [6, 7, 8], [9, 3, 0]], np.int32)
    >>> dataset, order = length_batches(ids, None, batch_size=2, seed=None)
    >>> [x.shape.as_list() for (x,) in dataset], order
    ([[2, 2], [1, 3]], [array([0, 2]), array([1])])
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

__all__ = ["length_batches", "predict_logits"]


def _lengths(ids: np.ndarray) -> np.ndarray:
    return np.maximum((ids != 0).sum(1), 1)  # padding (id 0) is at the end


def length_batches(ids: np.ndarray, targets: np.ndarray | None, batch_size: int, *, seed: int | None
                   ) -> tuple[tf.data.Dataset, list[np.ndarray]]:
    """Batches of similar-length sentences trimmed to their longest one.

    Args:
        ids: Padded word ids ``(n, length)`` (0 is padding).
        targets: Per-sentence targets ``(n, ...)`` (float32), or None for inference.
        batch_size: Sentences per batch.
        seed: None: sorted by length (for inference); else sorted by length within random chunks of 50 batches,
            and the batches shuffled.

    Returns:
        (the dataset of ``(ids, targets)`` or ``(ids,)`` batches, the sentence indices of each batch).
    """
    lengths = _lengths(ids)
    rng = np.random.default_rng(seed)
    if seed is None:
        order = np.argsort(lengths, kind="stable")
    else:
        order = rng.permutation(len(ids))
        chunk = 50 * batch_size
        order = np.concatenate([part[np.argsort(lengths[part], kind="stable")]
                                for part in np.split(order, np.arange(chunk, len(ids), chunk))])
    batches = [order[i:i + batch_size] for i in range(0, len(ids), batch_size)]
    if seed is not None:
        rng.shuffle(batches)

    def generate():
        for index in batches:
            width = int(lengths[index].max())
            yield (ids[index, :width], targets[index]) if targets is not None else (ids[index, :width],)

    ids_spec = tf.TensorSpec((None, None), tf.int32)
    signature = (ids_spec, tf.TensorSpec((None, *targets.shape[1:]), tf.float32)) if targets is not None \
        else (ids_spec,)
    return tf.data.Dataset.from_generator(generate, output_signature=signature).prefetch(2), batches


def predict_logits(model: tf.keras.Model, ids: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The model's outputs for every sentence, in the order of `ids` (computed in length buckets)."""
    dataset, batches = length_batches(ids, None, batch_size, seed=None)
    logits = model.predict(dataset, verbose=0)
    out = np.empty_like(logits)
    out[np.concatenate(batches)] = logits
    return out
