"""Train any pretrained zoo model by its recipe, write its compact weights, and print the card's fields.

Usage (from the repository root): ``python -m keras_bnn.zoo.training.train NAME`` (``--help`` lists every name).
This one command reproduces each pretrained model: the image classifiers (``ImageRecipe``), the GRU language model
with its float twin (``LanguageModelRecipe``) and the Transformer with its float teacher
(``SentenceClassifierRecipe``). It then:

1. writes the compact weights file (``keras_bnn.zoo.weights.save_compact``; a text model's vocabulary inside it)
   to ``--weights-dir``,
2. re-measures every score from that file the way ``keras_bnn.zoo.evaluate`` does, so the printed figures are
   what the card must state,
3. converts the model with ``keras_bnn.tflite.convert`` for the flatbuffer size and bitpacked share,
4. prints the card fields as JSON on the last line (``CARD {...}``).

Training is deterministic on one machine (``--deterministic``, on by default: seeded initialisation and data
order, ``tf.config.experimental.enable_op_determinism``): the same command gives the same weights file, byte for
byte. Other CPUs and TensorFlow builds may round differently.

``--backend`` picks the implementation: ``legacy`` (default: the tf-keras + larq model, how the shipped weights were
trained; every recipe), or ``tensorflow``, ``jax``, ``torch``: the Keras 3 model on that backend (image recipes;
TensorFlow still reads the data). Both write the same compact file format, which either model loads.

Image models only: ``--float-twin`` trains the same architecture with no quantizers instead (no weights kept);
``--strategy mirrored`` (local GPUs, or the CPU split into ``--cpu-replicas`` logical devices) or ``--strategy
multiworker`` (start the same command on every worker with its ``TF_CONFIG``; only the chief writes the file;
``--backend legacy`` only).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import keras_bnn.zoo as zoo
from keras_bnn.zoo.training.distribution import STRATEGIES, is_chief, make_strategy
from keras_bnn.zoo.training.recipes import TEST_SPLIT, VALIDATION_SPLIT

__all__ = ["BACKENDS", "main", "select_backend", "trainable_models"]

BACKENDS = ("legacy", "tensorflow", "jax", "torch")

DEFAULT_WEIGHTS_DIR = pathlib.Path(__file__).resolve().parent.parent / "weights"


def trainable_models() -> list[str]:
    """The zoo models that have a recipe (every pretrained model)."""
    return [name for name in zoo.list_models() if zoo.entry(name).recipe is not None]


def select_backend(backend: str) -> None:
    """Set up `backend` (one of BACKENDS) before Keras is imported: tf-keras for "legacy", else `KERAS_BACKEND`.

    Either way `tf.keras` is tf-keras in this process (``TF_USE_LEGACY_KERAS=1``): the export converts the trained
    weights with the tf-keras model, and a Keras 3 model never uses `tf.keras`.

    Raises:
        ValueError: an unknown backend, or Keras 3 already imported with another backend.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    if backend == "legacy":
        import keras_bnn.legacy  # noqa: F401
        return
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != backend:
        raise ValueError(f"Keras 3 is already imported with the {sys.modules['keras'].backend.backend()!r} backend; "
                         f"start a new process for --backend {backend}.")
    os.environ["KERAS_BACKEND"] = backend


def _command(args: argparse.Namespace) -> str:
    parts = ["python -m keras_bnn.zoo.training.train", args.name, f"--seed {args.seed}"]
    if args.backend != "legacy":
        parts.append(f"--backend {args.backend}")
    for flag, value in (("--epochs", args.epochs), ("--steps", args.steps), ("--train-examples", args.train_examples)):
        if value is not None:
            parts.append(f"{flag} {value}")
    if args.float_twin:
        parts.append("--float-twin")
    if not args.deterministic:
        parts.append("--no-deterministic")
    if args.strategy != "default":
        parts.append(f"--strategy {args.strategy}" + (f" --cpu-replicas {args.cpu_replicas}"
                                                      if args.cpu_replicas > 1 else ""))
    return " ".join(parts)


def _image(entry, args, strategy, chief: bool) -> dict:
    from keras_bnn.zoo.training.export import export, image_float_twin_scores
    from keras_bnn.zoo.training.images import train_image_classifier

    epochs = args.epochs or entry.recipe.epochs
    legacy = args.backend == "legacy"
    model, log = train_image_classifier(entry, epochs=epochs, seed=args.seed, binary=not args.float_twin,
                                        strategy=strategy if legacy else None,
                                        train_examples=args.train_examples, legacy=legacy)
    if args.strategy != "default":
        # Export runs on the chief alone, on a copy outside the strategy (a distributed model's predict would wait
        # for the other workers).
        copy = entry.builder(binary=not args.float_twin, legacy=True)
        copy.set_weights(model.get_weights())
        model = copy
    if not chief:
        return log
    if args.float_twin:
        return {**log, "float_twin_scores": image_float_twin_scores(entry, model, TEST_SPLIT)}
    return {**log, **export(entry, model, args.weights_dir, splits=(TEST_SPLIT, VALIDATION_SPLIT), legacy=legacy)}


