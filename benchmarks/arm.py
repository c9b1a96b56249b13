"""Every pretrained zoo model's flatbuffers on emulated aarch64: outputs against x86 and Keras, and the aarch64
instructions one inference takes.

For each model, its float file (``convert(kernels="float")``) and, for the image models, its int8 file
(``kernels="int8"``, calibrated on 500 training samples) run in aarch64 LiteRT 2.3.0 (XNNPACK on) under
``qemu-aarch64-static -cpu cortex-a72`` (``keras_bnn.tflite.emulation``, set up by ``make aarch64-setup``), on the
first ``--examples`` test samples (a language model: ``--text-steps`` characters, each with the state Keras
carried to it). Recorded: whether the outputs equal x86 LiteRT's bit for bit (and the max |difference| when not),
top-1 agreement with Keras, and aarch64 instructions per inference at batch 1, 1 thread, counted by QEMU's insn
plugin: (count after a warm-up and n invokes - count after the warm-up alone) / n.

LCE's files need LCE's runtime built for aarch64, which this repository does not build (see README, "Deploy");
given one (``--lce-runner PATH``: a program taking ``--model M --inputs a.npy,b.npy --outputs o.npy,...
--kernel default|indirect --threads N --invokes N``, invoking once as warm-up and then N times), the LCE file is
measured the same way with LCE's default and indirect BGEMM kernels.

Instruction counts are a proxy for speed on ARM, not a latency: QEMU models no caches, no memory stalls and no
pipeline, and counts a NEON instruction as one. The ratios float/LCE and int8/LCE are printed.

Run: ``nice .venv/bin/python benchmarks/arm.py [--lce-runner PATH]`` (writes benchmarks/results/arm.json).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import subprocess
import sys
import tempfile
import time
import warnings
from typing import Any, Sequence

import keras_bnn.legacy  # noqa: F401  (first: selects tf-keras)
import keras_bnn.zoo as zoo
import numpy as np
import tensorflow as tf
from keras_bnn.tflite import convert
from keras_bnn.tflite.emulation import CPUS, Aarch64
from keras_bnn.tflite.runtimes import arrange, open_runtime, positions_by_name

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _machine import RESULTS, machine_info  # noqa: E402

LCE_RUNNER = "LCE_RUNNER"  # stands for the --lce-runner path in the recorded command

METHOD = ("aarch64 instructions per inference at batch 1, 1 thread: QEMU TCG 'insn' plugin (inline) under "
          "qemu-aarch64 -cpu {cpu} ('instructions'; 'instructions_by_cpu': the same on other CPU models); (count "
          "after 1 warm-up + {invokes} invokes - count after the warm-up alone) / {invokes}. A proxy: no caches, "
          "no memory stalls, a NEON instruction counts as one; emulated time is not reported.")


def _first_output(outputs: Sequence[np.ndarray], details, position: int) -> np.ndarray:
    return details[position].real_values(outputs[position])


def _compare(outputs: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    return {"agreement": float(np.mean(outputs.argmax(1) == reference.argmax(1))),
            "max_abs_diff": float(np.abs(outputs - reference).max())}


def _samples(runtime, model: tf.keras.Model, inputs: list[np.ndarray]) -> tuple[list[list[np.ndarray]], int]:
    """Each sample at batch 1, its inputs in the file's order and dtypes; and where the model's first output is."""
    order = positions_by_name(runtime.inputs, model.input_names)
    samples = [arrange([x[index:index + 1] for x in inputs], order, runtime.inputs) for index in range(len(inputs[0]))]
    return samples, positions_by_name(runtime.outputs, model.output_names, "outputs")[0]


def _x86_and_arm(arm: Aarch64, model: tf.keras.Model, flatbuffer: bytes, inputs: list[np.ndarray]):
    """The model's first output on every sample, in x86 LiteRT and in aarch64 LiteRT; and the samples."""
    x86 = open_runtime(flatbuffer, "litert")
    samples, output = _samples(x86, model, inputs)
    on_x86 = np.concatenate([_first_output(x86.run(sample), x86.outputs, output).reshape(1, -1)
                             for sample in samples])
    on_arm = np.concatenate([_first_output(result, x86.outputs, output).reshape(1, -1)
                             for result in arm.run_samples(flatbuffer, samples)])
    return on_x86, on_arm, samples


