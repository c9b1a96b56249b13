"""Registry and `get`: every registered model builds as a Keras 3 model (every backend), honours its arguments and
survives .keras save/load; ``legacy=True`` builds the tf-keras model of the same definition (what the converter
takes); importing the zoo imports neither TensorFlow nor larq."""

import os
import subprocess
import sys

import keras
import larq
import numpy as np
import pytest
import tensorflow as tf

import keras_bnn.zoo as zoo
from keras_bnn import _compat
from keras_bnn.layers import variable_precision
from keras_bnn.zoo.cards import operation_counts

SMALL = [name for name in zoo.list_models() if not name.endswith(".imagenet")]
IMAGENET = zoo.list_models("*.imagenet")
TEXT = ["binary_gru_lm.tiny_shakespeare", "binary_transformer.sst2"]


def _images(count, shape=(28, 28, 1), seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, *shape)).astype(np.float32)


def _inputs(name, count, seed=0):
    """Inputs of the model's task: pixels, or token ids (sentences padded with 0 after a random length)."""
    spec = zoo.entry(name)
    if spec.task == "image_classification":
        return _images(count, spec.input_shape, seed)
    rng = np.random.default_rng(seed)
    vocabulary = zoo.get(name).layers[1].input_dim
    length = spec.input_shape[0] or 20
    ids = rng.integers(1, vocabulary, (count, length)).astype(np.int32)
    if spec.task == "text_classification":
        for row, used in zip(ids, rng.integers(1, length, count)):
            row[used:] = 0
    return ids


def _output_shape(name, batch, classes):
    """(batch, classes), or (batch, length, vocabulary) for a language model."""
    return (batch, None, classes) if zoo.entry(name).task == "language_modeling" else (batch, classes)


def test_list_models_filters_and_sorts():
    names = zoo.list_models()
    assert names == sorted(names) and len(names) >= 6
    assert set(IMAGENET) == {"birealnet18.imagenet", "xnornet18.imagenet"}
    assert zoo.list_models("*.mnist") == ["binary_cnn.mnist", "binarynet_mlp.mnist"]
    assert set(zoo.list_models(pretrained=True)) <= set(SMALL)
    assert zoo.list_models("no_such_*") == []
    with pytest.raises(TypeError, match="pattern"):
        zoo.list_models(3)


@pytest.mark.parametrize("typo, expected", [
    ("birealnet_smal.fashion_mnist", "birealnet_small.fashion_mnist"),
    ("binarynet_mlp.mnst", "binarynet_mlp.mnist"),
    ("xnornet18", "xnornet18.imagenet"),
])
def test_unknown_name_lists_close_names(typo, expected):
    with pytest.raises(ValueError, match="Unknown model") as error:
        zoo.get(typo)
    assert repr(expected) in str(error.value)
    with pytest.raises(ValueError, match=expected.replace(".", r"\.")):
        zoo.model_card(typo)


def test_text_models_are_registered_with_their_task():
    assert set(TEXT) <= set(SMALL)
    assert {name: zoo.entry(name).task for name in TEXT} == {
        "binary_gru_lm.tiny_shakespeare": "language_modeling", "binary_transformer.sst2": "text_classification"}
    assert all(zoo.entry(name).task == "image_classification" for name in SMALL if name not in TEXT)


def _binary_weights(model):
    return [weight for weight in model.weights if variable_precision(weight) == 1]


@pytest.mark.parametrize("name", SMALL)
def test_builds_functional_with_default_output(name):
    model = zoo.get(name)
    spec = zoo.entry(name)
    assert isinstance(model, keras.Model) and type(model).__name__ == "Functional"
    assert model.input_shape == (None, *spec.input_shape)
    assert model.output_shape == _output_shape(name, None, spec.num_classes)
    inputs = _inputs(name, 2)
    outputs = model.predict(inputs, verbose=0)
    expected = _output_shape(name, 2, spec.num_classes)
    assert outputs.shape == tuple(inputs.shape[1] if d is None else d for d in expected)
    if spec.task == "image_classification":
        np.testing.assert_allclose(outputs.sum(axis=-1), 1.0, rtol=1e-5)
    else:  # logits
        assert np.all(np.isfinite(outputs)) and outputs.dtype == np.float32
    assert _binary_weights(model)  # it is binary


@pytest.mark.parametrize("name", SMALL)
def test_legacy_builds_the_tf_keras_model_of_the_same_definition(name):
    legacy = zoo.get(name, legacy=True)
    model = zoo.get(name)
    assert isinstance(legacy, tf.keras.Model) and _compat.is_graph_model(legacy)
    assert [layer.name for layer in legacy.layers] == [layer.name for layer in model.layers]
    assert legacy.count_params() == model.count_params()
    binary_weights = sum(int(np.prod(weight.shape)) for weight in _binary_weights(model))
    assert larq.models.ModelProfile(legacy).weight_count(1) == binary_weights
    with pytest.raises(TypeError, match="legacy must be a bool"):
        zoo.get(name, legacy="yes")


