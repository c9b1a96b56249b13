"""One model, every kind of file, side by side: accuracy and agreement with Keras in each runtime, bytes, TFLite
Micro's arena, and latency at batch 1 and 1 thread (``keras-bnn bench``, ``benchmarks/portable.py``).

The files: ``"lce"`` (bitpacked ``LceBconv2d``; LCE's runtime, default and indirect BGEMM kernels), ``"int8"``
(builtin int8 ops; LiteRT with XNNPACK, ``tf.lite.Interpreter`` and TFLite Micro) and ``"float"`` (stock TFLite
float ops; LiteRT with XNNPACK). Latencies are medians of `runs` invocations on this machine, measured in one run,
so only their ratios mean something on a shared machine.

Example:
    >>> import keras_bnn, larq, numpy as np, tensorflow as tf
    >>> from keras_bnn.tflite.bench import measure
    >>> inputs = tf.keras.Input((16,))
    >>> x = larq.layers.QuantDense(8, input_quantizer="ste_sign", kernel_quantizer="ste_sign")(inputs)
    >>> model = tf.keras.Model(inputs, tf.keras.layers.Dense(3)(x))
    >>> data = np.random.default_rng(0).integers(-8, 8, (32, 16)).astype(np.float32)
    >>> row = measure(model, [data], representative_data=data, runs=5, runtimes=("litert",))
    >>> row["lce"]["agreement"], sorted(row["int8"]["runtimes"]), row["float"]["bytes"] > 0
    (1.0, ['litert'], True)
"""

from __future__ import annotations

import statistics
import time
import warnings
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from keras_bnn.tflite.converter import convert
from keras_bnn.tflite.runtimes import Runtime, arrange, open_runtime, positions_by_name

__all__ = ["INT8_RUNTIMES", "compare", "format_table", "measure"]

INT8_RUNTIMES = ("litert", "tflite", "tflm")


class _Runner:
    """One runtime, fed and read in the Keras model's order."""

    def __init__(self, runtime: Runtime, model: tf.keras.Model):
        self.runtime = runtime
        self._inputs = positions_by_name(runtime.inputs, model.input_names, "inputs")
        self.output = positions_by_name(runtime.outputs, model.output_names, "outputs")[0]

    def run(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        return self.runtime.run(arrange(inputs, self._inputs, self.runtime.inputs))[self.output]


def _median_ms(runner: _Runner, inputs: list[np.ndarray], runs: int) -> float:
    runner.run(inputs)  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner.run(inputs)
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 4)


