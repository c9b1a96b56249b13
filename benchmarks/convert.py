"""Plain LCE vs keras_bnn.tflite.convert: bitpacked share, flatbuffer size vs ideal, interpreter latency.

For each model, one run measures:
- plain `larq_compute_engine.convert_keras_model` and `keras_bnn.tflite.convert`: bitpacked share of binary MACs,
  flatbuffer bytes, and LCE interpreter latency (median of --runs runs) at batch 1 and 32, 1 and 2 threads,
  default and indirect BGEMM kernels;
- the float TFLite flatbuffer of the same architecture with float layers, run with XNNPACK.
Latencies are on this machine's x86 CPU, where LCE has no optimized kernels (its ARM kernels are hand-written
NEON/aarch64 assembly): compare ratios measured in the same run, not absolute times.

Weights are random (latency does not depend on them), except for the zoo's text models (`gru_lm`: the binary GRU
LM over 32 characters, `transformer_sst2`), whose binary versions load their trained zoo weights, so that the
Keras-vs-flatbuffer check means something (a random-weight GRU is chaotic: rounding grows over the steps).

Run: `.venv/bin/python benchmarks/convert.py` (writes benchmarks/results/convert.json); the text models:
`.venv/bin/python benchmarks/convert.py --models gru_lm transformer_sst2 --output benchmarks/results/convert_text.json`.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time
import warnings

import keras_bnn.legacy  # noqa: F401  (first: selects tf-keras)
import keras_bnn.tflite
import larq_compute_engine as lce
import numpy as np
import tensorflow as tf

from keras_bnn.tflite.runtimes import open_runtime

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _machine import RESULTS, machine_info  # noqa: E402
from _models import BUILDERS, WITH_TRAINED_WEIGHTS  # noqa: E402

BATCHES = (1, 32)
THREADS = (1, 2)
KERNELS = ("default", "indirect")


def _randomize(model: tf.keras.Model, seed: int = 0) -> None:
    """Random weights with sane BatchNorm statistics (latency does not depend on the values)."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        value = rng.normal(scale=0.5, size=weight.shape).astype(np.float32)
        if "moving_variance" in weight.name:
            value = np.abs(value) + 0.5
        weight.assign(value)


def _median_ms(run, runs: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 3)


def _inputs(model: tf.keras.Model, batch: int, seed: int) -> np.ndarray:
    """Random inputs for `model`: normal floats, or token ids in [1, 60) (no padding token) for int inputs."""
    shape = (batch, *model.input_shape[1:])
    rng = np.random.default_rng(seed)
    if model.input.dtype.is_integer:
        return rng.integers(1, 60, size=shape).astype(model.input.dtype.as_numpy_dtype)
    return rng.normal(size=shape).astype(np.float32)


def _lce_latency(flatbuffer: bytes, x: np.ndarray, threads: int, kernel: str, runs: int) -> float:
    runtime = open_runtime(flatbuffer, "lce", num_threads=threads, use_indirect_bgemm=kernel == "indirect")
    return _median_ms(lambda: runtime.run([x]), runs)


def _float_tflite(model: tf.keras.Model) -> bytes:
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def _float_latency(flatbuffer: bytes, x: np.ndarray, threads: int, runs: int) -> float:
    interpreter = tf.lite.Interpreter(model_content=flatbuffer, num_threads=threads)  # XNNPACK by default
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]

    def run():
        interpreter.set_tensor(input_index, x)
        interpreter.invoke()
        return interpreter.get_tensor(output_index)

    return _median_ms(run, runs)