def _language_model(entry, args) -> dict:
    from keras_bnn.zoo.training.export import export, float_twin_scores
    from keras_bnn.zoo.training.language_model import train_language_model, vocabulary_of

    vocabulary, texts = vocabulary_of(entry)
    steps = args.steps or entry.recipe.steps
    splits = ("test", "validation")
    model, log = train_language_model(entry, steps=steps, seed=args.seed, texts=texts)
    result = {**log, **export(entry, model, args.weights_dir, splits=splits, vocabulary=list(vocabulary.characters),
                              legacy=True)}
    if entry.recipe.float_twin:
        twin, twin_log = train_language_model(entry, steps=steps, seed=args.seed, binary=False, texts=texts)
        result["float_twin_scores"] = float_twin_scores(entry, twin, splits, list(vocabulary.characters),
                                                        legacy=True)
        result["float_twin_train_wall_time_s"] = twin_log["train_wall_time_s"]
    return result


def _sentence_classifier(entry, args) -> dict:
    from keras_bnn.zoo.training.export import export, float_twin_scores
    from keras_bnn.zoo.training.sentence_classifier import accuracy, load_sentence_data, train_sentence_classifier

    data = load_sentence_data(entry, args.seed, args.train_examples)
    trained = train_sentence_classifier(entry, data, seed=args.seed, float_epochs=args.epochs,
                                        binary_epochs=args.epochs)
    vocabulary = data.tokenizer.vocabulary
    result = {"name": entry.name, "seed": args.seed, "teacher_log": trained["teacher_log"],
              "student_log": trained["student_log"],
              "train_wall_time_s": trained["teacher_log"]["train_wall_time_s"]
              + trained["student_log"]["train_wall_time_s"]}
    student = entry.builder(legacy=True)  # the shipped length; weights carry over from the any-length model
    student.set_weights(trained["student"].get_weights())
    result.update(export(entry, student, args.weights_dir, splits=("validation",), vocabulary=vocabulary,
                         legacy=True))
    result["scores"]["held_out"] = accuracy(trained["student"], data.x_hold, data.y_hold)
    teacher = entry.builder(binary=False, legacy=True)
    teacher.set_weights(trained["teacher"].get_weights())
    result["float_twin_scores"] = float_twin_scores(entry, teacher, ("validation",), vocabulary, legacy=True)
    return result


def _parser() -> argparse.ArgumentParser:
    names = trainable_models()
    parser = argparse.ArgumentParser(
        prog="python -m keras_bnn.zoo.training.train", description=__doc__.split("\n\n")[0],
        epilog="Pretrained models it trains: " + ", ".join(names))
    parser.add_argument("name", choices=names, metavar="NAME", help="one of: " + ", ".join(names))
    parser.add_argument("--seed", type=int, default=None, help="default: the seed of the shipped weights")
    parser.add_argument("--backend", choices=BACKENDS, default="legacy",
                        help="legacy (default): the tf-keras model, as the shipped weights were trained; tensorflow, "
                             "jax, torch: the Keras 3 model on that backend (image models)")
    parser.add_argument("--epochs", type=int, default=None, help="image and sentence models (default: the recipe's)")
    parser.add_argument("--steps", type=int, default=None, help="language models (default: the recipe's)")
    parser.add_argument("--train-examples", type=int, default=None,
                        help="train on the first N examples only (image and sentence models; quick checks)")
    parser.add_argument("--float-twin", action="store_true", help="image models: train the float twin instead")
    parser.add_argument("--weights-dir", type=pathlib.Path, default=DEFAULT_WEIGHTS_DIR)
    parser.add_argument("--no-deterministic", dest="deterministic", action="store_false",
                        help="skip TensorFlow's op determinism (faster, not bit-reproducible)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="default", help="tf.distribute strategy")
    parser.add_argument("--cpu-replicas", type=int, default=1, help="split the CPU into N logical devices")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = _parser()
    args = parser.parse_args(argv)
    entry = zoo.entry(args.name)
    if args.seed is None:
        args.seed = entry.pretrained.seed
    if entry.task != "image_classification" and (args.strategy != "default" or args.float_twin):
        parser.error(f"{args.name}: --strategy and --float-twin are for image models (a text recipe trains its "
                     "float twin in the same run)")
    if args.backend != "legacy" and (args.strategy != "default" or entry.task != "image_classification"):
        parser.error(f"--backend {args.backend} (Keras 3) trains image models without --strategy; train "
                     f"{args.name} with --backend legacy")
    try:
        select_backend(args.backend)
    except ValueError as error:
        parser.error(str(error))
    import tensorflow as tf

    strategy = make_strategy(args.strategy, args.cpu_replicas)  # before any other op (multi-worker needs it)
    if args.backend == "legacy":
        tf.keras.utils.set_random_seed(args.seed)
    else:
        import keras

        keras.utils.set_random_seed(args.seed)
    if args.deterministic and args.backend in ("legacy", "tensorflow"):
        tf.config.experimental.enable_op_determinism()
    chief = is_chief(strategy)
    started = time.perf_counter()
    if entry.task == "image_classification":
        log = _image(entry, args, strategy, chief)
    elif entry.task == "language_modeling":
        log = _language_model(entry, args)
    else:
        log = _sentence_classifier(entry, args)
    log.update(command=_command(args), total_wall_time_s=round(time.perf_counter() - started, 1),
               deterministic=args.deterministic)
    if "weights_dir" in log:
        log.pop("weights_dir")
    print(("CARD " if chief else "WORKER ") + json.dumps(log, sort_keys=True, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
