"""`keras-bnn convert`, `inspect` and `bench`, in-process through main() and once as the installed console script."""

import json
import subprocess
import sys
from pathlib import Path

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from keras_bnn.cli import main

BINARY = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip")


def _save(path: Path, *, depthwise: bool = False) -> Path:
    inputs = tf.keras.Input((8, 8, 32))
    x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0, **BINARY)(inputs)
    if depthwise:
        x = lq.layers.QuantDepthwiseConv2D(3, input_quantizer="ste_sign", depthwise_quantizer="ste_sign",
                                           name="binary_depthwise")(x)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(10, **BINARY)(x)
    tf.keras.Model(inputs, x).save(path)
    return path


def test_convert_with_report_then_inspect(tmp_path, capsys):
    model = _save(tmp_path / "model.keras")
    output = tmp_path / "model.tflite"
    assert main(["convert", str(model), "-o", str(output), "--report", "--batch-size", "2", "--strict"]) == 0
    out = capsys.readouterr().out
    assert output.read_bytes()[4:8] == b"TFL3"
    assert "0 binary layer(s) not bitpacked" in out and "LceBconv2d" in out and "FULLY_CONNECTED" not in out
    assert main(["inspect", str(output)]) == 0
    out = capsys.readouterr().out
    assert "LceBconv2d" in out and "Bitpacked share of binary MACs: 100.00%" in out


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
def test_convert_reports_layers_left_in_float(tmp_path, capsys):
    model = _save(tmp_path / "model.h5", depthwise=True)
    output = tmp_path / "model.tflite"
    assert main(["convert", str(model), "-o", str(output), "--report", "--target", "xcore"]) == 0
    captured = capsys.readouterr()
    assert "warning: binary layer 'binary_depthwise'" in captured.err
    assert "Binary layers not bitpacked: binary_depthwise" in captured.out
    assert main(["convert", str(model), "-o", str(output), "--int8-io"]) == 0
    assert "the flatbuffer's inputs stay float32" in capsys.readouterr().err
    assert main(["convert", str(model), "-o", str(output), "--strict"]) == 1
    error_lines = capsys.readouterr().err.strip().splitlines()
    assert error_lines[-1].startswith("keras-bnn: error: conversion failed: 1 binary layer(s) cannot be bitpacked")
    assert "Traceback" not in "\n".join(error_lines)


