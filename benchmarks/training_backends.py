"""Training speed of the zoo's image recipes on each Keras 3 backend and on tf-keras + larq, binary and float twin.

For each image recipe of the zoo (binary_cnn.mnist, binarynet_mlp.mnist, birealnet_small.fashion_mnist,
xnornet_small.fashion_mnist) the same layout is trained, each configuration in its own Python process:
- ``tf-keras``: the zoo's builder with ``legacy=True`` (larq + keras_bnn.legacy on tf-keras 2);
- ``tensorflow``, ``jax``, ``torch``: the zoo's builder (keras_bnn.layers, Keras 3) on that backend;
- ``tensorflow+xla``: Keras 3 on TensorFlow with ``jit_compile=True`` (Keras' "auto" means no XLA on a CPU);
each binary and as its float twin (the same layers, no quantizers; hard_tanh where the binary model has a sign).

Common protocol: the recipe's batch size and peak learning rate (Adam, cosine decay to 0 over all steps), the
first `--train-examples` images of the recipe's training split as numpy arrays (no augmentation: the zoo's
flips and shifts are a tf.data map that costs every backend the same), `--epochs` epochs, seed 0. Recorded:
seconds of every epoch (the first includes tracing/compilation; ``epoch_s`` is the mean of the later ones) and
the accuracy on the whole test split. The table prints, per recipe and framework, binary and float seconds per
epoch, their ratio, and each binary time relative to tf-keras binary.

Writes benchmarks/results/training_backends.json. Run it in the background (2 cores shared with other work: 59 min
for the recorded run, 40 processes; PyTorch and JAX are the slow ones):
    nohup .venv/bin/python benchmarks/training_backends.py --train-examples 2000 > /tmp/training_backends.log 2>&1 &
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _machine import RESULTS, machine_info  # noqa: E402

# The zoo's image recipes (dataset, batch size and learning rate come from each entry's ImageRecipe).
RECIPES = ("binary_cnn.mnist", "binarynet_mlp.mnist", "birealnet_small.fashion_mnist", "xnornet_small.fashion_mnist")
# framework: (KERAS_BACKEND, jit_compile); None: tf-keras + larq (the zoo's legacy builders).
FRAMEWORKS = {
    "tf-keras": (None, None),
    "jax": ("jax", "auto"),
    "tensorflow": ("tensorflow", "auto"),
    "torch": ("torch", "auto"),
    "tensorflow+xla": ("tensorflow", True),
}
RESULT_PREFIX = "RESULT "


# -- the worker: one configuration in its own process -------------------------------------------------------------
def run_worker(config: dict) -> dict:
    """Train one configuration; its timings and test accuracy."""
    import numpy as np

    legacy = config["keras_backend"] is None
    if legacy:
        import keras_bnn.legacy  # noqa: F401  (selects tf-keras before TensorFlow)
        import tensorflow as tf

        keras = tf.keras
    else:
        import keras
    import keras_bnn.zoo
    data = np.load(config["data"])
    x_train, y_train, x_test, y_test = (data[key] for key in ("x_train", "y_train", "x_test", "y_test"))
    keras.utils.set_random_seed(0)
    entry, binary = keras_bnn.zoo.entry(config["recipe"]), config["binary"]
    batch_size, learning_rate = entry.recipe.batch_size, entry.recipe.learning_rate
    model = entry.builder(binary=binary, legacy=legacy)
    steps = len(x_train) // batch_size * config["epochs"]
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    compile_args = {} if legacy else dict(jit_compile=config["jit_compile"])
    if config["steps_per_execution"] != 1:
        compile_args["steps_per_execution"] = config["steps_per_execution"]
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], **compile_args)

    epoch_seconds: list[float] = []
    step_seconds: list[float] = []  # intervals between the ends of consecutive steps, after the first epoch

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = self.last = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])  # waits for the step (JAX and TensorFlow dispatch asynchronously)
            now = time.perf_counter()
            if epoch_seconds:
                step_seconds.append(now - self.last)
            self.last = now

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.perf_counter() - self.start)

    history = model.fit(x_train, y_train, batch_size=batch_size, epochs=config["epochs"], shuffle=True,
                        callbacks=[Timer()], verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    later = epoch_seconds[1:] or epoch_seconds
    calls_per_epoch = -(-len(x_train) // (batch_size * config["steps_per_execution"]))  # batch callbacks per epoch
    return {
        "epoch_seconds": [round(s, 2) for s in epoch_seconds],
        "epoch_s": round(sum(later) / len(later), 2),
        "median_step_s": round(float(np.median(step_seconds)) / config["steps_per_execution"], 4),
        "epoch_s_from_median_step": round(float(np.median(step_seconds)) * calls_per_epoch, 2),
        "final_loss": round(float(history.history["loss"][-1]), 4),
        "test_accuracy": round(float(accuracy), 4),
        "jit_compile": None if legacy else bool(getattr(model, "jit_compile", False)),
    }


# -- the driver -----------------------------------------------------------------------------------------------------
def prepare_data(folder: pathlib.Path, train_examples: int) -> dict[str, str]:
    """The first `train_examples` training images and the test split of each dataset, as .npz files."""
    import numpy as np

    import keras_bnn.datasets

    paths = {}
    import keras_bnn.zoo

    for dataset in sorted({keras_bnn.zoo.entry(name).dataset for name in RECIPES}):
        x_train, y_train = keras_bnn.datasets.load_images(dataset, f"train[:{train_examples}]")
        x_test, y_test = keras_bnn.datasets.load_images(dataset, "test")
        paths[dataset] = str(folder / f"{dataset}.npz")
        np.savez(paths[dataset], x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return paths


def run_configuration(config: dict, timeout: float) -> dict:
    """Run one configuration in a fresh Python process with its backend selected."""
    env = {key: value for key, value in os.environ.items() if key not in ("KERAS_BACKEND", "TF_USE_LEGACY_KERAS")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if config["keras_backend"] is None:
        env["TF_USE_LEGACY_KERAS"] = "1"
    else:
        env["KERAS_BACKEND"] = config["keras_backend"]
    start = time.perf_counter()
    try:
        result = subprocess.run([sys.executable, __file__, "--worker", json.dumps(config)], env=env,
                                capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"missing": f"ran past {timeout:.0f} s"}
    lines = [line for line in result.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if result.returncode != 0 or not lines:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return {"missing": f"exit {result.returncode}: {reason[-300:]}"}
    outcome = json.loads(lines[-1][len(RESULT_PREFIX):])
    outcome["process_s"] = round(time.perf_counter() - start, 1)
    return outcome


def table(runs: list[dict], key: str = "epoch_s_from_median_step") -> str:
    """Per recipe and framework: binary and float s/epoch (`key`), binary/float, tf-keras binary / this binary."""
    index = {(run["recipe"], run["framework"], run["binary"]): run for run in runs}
    lines = [f"{'recipe':31} {'framework':15} {'binary s/ep':>11} {'float s/ep':>10} {'bin/float':>9} "
             f"{'speed-up vs tf-keras':>20} {'acc bin/float':>14}"]
    for recipe in dict.fromkeys(run["recipe"] for run in runs):
        reference = index.get((recipe, "tf-keras", True), {}).get(key)
        for framework in dict.fromkeys(run["framework"] for run in runs):
            binary, floating = index.get((recipe, framework, True)), index.get((recipe, framework, False))
            if binary is None and floating is None:
                continue

            def cell(run, key, width, fmt="{:.2f}"):
                value = (run or {}).get(key)
                return f"{fmt.format(value) if value is not None else 'missing':>{width}}"

            b, f = (binary or {}).get(key), (floating or {}).get(key)
            ratio = f"{b / f:.2f}" if b and f else "-"
            speedup = f"{reference / b:.2f}x" if b and reference else "-"
            lines.append(f"{recipe:31} {framework:15} {cell(binary, key, 11)} {cell(floating, key, 10)} "
                         f"{ratio:>9} {speedup:>20} {cell(binary, 'test_accuracy', 7, '{:.4f}')}/"
                         f"{cell(floating, 'test_accuracy', 6, '{:.4f}')}")
    missing = [f"  {run['recipe']} {run['framework']} {'binary' if run['binary'] else 'float'}: {run['missing']}"
               for run in runs if "missing" in run]
    return "\n".join(lines + (["missing:"] + missing if missing else []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--train-examples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2, help="at least 2: the first epoch includes compilation")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS), choices=list(FRAMEWORKS))
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per configuration")
    parser.add_argument("--output", default=str(RESULTS / "training_backends.json"))
    parser.add_argument("--table", metavar="JSON", help="only print the table of a result file")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(pathlib.Path(args.table).read_text())["runs"]))
        return
    if args.worker:
        print(RESULT_PREFIX + json.dumps(run_worker(json.loads(args.worker))), flush=True)
        return
    import keras_bnn.zoo

    command = "python benchmarks/training_backends.py " + " ".join(sys.argv[1:])
    runs: list[dict] = []
    start = time.perf_counter()
    report = {
        "command": command,
        "machine": machine_info(),
        "versions": {package: importlib.metadata.version(package)
                     for package in ("keras", "tf-keras", "larq", "jax", "jaxlib", "torch", "numpy")},
        "protocol": {"train_examples": args.train_examples, "epochs": args.epochs, "test_split": "test",
                     "steps_per_execution": args.steps_per_execution, "augmentation": None, "seed": 0,
                     "epoch_s": "mean seconds of the epochs after the first (the first includes compilation)",
                     "epoch_s_from_median_step": "median step interval after the first epoch x steps per epoch "
                                                 "(robust to other processes on a shared machine; the table's "
                                                 "figure)"},
        "complete": False,
        "runs": runs,
    }
    output = pathlib.Path(args.output)
    with tempfile.TemporaryDirectory(prefix="training_backends_") as folder:
        data = prepare_data(pathlib.Path(folder), args.train_examples)
        for framework in args.frameworks:  # framework by framework: a stopped run still has whole columns
            for recipe in args.recipes:
                for binary in (True, False):
                    keras_backend, jit_compile = FRAMEWORKS[framework]
                    config = dict(recipe=recipe, binary=binary, keras_backend=keras_backend, jit_compile=jit_compile,
                                  epochs=args.epochs, steps_per_execution=args.steps_per_execution,
                                  data=data[keras_bnn.zoo.entry(recipe).dataset])
                    outcome = run_configuration(config, args.timeout)
                    runs.append(dict(recipe=recipe, framework=framework, binary=binary, **outcome))
                    print(json.dumps(runs[-1]), flush=True)
                    report["total_s"] = round(time.perf_counter() - start, 1)
                    output.write_text(json.dumps(report, indent=1) + "\n")  # partial results survive a stop
    report["complete"] = True
    output.write_text(json.dumps(report, indent=1) + "\n")
    print(table(runs))


if __name__ == "__main__":
    main()
