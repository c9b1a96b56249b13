"""Run a converted language-model step in a runtime, one token at a time (the flatbuffer side of
``keras_bnn.text.generate``).

Example:
    >>> import keras_bnn, keras_bnn.tflite, tensorflow as tf
    >>> from keras_bnn.text import CharVocabulary, KerasStepper, generate, step_model
    >>> from keras_bnn.tflite import FlatbufferStepper
    >>> vocabulary = CharVocabulary.from_text("to be or not to be")
    >>> model = tf.keras.Sequential([tf.keras.Input((None,), dtype="int32"),
    ...                              tf.keras.layers.Embedding(vocabulary.size, 8),
    ...                              keras_bnn.legacy.layers.BinaryGRU(32, return_sequences=True),
    ...                              tf.keras.layers.Dense(vocabulary.size)])
    >>> step = step_model(model)
    >>> flatbuffer = keras_bnn.tflite.convert(step)
    >>> texts = [generate(stepper, vocabulary, "to be", 12) for stepper in (KerasStepper(step),
    ...                                                                       FlatbufferStepper(flatbuffer))]
    >>> texts[0] == texts[1]
    True
"""

from __future__ import annotations

import numpy as np

from keras_bnn.text import LOGITS_OUTPUT, TOKEN_INPUT, new_state_name, state_name
from keras_bnn.tflite.flatbuffer import read_flatbuffer
from keras_bnn.tflite.runtimes import open_runtime

__all__ = ["FlatbufferStepper"]


class FlatbufferStepper:
    """Runs a converted ``keras_bnn.text.step_model`` in a runtime, carrying its states between calls.

    Inputs and outputs are matched by name through the flatbuffer's signature.

    Args:
        flatbuffer: ``keras_bnn.tflite.convert(step_model(model))`` (checked first: bad bytes are a ValueError).
        num_threads: Interpreter threads.
        runtime: The runtime (``keras_bnn.tflite.runtimes.available_runtimes()``), default LCE's.

    Raises:
        ValueError: bad bytes, or a flatbuffer with no signature naming ``token`` / ``logits`` and the states.
    """

    def __init__(self, flatbuffer: bytes, num_threads: int = 1, runtime: str = "lce"):
        checked = read_flatbuffer(flatbuffer)
        signature = checked.signature(0)
        if signature is None:
            raise ValueError("the flatbuffer has no signature: convert a model made by keras_bnn.text.step_model()")
        inputs, outputs = signature
        count = len(inputs) - 1
        names = [TOKEN_INPUT, *map(state_name, range(count))]
        new_names = [LOGITS_OUTPUT, *map(new_state_name, range(count))]
        if sorted(inputs) != sorted(names) or sorted(outputs) != sorted(new_names):
            raise ValueError(f"the flatbuffer's inputs {sorted(inputs)} and outputs {sorted(outputs)} are not "
                             "those of a keras_bnn.text.step_model()")
        self._runtime = open_runtime(checked, runtime, num_threads=num_threads)
        self._token_position = inputs[TOKEN_INPUT]
        self._state_positions = [inputs[name] for name in names[1:]]
        self._output_positions = [outputs[name] for name in new_names]
        self.reset()

    def reset(self) -> None:
        """Zero the states."""
        details = self._runtime.inputs
        self._states = [np.zeros(details[position].shape, np.float32) for position in self._state_positions]

    def step(self, token: int) -> np.ndarray:
        """Feed one token; the logits of the next one."""
        details = self._runtime.inputs
        feed: list = [None] * len(details)
        feed[self._token_position] = np.array([[token]], dtype=details[self._token_position].dtype)
        for position, state in zip(self._state_positions, self._states):
            feed[position] = state
        results = self._runtime.run(feed)
        logits, *self._states = [np.array(results[position]) for position in self._output_positions]
        return logits.astype(np.float64)[0]
