"""Pretrained weights: the packaged files match their configs, load, classify real test images, and
reproduce the card's test accuracy; wrong arguments and damaged files are refused."""

import dataclasses
import shutil

import numpy as np
import pytest

import keras_bnn.zoo as zoo
from keras_bnn.zoo import api, pretrained, weights
from keras_bnn.zoo.evaluation import load_split

PRETRAINED = zoo.list_models(pretrained=True)

# A test image each pretrained model classifies correctly (index into the dataset's test split).
KNOWN_TEST_IMAGE = {
    "binarynet_mlp.mnist": 0,
    "binary_cnn.mnist": 0,
    "birealnet_small.fashion_mnist": 0,
    "xnornet_small.fashion_mnist": 0,
}


def test_every_trained_model_ships_weights():
    assert PRETRAINED == sorted(KNOWN_TEST_IMAGE)


@pytest.mark.parametrize("name", PRETRAINED)
def test_packaged_file_matches_its_config(name):
    config = zoo.pretrained_config(name)
    path = pretrained.weights_path(config)
    assert path.name == config.weights_file == f"{name}.npz"
    assert path.stat().st_size == config.size_bytes
    assert weights.file_sha256(path) == config.sha256
    assert config.dataset == name.split(".")[1]
    assert 0.0 < config.test_accuracy <= 1.0 and config.test_examples == 10_000
    assert config.command.startswith(f"python -m keras_bnn.zoo.training.train {name}")


@pytest.mark.parametrize("name", PRETRAINED)
def test_pretrained_model_classifies_a_known_test_image(name):
    index = KNOWN_TEST_IMAGE[name]
    images, labels = load_split(zoo.pretrained_config(name).dataset, f"test[{index}:{index + 1}]")
    model = zoo.get(name, pretrained=True)
    assert int(np.argmax(model.predict(images, verbose=0), axis=-1)[0]) == int(labels[0])


@pytest.mark.parametrize("name", PRETRAINED)
def test_evaluate_reproduces_the_card(name):
    result = zoo.evaluate(name)
    config = zoo.pretrained_config(name)
    assert result["examples"] == config.test_examples
    assert result["card"] == config.test_accuracy
    assert result["measured"] == config.test_accuracy
    assert result["matches"] is True


def test_pretrained_features_are_the_backbone_of_the_full_model():
    name = PRETRAINED[0]
    full = zoo.get(name, pretrained=True)
    features = zoo.get(name, pretrained=True, include_top=False)
    feature_layer = features.layers[-1].name
    images, _ = load_split(zoo.pretrained_config(name).dataset, "test[:4]")
    import tensorflow as tf

    backbone = tf.keras.Model(full.inputs, full.get_layer(feature_layer).output)
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


def test_get_refuses_a_corrupted_weights_file(tmp_path, monkeypatch):
    name = PRETRAINED[0]
    config = zoo.pretrained_config(name)
    damaged = tmp_path / config.weights_file
    shutil.copyfile(pretrained.weights_path(config), damaged)
    damaged.write_bytes(damaged.read_bytes()[:-10])  # truncated
    monkeypatch.setattr(api, "weights_path", lambda _config: damaged)
    with pytest.raises(zoo.WeightsFileError, match=config.sha256):
        zoo.get(name, pretrained=True)


def test_weights_with_a_url_are_downloaded_and_checked(tmp_path):
    config = zoo.pretrained_config(PRETRAINED[0])
    release = tmp_path / "release"
    release.mkdir()
    shutil.copyfile(pretrained.weights_path(config), release / "copy.npz")
    remote = dataclasses.replace(config, weights_file="copy.npz", url=(release / "copy.npz").as_uri())
    path = pretrained.weights_path(remote, cache_dir=tmp_path / "cache")
    assert path.parent == tmp_path / "cache" / "keras_bnn_zoo" and weights.file_sha256(path) == config.sha256
    no_url = dataclasses.replace(config, weights_file="absent.npz")
    with pytest.raises(zoo.WeightsFileError, match="no release URL"):
        pretrained.weights_path(no_url)
