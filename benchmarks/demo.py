"""`make demo`: the main job end to end on real MNIST.

Trains a small binary CNN (Keras 3 and keras_bnn.layers, on the backend KERAS_BACKEND names: TensorFlow by default,
JAX or PyTorch) on MNIST (read through keras_bnn.datasets, tfds underneath), prints its test accuracy and
`keras_bnn.models.summary` (larq's table), converts it with `keras_bnn.tflite.convert` (on TensorFlow, in the same
run) to a bitpacked Larq Compute Engine flatbuffer, runs that flatbuffer in LCE's interpreter on the whole test set, prints its size and the Keras/LCE
agreement; then converts it to the portable int8 file (``kernels="int8"``: builtin TFLite ops only, calibrated on
500 training images), runs that in LiteRT (the stock TFLite runtime) on the whole test set and prints its size and
agreement, and the same for an int8 file whose classifier stays float32 (``head="float"``); and writes
benchmarks/results/demo.json.

Run: `make demo` (or `.venv/bin/python benchmarks/demo.py --epochs 6 --seed 1`; `KERAS_BACKEND=jax make demo` trains
on JAX).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import keras_bnn.tflite  # first: the converter selects tf-keras for its own use before TensorFlow is imported
import keras
import keras_bnn.datasets
import keras_bnn.layers
import keras_bnn.models
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _machine import RESULTS, machine_info  # noqa: E402

BINARY = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip")


def build_model() -> keras.Model:
    """larq's MNIST tutorial layout on Keras 3: 3 binary convs + 2 binary dense layers."""
    def norm() -> keras.layers.Layer:
        # momentum 0.9: the moving statistics follow the weight flips of the last epoch (see the README).
        return keras.layers.BatchNormalization(momentum=0.9, scale=False)

    return keras.Sequential([
        keras.Input((28, 28, 1), name="image"),
        keras_bnn.layers.QuantConv2D(32, 3, use_bias=False, **dict(BINARY, input_quantizer=None)),
        keras.layers.MaxPool2D(2), norm(),
        keras_bnn.layers.QuantConv2D(64, 3, use_bias=False, **BINARY),
        keras.layers.MaxPool2D(2), norm(),
        keras_bnn.layers.QuantConv2D(64, 3, use_bias=False, **BINARY), norm(),
        keras.layers.Flatten(),
        keras_bnn.layers.QuantDense(64, use_bias=False, **BINARY), norm(),
        keras_bnn.layers.QuantDense(10, use_bias=False, **BINARY), norm(),
        keras.layers.Activation("softmax"),
    ], name="conv_bnn")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=5e-3)
    parser.add_argument("--output", default=str(RESULTS / "demo.json"))
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    print(f"Keras {keras.__version__} on the {keras.backend.backend()} backend")
    # Raw pixels (0..255), as the zoo's image models take them: integers that the int8 file's input represents
    # exactly (pixels scaled to [-1, 1] fall between int8 steps, so int8 would round them before the first sign).
    x_train, y_train = keras_bnn.datasets.load_images("mnist", "train")
    x_test, y_test = keras_bnn.datasets.load_images("mnist", "test")
    print(f"MNIST via keras_bnn.datasets: train {x_train.shape}, test {x_test.shape}")

    model = build_model()
    steps = args.epochs * int(np.ceil(len(x_train) / args.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=1)
    train_seconds = time.perf_counter() - start
    _, test_accuracy = model.evaluate(x_test, y_test, batch_size=500, verbose=0)
    keras_bnn.models.summary(model)
    print(f"Keras test accuracy: {test_accuracy:.4f} after {args.epochs} epochs ({train_seconds:.0f} s)")

    # LCE fixes the batch size at conversion: the files take batches of 100. The Keras 3 model (any backend's) is
    # rebuilt for the converter as the same tf-keras model with the same weights.
    inference_model = model
    flatbuffer = keras_bnn.tflite.convert(inference_model, batch_size=100)
    report = keras_bnn.tflite.inspect(flatbuffer)
    print(report)
    verification = keras_bnn.tflite.verify(inference_model, flatbuffer, x_test)
    print(verification)

    int8 = keras_bnn.tflite.convert(inference_model, kernels="int8", batch_size=100,
                                    representative_data=x_train[:500])
    int8_verification = keras_bnn.tflite.verify(inference_model, int8, x_test, runtime="litert")
    print(keras_bnn.tflite.inspect(int8))
    print(int8_verification)
    # The same with the classifier (last dense layer and what follows) kept in float32: the binary layers are
    # exact in int8, so what the int8 file loses is the rounding of the logits.
    int8_float_head = keras_bnn.tflite.convert(inference_model, kernels="int8", head="float", batch_size=100,
                                               representative_data=x_train[:500])
    float_head_verification = keras_bnn.tflite.verify(inference_model, int8_float_head, x_test, runtime="litert")
    print(float_head_verification)

    result = {
        "dataset": "mnist",
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
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
