"""Character-level text generation from a recurrent language model, in Keras or from its flatbuffer.

A language model here is a chain of Keras layers (a Sequential model, or a Functional one where each layer
consumes the previous layer's output) that maps token ids ``(batch, time)`` to next-token logits
``(batch, time, vocabulary)``: typically ``Embedding -> GRU/BinaryGRU ... -> Dense``. :func:`step_model` makes
its batch-1, one-step copy with explicit state inputs and outputs (sharing the weights); that copy runs in
Keras (:class:`KerasStepper`) or, converted with ``keras_bnn.tflite.convert``, in a TFLite runtime
(``keras_bnn.tflite.FlatbufferStepper``). :func:`generate` samples text from either (greedy or with a temperature).

Example:
    >>> import keras_bnn, tensorflow as tf
    >>> from keras_bnn.text import CharVocabulary, KerasStepper, generate, step_model
    >>> vocabulary = CharVocabulary.from_text("to be or not to be")
    >>> model = tf.keras.Sequential([tf.keras.Input((None,), dtype="int32"),
    ...                              tf.keras.layers.Embedding(vocabulary.size, 8),
    ...                              keras_bnn.legacy.layers.BinaryGRU(16, return_sequences=True),
    ...                              tf.keras.layers.Dense(vocabulary.size)])
    >>> text = generate(KerasStepper(step_model(model)), vocabulary, "to be", 10, temperature=0.8, seed=1)
    >>> len(text), set(text) <= set(vocabulary.characters)
    (15, True)
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import tensorflow as tf

from keras_bnn.text.tokenizers import CharVocabulary

__all__ = ["LOGITS_OUTPUT", "TOKEN_INPUT", "KerasStepper", "Stepper", "generate", "new_state_name", "state_name", "step_model"]

TOKEN_INPUT = "token"
LOGITS_OUTPUT = "logits"


def state_name(index: int) -> str:
    """The name of a step model's `index`-th state input."""
    return f"state_{index}"


def new_state_name(index: int) -> str:
    """The name of a step model's `index`-th state output."""
    return f"new_state_{index}"


def _chain(model: tf.keras.Model) -> list[tf.keras.layers.Layer]:
    """The layers of `model` in order; ValueError unless each consumes the previous one's output only."""
    layers = [layer for layer in model.layers if not isinstance(layer, tf.keras.layers.InputLayer)]
    if len(model.inputs) != 1 or len(model.outputs) != 1 or not layers:
        raise ValueError(f"model {model.name!r} must map one input (token ids) to one output (logits)")
    previous = model.inputs[0]
    for layer in layers:
        if isinstance(layer, tf.keras.Model) or isinstance(layer, tf.keras.layers.Bidirectional):
            raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) cannot run one step at a time")
        if isinstance(layer, tf.keras.layers.RNN) and layer.go_backwards:
            raise ValueError(f"layer {layer.name!r} has go_backwards=True: it is not a causal language model")
        inbound = tf.nest.flatten(layer.input)
        if len(inbound) != 1 or inbound[0] is not previous:
            raise ValueError(f"model {model.name!r} is not a chain of layers: layer {layer.name!r} does not take "
                             "the previous layer's output as its only input")
        previous = layer.output
    return layers


