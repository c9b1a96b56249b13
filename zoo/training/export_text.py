"""Export a text model trained by a benchmark into the zoo: compact weights with the vocabulary, card fields.

The text models are trained by the benchmarks that define them (`benchmarks/gru_lm.py --save-dir DIR`,
`benchmarks/attention.py --save-dir DIR`); this turns their `binary.weights.h5` into the zoo's compact file:

    python -m keras_bnn.zoo.training.export_text binary_gru_lm.tiny_shakespeare \\
        --weights DIR/binary.weights.h5 --float-weights DIR/float.weights.h5
    python -m keras_bnn.zoo.training.export_text binary_transformer.sst2 \\
        --weights DIR/binary.weights.h5 --float-weights DIR/float.weights.h5 --vocabulary DIR/vocabulary.json

It loads the checkpoint into the zoo definition (a GRU checkpoint comes from the stateful batch-`--batch-size`
training model; the weights carry over to any batch size), canonicalizes it, writes `<name>.npz` (with the
vocabulary as `extra.vocabulary`) to `--weights-dir`, measures the card metric from that file as
`keras_bnn.zoo.evaluate` does, converts the model with `keras_bnn.tflite.convert` (a language model as its
batch-1 one-step model, `keras_bnn.text.step_model`) and prints the card fields as JSON (`CARD {...}`).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile

import keras_bnn  # noqa: F401  (must come before tensorflow)
import tensorflow as tf

from keras_bnn.text import CharVocabulary, step_model
from keras_bnn.zoo import _registry
from keras_bnn.zoo.evaluation import measure
from keras_bnn.zoo.text import encode_vocabulary, load_text
from keras_bnn.zoo.training.export import file_fields, flatbuffer_figures
from keras_bnn.zoo.weights import canonicalize, save_compact

__all__ = ["TEXT_MODELS", "load_checkpoint", "vocabulary_of", "export_text", "main"]

# name -> (test split, validation split): SST-2's labelled splits are train and validation (GLUE dev).
TEXT_MODELS = {
    "binary_gru_lm.tiny_shakespeare": ("test", "validation"),
    "binary_transformer.sst2": ("validation", None),
}


def load_checkpoint(name: str, checkpoint: str, *, binary: bool = True, batch_size: int = 64) -> tf.keras.Model:
    """The zoo model `name` (any batch size) with the weights of a benchmark's `save_weights` checkpoint."""
    spec = _registry.spec(name)
    if spec.task == "language_modeling":  # saved from the stateful, fixed-batch training model
        trained = spec.entry_point(batch_size=batch_size, stateful=True, binary=binary)
        trained.load_weights(checkpoint)
        model = spec.entry_point(binary=binary)
        model.set_weights(trained.get_weights())
        return model
    model = spec.entry_point(binary=binary)
    model.load_weights(checkpoint)
    return model


def vocabulary_of(name: str, vocabulary_file: str | None) -> list[str]:
    """The vocabulary to ship: Tiny Shakespeare's characters (all three splits, sorted) for the language
    model, else the JSON list written by the benchmark (words in id order)."""
    spec = _registry.spec(name)
    if spec.task == "language_modeling":
        texts = [load_text(spec.dataset, split) for split in ("train", "validation", "test")]
        return list(CharVocabulary.from_text(*texts).characters)
    if vocabulary_file is None:
        raise ValueError(f"{name!r} needs --vocabulary (the benchmark's vocabulary.json).")
    return json.loads(pathlib.Path(vocabulary_file).read_text())


def _flatbuffer(name: str, model: tf.keras.Model) -> dict:
    spec = _registry.spec(name)
    if spec.task == "language_modeling":
        return flatbuffer_figures(step_model(model))
    fixed = spec.entry_point(batch_size=1)
    fixed.set_weights(model.get_weights())
    return flatbuffer_figures(fixed)


def export_text(name: str, checkpoint: str, weights_dir: pathlib.Path, *, vocabulary_file: str | None = None,
                float_checkpoint: str | None = None, batch_size: int = 64) -> dict:
    """Write `weights_dir/<name>.npz` from a benchmark checkpoint; return the card fields measured from it."""
    test_split, validation_split = TEXT_MODELS[name]
    vocabulary = vocabulary_of(name, vocabulary_file)
    model = load_checkpoint(name, checkpoint, batch_size=batch_size)
    if model.layers[1].input_dim != len(vocabulary):
        raise ValueError(f"The checkpoint's embedding has {model.layers[1].input_dim} rows, the vocabulary "
                         f"{len(vocabulary)} entries.")
    weights_dir.mkdir(parents=True, exist_ok=True)
    path = weights_dir / f"{name}.npz"
    canonicalize(model)
    info = save_compact(model, path, extras={"vocabulary": encode_vocabulary(vocabulary)})
    metric, examples = measure(name, test_split, path)
    fields = {
        **file_fields(path, info),
        "test_split": test_split,
        "test_metric": metric,
        "test_examples": examples,
    }
    if validation_split is not None:
        fields["validation_metric"] = measure(name, validation_split, path)[0]
    if float_checkpoint:
        twin = load_checkpoint(name, float_checkpoint, binary=False, batch_size=batch_size)
        with tempfile.TemporaryDirectory() as folder:
            twin_path = pathlib.Path(folder) / "float.npz"
            save_compact(twin, twin_path, extras={"vocabulary": encode_vocabulary(vocabulary)})
            fields["float_twin_test_metric"] = measure(name, test_split, twin_path, binary=False)[0]
    fields.update(_flatbuffer(name, model))
    return fields


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=sorted(TEXT_MODELS))
    parser.add_argument("--weights", required=True, help="the benchmark's binary.weights.h5")
    parser.add_argument("--float-weights", default=None, help="the benchmark's float.weights.h5 (optional)")
    parser.add_argument("--vocabulary", default=None, help="the benchmark's vocabulary.json (SST-2)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size of a stateful GRU checkpoint")
    parser.add_argument(
        "--weights-dir", default=str(pathlib.Path(__file__).resolve().parent.parent / "weights")
    )
    args = parser.parse_args(argv)
    fields = export_text(args.name, args.weights, pathlib.Path(args.weights_dir), vocabulary_file=args.vocabulary,
                         float_checkpoint=args.float_weights, batch_size=args.batch_size)
    fields["name"] = args.name
    print("CARD " + json.dumps(fields, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
