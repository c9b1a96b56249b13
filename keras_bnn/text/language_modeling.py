"""Character language models on contiguous text: truncated-BPTT streams, shuffled windows, streamed bits per
character.

Example:
    >>> import numpy as np
    >>> from keras_bnn.text import tbptt_streams
    >>> dataset, steps = tbptt_streams(np.arange(101, dtype=np.int32), sequence_length=5, batch_size=2)
    >>> steps, [x.numpy().tolist() for x, _ in dataset.take(2)]
    (10, [[[0, 1, 2, 3, 4], [50, 51, 52, 53, 54]], [[5, 6, 7, 8, 9], [55, 56, 57, 58, 59]]])
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

__all__ = ["shuffled_windows", "streamed_bits_per_character", "tbptt_streams", "windowed_bits_per_character"]


def tbptt_streams(ids: np.ndarray, *, sequence_length: int, batch_size: int) -> tuple[tf.data.Dataset, int]:
    """Truncated-BPTT batches: `ids` cut into `batch_size` contiguous streams; row i of every batch continues row i
    of the previous batch (train a ``stateful=True`` model and reset its states once per pass).

    Returns:
        (the dataset of ``(inputs, targets)`` batches, one pass repeated forever; the number of steps of a pass).
    """
    length = (len(ids) - 1) // batch_size
    steps = length // sequence_length
    rows = np.stack([ids[i * length:i * length + steps * sequence_length + 1] for i in range(batch_size)])
    x = rows[:, :-1].reshape(batch_size, steps, sequence_length).transpose(1, 0, 2)
    y = rows[:, 1:].reshape(batch_size, steps, sequence_length).transpose(1, 0, 2)
    return tf.data.Dataset.from_tensor_slices((x, y)).repeat().prefetch(2), steps


def shuffled_windows(ids: np.ndarray, *, sequence_length: int, batch_size: int, seed: int) -> tf.data.Dataset:
    """Shuffled ``(inputs, targets)`` windows of `sequence_length` characters, repeated forever."""
    dataset = tf.data.Dataset.from_tensor_slices(ids).batch(sequence_length + 1, drop_remainder=True)
    dataset = dataset.map(lambda chunk: (chunk[:-1], chunk[1:]))
    return dataset.shuffle(20_000, seed=seed).repeat().batch(batch_size, drop_remainder=True).prefetch(2)


def _bits(targets: np.ndarray, logits: tf.Tensor) -> tuple[float, int]:
    loss = tf.keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    return float(tf.reduce_sum(loss)) / math.log(2), int(np.prod(loss.shape))


def streamed_bits_per_character(model: tf.keras.Model, ids: np.ndarray, *, window: int = 100) -> tuple[float, int]:
    """Bits per character of a stateful language model over `ids`, read as contiguous streams.

    `ids` is cut into `model`'s batch size of contiguous streams (the last ``(len(ids) - 1) % streams``
    characters are left out); each call reads the next `window` characters of every stream and the state carries
    over, so every character but the first of a stream is predicted with all its past.

    Args:
        model: A ``stateful=True`` model with a fixed batch size (the number of streams), ids -> logits.
        ids: The character ids of the whole split.
        window: Characters per call.

    Returns:
        (bits per character, number of predicted characters).
    """
    streams = int(model.inputs[0].shape[0])
    length = (len(ids) - 1) // streams
    inputs = np.stack([ids[i * length:(i + 1) * length] for i in range(streams)])
    targets = np.stack([ids[i * length + 1:(i + 1) * length + 1] for i in range(streams)])
    model.reset_states()
    total, count = 0.0, 0
    for start in range(0, length, window):
        bits, n = _bits(targets[:, start:start + window], model(inputs[:, start:start + window], training=False))
        total, count = total + bits, count + n
    return total / count, count


def windowed_bits_per_character(model: tf.keras.Model, ids: np.ndarray, *, window: int = 100) -> float:
    """Bits per character over windows of `window` characters, each read from a zero state."""
    count = (len(ids) - 1) // window
    inputs = ids[:count * window].reshape(count, window)
    targets = ids[1:count * window + 1].reshape(count, window)
    bits, n = _bits(targets, model.predict(inputs, batch_size=256, verbose=0))
    return bits / n
