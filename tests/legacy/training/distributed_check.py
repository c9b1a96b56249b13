"""Helper of test_distribute.py, run in a subprocess: trains the training tools under a tf.distribute strategy.

    python distributed_check.py mirrored      # default strategy, then MirroredStrategy over 2 logical CPUs
    python distributed_check.py multiworker   # MultiWorkerMirroredStrategy (one local worker)

Prints one JSON line {strategy name: {run name: results}}. The CPU is split into 2 logical devices first, which
TensorFlow allows only before it initialises its devices, hence the subprocess. Initial weights come from numpy
with fixed seeds, so every strategy (and process) starts from the same values.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras_bnn.legacy  # noqa: E402,F401  (first: selects tf-keras)
import larq  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_bnn.legacy.training import (  # noqa: E402
    BatchNormReestimation,
    BinarizationMonitor,
    BinaryRelaxScheduler,
    BinaryRelaxSign,
    Distiller,
    PCNNConv2D,
    case_optimizer,
    requantize,
)

MODE = sys.argv[1]
cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
STRATEGIES = (
    {"multiworker": tf.distribute.MultiWorkerMirroredStrategy()}  # must exist before any other op runs
    if MODE == "multiworker"
    else {"default": tf.distribute.get_strategy(), "mirrored": tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])}
)

DATA_RNG = np.random.default_rng(0)
X = DATA_RNG.normal(size=(32, 8, 8, 2)).astype(np.float32)
Y = DATA_RNG.integers(0, 3, size=32)
LOSS = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
BINARY = dict(input_quantizer="ste_sign", kernel_constraint="weight_clip", use_bias=False)


def set_weights(model, seed):
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        value = rng.uniform(-0.5, 0.5, size=weight.shape)
        if "variance" in weight.name:
            value = np.abs(value) + 0.5
        elif "relaxation" in weight.name or "projection" in weight.name:
            value = np.ones(weight.shape)  # BinaryRelax's λ, PCNN's projection matrices start at 1
        weight.assign(value.astype(np.float32))


def binary_model(kind):
    inputs = tf.keras.Input((8, 8, 2))
    if kind == "relax_pcnn":
        x = PCNNConv2D(4, 3, num_projections=2, projection_loss_weight=1e-2)(inputs)
    else:
        x = larq.layers.QuantConv2D(4, 3, padding="same", kernel_quantizer="ste_sign", **BINARY)(inputs)
    x = tf.keras.layers.BatchNormalization(synchronized=True)(x)  # synchronized: global batch statistics
    kernel = BinaryRelaxSign(1.0) if kind == "relax_pcnn" else "ste_sign"
    x = larq.layers.QuantConv2D(6, 3, strides=2, padding="same", kernel_quantizer=kernel, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization(synchronized=True)(x)
    x = tf.keras.layers.Flatten()(x)
    return tf.keras.Model(inputs, larq.layers.QuantDense(3, kernel_quantizer="ste_sign", **BINARY)(x))


class Losses(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.values = []

    def on_train_batch_end(self, batch, logs=None):
        self.values.append(float(logs["loss"]))


def fit(model, callbacks=(), epochs=2):
    losses = Losses()
    model.fit(X, Y, batch_size=16, epochs=epochs, shuffle=False, verbose=0, callbacks=[losses, *callbacks])
    return losses.values


def run_relax_pcnn():
    """PCNN + BinaryRelax (scheduler into phase II) + BatchNorm re-estimation + binarization monitor, Adam."""
    model = binary_model("relax_pcnn")
    set_weights(model, 1)
    model.compile(tf.keras.optimizers.legacy.Adam(1e-2), LOSS)
    monitor = BinarizationMonitor(X[:8])
    estimation = tf.data.Dataset.from_tensor_slices(X).batch(16)
    callbacks = [BinaryRelaxScheduler(growth=2.0, quantize_epoch=1), BatchNormReestimation(estimation, None), monitor]
    losses = fit(model, callbacks)
    return {
        "losses": losses,
        "moving_mean": model.layers[2].moving_mean.numpy().tolist(),
        "flip_ratio": {name: values["flip_ratio"] for name, values in monitor.history.items()},
    }


def run_bop():
    """Bop on the binary kernels, Adam on the rest (case_optimizer)."""
    model = binary_model("ste")
    set_weights(model, 2)
    model.compile(case_optimizer(model, binary=larq.optimizers.Bop(threshold=1e-3, gamma=0.5), real="adam"), LOSS)
    losses = fit(model)
    return {"losses": losses, "kernel": model.layers[1].kernel.latent_variable.numpy().ravel().tolist()}


def run_distill_two_step():
    """Distill a float teacher into step 1 of two-step training (requantize: real weights, binary inputs)."""
    teacher = tf.keras.Sequential([tf.keras.Input((8, 8, 2)), tf.keras.layers.Conv2D(4, 3, activation="relu"),
                                   tf.keras.layers.Flatten(), tf.keras.layers.Dense(3)])
    set_weights(teacher, 3)
    student = binary_model("ste")
    set_weights(student, 4)
    step1 = requantize(student, kernel_quantizer=None, kernel_constraint=None)
    distiller = Distiller(teacher, step1, temperature=2.0, alpha=0.5)
    distiller.compile(tf.keras.optimizers.legacy.Adam(1e-2), loss=LOSS)
    return {"losses": fit(distiller)}


results = {}
for name, strategy in STRATEGIES.items():
    results[name] = {"replicas": strategy.num_replicas_in_sync}
    for run in (run_relax_pcnn, run_bop, run_distill_two_step):
        tf.keras.backend.clear_session()
        with strategy.scope():
            results[name][run.__name__] = run()
print(json.dumps(results))
