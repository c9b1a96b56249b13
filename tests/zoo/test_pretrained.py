"""Pretrained weights: the packaged files match their configs, load into the Keras 3 models (every backend),
classify real test images and sentences or predict a known next character, and reproduce the card's test metric;
wrong arguments and damaged files are refused. (The same files in the tf-keras models: test_legacy_parity.py.)"""

import dataclasses
import shutil

import keras
import numpy as np
import pytest

import keras_bnn.zoo as zoo
import keras_bnn.datasets
import keras_bnn.text
from keras_bnn.zoo import tokenizers, weights

PRETRAINED = zoo.list_models(pretrained=True)
TEXT = ["binary_gru_lm.tiny_shakespeare", "binary_transformer.sst2"]

# A test example each pretrained model gets right: an index into the card's test split (images, sentences),
# or for the language model the place in the test text where it predicts the next character (the ":" after
# the speaker's name in "\n\nTRANIO:\nThen at my lodging").
KNOWN_TEST_EXAMPLE = {
    "binarynet_mlp.mnist": 0,
    "binary_cnn.mnist": 0,
    "birealnet_small.fashion_mnist": 0,
    "xnornet_small.fashion_mnist": 0,
    "binary_transformer.sst2": 0,  # "a valueless kiddie paean to pro basketball underwritten by the nba ." (0)
    "binary_gru_lm.tiny_shakespeare": "\n\nTRANIO",
}


def test_every_trained_model_ships_weights():
    assert PRETRAINED == sorted(KNOWN_TEST_EXAMPLE)
    assert set(TEXT) <= set(PRETRAINED)


@pytest.mark.parametrize("name", PRETRAINED)
def test_packaged_file_matches_its_entry(name):
    entry = zoo.entry(name)
    config = entry.pretrained
    path = weights.weights_path(config)
    assert path.name == config.weights_file == f"{name}.npz"
    assert path.stat().st_size == config.size_bytes
    assert weights.file_sha256(path) == config.sha256
    assert entry.dataset == entry.tag
    assert config.command.startswith(f"python -m keras_bnn.zoo.training.train {name}")  # one command, every model
    if entry.task == "image_classification":
        assert 0.0 < config.test_score <= 1.0 and config.test_examples == 10_000
    if entry.task == "language_modeling":
        assert config.metric == "bits_per_character" and 0.0 < config.test_score < 8.0
        assert config.test_examples == 55_744
    if entry.task == "text_classification":
        assert config.test_split == "validation" and config.test_examples == 872  # GLUE dev
    assert config.bitpacked_share == 1.0 or entry.task == "image_classification"


@pytest.mark.parametrize("name", [n for n in PRETRAINED if n not in TEXT])
def test_pretrained_model_classifies_a_known_test_image(name):
    index = KNOWN_TEST_EXAMPLE[name]
    images, labels = keras_bnn.datasets.load_images(zoo.entry(name).dataset, f"test[{index}:{index + 1}]")
    model = zoo.get(name, pretrained=True)
    assert int(np.argmax(model.predict(images, verbose=0), axis=-1)[0]) == int(labels[0])


def test_pretrained_transformer_classifies_known_dev_sentences_from_raw_text():
    name = "binary_transformer.sst2"
    sentences, labels = keras_bnn.datasets.load_sentences("sst2", "validation")
    index = KNOWN_TEST_EXAMPLE[name]
    tokenize = zoo.tokenizer(name)
    model = zoo.get(name, pretrained=True)
    assert sentences[index] == "a valueless kiddie paean to pro basketball underwritten by the nba ."
    ids = tokenize(sentences[index:index + 2])
    assert ids.shape == (2, 48) and ids.dtype == np.int32 and ids[0, 11] == 0  # 11 words, then padding
    assert model.predict(ids, verbose=0).argmax(-1).tolist() == labels[index:index + 2].tolist() == [0, 1]
    # Unpadded ids of one sentence give the same class (padding is masked).
    short = zoo.get(name, pretrained=True, input_shape=(None,))
    assert short.predict(ids[:1, :11], verbose=0).argmax(-1).tolist() == [0]
    assert tokenize(["--", ""])[:, 0].tolist() == [keras_bnn.text.OOV_ID] * 2  # no word: one unknown id
    with pytest.raises(TypeError, match="list of sentences"):
        tokenize("one sentence")


def test_pretrained_language_model_predicts_a_known_next_character():
    name = "binary_gru_lm.tiny_shakespeare"
    vocabulary = zoo.tokenizer(name)
    assert vocabulary.size == 65 and vocabulary.characters[:3] == "\n !"
    test = keras_bnn.datasets.load_text("tiny_shakespeare", "test")
    end = test.index(KNOWN_TEST_EXAMPLE[name]) + len(KNOWN_TEST_EXAMPLE[name])
    model = zoo.get(name, pretrained=True)
    logits = model.predict(vocabulary.encode(test[:end])[None], verbose=0)
    assert logits.shape == (1, end, 65)
    assert vocabulary.decode([logits[0, -1].argmax()]) == test[end] == ":"