def _outputs(runner: _Runner, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """The first Keras output of every sample, run one at a time (batch 1)."""
    rows = []
    for index in range(len(inputs[0])):
        output = runner.run([x[index:index + 1] for x in inputs])
        rows.append(runner.runtime.outputs[runner.output].real_values(output).reshape(1, -1))
    return np.concatenate(rows)


def compare(outputs: np.ndarray, keras: np.ndarray, labels: np.ndarray | None) -> dict[str, Any]:
    """Scores of a file (N rows) against Keras' on the same samples: accuracy (None without `labels`), top-1
    agreement, the number of disagreements, and the largest absolute difference."""
    top, keras_top = outputs.argmax(axis=1), keras.argmax(axis=1)
    return {"accuracy": None if labels is None else float(np.mean(top == labels)),
            "agreement": float(np.mean(top == keras_top)), "disagreements": int(np.sum(top != keras_top)),
            "max_abs_diff": float(np.abs(outputs - keras).max())}


def _quiet_convert(model: tf.keras.Model, **options) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # real first layers stay float in LCE files, by design
        return convert(model, batch_size=1, **options)


def measure(model: tf.keras.Model, inputs: Sequence[np.ndarray], labels: np.ndarray | None = None, *,
            representative_data: Any = None, runs: int = 200, runtimes: Sequence[str] = INT8_RUNTIMES,
            int8_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every file of `model`, measured on the same samples.

    Args:
        model: A Keras model whose first output is scores over classes (logits or probabilities).
        inputs: One array per model input, N samples each (the model runs them at batch 1).
        labels: N true classes, or None (accuracy is then None).
        representative_data: Calibration inputs of the int8 file (default: `inputs`' first input).
        runs: Timed invocations per latency (median), at batch 1 and 1 thread, after one warm-up.
        runtimes: The runtimes the int8 file is checked in.
        int8_options: Other options of the int8 target (``head``, ``weight_digits``).

    Returns:
        ``{"keras_accuracy", "lce": {"accuracy", "agreement", "max_abs_diff", "bytes", "latency_ms": {"default",
        "indirect"}}, "int8": {"bytes", "tflm_arena_bytes", "runtimes": {name: {"accuracy", "agreement",
        "max_abs_diff", "latency_ms"}}} (or {"error"} when the int8 target cannot lower the model), "float":
        {"bytes", "latency_ms", ...}, "ratios"}``.
    """
    inputs = [np.asarray(x) for x in inputs]
    keras = model.predict(inputs if len(inputs) > 1 else inputs[0], batch_size=256, verbose=0)
    keras = np.asarray(keras[0] if isinstance(keras, list) else keras, np.float64).reshape(len(inputs[0]), -1)
    first = [x[:1] for x in inputs]
    row: dict[str, Any] = {"examples": int(len(inputs[0])),
                           "keras_accuracy": None if labels is None else float(np.mean(keras.argmax(1) == labels))}

    lce = _quiet_convert(model)
    default = _Runner(open_runtime(lce, "lce"), model)
    indirect = _Runner(open_runtime(lce, "lce", use_indirect_bgemm=True), model)
    row["lce"] = {**compare(_outputs(indirect, inputs), keras, labels), "bytes": len(lce),
                  "latency_ms": {"default": _median_ms(default, first, runs),
                                 "indirect": _median_ms(indirect, first, runs)}}

    try:
        int8 = _quiet_convert(model, kernels="int8", representative_data=representative_data
                              if representative_data is not None else inputs[0], **(int8_options or {}))
    except ValueError as error:  # the int8 target names the layer it cannot lower
        row["int8"] = {"error": str(error)}
    else:
        row["int8"] = {"bytes": len(int8), "options": dict(int8_options or {}), "runtimes": {}}
        for name in runtimes:
            opened = _Runner(open_runtime(int8, name), model)
            result = compare(_outputs(opened, inputs), keras, labels)
            if name == "litert":
                result["latency_ms"] = _median_ms(opened, first, runs)
            if name == "tflm":
                row["int8"]["tflm_arena_bytes"] = opened.runtime.arena_bytes()
            row["int8"]["runtimes"][name] = result

    flat = _quiet_convert(model, kernels="float")
    litert = _Runner(open_runtime(flat, "litert"), model)
    row["float"] = {**compare(_outputs(litert, inputs), keras, labels), "bytes": len(flat),
                    "latency_ms": _median_ms(litert, first, runs)}
    row["ratios"] = _ratios(row)
    return row


def _ratios(row: dict[str, Any]) -> dict[str, float]:
    """Latency ratios, > 1 when the LCE file (indirect BGEMM) is faster."""
    lce = row["lce"]["latency_ms"]["indirect"]
    ratios = {"float_over_lce_indirect": round(row["float"]["latency_ms"] / lce, 3),
              "lce_default_over_lce_indirect": round(row["lce"]["latency_ms"]["default"] / lce, 3)}
    litert = row["int8"].get("runtimes", {}).get("litert", {}).get("latency_ms")
    if litert:
        ratios["int8_litert_over_lce_indirect"] = round(litert / lce, 3)
    return ratios


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A text table of :func:`measure` rows (each with a ``"name"``)."""
    header = (f"{'model':<32}{'file':<14}{'accuracy':>10}{'agreement':>11}{'max|diff|':>11}{'bytes':>12}"
              f"{'arena':>9}{'ms b1 t1':>10}")
    lines = [header, "-" * len(header)]
    for row in rows:
        name = row.get("name", "model")
        lines.append(f"{name:<32}{'keras':<14}{_percent(row['keras_accuracy']):>10}")
        lce = row["lce"]
        lines.append(f"{'':<32}{'lce default':<14}{'':>10}{'':>11}{'':>11}{lce['bytes']:>12,}{'':>9}"
                     f"{lce['latency_ms']['default']:>10.3f}")
        lines.append(f"{'':<32}{'lce indirect':<14}{_percent(lce['accuracy']):>10}{_percent(lce['agreement']):>11}"
                     f"{lce['max_abs_diff']:>11.2g}{'':>12}{'':>9}{lce['latency_ms']['indirect']:>10.3f}")
        int8 = row["int8"]
        if "error" in int8:
            lines.append(f"{'':<32}{'int8':<14}  not lowered: {int8['error'][:90]}")
        for runtime, result in int8.get("runtimes", {}).items():
            arena = f"{int8['tflm_arena_bytes']:,}" if runtime == "tflm" else ""
            latency = f"{result['latency_ms']:.3f}" if "latency_ms" in result else ""
            lines.append(f"{'':<32}{'int8 ' + runtime:<14}{_percent(result['accuracy']):>10}"
                         f"{_percent(result['agreement']):>11}{result['max_abs_diff']:>11.2g}"
                         f"{(format(int8['bytes'], ',') if runtime == 'litert' else ''):>12}{arena:>9}{latency:>10}")
        flat = row["float"]
        lines.append(f"{'':<32}{'float litert':<14}{_percent(flat['accuracy']):>10}{_percent(flat['agreement']):>11}"
                     f"{flat['max_abs_diff']:>11.2g}{flat['bytes']:>12,}{'':>9}{flat['latency_ms']:>10.3f}")
        if "tflm" in flat:
            lines.append(f"{'':<32}{'float tflm':<14}  {flat['tflm']}")
        lines.append(f"{'':<32}ratios: " + ", ".join(f"{key} {value}" for key, value in row["ratios"].items()))
    lines.append("latency: median at batch 1, 1 thread on this machine (x86: LCE has only portable kernels here); "
                 "compare ratios within one run")
    return "\n".join(lines)
