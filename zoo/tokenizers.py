"""The tokenizers of the zoo's text models, rebuilt from the vocabulary stored in their weights files.

A text model's vocabulary ships inside its compact weights file (`extra.vocabulary`: the UTF-8 bytes of a JSON list
of the tokens in id order, see `keras_bnn.zoo.weights`), under the same sha256 check as the weights, so
`tokenizer(name)` works offline and always matches the weights.

Example:
    >>> import keras_bnn.zoo as zoo
    >>> tokenize = zoo.tokenizer("binary_transformer.sst2")
    >>> ids = tokenize(["a gorgeous , witty , seductive movie ."])
    >>> ids.shape, ids.dtype.name
    ((1, 48), 'int32')
    >>> zoo.tokenizer("binary_gru_lm.tiny_shakespeare").encode("ROMEO:").tolist()
    [30, 27, 25, 17, 27, 10]
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from keras_bnn.zoo.registry import entry
from keras_bnn.zoo.weights import WeightsFileError, load_extras, weights_path

__all__ = ["decode_vocabulary", "encode_vocabulary", "tokenizer"]


def encode_vocabulary(tokens: Sequence[str]) -> np.ndarray:
    """The tokens (in id order) as stored in a weights file: uint8 UTF-8 bytes of their JSON list.

    Example:
        >>> from keras_bnn.zoo.tokenizers import decode_vocabulary, encode_vocabulary
        >>> decode_vocabulary(encode_vocabulary(["", "[UNK]", "café"]))
        ['', '[UNK]', 'café']
    """
    return np.frombuffer(json.dumps([str(token) for token in tokens]).encode("utf-8"), np.uint8)


def decode_vocabulary(stored: np.ndarray) -> list[str]:
    """The tokens that `encode_vocabulary` stored."""
    return json.loads(np.asarray(stored, np.uint8).tobytes().decode("utf-8"))


def _vocabulary(name: str, weights: str | os.PathLike | None) -> list[str]:
    if weights is None:
        pretrained = entry(name).pretrained
        if pretrained is None:
            raise ValueError(f"{name!r} has no pretrained weights, so no stored vocabulary.")
        extras = load_extras(weights_path(pretrained), sha256=pretrained.sha256, size=pretrained.size_bytes)
    else:
        extras = load_extras(weights)
    if "vocabulary" not in extras:
        raise WeightsFileError(f"The weights file of {name!r} holds no vocabulary.")
    return decode_vocabulary(extras["vocabulary"])


def tokenizer(name: str, weights: str | os.PathLike | None = None):
    """The tokenizer of a pretrained text model, built from the vocabulary in its weights file.

    Args:
        name: A pretrained text model (`language_modeling` or `text_classification` task).
        weights: Another compact file of `name` to take the vocabulary from (not sha256-checked); default the
            packaged, checked one.

    Returns:
        A `keras_bnn.text.CharVocabulary` (`encode(str)` -> ids, `decode(ids)` -> str) for a character language
        model; a `keras_bnn.text.SentenceTokenizer` (`tokenizer(list_of_sentences)` -> padded ids) for a
        sentence classifier.

    Raises:
        ValueError: `name` is unknown, has no pretrained weights, or is not a text model.
        keras_bnn.zoo.WeightsFileError: the weights file is missing, corrupted, or has no vocabulary.
    """
    from keras_bnn.text import CharVocabulary, SentenceTokenizer  # imported on use: they import TensorFlow

    found = entry(name)
    if found.task == "language_modeling":
        return CharVocabulary("".join(str(character) for character in _vocabulary(name, weights)))
    if found.task == "text_classification":
        return SentenceTokenizer(_vocabulary(name, weights), length=found.input_shape[0])
    raise ValueError(f"{name!r} is a {found.task} model; it has no tokenizer.")
