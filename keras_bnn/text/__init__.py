"""Text for binary networks: tokenizers, language-model streams and metrics, sentence batching, generation.

* :class:`CharVocabulary`, :class:`SentenceTokenizer`: characters / sentences to ids;
* :func:`tbptt_streams`, :func:`shuffled_windows`, :func:`streamed_bits_per_character`,
  :func:`windowed_bits_per_character`: character language models on contiguous text;
* :func:`length_batches`, :func:`predict_logits`: sentence classifiers on length-bucketed batches;
* :func:`step_model`, :class:`KerasStepper`, :func:`generate`: sampling text one character at a time (a converted
  step model runs in ``keras_bnn.tflite.FlatbufferStepper``).

Example:
    >>> from keras_bnn.text import CharVocabulary
    >>> vocabulary = CharVocabulary.from_text("to be or not to be")
    >>> vocabulary.size, vocabulary.decode(vocabulary.encode("be"))
    (7, 'be')
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
