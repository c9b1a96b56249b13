"""Binarization monitor: exact figures on a hand-built case, TensorBoard/JSON/PNG outputs, the CLI command."""

import json

import keras_bnn.legacy  # noqa: F401  (first: selects tf-keras)
import larq
import numpy as np
import pytest
import tensorflow as tf

from keras_bnn.legacy.training import BinarizationMonitor, plot_monitor
from keras_bnn.cli import main

KERNEL_0 = np.array([[0.5, -0.2, 0.1], [-0.4, 0.0, 0.3], [0.2, 0.25, -0.5], [-0.1, 0.4, 0.45]], np.float32)
# Epoch 0: sign flips at (0,1) −→+, (1,1) 0 (+) →−, (2,0) +→−, (3,2) +→−; at the 0.5 bound: (0,0), (2,2), (3,2).
KERNEL_1 = np.array([[0.5, 0.2, 0.1], [-0.4, -0.05, 0.3], [-0.2, 0.25, -0.5], [-0.1, 0.4, -0.5]], np.float32)
# Epoch 1: one flip, (0,2) +→− ((3,2) moves off the bound but keeps its sign); at the bound: (0,0), (2,2).
KERNEL_2 = np.array([[0.5, 0.2, -0.1], [-0.4, -0.05, 0.3], [-0.2, 0.25, -0.5], [-0.1, 0.4, -0.3]], np.float32)
PROBE = np.array([[1.0, -2.0, 0.0, 3.0], [-1.0, -1.0, 2.0, -0.5], [0.5, 0.5, -0.5, 0.0]], np.float32)


def _model():
    return tf.keras.Sequential([
        tf.keras.Input((4,)),
        larq.layers.QuantDense(3, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                               kernel_constraint=larq.constraints.WeightClip(0.5), use_bias=False, name="binary"),
        tf.keras.layers.Dense(2, name="real"),
    ])


def test_figures_are_exact_on_a_hand_built_case(tmp_path):
    model = _model()
    kernel = model.get_layer("binary").kernel
    kernel.assign(KERNEL_0)
    monitor = BinarizationMonitor(PROBE, log_dir=tmp_path)
    monitor.set_model(model)
    monitor.on_train_begin()
    for epoch, values in enumerate((KERNEL_1, KERNEL_2)):
        kernel.assign(values)
        monitor.on_epoch_end(epoch)
    monitor.on_train_end()

    history = monitor.history["binary"]
    assert list(monitor.history) == ["binary"]  # the real Dense layer is not monitored
    assert history["flip_ratio"] == [4 / 12, 1 / 12]
    assert history["clip_share"] == [3 / 12, 2 / 12]
    # ste_sign(probe): +1 where x >= 0 -> 7 of 12 values; the same probe every epoch.
    assert history["positive_share"] == [7 / 12, 7 / 12]
    assert monitor.epochs == [0, 1]

    saved = json.loads((tmp_path / "binarization_monitor.json").read_text())
    assert saved == {"epochs": [0, 1], "layers": monitor.history}
    assert (tmp_path / "binarization_monitor.png").stat().st_size > 1000
    events = list(tmp_path.glob("events.out.tfevents.*"))
    assert len(events) == 1
    tags = set()
    for record in tf.data.TFRecordDataset(str(events[0])):
        event = tf.compat.v1.Event.FromString(record.numpy())
        tags.update(value.tag for value in event.summary.value)
    assert tags == {"binary/flip_ratio", "binary/clip_share", "binary/positive_share"}


def test_monitor_in_fit_and_plot_command(tmp_path, capsys):
    model = _model()
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    log_dir = tmp_path / "logs"
    monitor = BinarizationMonitor(PROBE, log_dir=log_dir)
    model.fit(rng.normal(size=(16, 4)), rng.normal(size=(16, 2)), epochs=2, verbose=0, callbacks=[monitor])
    assert len(monitor.history["binary"]["flip_ratio"]) == 2

    output = tmp_path / "plot.png"
    assert main(["plot-monitor", str(log_dir), "--output", str(output)]) == 0
    assert output.stat().st_size > 1000 and str(output) in capsys.readouterr().out
    assert main(["plot-monitor", str(tmp_path / "missing")]) == 1
    assert "keras-bnn: error:" in capsys.readouterr().err


def test_errors():
    plain = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2)])
    monitor = BinarizationMonitor(PROBE)
    monitor.set_model(plain)
    with pytest.raises(ValueError, match="binary"):
        monitor.on_train_begin()
    with pytest.raises(ValueError, match="clip_value"):
        BinarizationMonitor(PROBE, clip_value=0.0)
    with pytest.raises(FileNotFoundError):
        plot_monitor("/nonexistent/folder")