def litert_file(arm: Aarch64, boards: list[Aarch64], model: tf.keras.Model, flatbuffer: bytes,
                inputs: list[np.ndarray], keras: np.ndarray, labels: np.ndarray, invokes: int) -> dict[str, Any]:
    """One float or int8 file: aarch64 LiteRT against x86 LiteRT and Keras, and its instructions per inference."""
    on_x86, on_arm, samples = _x86_and_arm(arm, model, flatbuffer, inputs)
    versus_keras = _compare(on_arm, keras)
    return {"bytes": len(flatbuffer), "accuracy": float(np.mean(on_arm.argmax(1) == labels)),
            "agreement": versus_keras["agreement"], "max_abs_diff": versus_keras["max_abs_diff"],
            "bit_exact_vs_x86": bool(np.array_equal(on_arm, on_x86)),
            "max_abs_diff_vs_x86": float(np.abs(on_arm - on_x86).max()),
            "instructions": arm.instructions_per_inference(flatbuffer, samples[0], invokes=invokes),
            "instructions_by_cpu": {board.cpu: board.instructions_per_inference(flatbuffer, samples[0],
                                                                                invokes=invokes) for board in boards}}


def before_softmax(arm: Aarch64, model: tf.keras.Model, inputs: list[np.ndarray], **int8_options) -> dict | None:
    """For a classifier ending in a softmax: its int8 file without the softmax, aarch64 against x86 (LiteRT runs
    an int8 SOFTMAX with its own kernel, outside XNNPACK)."""
    last = model.layers[-1]
    if not (isinstance(last, tf.keras.layers.Activation) and last.activation is tf.keras.activations.softmax):
        return None
    logits = tf.keras.Model(model.inputs, model.layers[-2].output)
    on_x86, on_arm, _ = _x86_and_arm(arm, logits, convert(logits, kernels="int8", batch_size=1, **int8_options),
                                     inputs)
    return {"bit_exact_vs_x86": bool(np.array_equal(on_arm, on_x86)),
            "max_abs_diff_vs_x86": float(np.abs(on_arm - on_x86).max())}


def _lce_run(arm: Aarch64, runner: str, folder: pathlib.Path, inputs: list[np.ndarray], outputs: int, kernel: str,
             invokes: int, count: bool = False):
    """The LCE runner on `folder`/model.tflite and `inputs`: its outputs, or with `count` its instructions per
    invoke."""
    model = folder / "model.tflite"
    paths = []
    for i, x in enumerate(inputs):
        np.save(folder / f"in{i}.npy", x)
        paths.append(str(folder / f"in{i}.npy"))
    results = [str(folder / f"out{i}.npy") for i in range(outputs)]

    def argv(k: int) -> list[str]:
        return [runner, "--model", str(model), "--inputs", ",".join(paths), "--outputs", ",".join(results),
                "--kernel", kernel, "--threads", "1", "--invokes", str(k)]

    if count:
        return arm.instructions_per_call(argv, invokes)
    arm.run_program(argv(0))
    return [np.load(path) for path in results]