def step_model(model: tf.keras.Model) -> tf.keras.Model:
    """A batch-1, one-step copy of the language model `model`, with explicit states; it shares the weights.

    Inputs: ``token`` ``(1, 1)`` int32, then ``state_0``, ``state_1``, ... (one per RNN state, in layer
    order). Outputs: ``logits`` ``(1, vocabulary)``, then ``new_state_0``, ``new_state_1``, ... RNN layers are
    copied with ``return_state=True``, ``stateful=False`` and ``unroll=True`` (one step: no loop) and given the
    weights of `model`; the other layers are reused as they are.

    Args:
        model: A chain of layers from token ids ``(batch, time)`` to logits ``(batch, time, vocabulary)``.

    Returns:
        The step model (its weights are copies for RNN layers: rebuild it after training further).

    Raises:
        ValueError: `model` is not such a chain, or holds a bidirectional or backwards RNN.
    """
    layers = _chain(model)
    token = tf.keras.Input(batch_shape=(1, 1), dtype=model.inputs[0].dtype, name=TOKEN_INPUT)
    states_in, states_out, x = [], [], token
    for layer in layers:
        if not isinstance(layer, tf.keras.layers.RNN):
            x = layer(x)
            continue
        config = {**layer.get_config(), "return_sequences": True, "return_state": True, "stateful": False,
                  "unroll": True}
        copy = type(layer).from_config(config)
        sizes = tf.nest.flatten(layer.cell.state_size)
        inputs = [tf.keras.Input(batch_shape=(1, int(size)), name=state_name(len(states_in) + i))
                  for i, size in enumerate(sizes)]
        x, *states = copy(x, initial_state=inputs if len(inputs) > 1 else inputs[0])
        copy.set_weights(layer.get_weights())
        states_in.extend(inputs)
        states_out.extend(states)
    logits = tf.keras.layers.Reshape((x.shape[-1],), name=LOGITS_OUTPUT)(x)
    states_out = [tf.keras.layers.Activation("linear", name=new_state_name(i))(state)
                  for i, state in enumerate(states_out)]
    return tf.keras.Model([token, *states_in], [logits, *states_out], name=f"{model.name}_step")


class Stepper(Protocol):
    """Runs a language model one token at a time: ``reset()``, then ``step(token) -> logits`` (float64)."""

    def reset(self) -> None: ...

    def step(self, token: int) -> np.ndarray: ...


class KerasStepper:
    """Runs a :func:`step_model` in Keras, carrying its states between calls.

    Args:
        model: A model made by :func:`step_model`.
    """

    def __init__(self, model: tf.keras.Model):
        self.model = model
        self._state_shapes = [tuple(tensor.shape) for tensor in model.inputs[1:]]
        self._function = tf.function(lambda inputs: model(inputs, training=False))
        self.reset()

    def reset(self) -> None:
        """Zero the states."""
        self._states = [np.zeros(shape, np.float32) for shape in self._state_shapes]

    @property
    def states(self) -> list[np.ndarray]:
        """The current states (what the next `step` reads with its token), as arrays."""
        return [np.asarray(state, np.float32) for state in self._states]

    def step(self, token: int) -> np.ndarray:
        """Feed one token; the logits of the next one."""
        logits, *self._states = self._function([np.array([[token]], np.int32), *self._states])
        return np.asarray(logits, np.float64)[0]


def generate(stepper: Stepper, vocabulary: CharVocabulary, prompt: str, length: int, *,
             temperature: float = 0.0, seed: int = 0) -> str:
    """`prompt` followed by `length` generated characters.

    The stepper is reset, fed the prompt, then each generated character in turn.

    Args:
        stepper: A :class:`KerasStepper` or ``keras_bnn.tflite.FlatbufferStepper``.
        vocabulary: The model's vocabulary.
        prompt: Non-empty start text (characters of the vocabulary).
        length: Number of characters to generate.
        temperature: 0 picks the most likely character (greedy); otherwise characters are sampled from
            ``softmax(logits / temperature)``.
        seed: Seed of the sampling generator (same seed, same model: same text).

    Returns:
        The prompt and the generated text.

    Raises:
        ValueError: Empty prompt, negative `length` or `temperature`, or a prompt character outside the
            vocabulary.
    """
    if not prompt:
        raise ValueError("prompt must hold at least one character")
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ValueError(f"length must be a non-negative integer, got {length!r}")
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0, got {temperature!r}")
    rng = np.random.default_rng(seed)
    stepper.reset()
    for token in vocabulary.encode(prompt):
        logits = stepper.step(int(token))
    generated = []
    for _ in range(length):
        if temperature == 0:
            token = int(np.argmax(logits))
        else:
            scaled = logits / temperature
            probabilities = np.exp(scaled - scaled.max())
            token = int(rng.choice(len(probabilities), p=probabilities / probabilities.sum()))
        generated.append(token)
        logits = stepper.step(token)
    return prompt + vocabulary.decode(generated)
