"""What running LCE's native converter in a worker process costs: seconds per `convert` call, in-process
(``KERAS_BNN_CONVERTER_ISOLATION=0``) and isolated (the default), on a one-layer binary convolution.

Run: `.venv/bin/python benchmarks/converter_isolation.py` → benchmarks/results/converter_isolation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import keras_bnn.tflite  # first: the converter selects tf-keras before TensorFlow is imported
import larq
import tensorflow as tf

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _machine import RESULTS, machine_info  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--output", default=str(RESULTS / "converter_isolation.json"))
    args = parser.parse_args(argv)
    inputs = tf.keras.Input((8, 8, 16), batch_size=1)
    outputs = larq.layers.QuantConv2D(16, 3, input_quantizer="ste_sign", kernel_quantizer="ste_sign")(inputs)
    model = tf.keras.Model(inputs, outputs)
    seconds = {}
    outputs_equal = True
    reference = None
    for mode, setting in (("in_process", "0"), ("isolated", "1")):
        os.environ["KERAS_BNN_CONVERTER_ISOLATION"] = setting
        seconds[mode] = []
        for _ in range(args.calls):
            start = time.perf_counter()
            flatbuffer = keras_bnn.tflite.convert(model)
            seconds[mode].append(round(time.perf_counter() - start, 3))
            reference = reference or flatbuffer
            outputs_equal &= flatbuffer == reference
    print("| calls | " + " | ".join(f"call {i + 1}" for i in range(args.calls)) + " |")
    print("| --- |" + " --- |" * args.calls)
    for mode, values in seconds.items():
        print(f"| {mode} | " + " | ".join(f"{value:.2f} s" for value in values) + " |")
    result = {"model": "QuantConv2D 16x3x3 on 8x8x16, batch 1", "seconds_per_call": seconds,
              "identical_flatbuffers": bool(outputs_equal),
              "command": "python benchmarks/converter_isolation.py " + " ".join(argv or sys.argv[1:]),
              "machine": machine_info()}
    pathlib.Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
