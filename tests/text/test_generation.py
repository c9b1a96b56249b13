"""keras_bnn.text: vocabulary, the one-step model (equal to the sequence model), and generation from Keras and
from the converted flatbuffer (same text)."""

import warnings

import numpy as np
import pytest
import tensorflow as tf

from keras_bnn.legacy.layers.recurrent import BinaryGRU
from keras_bnn.text import CharVocabulary, KerasStepper, generate, step_model
from keras_bnn.tflite import FlatbufferStepper, convert

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n"


def _language_model(vocabulary_size: int) -> tf.keras.Model:
    model = tf.keras.Sequential([tf.keras.Input((None,), dtype="int32"),
                                 tf.keras.layers.Embedding(vocabulary_size, 16),
                                 BinaryGRU(32, return_sequences=True),
                                 tf.keras.layers.GRU(24, return_sequences=True),
                                 tf.keras.layers.Dense(vocabulary_size)])
    rng = np.random.default_rng(0)
    for weight in model.weights:
        weight.assign(rng.normal(scale=0.5, size=weight.shape).astype(np.float32))
    return model


def test_vocabulary():
    vocabulary = CharVocabulary.from_text(TEXT, "xyz")
    assert vocabulary.size == len(set(TEXT + "xyz"))
    assert vocabulary.decode(vocabulary.encode(TEXT)) == TEXT
    assert vocabulary.encode("").dtype == np.int32
    with pytest.raises(ValueError, match="'#' is not in the vocabulary"):
        vocabulary.encode("Fir#")
    with pytest.raises(ValueError, match="repeats 'a'"):
        CharVocabulary("aba")
    with pytest.raises(ValueError, match="non-empty"):
        CharVocabulary("")


def test_step_model_equals_the_sequence_model():
    vocabulary = CharVocabulary.from_text(TEXT)
    model = _language_model(vocabulary.size)
    ids = vocabulary.encode(TEXT[:12])
    expected = model(ids[None]).numpy()[0]
    stepper = KerasStepper(step_model(model))
    got = np.stack([stepper.step(int(token)) for token in ids])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    stepper.reset()
    np.testing.assert_allclose(stepper.step(int(ids[0])), expected[0], atol=1e-5)


def test_generation_from_keras_and_from_the_flatbuffer_agree():
    vocabulary = CharVocabulary.from_text(TEXT)
    step = step_model(_language_model(vocabulary.size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flatbuffer = convert(step)
    keras_stepper, lce_stepper = KerasStepper(step), FlatbufferStepper(flatbuffer)
    ids = vocabulary.encode(TEXT[:8])
    for token in ids:
        np.testing.assert_allclose(lce_stepper.step(int(token)), keras_stepper.step(int(token)), atol=1e-4)
    for temperature in (0.0, 0.8):
        texts = [generate(stepper, vocabulary, "First", 30, temperature=temperature, seed=3)
                 for stepper in (keras_stepper, lce_stepper)]
        assert texts[0] == texts[1] and texts[0].startswith("First") and len(texts[0]) == 35


def test_generate_is_seeded_and_checks_its_arguments():
    vocabulary = CharVocabulary.from_text(TEXT)
    stepper = KerasStepper(step_model(_language_model(vocabulary.size)))
    sample = lambda **kw: generate(stepper, vocabulary, "he", 25, **kw)  # noqa: E731
    assert sample(temperature=1.0, seed=5) == sample(temperature=1.0, seed=5)
    assert sample(temperature=1.0, seed=5) != sample(temperature=1.0, seed=6)
    assert sample(seed=1) == sample(seed=2)  # greedy ignores the seed
    with pytest.raises(ValueError, match="prompt"):
        generate(stepper, vocabulary, "", 5)
    with pytest.raises(ValueError, match="length must be a non-negative integer, got -1"):
        generate(stepper, vocabulary, "he", -1)
    with pytest.raises(ValueError, match="temperature must be >= 0, got -0.5"):
        generate(stepper, vocabulary, "he", 5, temperature=-0.5)


def test_step_model_rejects_models_that_are_not_causal_chains():
    inputs = tf.keras.Input((None,), dtype="int32")
    x = tf.keras.layers.Embedding(10, 4)(inputs)
    bidirectional = tf.keras.Model(inputs, tf.keras.layers.Bidirectional(BinaryGRU(4, return_sequences=True))(x))
    with pytest.raises(ValueError, match="cannot run one step at a time"):
        step_model(bidirectional)
    backwards = tf.keras.Model(inputs, BinaryGRU(4, return_sequences=True, go_backwards=True)(x))
    with pytest.raises(ValueError, match="go_backwards"):
        step_model(backwards)
    branch = tf.keras.Model(inputs, tf.keras.layers.Add()([x, x]))
    with pytest.raises(ValueError, match="not a chain"):
        step_model(branch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the float model has no binary layer
        dense = convert(tf.keras.Sequential([tf.keras.Input((3,), batch_size=1), tf.keras.layers.Dense(2)]))
    with pytest.raises(ValueError, match="no signature|not those of a keras_bnn.text.step_model"):
        FlatbufferStepper(dense)
