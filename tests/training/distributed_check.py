"""Run by test_distribute.py in a subprocess: the same trainings on one device and data-parallel on two.

``python distributed_check.py mirrored``: TensorFlow backend, the CPU split into 2 logical devices,
``tf.distribute.MirroredStrategy`` (global batch 16 = 2 × 8, synchronized BatchNorm).
``python distributed_check.py jax``: JAX backend, 2 host devices, ``keras.distribution.DataParallel``.

Trainings: (1) Bop + Adam via case_optimizer on a binary conv net; (2) a Distiller with an attention pair into a
student made of PCNNConv2D, BatchNorm and a BinaryRelaxSign convolution, with BinaryRelaxScheduler,
BatchNormReestimation and BinarizationMonitor. Prints one JSON line: losses and final predictions of each.
"""

import json
import os
import sys

MODE = sys.argv[1]
if MODE == "jax":
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ["KERAS_BACKEND"] = "jax" if MODE == "jax" else "tensorflow"

import numpy as np  # noqa: E402

if MODE == "mirrored":
    import tensorflow as tf

    _cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

import keras_bnn  # noqa: E402
from keras_bnn import training  # noqa: E402

SYNCHRONIZED = MODE == "mirrored"
RNG = np.random.default_rng(2)
X = RNG.normal(size=(32, 6, 6, 2)).astype(np.float32)
Y = np.argmax(np.sign(X.reshape(32, -1)) @ RNG.normal(size=(72, 3)), axis=1)


def bop_model():
    binary = dict(kernel_quantizer="ste_sign", kernel_constraint="weight_clip", use_bias=False)
    model = keras.Sequential([
        keras.Input((6, 6, 2)),
        keras_bnn.layers.QuantConv2D(8, 3, padding="same", pad_values=1.0, **binary),
        keras.layers.Flatten(),
        keras_bnn.layers.QuantDense(16, input_quantizer="ste_sign", **binary),
        keras.layers.Dense(3),
    ])
    model.compile(training.case_optimizer(model, binary=training.Bop(threshold=1e-5, gamma=1e-2),
                                          real=keras.optimizers.Adam(1e-2)),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def distiller():
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="t_features")(inputs)
    teacher = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))
    inputs = keras.Input((6, 6, 2))
    x = training.PCNNConv2D(8, 3, num_projections=2, projection_loss_weight=1e-2)(inputs)
    x = keras.layers.BatchNormalization(synchronized=SYNCHRONIZED, name="s_features")(x)
    x = keras_bnn.layers.QuantConv2D(4, 3, padding="same", pad_values=1.0, input_quantizer="ste_sign",
                                     kernel_quantizer=training.BinaryRelaxSign(0.5), kernel_constraint="weight_clip",
                                     use_bias=False)(x)
    student = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))
    model = training.Distiller(teacher, student, alpha=0.5, attention_pairs=[("t_features", "s_features")])
    model.compile(keras.optimizers.Adam(1e-2), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def callbacks():
    return [training.BinaryRelaxScheduler(growth=2.0, quantize_epoch=2),
            training.BatchNormReestimation([X[:16], X[16:]], num_batches=None),
            training.BinarizationMonitor(X[:4])]


def run(scope):
    results = {}
    for name, build, extra in (("bop", bop_model, list), ("distiller", distiller, callbacks)):
        keras.utils.set_random_seed(0)
        with scope():
            model = build()
        history = model.fit(X, Y, epochs=2, batch_size=16, shuffle=False, verbose=0, callbacks=extra())
        results[name] = {"loss": history.history["loss"],
                         "predictions": np.asarray(model.predict(X, batch_size=16, verbose=0)).tolist()}
    return results


def main():
    import contextlib

    single = run(contextlib.nullcontext)
    if MODE == "mirrored":
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        assert strategy.num_replicas_in_sync == 2
        distributed = run(strategy.scope)
    else:
        devices = keras.distribution.list_devices()
        assert len(devices) == 2, devices
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        distributed = run(contextlib.nullcontext)
    print(json.dumps({"single": single, "distributed": distributed}))


if __name__ == "__main__":
    main()
