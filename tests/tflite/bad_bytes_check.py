"""Run in a subprocess by test_flatbuffer.py: bad flatbuffer bytes through every entry point that takes them.

Each case must raise ValueError with a message that says what the bytes are; a crash (segmentation fault) kills
the process, which the test sees. Prints one JSON line: {"cases": N, "failures": [...]}.

Usage: python bad_bytes_check.py GOOD.tflite REPEATS SEED
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

import keras_bnn.legacy  # noqa: F401  (first: selects tf-keras)
import larq as lq
import tensorflow as tf

from keras_bnn.tflite import FlatbufferStepper, inspect, verify
from keras_bnn.tflite.runtimes import open_runtime


def bad_inputs(good: bytes, rng: np.random.Generator) -> dict[str, bytes]:
    cut = int(rng.integers(8, len(good) - 1))
    random = bytes(rng.integers(0, 256, size=int(rng.integers(8, 4096)), dtype=np.uint8))
    return {
        "truncated": good[:cut],
        "random": random,
        "random_with_identifier": random[:4] + b"TFL3" + random[8:],
        "empty": b"",
        "wrong_identifier": good[:4] + b"XYZ3" + good[8:],
    }


def main() -> None:
    good_path, repeats, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    good = open(good_path, "rb").read()
    rng = np.random.default_rng(seed)
    inputs = tf.keras.Input((8, 8, 32), batch_size=1)
    model = tf.keras.Model(inputs, lq.layers.QuantConv2D(8, 3, input_quantizer="ste_sign",
                                                          kernel_quantizer="ste_sign")(inputs))
    x = np.zeros((1, 8, 8, 32), np.float32)
    cli = [sys.executable, "-m", "keras_bnn.cli", "inspect"]
    entry_points = {
        "verify": lambda data: verify(model, data, x),
        "inspect": lambda data: inspect(data),
        "stepper": lambda data: FlatbufferStepper(data),
        "runtime": lambda data: open_runtime(data, "lce"),
    }
    cases, failures = 0, []
    for repeat in range(repeats):
        for kind, data in bad_inputs(good, rng).items():
            for name, call in entry_points.items():
                cases += 1
                try:
                    call(data)
                    failures.append(f"{name}/{kind}: no error")
                except ValueError as error:
                    if "flatbuffer" not in str(error):
                        failures.append(f"{name}/{kind}: unclear message {error}")
                except Exception as error:  # noqa: BLE001
                    failures.append(f"{name}/{kind}: {type(error).__name__}: {error}")
            if repeat == 0:  # the command line, once per kind (a process each)
                with tempfile.NamedTemporaryFile(suffix=".tflite", delete=False) as file:
                    file.write(data)
                run = subprocess.run([*cli, file.name], capture_output=True, text=True, env=os.environ)
                os.unlink(file.name)
                cases += 1
                last = run.stderr.strip().splitlines()[-1] if run.stderr.strip() else ""
                if run.returncode != 1 or not last.startswith("keras-bnn: error:") or "flatbuffer" not in last:
                    failures.append(f"cli/{kind}: exit {run.returncode}, stderr {run.stderr[-300:]!r}")
    print(json.dumps({"cases": cases, "failures": failures}))


if __name__ == "__main__":
    main()