@pytest.mark.parametrize("argv, message", [
    (["convert", "no-such-model.keras", "-o", "out.tflite"], "no such file or directory: 'no-such-model.keras'"),
    (["convert", "model.keras", "-o", "missing-dir/out.tflite"], "output directory does not exist"),
    (["convert", "m.keras", "-o", "out.tflite", "--target", "riscv"], "invalid choice: 'riscv'"),
    (["convert", "m.keras", "-o", "out.tflite", "--batch-size", "0"], "expected a positive integer, got '0'"),
    (["convert", "m.keras"], "the following arguments are required: -o/--output"),
    (["inspect", "no-such.tflite"], "no such file: 'no-such.tflite'"),
    ([], "the following arguments are required: COMMAND"),
])
def test_usage_errors_exit_2_with_one_line(argv, message, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unreadable_inputs_exit_1(tmp_path, capsys):
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a model")
    assert main(["convert", str(broken), "-o", str(tmp_path / "out.tflite")]) == 1
    assert capsys.readouterr().err.startswith("keras-bnn: error: cannot load Keras model")
    assert main(["inspect", str(broken)]) == 1
    assert capsys.readouterr().err.startswith("keras-bnn: error: cannot inspect")


def test_help_documents_every_option(capsys):
    assert main(["convert", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("MODEL", "--output", "--report", "--strict", "--target", "--int8-io", "--batch-size"):
        assert option in out


def test_console_script_help():
    script = Path(sys.executable).with_name("keras-bnn")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "convert" in result.stdout and "inspect" in result.stdout


def test_convert_a_zoo_language_model_converts_its_step_model(tmp_path, capsys):
    output = tmp_path / "lm.tflite"
    assert main(["convert", "binary_gru_lm.tiny_shakespeare", "-o", str(output), "--report", "--strict"]) == 0
    captured = capsys.readouterr()
    assert "step model" in captured.err
    assert "Bitpacked share of binary MACs: 100.00%" in captured.out and "LceBconv2d" in captured.out
    assert output.read_bytes()[4:8] == b"TFL3"


def test_convert_a_zoo_model_to_int8_gives_builtin_ops_only(tmp_path, capsys):
    output = tmp_path / "cnn_int8.tflite"
    assert main(["convert", "binary_cnn.mnist", "-o", str(output), "--kernels", "int8", "--head", "float",
                 "--report"]) == 0
    out = capsys.readouterr().out
    assert "LceBconv2d" not in out and "CONV_2D" in out and "about 8x its 1-bit ideal" in out
    assert "TFLite builtin int8 ops only" in out and "not bitpacked" not in out.splitlines()[0]
    from keras_bnn.tflite.flatbuffer import read_flatbuffer

    assert read_flatbuffer(output).custom_op_types() == set()


def test_convert_a_file_to_int8_needs_calibration_data(tmp_path, capsys):
    model = _save(tmp_path / "model.keras")
    assert main(["convert", str(model), "-o", str(tmp_path / "out.tflite"), "--kernels", "int8"]) == 2
    assert "--kernels int8 needs --representative-data" in capsys.readouterr().err
    data = tmp_path / "calibration.npy"
    np.save(data, np.random.default_rng(0).integers(-4, 4, (8, 8, 8, 32)).astype(np.float32))
    assert main(["convert", str(model), "-o", str(tmp_path / "out.tflite"), "--kernels", "int8",
                 "--representative-data", str(data)]) == 0
    assert main(["convert", str(model), "-o", str(tmp_path / "out.tflite"), "--kernels", "int4"]) == 2
    assert "invalid choice: 'int4'" in capsys.readouterr().err


def test_bench_prints_every_file_of_a_zoo_model(capsys):
    assert main(["bench", "xnornet_small.fashion_mnist", "--examples", "20", "--runs", "3", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["name"] == "xnornet_small.fashion_mnist" and row["examples"] == 20
    assert set(row["int8"]["runtimes"]) == {"litert", "tflite", "tflm"} and row["int8"]["tflm_arena_bytes"] > 0
    assert row["lce"]["bytes"] < row["int8"]["bytes"] < row["float"]["bytes"]
    assert set(row["ratios"]) >= {"float_over_lce_indirect", "int8_litert_over_lce_indirect"}
    assert main(["bench", "binary_gru_lm.tiny_shakespeare", "--examples", "10", "--runs", "3"]) == 0
    table = capsys.readouterr().out
    assert "not lowered" in table and "lce indirect" in table  # the GRU LM has no int8 lowering; LCE runs it


def test_convert_a_keras3_file(tmp_path, capsys):
    """A .keras file that Keras 3 wrote (here on TensorFlow; tests/tflite/test_keras3.py covers JAX and PyTorch files)
    converts through the CLI, bitpacked."""
    import keras

    import keras_bnn.layers

    binary = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip")
    model = keras.Sequential([keras.Input((8, 8, 32)),
                              keras_bnn.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0, **binary),
                              keras.layers.Flatten(), keras_bnn.layers.QuantDense(10, **binary)])
    path = tmp_path / "keras3.keras"
    model.save(path)
    output = tmp_path / "keras3.tflite"
    assert main(["convert", str(path), "-o", str(output), "--report", "--batch-size", "1", "--strict"]) == 0
    out = capsys.readouterr().out
    assert "0 binary layer(s) not bitpacked" in out and "LceBconv2d" in out and "FULLY_CONNECTED" not in out
