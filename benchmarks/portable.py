"""Every pretrained zoo model as LCE, int8 and float flatbuffers, side by side, in one run on this machine.

For each model: Keras accuracy on its test split; the LCE file (LCE's interpreter, indirect BGEMM); the int8 file
(``convert(kernels="int8")``, every op int8, calibrated on 500 training samples) in LiteRT with XNNPACK,
``tf.lite.Interpreter`` and TFLite Micro; the float file (stock TFLite) in LiteRT with XNNPACK: accuracy, top-1
agreement with Keras, max |difference| of the outputs, flatbuffer bytes, TFLite Micro's arena bytes, and latency
at batch 1 and 1 thread (medians of ``--runs`` invocations, measured side by side; their ratios are printed, lone
times mean little on a shared machine). A model the int8 target cannot lower records the error that names the
layer.

Samples: the full test split of the image models (10,000 images), SST-2's dev split (872 sentences) for the
Transformer, and the first ``--text-steps`` characters of Tiny Shakespeare's test split for the GRU language model
(the step model, its state carried by Keras).

Run (about an hour here, mostly TFLite Micro's reference kernels):
``nice .venv/bin/python benchmarks/portable.py`` (writes benchmarks/results/portable.json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import re
import sys
import tempfile
import time
import types
import warnings
from typing import Iterator

import keras_bnn.legacy  # noqa: F401  (first: selects tf-keras)
import keras_bnn.zoo as zoo
from keras_bnn.tflite import convert
from keras_bnn.tflite.bench import format_table, measure
from keras_bnn.tflite.runtimes import arrange, open_runtime, positions_by_name

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _machine import RESULTS, machine_info  # noqa: E402

@contextlib.contextmanager
def captured_output() -> Iterator[types.SimpleNamespace]:
    """What native code writes to file descriptors 1 and 2 inside the block (TFLite Micro reports there)."""
    capture = types.SimpleNamespace(text="")
    sys.stdout.flush(), sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as file:
        os.dup2(file.fileno(), 1), os.dup2(file.fileno(), 2)
        try:
            yield capture
        finally:
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            file.seek(0)
            capture.text = file.read().decode(errors="replace")


def float_in_tflm(model, inputs: list) -> str:
    """Whether TFLite Micro runs the model's float file (for the models the int8 target cannot lower)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flatbuffer = convert(model, kernels="float", batch_size=1)
    try:
        with captured_output() as capture:
            runtime = open_runtime(flatbuffer, "tflm")
            runtime.run(arrange([x[:1] for x in inputs], positions_by_name(runtime.inputs, model.input_names),
                                runtime.inputs))
    except (RuntimeError, ValueError) as error:
        missing = sorted(set(re.findall(r"Didn't find op for builtin opcode '(\w+)'", capture.text)))
        return f"refused: {error}" + (f" (no kernel for {', '.join(missing)})" if missing else "")
    return "ran"


def measure_model(name: str, examples: int | None, text_steps: int, runs: int) -> dict:
    examples = text_steps if zoo.entry(name).task == "language_modeling" else examples
    inputs, labels = zoo.samples.test_samples(name, examples)
    model = zoo.samples.deployment_model(name)
    start = time.perf_counter()
    row = measure(model, inputs, labels, representative_data=zoo.samples.calibration_samples(name)[0], runs=runs)
    if "error" in row["int8"]:
        row["float"]["tflm"] = float_in_tflm(model, inputs)
    return {"name": name, "split": zoo.entry(name).pretrained.test_split, **row,
            "seconds": round(time.perf_counter() - start, 1)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=zoo.list_models(pretrained=True),
                        choices=zoo.list_models(pretrained=True))
    parser.add_argument("--examples", type=int, default=None, help="test samples per model (default: all)")
    parser.add_argument("--text-steps", type=int, default=2000, help="characters of the language model's test text")
    parser.add_argument("--runs", type=int, default=300, help="timed invocations per latency (median)")
    parser.add_argument("--output", default=str(RESULTS / "portable.json"))
    args = parser.parse_args(argv)
    result = {"command": "python benchmarks/portable.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": machine_info(), "models": []}
    for name in args.models:
        result["models"].append(measure_model(name, args.examples, args.text_steps, args.runs))
        print(format_table(result["models"][-1:]), flush=True)
        pathlib.Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(format_table(result["models"]))
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
