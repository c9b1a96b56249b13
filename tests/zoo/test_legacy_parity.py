"""One definition, one weights file, two implementations: every pretrained zoo model built as a Keras 3 model (on
the backend under test) gives the outputs of its tf-keras build (larq and keras_bnn.legacy layers, what the
converter takes; tests/conftest.py imports it first, so it runs in this process on TensorFlow) on real test samples,
and the Keras 3 streamed bits per character match the tf-keras ones."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_bnn.datasets
import keras_bnn.text
import keras_bnn.zoo as zoo
from keras_bnn.zoo.evaluation import streamed_bits_per_character

PRETRAINED = zoo.list_models(pretrained=True)
SAMPLES = 32


def _test_samples(name):
    """The first real samples of the card's test split as model inputs (a language model: 2 windows of 100
    characters of the test text), and the true classes (next characters)."""
    entry = zoo.entry(name)
    split = entry.pretrained.test_split
    if entry.task == "image_classification":
        return keras_bnn.datasets.load_images(entry.dataset, f"{split}[:{SAMPLES}]")
    if entry.task == "text_classification":
        sentences, labels = keras_bnn.datasets.load_sentences(entry.dataset, split)
        return zoo.tokenizer(name)(sentences[:SAMPLES]), labels[:SAMPLES]
    ids = zoo.tokenizer(name).encode(keras_bnn.datasets.load_text(entry.dataset, split)[:201])
    return ids[:200].reshape(2, 100), ids[1:].reshape(2, 100)


@pytest.mark.parametrize("name", PRETRAINED)
def test_keras3_model_gives_the_tf_keras_models_outputs(name):
    inputs, labels = _test_samples(name)
    model = zoo.get(name, pretrained=True)
    legacy = zoo.get(name, pretrained=True, legacy=True)
    assert isinstance(model, keras.Model) and isinstance(legacy, tf.keras.Model)
    assert not isinstance(legacy, keras.Model)
    outputs = model.predict(inputs, verbose=0)
    expected = legacy.predict(inputs, verbose=0)
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(outputs.argmax(-1), expected.argmax(-1))
    # Trained weights, not an accident of the inputs: most samples are classified (predicted) right.
    assert np.mean(outputs.argmax(-1) == labels) > (0.75 if zoo.entry(name).task != "language_modeling" else 0.4)


def test_keras3_streamed_bits_per_character_match_tf_keras():
    name = "binary_gru_lm.tiny_shakespeare"
    ids = zoo.tokenizer(name).encode(keras_bnn.datasets.load_text("tiny_shakespeare", "test")[:4 * 150 + 1])
    builder = zoo.entry(name).builder
    model = builder(batch_size=4, stateful=True)
    legacy = builder(batch_size=4, stateful=True, legacy=True)
    path = zoo.weights.weights_path(zoo.entry(name).pretrained)
    zoo.weights.load_compact(model, path)
    zoo.weights.load_compact(legacy, path)
    bits, count = streamed_bits_per_character(model, ids, window=40)  # 4 windows per stream, the state carried
    expected, expected_count = keras_bnn.text.streamed_bits_per_character(legacy, ids, window=40)
    assert count == expected_count == 600
    assert bits == pytest.approx(expected, abs=1e-5)
    assert 1.5 < bits < 4.0
    assert streamed_bits_per_character(model, ids, window=40) == (bits, count)  # the state is reset first


@pytest.mark.parametrize("name, split", [("xnornet_small.fashion_mnist", "test[:500]"),
                                         ("binary_transformer.sst2", "validation[:200]")])
def test_evaluate_measures_both_builds_alike(name, split):
    keras3, legacy = zoo.evaluate(name, split, legacy=False), zoo.evaluate(name, split, legacy=True)
    assert keras3["measured"] == legacy["measured"] and keras3["examples"] == legacy["examples"]
    assert keras3["card"] is None and keras3["matches"] is False  # the card states no figure for a slice