# The full test split of one model per test run (~30 s); every model's figure on TensorFlow and JAX: the report's
# `keras-bnn zoo evaluate NAME` runs, and test_legacy_parity.py ties each Keras 3 model to its tf-keras twin.
@pytest.mark.parametrize("name", ["binary_cnn.mnist"])
def test_evaluate_reproduces_the_card(name):
    result = zoo.evaluate(name)
    config = zoo.entry(name).pretrained
    assert result["examples"] == config.test_examples
    assert result["split"] == config.test_split and result["metric"] == config.metric
    assert result["card"] == config.test_score
    if config.metric == "top1_accuracy":
        assert round(result["measured"] * result["examples"]) == round(config.test_score * config.test_examples)
    else:  # bits per character, stated to 4 decimals
        assert round(result["measured"], 4) == config.test_score
    assert result["matches"] is True


def test_pretrained_features_are_the_backbone_of_the_full_model():
    name = PRETRAINED[0]
    full = zoo.get(name, pretrained=True)
    features = zoo.get(name, pretrained=True, include_top=False)
    feature_layer = features.layers[-1].name
    images, _ = keras_bnn.datasets.load_images(zoo.entry(name).dataset, "test[:4]")
    backbone = keras.Model(full.inputs, full.get_layer(feature_layer).output)
    np.testing.assert_array_equal(features.predict(images, verbose=0), backbone.predict(images, verbose=0))


def test_pretrained_arguments_that_do_not_fit_the_weights_are_refused():
    name = PRETRAINED[0]
    with pytest.raises(ValueError, match="10-class head, but num_classes=5"):
        zoo.get(name, pretrained=True, num_classes=5)
    with pytest.raises(ValueError, match="input_shape"):
        zoo.get(name, pretrained=True, input_shape=(32, 32, 1))
    with pytest.raises(ValueError, match="has no pretrained weights"):
        zoo.get("birealnet18.imagenet", pretrained=True)
    assert zoo.get(name, pretrained=True, num_classes=10, batch_size=1).output_shape == (1, 10)


def test_text_models_take_any_length_their_positions_allow():
    assert zoo.get("binary_gru_lm.tiny_shakespeare", pretrained=True, input_shape=(5,)).input_shape == (None, 5)
    assert zoo.get("binary_transformer.sst2", pretrained=True, input_shape=(20,)).input_shape == (None, 20)
    with pytest.raises(ValueError, match="longer than the 48 positions"):
        zoo.get("binary_transformer.sst2", pretrained=True, input_shape=(49,))
    with pytest.raises(ValueError, match="65-class head, but num_classes=64"):
        zoo.get("binary_gru_lm.tiny_shakespeare", pretrained=True, num_classes=64)
    with pytest.raises(ValueError, match="has no tokenizer"):
        zoo.tokenizer("binary_cnn.mnist")


@pytest.mark.parametrize("name", [PRETRAINED[0], *TEXT])
def test_get_refuses_a_corrupted_weights_file(name, tmp_path, monkeypatch):
    config = zoo.entry(name).pretrained
    damaged = tmp_path / config.weights_file
    shutil.copyfile(weights.weights_path(config), damaged)
    damaged.write_bytes(damaged.read_bytes()[:-10])  # truncated
    monkeypatch.setattr(weights, "weights_path", lambda _config: damaged)
    with pytest.raises(zoo.WeightsFileError, match=config.sha256):
        zoo.get(name, pretrained=True)
    if name in TEXT:  # the vocabulary is in the same file, under the same check
        monkeypatch.setattr(tokenizers, "weights_path", lambda _config: damaged)
        with pytest.raises(zoo.WeightsFileError, match=config.sha256):
            zoo.tokenizer(name)


def test_weights_with_a_url_are_downloaded_and_checked(tmp_path):
    config = zoo.entry(PRETRAINED[0]).pretrained
    release = tmp_path / "release"
    release.mkdir()
    shutil.copyfile(weights.weights_path(config), release / "copy.npz")
    remote = dataclasses.replace(config, weights_file="copy.npz", url=(release / "copy.npz").as_uri())
    path = weights.weights_path(remote, cache_dir=tmp_path / "cache")
    assert path.parent == tmp_path / "cache" / "keras_bnn_zoo" and weights.file_sha256(path) == config.sha256
    no_url = dataclasses.replace(config, weights_file="absent.npz")
    with pytest.raises(zoo.WeightsFileError, match="no release URL"):
        weights.weights_path(no_url)
