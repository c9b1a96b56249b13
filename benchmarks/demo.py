"""`make demo`: the main job end to end on real MNIST.

Trains a small binary CNN on MNIST (read through keras_bnn.datasets, tfds underneath), prints its test accuracy
and `larq.models.summary`, converts it with `keras_bnn.tflite.convert` to a bitpacked Larq Compute Engine
flatbuffer, runs that flatbuffer in LCE's interpreter on the whole test set, prints its size and the Keras/LCE
agreement; then converts it to the portable int8 file (``kernels="int8"``: builtin TFLite ops only, calibrated on
500 training images), runs that in LiteRT (the stock TFLite runtime) on the whole test set and prints its size and
agreement, and the same for an int8 file whose classifier stays float32 (``head="float"``); and writes
benchmarks/results/demo.json.

Run: `make demo` (or `.venv/bin/python benchmarks/demo.py --epochs 6 --seed 1`).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import keras_bnn.legacy  # noqa: F401  (first: selects tf-keras)
import keras_bnn.tflite
import larq
import numpy as np
import tensorflow as tf

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _machine import RESULTS, machine_info  # noqa: E402
from _models import conv_bnn as build_model  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=5e-3)
    parser.add_argument("--output", default=str(RESULTS / "demo.json"))
    args = parser.parse_args(argv)

    tf.keras.utils.set_random_seed(args.seed)
    # Raw pixels (0..255), as the zoo's image models take them: integers that the int8 file's input represents
    # exactly (pixels scaled to [-1, 1] fall between int8 steps, so int8 would round them before the first sign).
    x_train, y_train = keras_bnn.datasets.load_images("mnist", "train")
    x_test, y_test = keras_bnn.datasets.load_images("mnist", "test")
    print(f"MNIST via keras_bnn.datasets: train {x_train.shape}, test {x_test.shape}")

    model = build_model()
    steps = args.epochs * int(np.ceil(len(x_train) / args.batch_size))
    schedule = tf.keras.optimizers.schedules.CosineDecay(args.learning_rate, steps)
    model.compile(tf.keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy", ["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=1)
    train_seconds = time.perf_counter() - start
    _, test_accuracy = model.evaluate(x_test, y_test, batch_size=500, verbose=0)
    larq.models.summary(model)
    print(f"Keras test accuracy: {test_accuracy:.4f} after {args.epochs} epochs ({train_seconds:.0f} s)")

    # LCE fixes the batch size at conversion: convert a batch-100 copy carrying the trained weights.
    inference_model = build_model(batch_size=100)
    inference_model.set_weights(model.get_weights())
    flatbuffer = keras_bnn.tflite.convert(inference_model)
    report = keras_bnn.tflite.inspect(flatbuffer)
    print(report)
    verification = keras_bnn.tflite.verify(inference_model, flatbuffer, x_test)
    print(verification)

    int8 = keras_bnn.tflite.convert(inference_model, kernels="int8", representative_data=x_train[:500])
    int8_verification = keras_bnn.tflite.verify(inference_model, int8, x_test, runtime="litert")
    print(keras_bnn.tflite.inspect(int8))
    print(int8_verification)
    # The same with the classifier (last dense layer and what follows) kept in float32: the binary layers are
    # exact in int8, so what the int8 file loses is the rounding of the logits.
    int8_float_head = keras_bnn.tflite.convert(inference_model, kernels="int8", head="float",
                                               representative_data=x_train[:500])
    float_head_verification = keras_bnn.tflite.verify(inference_model, int8_float_head, x_test, runtime="litert")
    print(float_head_verification)

    result = {
        "dataset": "mnist",
        "epochs": args.epochs,
        "seed": args.seed,
        "train_seconds": round(train_seconds, 1),
        "test_accuracy": round(float(test_accuracy), 4),
        "flatbuffer_bytes": len(flatbuffer),
        "bitpacked_share": report.bitpacked_share,
        "lce_top1_agreement": verification.top1_agreement,
        "lce_max_abs_diff": verification.max_abs_diff,
        "int8_flatbuffer_bytes": len(int8),
        "int8_litert_top1_agreement": int8_verification.top1_agreement,
        "int8_litert_max_abs_diff": int8_verification.max_abs_diff,
        "int8_float_head_flatbuffer_bytes": len(int8_float_head),
        "int8_float_head_litert_top1_agreement": float_head_verification.top1_agreement,
        "int8_float_head_litert_max_abs_diff": float_head_verification.max_abs_diff,
        "command": "make demo  (= .venv/bin/python benchmarks/demo.py " + " ".join(argv or sys.argv[1:]) + ")",
        "machine": machine_info(),
    }
    pathlib.Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(f"Flatbuffer: {len(flatbuffer):,} bytes, bitpacked share {report.bitpacked_share}")
    print(f"Keras/LCE top-1 agreement on {len(x_test):,} test images: {verification.top1_agreement:.4%}")
    print(f"int8 file (builtin ops, for stock LiteRT / TFLite Micro): {len(int8):,} bytes; Keras/LiteRT top-1 "
          f"agreement on {len(x_test):,} test images: {int8_verification.top1_agreement:.4%}")
    print(f"int8 file with a float32 classifier (head='float'): {len(int8_float_head):,} bytes; Keras/LiteRT top-1 "
          f"agreement: {float_head_verification.top1_agreement:.4%}")
    print(f"Wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
