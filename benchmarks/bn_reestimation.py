"""BatchNorm re-estimation on larq's own MNIST tutorial model, across seeds.

Trains larq's MNIST tutorial network unchanged (QuantConv2D ×3 + QuantDense ×2 with ``BatchNormalization(
scale=False)``, Adam, batch 64, 6 epochs, inputs scaled to [-1, 1]) for several seeds, and reports its test
accuracy as trained and after `keras_bnn.legacy.training.reestimate_batchnorm` recomputed the BatchNorm moving
statistics with the final binary weights (all training batches of 256, no augmentation). Writes
benchmarks/results/bn_reestimation.json.

Run (about 4 minutes per seed on 2 shared cores):
    .venv/bin/python benchmarks/bn_reestimation.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import keras_bnn.legacy  # noqa: F401  (first: selects tf-keras)
import larq
import numpy as np
import tensorflow as tf

from keras_bnn.legacy.training import reestimate_batchnorm

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _machine import RESULTS, machine_info  # noqa: E402


def tutorial_model() -> tf.keras.Model:
    """larq's MNIST tutorial model (docs.larq.dev, "Introduction to BNNs with Larq"), layer for layer."""
    kwargs = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip")
    return tf.keras.Sequential(
        [
            larq.layers.QuantConv2D(
                32, (3, 3), kernel_quantizer="ste_sign", kernel_constraint="weight_clip", use_bias=False,
                input_shape=(28, 28, 1),
            ),
            tf.keras.layers.MaxPooling2D((2, 2)),
            tf.keras.layers.BatchNormalization(scale=False),
            larq.layers.QuantConv2D(64, (3, 3), use_bias=False, **kwargs),
            tf.keras.layers.MaxPooling2D((2, 2)),
            tf.keras.layers.BatchNormalization(scale=False),
            larq.layers.QuantConv2D(64, (3, 3), use_bias=False, **kwargs),
            tf.keras.layers.BatchNormalization(scale=False),
            tf.keras.layers.Flatten(),
            larq.layers.QuantDense(64, use_bias=False, **kwargs),
            tf.keras.layers.BatchNormalization(scale=False),
            larq.layers.QuantDense(10, use_bias=False, **kwargs),
            tf.keras.layers.BatchNormalization(scale=False),
            tf.keras.layers.Activation("softmax"),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--output", default=str(RESULTS / "bn_reestimation.json"))
    args = parser.parse_args()

    x_train, y_train = keras_bnn.datasets.load_images("mnist", "train", signed=True)
    x_test, y_test = keras_bnn.datasets.load_images("mnist", "test", signed=True)
    estimation = tf.data.Dataset.from_tensor_slices(x_train).batch(256)
    result = {
        "dataset": "mnist",
        "model": "larq MNIST tutorial (3 QuantConv2D + 2 QuantDense, BatchNormalization(scale=False))",
        "epochs": args.epochs,
        "batch_size": 64,
        "reestimation": "reestimate_batchnorm over all 235 training batches of 256",
        "runs": [],
        "command": "python benchmarks/bn_reestimation.py " + " ".join(sys.argv[1:]),
        "machine": machine_info(),
    }
    for seed in args.seeds:
        tf.keras.backend.clear_session()
        tf.keras.utils.set_random_seed(seed)
        model = tutorial_model()
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        start = time.time()
        model.fit(x_train, y_train, batch_size=64, epochs=args.epochs, verbose=0)
        train_seconds = time.time() - start
        _, before = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
        start = time.time()
        batches = reestimate_batchnorm(model, estimation, num_batches=None)
        reestimation_seconds = time.time() - start
        _, after = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
        run = {
            "seed": seed,
            "test_accuracy": round(float(before), 4),
            "test_accuracy_reestimated": round(float(after), 4),
            "reestimation_batches": batches,
            "train_seconds": round(train_seconds, 1),
            "reestimation_seconds": round(reestimation_seconds, 1),
        }
        result["runs"].append(run)
        print(json.dumps(run), flush=True)
        pathlib.Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    before = [run["test_accuracy"] for run in result["runs"]]
    after = [run["test_accuracy_reestimated"] for run in result["runs"]]
    result["summary"] = {
        "test_accuracy_mean": round(float(np.mean(before)), 4),
        "test_accuracy_min": min(before),
        "test_accuracy_reestimated_mean": round(float(np.mean(after)), 4),
        "test_accuracy_reestimated_min": min(after),
    }
    pathlib.Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"]))


if __name__ == "__main__":
    main()
