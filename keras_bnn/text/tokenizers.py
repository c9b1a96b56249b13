"""Tokenizers: characters to ids (:class:`CharVocabulary`) and sentences to padded word ids (:class:`SentenceTokenizer`)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

__all__ = ["OOV_ID", "CharVocabulary", "SentenceTokenizer"]

OOV_ID = 1


class CharVocabulary:
    """A bijection between characters and token ids ``0 .. size - 1``.

    Args:
        characters: The vocabulary, each character once; its position is its id.

    Raises:
        ValueError: `characters` is empty or repeats a character.

    Example:
        >>> from keras_bnn.text import CharVocabulary
        >>> vocabulary = CharVocabulary.from_text("hello")
        >>> vocabulary.characters, vocabulary.encode("hole").tolist(), vocabulary.decode([3, 0])
        ('ehlo', [1, 3, 2, 0], 'oe')
    """

    def __init__(self, characters: str):
        if not isinstance(characters, str) or not characters:
            raise ValueError(f"characters must be a non-empty str, got {characters!r}")
        repeated = sorted({c for c in characters if characters.count(c) > 1})
        if repeated:
            raise ValueError(f"characters repeats {''.join(repeated)!r}")
        self.characters = characters
        self._ids = {c: i for i, c in enumerate(characters)}

    @classmethod
    def from_text(cls, *texts: str) -> CharVocabulary:
        """The sorted set of characters of `texts`."""
        return cls("".join(sorted(set("".join(texts)))))

    @property
    def size(self) -> int:
        """Number of characters."""
        return len(self.characters)

    def encode(self, text: str) -> np.ndarray:
        """Token ids of `text` (int32); ValueError naming the first character not in the vocabulary."""
        try:
            return np.fromiter((self._ids[c] for c in text), dtype=np.int32, count=len(text))
        except KeyError as error:
            raise ValueError(f"character {error.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """The characters of token `ids`."""
        return "".join(self.characters[int(i)] for i in ids)


class SentenceTokenizer:
    """Sentences to padded word ids, as `tf.keras.layers.TextVectorization` with a fixed vocabulary does.

    Lower-cases, strips punctuation, splits on whitespace, maps each word to its id (1 for a word not in the
    vocabulary) and pads with 0 (or cuts) to `length` ids. A sentence with no word at all becomes one
    out-of-vocabulary id (a model cannot mean-pool zero positions).

    Args:
        vocabulary: Words in id order, starting with `""` (padding, id 0) and `"[UNK]"` (id 1).
        length: Ids per sentence.

    Raises:
        ValueError: `vocabulary` does not start with the padding and out-of-vocabulary entries.

    Example:
        >>> from keras_bnn.text import SentenceTokenizer
        >>> SentenceTokenizer(["", "[UNK]", "good", "movie"], length=4)(["A good movie!"]).tolist()
        [[1, 2, 3, 0]]
    """

    def __init__(self, vocabulary: Sequence[str], length: int):
        vocabulary = [str(word) for word in vocabulary]
        if vocabulary[:2] != ["", "[UNK]"]:
            raise ValueError(f"vocabulary must start with '' and '[UNK]', got {vocabulary[:2]!r}.")
        self.vocabulary = vocabulary
        self.length = length
        self._layer = tf.keras.layers.TextVectorization(
            max_tokens=len(vocabulary), output_sequence_length=length, vocabulary=vocabulary[2:])

    @classmethod
    def adapt(cls, sentences: Sequence[str], *, max_tokens: int, length: int) -> SentenceTokenizer:
        """The tokenizer of the `max_tokens` most frequent words of `sentences` (TextVectorization's `adapt`)."""
        layer = tf.keras.layers.TextVectorization(max_tokens=max_tokens, output_sequence_length=length)
        layer.adapt(np.asarray(list(sentences), dtype=object), batch_size=1024)
        return cls(layer.get_vocabulary(), length)

    def __call__(self, sentences: Sequence[str]) -> np.ndarray:
        """int32 ids `(len(sentences), length)`."""
        if isinstance(sentences, str):
            raise TypeError("Pass a list of sentences, not one str.")
        # np.asarray: tf.keras may be Keras 3 on another backend here (a jax or torch array), or tf-keras.
        ids = np.asarray(self._layer(tf.constant(list(sentences), dtype=tf.string))).astype(np.int32)
        ids[(ids == 0).all(axis=1), 0] = OOV_ID
        return ids
