"""Data-parallel training of a model of keras_bnn.layers: Keras' DataParallel distribution on JAX over 2 host
devices, and tf.distribute.MirroredStrategy over 2 logical CPUs on TensorFlow, each in its own Python process.

Both split every batch in two and combine the gradients (BatchNorm with global batch statistics: JAX's sharded
computation by itself, TensorFlow's `synchronized=True`), so the losses and weights must follow single-device
training on the same data in the same order, up to float rounding, and the loss must fall.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

# Common part: data, the model, and a training run; `train(scope)` returns the loss per epoch and the weights.
COMMON = r'''
import json, os, sys
import numpy as np
import keras
import keras_bnn.layers

rng = np.random.default_rng(0)
x = rng.normal(size=(128, 8, 8, 1)).astype("float32")
y = (x[:, :, :4].mean(axis=(1, 2, 3)) > x[:, :, 4:].mean(axis=(1, 2, 3))).astype("int32")


def build():
    inputs = keras.Input((8, 8, 1))
    h = keras_bnn.layers.QuantConv2D(8, 3, padding="same", pad_values=1.0, kernel_quantizer="ste_sign",
                                     kernel_constraint="weight_clip", use_bias=False)(inputs)
    h = keras.layers.BatchNormalization(momentum=0.9, synchronized=keras.backend.backend() == "tensorflow")(h)
    h = keras.layers.Flatten()(h)
    h = keras_bnn.layers.QuantDense(2, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                                    kernel_constraint="weight_clip")(h)
    return keras.Model(inputs, h)


def weights(model):
    return [np.asarray(keras.ops.convert_to_numpy(w)).ravel() for w in model.weights]


def train(scope=None):
    keras.utils.set_random_seed(1)
    if scope is None:
        model = build()
    else:
        with scope:
            model = build()
    initial = weights(model)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, batch_size=32, epochs=4, shuffle=False, verbose=0)
    return model, history.history["loss"], weights(model), initial


def report(replicas, single, parallel):
    (_, single_loss, single_weights, _), (_, parallel_loss, parallel_weights, initial) = single, parallel
    print("REPORT " + json.dumps({
        "replicas": replicas, "single_loss": single_loss, "parallel_loss": parallel_loss,
        "max_weight_difference": max(float(np.abs(a - b).max()) for a, b in zip(single_weights, parallel_weights)),
        "max_weight_change": max(float(np.abs(a - b).max()) for a, b in zip(parallel_weights, initial)),
    }))
'''

JAX = COMMON + r'''
import jax

single = train()
devices = keras.distribution.list_devices()
keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
parallel = train()
kernel = parallel[0].layers[1].kernel.value
assert len(kernel.sharding.device_set) == 2, kernel.sharding  # replicated on both devices
report(len(devices), single, parallel)
'''

TENSORFLOW = COMMON + r'''
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
single = train()
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
parallel = train(strategy.scope())
report(strategy.num_replicas_in_sync, single, parallel)
'''


def _train(script: str, backend: str, **env: str) -> dict:
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("KERAS_BACKEND", "TF_USE_LEGACY_KERAS", "XLA_FLAGS")}
    environment.update(KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", **env)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900,
                            env=environment)
    assert result.returncode == 0, result.stderr[-4000:]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("REPORT ")]
    return json.loads(line[len("REPORT "):])


@pytest.mark.parametrize("backend,script,env", [
    ("jax", JAX, {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}),
    ("tensorflow", TENSORFLOW, {}),
], ids=["jax-DataParallel", "tensorflow-MirroredStrategy"])
def test_data_parallel_training_follows_single_device_training(backend, script, env):
    result = _train(script, backend, **env)
    assert result["replicas"] == 2
    single, parallel = np.array(result["single_loss"]), np.array(result["parallel_loss"])
    assert parallel[-1] < 0.8 * parallel[0], parallel  # it learns
    np.testing.assert_allclose(parallel, single, rtol=1e-3)
    assert result["max_weight_change"] > 0.01
    assert result["max_weight_difference"] < 1e-3, result
