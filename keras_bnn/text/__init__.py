"""Text for binary networks: tokenizers, language-model streams and metrics, sentence batching, generation.

* :class:`CharVocabulary`, :class:`SentenceTokenizer`: characters / sentences to ids;
* :func:`tbptt_streams`, :func:`shuffled_windows`, :func:`streamed_bits_per_character`,
  :func:`windowed_bits_per_character`: character language models on contiguous text;
* :func:`length_batches`, :func:`predict_logits`: sentence classifiers on length-bucketed batches;
* :func:`step_model`, :class:`KerasStepper`, :func:`generate`: sampling text one character at a time (a converted
  step model runs in ``keras_bnn.tflite.FlatbufferStepper``).

Example:
    >>> import keras_bnn, tensorflow as tf
    >>> from keras_bnn.text import CharVocabulary, KerasStepper, generate, step_model
    >>> vocabulary = CharVocabulary.from_text("to be or not to be")
    >>> model = tf.keras.Sequential([tf.keras.Input((None,), dtype="int32"),
    ...                              tf.keras.layers.Embedding(vocabulary.size, 8),
    ...                              keras_bnn.layers.BinaryGRU(16, return_sequences=True),
    ...                              tf.keras.layers.Dense(vocabulary.size)])
    >>> text = generate(KerasStepper(step_model(model)), vocabulary, "to be", 10, temperature=0.8, seed=1)
    >>> len(text), set(text) <= set(vocabulary.characters)
    (15, True)
"""

from keras_bnn.text.generation import (
    LOGITS_OUTPUT,
    TOKEN_INPUT,
    KerasStepper,
    Stepper,
    generate,
    new_state_name,
    state_name,
    step_model,
)
from keras_bnn.text.language_modeling import (
    shuffled_windows,
    streamed_bits_per_character,
    tbptt_streams,
    windowed_bits_per_character,
)
from keras_bnn.text.sentences import length_batches, predict_logits
from keras_bnn.text.tokenizers import OOV_ID, CharVocabulary, SentenceTokenizer

__all__ = [
    "LOGITS_OUTPUT",
    "OOV_ID",
    "TOKEN_INPUT",
    "CharVocabulary",
    "KerasStepper",
    "SentenceTokenizer",
    "Stepper",
    "generate",
    "length_batches",
    "new_state_name",
    "predict_logits",
    "shuffled_windows",
    "state_name",
    "step_model",
    "streamed_bits_per_character",
    "tbptt_streams",
    "windowed_bits_per_character",
]