def lce_file(arm: Aarch64, boards: list[Aarch64], runner: str, model: tf.keras.Model, inputs: list[np.ndarray],
             keras: np.ndarray, invokes: int) -> dict[str, Any]:
    """The LCE file on aarch64 LCE: every sample at batch 1, then instructions per inference per kernel."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flatbuffer = convert(model, batch_size=1)
    x86 = open_runtime(flatbuffer, "lce")
    samples, output = _samples(x86, model, inputs)
    row: dict[str, Any] = {"bytes": len(flatbuffer), "instructions": {},
                           "instructions_by_cpu": {board.cpu: {} for board in boards}}
    with tempfile.TemporaryDirectory(prefix="keras-bnn-arm-") as temporary:
        folder = pathlib.Path(temporary)
        (folder / "model.tflite").write_bytes(flatbuffer)
        for kernel in ("default", "indirect"):
            rows = [_first_output(_lce_run(arm, runner, folder, sample, len(x86.outputs), kernel, 0), x86.outputs,
                                  output).reshape(1, -1) for sample in samples]
            row[kernel] = _compare(np.concatenate(rows), keras)
            row["instructions"][kernel] = _lce_run(arm, runner, folder, samples[0], len(x86.outputs),
                                                   kernel, invokes, count=True)
            for board in boards:
                row["instructions_by_cpu"][board.cpu][kernel] = _lce_run(
                    board, runner, folder, samples[0], len(x86.outputs), kernel, invokes, count=True)
    row["agreement"] = min(row[kernel]["agreement"] for kernel in ("default", "indirect"))
    row["max_abs_diff"] = max(row[kernel]["max_abs_diff"] for kernel in ("default", "indirect"))
    return row


def measure_model(arm: Aarch64, boards: list[Aarch64], name: str, args: argparse.Namespace) -> dict[str, Any]:
    start = time.perf_counter()
    language_model = zoo.entry(name).task == "language_modeling"
    inputs, labels = zoo.samples.test_samples(name, args.text_steps if language_model else args.examples)
    model = zoo.samples.deployment_model(name)
    keras = model.predict(inputs if len(inputs) > 1 else inputs[0], batch_size=256, verbose=0)
    keras = np.asarray(keras[0] if isinstance(keras, list) else keras, np.float64).reshape(len(labels), -1)
    row: dict[str, Any] = {"name": name, "examples": int(len(labels)),
                           "keras_accuracy": float(np.mean(keras.argmax(1) == labels))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flat = convert(model, kernels="float", batch_size=1)
        row["float"] = litert_file(arm, boards, model, flat, inputs, keras, labels, args.invokes)
        calibration = {"representative_data": zoo.samples.calibration_samples(name)[0]}
        try:
            int8 = convert(model, kernels="int8", batch_size=1, **calibration)
        except ValueError as error:  # the int8 target names the layer it cannot lower
            row["int8"] = {"error": str(error)}
        else:
            row["int8"] = litert_file(arm, boards, model, int8, inputs, keras, labels, args.invokes)
            row["int8"]["before_softmax"] = before_softmax(arm, model, inputs, **calibration)
    if args.lce_runner:
        row["lce"] = lce_file(arm, boards, args.lce_runner, model, inputs, keras, args.invokes)
    row["ratios"] = _ratios(row)
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def _ratios(row: dict[str, Any]) -> dict[str, float]:
    """Instructions per inference over LCE's (its faster kernel), > 1 when the LCE file takes fewer."""
    if "lce" not in row:
        return {}
    lce = min(row["lce"]["instructions"].values())
    ratios = {"float_over_lce": round(row["float"]["instructions"] / lce, 3)}
    if "instructions" in row["int8"]:
        ratios["int8_over_lce"] = round(row["int8"]["instructions"] / lce, 3)
    return ratios


