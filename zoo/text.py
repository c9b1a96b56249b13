"""Raw text in, token ids out: the tokenizers of the zoo's text models and their evaluation data.

A text model's vocabulary ships inside its compact weights file (`extra.vocabulary`: the UTF-8 bytes of a
JSON list of the tokens in id order, see `keras_bnn.zoo.weights`), under the same sha256 check as the
weights, so `tokenizer(name)` works offline and always matches the weights.

Example:
    >>> import keras_bnn
    >>> tokenize = keras_bnn.zoo.tokenizer("binary_transformer.sst2")
    >>> ids = tokenize(["a gorgeous , witty , seductive movie ."])
    >>> ids.shape, ids.dtype.name
    ((1, 48), 'int32')
    >>> keras_bnn.zoo.tokenizer("binary_gru_lm.tiny_shakespeare").encode("ROMEO:").tolist()
    [30, 27, 25, 17, 27, 10]
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

import keras_bnn.datasets
from keras_bnn.text import CharVocabulary
from keras_bnn.zoo import _registry
from keras_bnn.zoo.pretrained import pretrained_config, weights_path
from keras_bnn.zoo.weights import WeightsFileError, load_extras

__all__ = [
    "SentenceTokenizer",
    "tokenizer",
    "encode_vocabulary",
    "decode_vocabulary",
    "load_text",
    "load_sentences",
]

OOV_ID = 1


class SentenceTokenizer:
    """Sentences to padded word ids, as `tf.keras.layers.TextVectorization` with a fixed vocabulary does.

    Lower-cases, strips punctuation, splits on whitespace, maps each word to its id (1 for a word not in the
    vocabulary) and pads with 0 (or cuts) to `length` ids. A sentence with no word at all becomes one
    out-of-vocabulary id, as in training (a model cannot mean-pool zero positions).

    Args:
        vocabulary: Words in id order, starting with `""` (padding, id 0) and `"[UNK]"` (id 1).
        length: Ids per sentence.

    Raises:
        ValueError: `vocabulary` does not start with the padding and out-of-vocabulary entries.
    """

    def __init__(self, vocabulary: Sequence[str], length: int):
        vocabulary = [str(word) for word in vocabulary]
        if vocabulary[:2] != ["", "[UNK]"]:
            raise ValueError(f"vocabulary must start with '' and '[UNK]', got {vocabulary[:2]!r}.")
        self.vocabulary = vocabulary
        self.length = length
        self._layer = tf.keras.layers.TextVectorization(
            max_tokens=len(vocabulary), output_sequence_length=length, vocabulary=vocabulary[2:])

    def __call__(self, sentences: Sequence[str]) -> np.ndarray:
        """int32 ids `(len(sentences), length)`."""
        if isinstance(sentences, str):
            raise TypeError("Pass a list of sentences, not one str.")
        ids = self._layer(tf.constant(list(sentences), dtype=tf.string)).numpy().astype(np.int32)
        ids[(ids == 0).all(axis=1), 0] = OOV_ID
        return ids


def encode_vocabulary(tokens: Sequence[str]) -> np.ndarray:
    """The tokens (in id order) as stored in a weights file: uint8 UTF-8 bytes of their JSON list.

    Example:
        >>> from keras_bnn.zoo.text import decode_vocabulary, encode_vocabulary
        >>> decode_vocabulary(encode_vocabulary(["", "[UNK]", "café"]))
        ['', '[UNK]', 'café']
    """
    return np.frombuffer(json.dumps([str(token) for token in tokens]).encode("utf-8"), np.uint8)


def decode_vocabulary(stored: np.ndarray) -> list[str]:
    """The tokens that `encode_vocabulary` stored."""
    return json.loads(np.asarray(stored, np.uint8).tobytes().decode("utf-8"))


def _vocabulary(name: str, weights: str | os.PathLike | None) -> list[str]:
    if weights is None:
        config = pretrained_config(name)
        extras = load_extras(weights_path(config), sha256=config.sha256, size=config.size_bytes)
    else:
        extras = load_extras(weights)
    if "vocabulary" not in extras:
        raise WeightsFileError(f"The weights file of {name!r} holds no vocabulary.")
    return decode_vocabulary(extras["vocabulary"])


def tokenizer(name: str, weights: str | os.PathLike | None = None) -> CharVocabulary | SentenceTokenizer:
    """The tokenizer of a pretrained text model, built from the vocabulary in its weights file.

    Args:
        name: A pretrained text model (`language_modeling` or `text_classification` task).
        weights: Another compact file of `name` to take the vocabulary from (not sha256-checked); default
            the packaged, checked one.

    Returns:
        A `keras_bnn.text.CharVocabulary` (`encode(str)` -> ids, `decode(ids)` -> str) for a character
        language model; a `SentenceTokenizer` (`tokenizer(list_of_sentences)` -> padded ids) for a sentence
        classifier.

    Raises:
        ValueError: `name` is unknown, has no pretrained weights, or is not a text model.
        keras_bnn.zoo.WeightsFileError: the weights file is missing, corrupted, or has no vocabulary.
    """
    spec = _registry.spec(name)
    if spec.task == "language_modeling":
        return CharVocabulary("".join(str(character) for character in _vocabulary(name, weights)))
    if spec.task == "text_classification":
        return SentenceTokenizer(_vocabulary(name, weights), length=spec.input_shape[0])
    raise ValueError(f"{name!r} is a {spec.task} model; it has no tokenizer.")


def load_text(dataset: str, split: str) -> str:
    """The whole text of a split of a one-text dataset such as `tiny_shakespeare`."""
    return keras_bnn.datasets.load(dataset, split).get_single_element().numpy().decode("utf-8")


def load_sentences(dataset: str, split: str) -> tuple[list[str], np.ndarray]:
    """(sentences, int64 labels) of a split of a sentence dataset such as `sst2`, in the dataset's order."""
    sentences, labels = [], []
    for sentence, label in keras_bnn.datasets.load(dataset, split, as_supervised=True).as_numpy_iterator():
        sentences.append(sentence.decode("utf-8"))
        labels.append(int(label))
    return sentences, np.asarray(labels, np.int64)
