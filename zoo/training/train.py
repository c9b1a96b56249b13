"""Train a zoo model on its real dataset, evaluate it on the test split, and save its compact weights.

Usage (from the repository root):

    python -m keras_bnn.zoo.training.train binary_cnn.mnist --epochs 8 --seed 0

Trains on `train[:90%]` (the last 10% of train is held out and reported as validation accuracy after every
epoch), then:

1. saves the latent (float) weights as a Keras checkpoint in `--checkpoint-dir`,
2. writes the compact weights file (`keras_bnn.zoo.weights.save_compact`) to `--weights-dir`,
3. reloads the compact file into a freshly built model and measures test accuracy the way
   `keras_bnn.zoo.evaluate` does, so the printed figure is what the card must state,
4. converts the model with `keras_bnn.tflite.convert` for the flatbuffer size and bitpacked share,
5. prints the card fields as JSON on the last line (`CARD {...}`).

`--float-twin` trains the same architecture with no quantizers instead (reported in the card; no weights kept).
`--export-only` skips training and exports from an existing checkpoint.

Distributed training: `--strategy mirrored` (all local GPUs, or the CPU split into `--cpu-replicas` logical
devices) or `--strategy multiworker` (`tf.distribute.MultiWorkerMirroredStrategy`; start the same command on every
worker with its `TF_CONFIG`; only the chief writes the weights file and the card). The recipe's batch size is the
global batch, split over the replicas. Example with two workers on one host (ports are arbitrary):

    TF_CONFIG='{"cluster": {"worker": ["localhost:23456", "localhost:23457"]}, "task": {"type": "worker", "index": 0}}' \
        python -m keras_bnn.zoo.training.train binary_cnn.mnist --strategy multiworker &
    TF_CONFIG='{"cluster": {"worker": ["localhost:23456", "localhost:23457"]}, "task": {"type": "worker", "index": 1}}' \
        python -m keras_bnn.zoo.training.train binary_cnn.mnist --strategy multiworker
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

import keras_bnn  # noqa: F401  (must come before tensorflow)
import tensorflow as tf

from keras_bnn.zoo import _registry
from keras_bnn.zoo.evaluation import load_split
from keras_bnn.zoo.training.recipes import RECIPES, TEST_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT, Recipe

__all__ = ["train", "main", "make_strategy", "is_chief"]

STRATEGIES = ("default", "mirrored", "multiworker")


def make_strategy(name: str, cpu_replicas: int = 1) -> tf.distribute.Strategy:
    """The tf.distribute strategy `name` (one of STRATEGIES); create it before any other TensorFlow op runs.

    Args:
        name: "default" (no distribution), "mirrored" or "multiworker" (cluster from the `TF_CONFIG` variable).
        cpu_replicas: Split the CPU into this many logical devices first and mirror over them (for "mirrored"
            on a machine without GPUs; also lets "multiworker" run several replicas per worker).

    Raises:
        ValueError: `name` is unknown or `cpu_replicas` < 1.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    if isinstance(cpu_replicas, bool) or not isinstance(cpu_replicas, int) or cpu_replicas < 1:
        raise ValueError(f"cpu_replicas must be a positive integer, got {cpu_replicas!r}")
    devices = None
    if cpu_replicas > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
        devices = [f"/cpu:{index}" for index in range(cpu_replicas)]
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes outputs: always, except on the non-chief workers of a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def _augment(recipe: Recipe, seed: int):
    def augment(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.cast(image, tf.float32)
        if recipe.flip:
            image = tf.image.random_flip_left_right(image, seed=seed)
        if recipe.shift:
            height, width, channels = image.shape
            padded = tf.pad(image, [[recipe.shift, recipe.shift], [recipe.shift, recipe.shift], [0, 0]])
            image = tf.image.random_crop(padded, (height, width, channels), seed=seed)
        return image, label

    return augment


def _schedule(recipe: Recipe, steps_per_epoch: int, epochs: int) -> tf.keras.optimizers.schedules.LearningRateSchedule:
    total = steps_per_epoch * epochs
    warmup = steps_per_epoch * recipe.warmup_epochs
    return tf.keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else recipe.learning_rate,
        decay_steps=max(total - warmup, 1),
        warmup_target=recipe.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def train(
    name: str,
    *,
    epochs: int | None = None,
    seed: int = 0,
    binary: bool = True,
    strategy: tf.distribute.Strategy | None = None,
    train_examples: int | None = None,
) -> tuple[tf.keras.Model, dict]:
    """Train `name` (or its float twin) on `TRAIN_SPLIT`; returns the model and a log of the run.

    `strategy` (default: the current one) holds the model and optimizer; `train_examples` keeps only the first
    examples of the training split (quick checks).
    """
    spec = _registry.spec(name)
    recipe = RECIPES[name]
    epochs = epochs or recipe.epochs
    strategy = strategy or tf.distribute.get_strategy()
    tf.keras.utils.set_random_seed(seed)
    x_train, y_train = load_split(spec.dataset, TRAIN_SPLIT)
    if train_examples is not None:
        x_train, y_train = x_train[:train_examples], y_train[:train_examples]
    x_val, y_val = load_split(spec.dataset, VALIDATION_SPLIT)
    train_data = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(len(x_train), seed=seed, reshuffle_each_iteration=True)
        .map(_augment(recipe, seed), num_parallel_calls=tf.data.AUTOTUNE)
        .batch(recipe.batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    steps_per_epoch = len(x_train) // recipe.batch_size
    with strategy.scope():
        model = spec.entry_point(binary=binary)
        model.compile(
            optimizer=tf.keras.optimizers.Adam(_schedule(recipe, steps_per_epoch, epochs)),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    start = time.perf_counter()
    history = model.fit(
        train_data,
        epochs=epochs,
        validation_data=(x_val, y_val),
        validation_batch_size=500,
        verbose=2,
    )
    wall = time.perf_counter() - start
    log = {
        "name": name,
        "binary": binary,
        "epochs": epochs,
        "seed": seed,
        "replicas": strategy.num_replicas_in_sync,
        "train_wall_time_s": round(wall, 1),
        "validation_accuracy": [round(float(v), 4) for v in history.history["val_accuracy"]],
    }
    return model, log


def _command(args: argparse.Namespace, epochs: int) -> str:
    parts = ["python -m keras_bnn.zoo.training.train", args.name, f"--epochs {epochs}", f"--seed {args.seed}"]
    if args.float_twin:
        parts.append("--float-twin")
    if args.train_examples is not None:
        parts.append(f"--train-examples {args.train_examples}")
    if args.strategy != "default":
        parts.append(f"--strategy {args.strategy}" + (f" --cpu-replicas {args.cpu_replicas}"
                                                      if args.cpu_replicas > 1 else ""))
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=sorted(RECIPES))
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--float-twin", action="store_true", help="train the float twin (no weights kept)")
    parser.add_argument("--export-only", action="store_true", help="export from an existing checkpoint")
    parser.add_argument("--checkpoint-dir", default=os.path.join(tempfile.gettempdir(), "keras_bnn_zoo"))
    parser.add_argument(
        "--weights-dir", default=str(pathlib.Path(__file__).resolve().parent.parent / "weights")
    )
    parser.add_argument("--strategy", choices=STRATEGIES, default="default", help="tf.distribute strategy")
    parser.add_argument("--cpu-replicas", type=int, default=1, help="split the CPU into N logical devices")
    parser.add_argument("--train-examples", type=int, default=None, help="train on the first N examples only")
    args = parser.parse_args(argv)
    strategy = make_strategy(args.strategy, args.cpu_replicas)  # before any other op (multi-worker needs it)
    chief = is_chief(strategy)
    epochs = args.epochs or RECIPES[args.name].epochs
    suffix = ".float" if args.float_twin else ""
    checkpoint_dir = pathlib.Path(args.checkpoint_dir if chief else tempfile.mkdtemp(prefix="keras_bnn_worker"))
    checkpoint = checkpoint_dir / f"{args.name}{suffix}.weights.h5"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    spec = _registry.spec(args.name)
    log: dict = {"name": args.name, "epochs": epochs, "seed": args.seed}
    if args.export_only:
        model = spec.entry_point(binary=not args.float_twin)
        model.load_weights(checkpoint)
    else:
        model, log = train(args.name, epochs=epochs, seed=args.seed, binary=not args.float_twin,
                           strategy=strategy, train_examples=args.train_examples)
        model.save_weights(checkpoint)  # every worker saves; non-chief ones to a temp dir
        print(f"latent weights saved to {checkpoint}", flush=True)
        if args.strategy != "default":
            # Evaluation and export run on the chief alone: on a copy outside the strategy, since a distributed
            # model's predict would wait for the other workers.
            copy = spec.entry_point(binary=not args.float_twin)
            copy.set_weights(model.get_weights())
            model = copy
    log["command"] = _command(args, epochs)
    if not chief:
        print("WORKER " + json.dumps(log, sort_keys=True), flush=True)
        return 0

    from keras_bnn.zoo.training.export import export, float_accuracy

    if args.float_twin:
        log.update(float_accuracy(model, spec.dataset, TEST_SPLIT))
    else:
        log.update(export(model, args.name, pathlib.Path(args.weights_dir)))
    print("CARD " + json.dumps(log, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