def measure(name: str, runs: int) -> dict:
    builder = BUILDERS[name]
    entry: dict = {"name": name}
    flatbuffers: dict[str, dict[int, bytes]] = {"plain_lce": {}, "keras_bnn": {}, "float_tflite": {}}
    for batch in BATCHES:
        model = builder(batch_size=batch)
        if name not in WITH_TRAINED_WEIGHTS:
            _randomize(model)
        flatbuffers["plain_lce"][batch] = lce.convert_keras_model(model)
        with warnings.catch_warnings():
            warnings.simplefilter("error", keras_bnn.tflite.NotBitpackedWarning)
            flatbuffers["keras_bnn"][batch] = keras_bnn.tflite.convert(model)
        float_model = builder(batch_size=batch, binary=False)
        _randomize(float_model)
        flatbuffers["float_tflite"][batch] = _float_tflite(float_model)
        if batch == 1:
            reference = model  # its input spec shapes and types every random input below
            x = _inputs(model, 4, seed=1)
            check = keras_bnn.tflite.verify(model, flatbuffers["keras_bnn"][1], x)
            entry["keras_bnn_vs_keras_max_abs_diff"] = check.max_abs_diff

    ours = keras_bnn.tflite.inspect(flatbuffers["keras_bnn"][1])
    entry["ideal_bytes"] = ours.ideal_bytes
    for converter in ("plain_lce", "keras_bnn"):
        report = keras_bnn.tflite.inspect(flatbuffers[converter][1])
        latency = {}
        for batch in BATCHES:
            x = _inputs(reference, batch, seed=2)
            for threads in THREADS:
                for kernel in KERNELS:
                    latency[f"b{batch}_t{threads}_{kernel}"] = _lce_latency(
                        flatbuffers[converter][batch], x, threads, kernel, runs
                    )
        entry[converter] = {
            "bitpacked_share": report.bitpacked_share,
            "flatbuffer_bytes": report.flatbuffer_bytes,
            "size_vs_ideal": round(report.flatbuffer_bytes / ours.ideal_bytes, 3),
            "lce_bconv2d_ops": report.op_counts.get("LceBconv2d", 0),
            "float_matmul_ops": report.op_counts.get("FULLY_CONNECTED", 0) + report.op_counts.get("CONV_2D", 0),
            "latency_ms": latency,
        }
    float_latency = {}
    for batch in BATCHES:
        x = _inputs(reference, batch, seed=2)
        for threads in THREADS:
            float_latency[f"b{batch}_t{threads}"] = _float_latency(flatbuffers["float_tflite"][batch], x, threads, runs)
    entry["float_tflite"] = {"flatbuffer_bytes": len(flatbuffers["float_tflite"][1]), "latency_ms": float_latency}
    entry["ratios"] = {
        "plain_lce_bytes_over_keras_bnn": round(entry["plain_lce"]["flatbuffer_bytes"] / ours.flatbuffer_bytes, 2),
        "keras_bnn_bytes_over_ideal": round(ours.flatbuffer_bytes / ours.ideal_bytes, 3),
        # > 1 means keras_bnn's flatbuffer is faster than the float XNNPACK twin.
        "float_xnnpack_over_keras_bnn_b1_t1_indirect": round(
            float_latency["b1_t1"] / entry["keras_bnn"]["latency_ms"]["b1_t1_indirect"], 2
        ),
        "float_xnnpack_over_keras_bnn_b1_t1_default": round(
            float_latency["b1_t1"] / entry["keras_bnn"]["latency_ms"]["b1_t1_default"], 2
        ),
        "plain_lce_over_keras_bnn_b1_t1_indirect": round(
            entry["plain_lce"]["latency_ms"]["b1_t1_indirect"] / entry["keras_bnn"]["latency_ms"]["b1_t1_indirect"], 2
        ),
    }
    return entry


def _table(models: list[dict]) -> str:
    header = (
        f"{'model':<15}{'converter':<11}{'share':>7}{'bytes':>12}{'x ideal':>9}"
        f"{'b1 t1 def':>11}{'b1 t1 ind':>11}{'b32 t1 ind':>12}{'float b1t1':>12}{'float/ours':>11}"
    )
    lines = [header, "-" * len(header)]
    for entry in models:
        float_b1 = entry["float_tflite"]["latency_ms"]["b1_t1"]
        for converter in ("plain_lce", "keras_bnn"):
            data = entry[converter]
            share = "-" if data["bitpacked_share"] is None else f"{data['bitpacked_share']:.2f}"
            lat = data["latency_ms"]
            lines.append(
                f"{entry['name']:<15}{converter:<11}{share:>7}{data['flatbuffer_bytes']:>12,}"
                f"{data['size_vs_ideal']:>9.2f}{lat['b1_t1_default']:>11.3f}{lat['b1_t1_indirect']:>11.3f}"
                f"{lat['b32_t1_indirect']:>12.3f}{float_b1:>12.3f}{float_b1 / lat['b1_t1_indirect']:>11.2f}"
            )
    lines.append("latencies in ms (median); 'float/ours' = float XNNPACK b1 t1 / LCE b1 t1 indirect (> 1: LCE faster)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(BUILDERS), choices=list(BUILDERS))
    parser.add_argument("--runs", type=int, default=20, help="timed runs per latency (median reported); >= 20")
    parser.add_argument("--output", default=str(RESULTS / "convert.json"))
    args = parser.parse_args(argv)
    if args.runs < 20:
        parser.error(f"--runs must be at least 20, got {args.runs}")

    models = []
    for name in args.models:
        print(f"measuring {name} ...", flush=True)
        models.append(measure(name, args.runs))
    result = {
        "models": models,
        "command": "python benchmarks/convert.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine_info(),
        "note": "x86: LCE has no optimized kernels here; compare ratios within this run only.",
    }
    print(_table(models))
    pathlib.Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(f"Wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