def test_importing_the_zoo_imports_neither_tensorflow_nor_larq():
    script = (
        "import sys\n"
        "import keras_bnn.zoo as zoo\n"
        "assert zoo.list_models(pretrained=True) and zoo.entry('binary_cnn.mnist')\n"
        "model = zoo.get('binary_cnn.mnist', pretrained=True)\n"
        "loaded = [m for m in ('tensorflow', 'tf_keras', 'larq', 'keras_bnn.legacy') if m in sys.modules]\n"
        "print(type(model).__module__, loaded)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "KERAS_BACKEND": "jax"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == ["keras.src.models.functional", "[]"]


@pytest.mark.parametrize("name", SMALL)
def test_num_classes_batch_size_and_include_top(name):
    spec = zoo.entry(name)
    model = zoo.get(name, num_classes=3, batch_size=2)
    assert model.output_shape == _output_shape(name, 2, 3)
    headless = zoo.get(name, include_top=False)
    assert headless.layers[-1].name == spec.feature_layer
    assert "predictions" not in [layer.name for layer in headless.layers]
    with pytest.raises(ValueError, match="include_top=False"):
        zoo.get(name, include_top=False, num_classes=3)
    with pytest.raises(ValueError, match="num_classes"):
        zoo.get(name, num_classes=0)
    with pytest.raises(ValueError, match="batch_size"):
        zoo.get(name, batch_size=0)
    with pytest.raises(TypeError, match="include_top"):
        zoo.get(name, include_top="no")


# The MLP (10M weights, only QuantDense/BatchNorm/Keras layers that the others also use) is left out for time.
@pytest.mark.parametrize("name", [n for n in SMALL if n != "binarynet_mlp.mnist"])
def test_keras_save_load_keeps_predictions(name, tmp_path):
    model = zoo.get(name)
    rng = np.random.default_rng(1)
    for weight in model.weights:  # Move away from the initial BatchNorm statistics.
        value = rng.uniform(-1, 1, weight.shape).astype(np.float32)
        weight.assign(np.abs(value) + 0.5 if "variance" in weight.name else value)
    inputs = _inputs(name, 4)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0))


@pytest.mark.parametrize("name", [n for n in SMALL if "fashion" in n])
def test_float_twin_has_no_binary_weights(name):
    twin = zoo.entry(name).builder(binary=False)
    assert not _binary_weights(twin)
    assert twin.count_params() == zoo.get(name).count_params()
    assert larq.models.ModelProfile(zoo.entry(name).builder(binary=False, legacy=True)).weight_count(1) == 0


def test_text_model_arguments():
    lm = zoo.get("binary_gru_lm.tiny_shakespeare", input_shape=(7,), batch_size=3)
    assert lm.input_shape == (3, 7) and lm.output_shape == (3, 7, 65)
    stateful = zoo.entry("binary_gru_lm.tiny_shakespeare").builder(batch_size=2, stateful=True)
    ids = _inputs("binary_gru_lm.tiny_shakespeare", 2)
    first, second = stateful(ids[:, :10]), stateful(ids[:, 10:])  # the state carries over
    whole = zoo.get("binary_gru_lm.tiny_shakespeare")
    whole.set_weights(stateful.get_weights())
    carried = np.concatenate([keras.ops.convert_to_numpy(first), keras.ops.convert_to_numpy(second)], 1)
    np.testing.assert_allclose(carried, whole.predict(ids, verbose=0), atol=1e-4)
    with pytest.raises(ValueError, match="stateful=True needs a fixed batch_size"):
        zoo.entry("binary_gru_lm.tiny_shakespeare").builder(stateful=True)
    assert zoo.get("binary_transformer.sst2", input_shape=(None,)).input_shape == (None, None)
    with pytest.raises(ValueError, match="longer than the 48 positions"):
        zoo.get("binary_transformer.sst2", input_shape=(60,))
    with pytest.raises(ValueError, match="input_shape must be"):
        zoo.get("binary_transformer.sst2", input_shape=(4, 4))


def test_imagenet_definitions_match_the_paper_counts():
    for name in IMAGENET:
        assert zoo.get(name).output_shape == (None, 1000)
        model = zoo.get(name, legacy=True)  # larq's profile counts tf-keras models
        assert model.input_shape == (None, 224, 224, 3) and model.output_shape == (None, 1000)
        counts = operation_counts(model)
        figures = zoo.entry(name).paper_figures
        assert counts["binary_macs"] == pytest.approx(figures["bops"], rel=0.01)
        assert counts["params"] == pytest.approx(figures["resnet18_params"], rel=0.01)
        ops = counts["binary_macs"] / 64 + counts["float_macs_excluding_batchnorm"]
        if name == "birealnet18.imagenet":
            assert ops == pytest.approx(figures["ops"], rel=0.02)
        else:  # Without XNOR-Net's input scaling (K), which the paper's float count includes.
            assert figures["ops"] * 0.8 < ops < figures["ops"]
        tf.keras.backend.clear_session()
        keras.utils.clear_session()


def test_register_refuses_bad_and_taken_names():
    common = dict(builder=lambda **kwargs: None, task="image_classification", dataset="d", input_shape=(4,),
                  num_classes=2, feature_layer="f", summary="s", paper="p")
    with pytest.raises(ValueError, match="architecture.tag"):
        zoo.ZooEntry(name="no_dot", **common)
    with pytest.raises(ValueError, match="task must be one of"):
        zoo.ZooEntry(name="new.d", **{**common, "task": "translation"})
    with pytest.raises(ValueError, match="already registered"):
        zoo.register(zoo.ZooEntry(name="binary_cnn.mnist", **common))
    assert "binary_cnn.mnist" in zoo.list_models() and zoo.entry("binary_cnn.mnist").builder.__name__ == "binary_cnn"


def test_an_entry_holds_the_whole_model_as_data():
    entry = zoo.entry("birealnet_small.fashion_mnist")
    assert (entry.architecture, entry.tag) == ("birealnet_small", "fashion_mnist")
    assert entry.recipe.float_twin and entry.pretrained.metric == "top1_accuracy"
    assert entry.pretrained.test_score == entry.pretrained.scores["test"]
    assert entry.card and zoo.model_card(entry.name).count("## Notes") == 1
    with pytest.raises(ValueError, match="no value for the test split"):
        zoo.Pretrained(**{**vars(entry.pretrained), "test_split": "nope"})
