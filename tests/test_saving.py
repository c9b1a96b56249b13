"""keras_bnn.saving.load_model and `keras-bnn convert`: no code from a model file runs without an explicit opt-in."""

import os
import pathlib

import larq as lq
import pytest
import tensorflow as tf

from keras_bnn.cli import main
from keras_bnn.saving import UnsafeModelError, code_carrying_layers, load_model

FORMATS = ["model.keras", "model.h5", "saved_model"]


def _save_with_side_effect(folder: pathlib.Path, file_name: str) -> tuple[pathlib.Path, pathlib.Path]:
    """A binary model whose Lambda writes a marker file whenever it is called (also when a loader rebuilds it)."""
    marker = folder / "lambda_ran"
    inputs = tf.keras.Input((8, 8, 32), batch_size=1)
    x = tf.keras.layers.Lambda(lambda t, path=str(marker): (open(path, "w").close(), t)[1], name="side_effect")(inputs)
    x = lq.layers.QuantConv2D(32, 3, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                              kernel_constraint="weight_clip")(x)
    path = folder / file_name
    tf.keras.Model(inputs, x).save(path, **({"save_format": "tf"} if file_name == "saved_model" else {}))
    marker.unlink()  # building and saving ran the Lambda; loading must not
    return path, marker


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
@pytest.mark.parametrize("file_name", FORMATS)
def test_a_lambda_never_runs_without_the_opt_in(tmp_path, file_name, capsys):
    path, marker = _save_with_side_effect(tmp_path, file_name)
    with pytest.raises(UnsafeModelError, match=r"safe_mode=False.*--unsafe"):
        load_model(path)
    output = tmp_path / "out.tflite"
    assert main(["convert", str(path), "-o", str(output)]) == 1
    error = capsys.readouterr().err
    assert "--unsafe" in error and error.count("\n") == 1
    assert not marker.exists() and not output.exists()


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
@pytest.mark.parametrize("file_name", FORMATS)
def test_with_the_opt_in_the_model_loads_and_converts(tmp_path, file_name, capsys):
    path, marker = _save_with_side_effect(tmp_path, file_name)
    output = tmp_path / "out.tflite"
    assert main(["convert", str(path), "-o", str(output), "--unsafe", "--strict"]) == 0, capsys.readouterr().err
    assert output.read_bytes()[4:8] == b"TFL3"
    assert isinstance(load_model(path, safe_mode=False), tf.keras.Model)


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
@pytest.mark.parametrize("file_name", ["model.keras", "model.h5"])
def test_a_model_without_code_loads_in_safe_mode(tmp_path, file_name):
    inputs = tf.keras.Input((4,))
    outputs = lq.layers.QuantDense(2, input_quantizer="ste_sign", kernel_quantizer="ste_sign")(inputs)
    tf.keras.Model(inputs, outputs).save(tmp_path / file_name)
    assert load_model(tmp_path / file_name).layers[-1].__class__ is lq.layers.QuantDense


def test_code_carrying_layers_finds_nested_lambdas():
    config = {"class_name": "Functional", "config": {"name": "outer", "layers": [
        {"class_name": "Dense", "config": {"name": "dense"}},
        {"class_name": "Functional", "config": {"name": "inner", "layers": [
            {"class_name": "Lambda", "config": {"name": "hidden", "function": {"class_name": "__lambda__"}}}]}}]}}
    assert code_carrying_layers(config) == ["hidden (Lambda)"]


@pytest.mark.parametrize("file_name, content, expected", [
    ("truncated.keras", b"PK\x03\x04 a zip cut short", "not a .keras model file: a .keras file is a zip archive"),
    ("text.keras", b"just text", "starts with b'just tex'"),
    ("text.h5", b"not hdf5 at all", "not an HDF5 (.h5) model file"),
    ("model.pkl", b"\x80\x04", "expected a .keras file, an .h5 file or a SavedModel folder"),
])
def test_files_that_are_not_what_their_name_says_get_a_clear_error(tmp_path, file_name, content, expected):
    path = tmp_path / file_name
    path.write_bytes(content)
    with pytest.raises(ValueError) as error:
        load_model(path)
    assert expected in str(error.value) and "file signature not found" not in str(error.value)


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
def test_a_truncated_keras_file_names_what_it_is(tmp_path):
    inputs = tf.keras.Input((4,))
    tf.keras.Model(inputs, tf.keras.layers.Dense(2)(inputs)).save(tmp_path / "whole.keras")
    data = (tmp_path / "whole.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="may be truncated"):
        load_model(tmp_path / "cut.keras")


def test_missing_path_and_weights_only_h5(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nope.keras")
    model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2)])
    model.save_weights(os.fspath(tmp_path / "only.weights.h5"))
    (tmp_path / "only.weights.h5").rename(tmp_path / "only.h5")
    with pytest.raises(ValueError, match="holds no model configuration"):
        load_model(tmp_path / "only.h5")
