"""Binarization monitor: exact figures on a hand-built case, TensorBoard/JSON/PNG outputs, errors."""

import json

import keras
import numpy as np
import pytest

from keras_bnn.constraints import WeightClip
from keras_bnn.layers import QuantDense
from keras_bnn.training import BinarizationMonitor, plot_monitor
from keras_bnn.training._events import ScalarEventWriter

KERNEL_0 = np.array([[0.5, -0.2, 0.1], [-0.4, 0.0, 0.3], [0.2, 0.25, -0.5], [-0.1, 0.4, 0.45]], np.float32)
# Epoch 0: sign flips at (0,1) −→+, (1,1) 0 (+) →−, (2,0) +→−, (3,2) +→−; at the 0.5 bound: (0,0), (2,2), (3,2).
KERNEL_1 = np.array([[0.5, 0.2, 0.1], [-0.4, -0.05, 0.3], [-0.2, 0.25, -0.5], [-0.1, 0.4, -0.5]], np.float32)
# Epoch 1: one flip, (0,2) +→− ((3,2) moves off the bound but keeps its sign); at the bound: (0,0), (2,2).
KERNEL_2 = np.array([[0.5, 0.2, -0.1], [-0.4, -0.05, 0.3], [-0.2, 0.25, -0.5], [-0.1, 0.4, -0.3]], np.float32)
PROBE = np.array([[1.0, -2.0, 0.0, 3.0], [-1.0, -1.0, 2.0, -0.5], [0.5, 0.5, -0.5, 0.0]], np.float32)


def _model():
    return keras.Sequential([
        keras.Input((4,)),
        QuantDense(3, input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint=WeightClip(0.5),
                   use_bias=False, name="binary"),
        keras.layers.Dense(2, name="real"),
    ])


def _scalars(path):
    """{tag: [(step, value), ...]} of an event file, read with TensorFlow's own reader."""
    import tensorflow as tf

    scalars = {}
    for record in tf.data.TFRecordDataset(str(path)):  # checks every record's CRC
        event = tf.compat.v1.Event.FromString(record.numpy())
        for value in event.summary.value:
            scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


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
    (events,) = tmp_path.glob("events.out.tfevents.*")
    scalars = _scalars(events)
    assert set(scalars) == {"binary/flip_ratio", "binary/clip_share", "binary/positive_share"}
    for metric, values in history.items():
        steps, written = zip(*scalars[f"binary/{metric}"])
        assert steps == (0, 1)
        np.testing.assert_allclose(written, values, rtol=1e-7)  # float32 summaries


def test_monitor_in_fit(tmp_path):
    model = _model()
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    log_dir = tmp_path / "logs"
    monitor = BinarizationMonitor(PROBE, log_dir=log_dir)
    model.fit(rng.normal(size=(16, 4)), rng.normal(size=(16, 2)), epochs=2, verbose=0, callbacks=[monitor])
    assert len(monitor.history["binary"]["flip_ratio"]) == 2
    assert all(0.0 <= value <= 1.0 for values in monitor.history["binary"].values() for value in values)
    output = plot_monitor(log_dir, tmp_path / "plot.png")
    assert output.stat().st_size > 1000


def test_event_writer_records_are_what_tensorflow_reads(tmp_path):
    writer = ScalarEventWriter(tmp_path)
    for step in range(3):
        writer.scalar("a/b", 0.5 * step, step)
    writer.close()
    assert _scalars(writer.path) == {"a/b": [(0, 0.0), (1, 0.5), (2, 1.0)]}


def test_errors():
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    monitor = BinarizationMonitor(PROBE)
    monitor.set_model(plain)
    with pytest.raises(ValueError, match="binary"):
        monitor.on_train_begin()
    with pytest.raises(ValueError, match="clip_value"):
        BinarizationMonitor(PROBE, clip_value=0.0)
    with pytest.raises(ValueError, match="log_dir"):
        BinarizationMonitor(PROBE).save()
    with pytest.raises(FileNotFoundError):
        plot_monitor("/nonexistent/folder")