def table(rows: list[dict[str, Any]]) -> str:
    cpus = sorted({cpu for row in rows for kind in ("float", "int8")
                   for cpu in row[kind].get("instructions_by_cpu", {})})
    header = (f"{'model':<32}{'file':<14}{'agreement':>10}{'max|diff|':>11}{'= x86':>7}{'M insns':>10}"
              + "".join(f"{cpu[-3:] + ' M':>10}" for cpu in cpus))
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(f"{row['name']:<32}{'keras':<14}{'':>10}  accuracy {row['keras_accuracy']:.2%} on "
                     f"{row['examples']} samples")
        for kind in ("float", "int8"):
            result = row[kind]
            if "error" in result:
                lines.append(f"{'':<32}{kind:<14}  not lowered: {result['error'][:80]}")
                continue
            lines.append(f"{'':<32}{kind + ' litert':<14}{result['agreement']:>10.2%}{result['max_abs_diff']:>11.2g}"
                         f"{'yes' if result['bit_exact_vs_x86'] else 'no':>7}{result['instructions'] / 1e6:>10.3f}"
                         + "".join(f"{result['instructions_by_cpu'].get(cpu, float('nan')) / 1e6:>10.3f}"
                                   for cpu in cpus))
            if result.get("before_softmax"):
                exact = result["before_softmax"]
                lines.append(f"{'':<32}{'  (no softmax)':<14}{'':>10}{'':>11}"
                             f"{'yes' if exact['bit_exact_vs_x86'] else 'no':>7}   (max |diff| vs x86 "
                             f"{exact['max_abs_diff_vs_x86']:.2g})")
        if "lce" in row:
            by_cpu = row["lce"]["instructions_by_cpu"]
            for kernel in ("default", "indirect"):
                result = row["lce"][kernel]
                lines.append(f"{'':<32}{'lce ' + kernel:<14}{result['agreement']:>10.2%}"
                             f"{result['max_abs_diff']:>11.2g}{'':>7}"
                             f"{row['lce']['instructions'][kernel] / 1e6:>10.3f}"
                             + "".join(f"{by_cpu.get(cpu, {}).get(kernel, float('nan')) / 1e6:>10.3f}"
                                       for cpu in cpus))
        if row["ratios"]:
            lines.append(f"{'':<32}ratios: " + ", ".join(f"{k} {v}" for k, v in row["ratios"].items()))
    lines.append("agreement: top-1 with Keras; = x86: outputs equal x86 LiteRT's bit for bit; M insns: millions of "
                 "instructions per inference on the main CPU model, then on the others (a proxy: no caches, no "
                 "stalls, NEON counts one)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = zoo.list_models(pretrained=True)
    parser.add_argument("--models", nargs="+", default=names, choices=names)
    parser.add_argument("--examples", type=int, default=200, help="test samples per image or sentence model")
    parser.add_argument("--text-steps", type=int, default=100, help="characters for the language model")
    parser.add_argument("--invokes", type=int, default=10, help="invokes counted after the warm-up")
    parser.add_argument("--cpu", default="cortex-a72", choices=CPUS,
                        help="QEMU CPU model of the runs and of 'instructions' (cortex-a72: Raspberry Pi 4)")
    parser.add_argument("--also-count-on", nargs="*", default=["cortex-a76"], choices=CPUS,
                        help="other CPU models whose instructions are counted too (cortex-a76: Raspberry Pi 5, "
                             "with int8 dot-product instructions)")
    parser.add_argument("--lce-runner", help="an aarch64 LCE runner program (not built by this repository)")
    parser.add_argument("--output", default=str(RESULTS / "arm.json"))
    args = parser.parse_args(argv)
    arm = Aarch64(cpu=args.cpu)
    arm.check()
    boards = [Aarch64(cpu=cpu) for cpu in args.also_count_on if cpu != args.cpu]
    qemu = subprocess.run(["qemu-aarch64", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    arguments = list(argv if argv is not None else sys.argv[1:])
    if args.lce_runner:  # the runner lives outside the repository: name it by content, not by this machine's path
        arguments = [a.replace(args.lce_runner, LCE_RUNNER) for a in arguments]
    result: dict[str, Any] = {
        "command": "python benchmarks/arm.py " + " ".join(arguments),
        "machine": machine_info(), "qemu": f"{qemu}; -cpu {args.cpu}",
        "method": METHOD.format(cpu=args.cpu, invokes=args.invokes), "models": []}
    if args.lce_runner:
        runner = pathlib.Path(args.lce_runner)
        result["lce_runner"] = {"name": runner.name, "sha256": hashlib.sha256(runner.read_bytes()).hexdigest()}
    for name in args.models:
        result["models"].append(measure_model(arm, boards, name, args))
        print(table(result["models"][-1:]), flush=True)
        pathlib.Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(table(result["models"]))
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
