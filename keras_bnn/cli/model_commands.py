"""``keras-bnn convert``, ``keras-bnn inspect`` and ``keras-bnn bench``."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from keras_bnn.cli import EXIT_OK, EXIT_USAGE, PROGRAM, CommandError, command, one_line

__all__: list[str] = []


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _saved_by_keras3(path: str) -> bool:
    """Whether `path` is a ``.keras`` file that Keras 3 wrote (any backend's)."""
    import zipfile

    from keras_bnn.larq_reader import saved_keras_version

    if not (path.endswith(".keras") and zipfile.is_zipfile(path)):
        return False
    return not saved_keras_version(path).startswith("2.")


def _load_keras3(path: str, *, unsafe: bool):
    """A Keras 3 ``.keras`` file, in Keras' safe mode unless `unsafe` (the converter rebuilds it for tf-keras)."""
    import keras

    import keras_bnn.layers  # noqa: F401  (registers keras_bnn's classes)
    import keras_bnn.training  # noqa: F401

    return keras.saving.load_model(path, compile=False, safe_mode=not unsafe)


def load_model(source: str, *, unsafe: bool = False):
    """A Keras model from a saved file/directory (code in it refused unless `unsafe`), or a zoo model by name (a
    language model as its one-step model)."""
    import keras_bnn.legacy  # noqa: F401  (first: selects tf-keras)
    import keras_bnn.tflite.forms  # noqa: F401  (the inference forms, should a saved model hold them)

    if os.path.exists(source):
        from keras_bnn.saving import load_model as load_saved

        try:
            if _saved_by_keras3(source):
                return _load_keras3(source, unsafe=unsafe)
            return load_saved(source, safe_mode=not unsafe)
        except Exception as error:  # noqa: BLE001  (Keras raises many types for unreadable files)
            raise CommandError(f"cannot load Keras model {source!r}: {one_line(error)}") from error
    if os.sep in source or source.endswith((".keras", ".h5", ".hdf5", ".tflite")):
        raise CommandError(f"no such file or directory: {source!r}", EXIT_USAGE)
    import keras_bnn.zoo as zoo

    try:
        entry = zoo.entry(source)
        model = zoo.samples.deployment_model(source, batch_size=None)
    except (KeyError, ValueError) as error:
        raise CommandError(f"{source!r} is neither a saved model nor a zoo model: {one_line(error)}",
                           EXIT_USAGE) from error
    if entry.task == "language_modeling":
        print(f"{source}: converting its one-character step model (keras_bnn.text.step_model: ids (batch, 1) and "
              "the recurrent states in, logits and the new states out)", file=sys.stderr)
    return model


def _representative_data(args: argparse.Namespace):
    """The int8 target's calibration inputs: a .npy file, or a zoo model's training samples."""
    import numpy as np

    if args.representative_data:
        try:
            return np.load(args.representative_data, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise CommandError(f"cannot read --representative-data {args.representative_data!r}: "
                               f"{one_line(error)}", EXIT_USAGE) from error
    if os.path.exists(args.model):
        raise CommandError("--kernels int8 needs --representative-data FILE.npy (model inputs (N, ...) that "
                           "calibrate its real-valued tensors; raw integer pixels keep the input exact)", EXIT_USAGE)
    import keras_bnn.zoo as zoo

    return zoo.samples.calibration_samples(args.model)[0]


def _convert_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL",
                        help="saved Keras model: a .keras or .h5 file or a SavedModel directory; or a zoo name")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.tflite", help="where to write the flatbuffer")
    parser.add_argument("--report", action="store_true",
                        help="print the inspection report (ops, MACs, size) of the flatbuffer")
    parser.add_argument("--strict", action="store_true",
                        help="fail (exit 1) if any binary layer cannot be bitpacked, instead of warning")
    parser.add_argument("--target", choices=("arm", "xcore"), default="arm",
                        help="LCE target hardware (default: arm)")
    parser.add_argument("--int8-io", action="store_true",
                        help="int8 model inputs and outputs instead of float32 (needs a quantized model)")
    parser.add_argument("--batch-size", type=_positive_int, metavar="N",
                        help="batch size fixed in the flatbuffer (default: the model's, or 1 if unspecified)")
    parser.add_argument("--unsafe", action="store_true",
                        help="allow a model file that runs code when loaded (Lambda layers, SavedModel folders); "
                             "refused by default: use it only for files you trust")
    parser.add_argument("--kernels", choices=("lce", "int8", "float"), default="lce",
                        help="lce: bitpacked LCE file (ARM phones, Raspberry Pi; default); int8: TFLite builtin "
                             "int8 ops only, binary layers exact (stock LiteRT, TFLite Micro); float: stock TFLite")
    parser.add_argument("--representative-data", metavar="FILE.npy",
                        help="--kernels int8: calibration inputs (N, ...); default for a zoo model: its training "
                             "samples")
    parser.add_argument("--head", choices=("int8", "float"), default="int8",
                        help="--kernels int8: the classifier's outputs in int8 or float32 (exact logits)")


@command("convert", help="convert a Keras BNN to a flatbuffer (bitpacked LCE, portable int8, or float)",
         configure=_convert_arguments)
def _convert(args: argparse.Namespace) -> int:
    output_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(output_dir):
        raise CommandError(f"output directory does not exist: {output_dir!r}", EXIT_USAGE)
    model = load_model(args.model, unsafe=args.unsafe)
    import tensorflow as tf

    from keras_bnn.tflite import convert

    io_type = tf.int8 if args.int8_io else tf.float32
    options = {"target": args.target} if args.kernels == "lce" else {}
    if args.kernels == "int8":
        options.update(representative_data=_representative_data(args), head=args.head)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = convert(model, kernels=args.kernels, inference_input_type=io_type,
                             inference_output_type=io_type, strict=args.strict, batch_size=args.batch_size,
                             report=True, **options)
    except (ValueError, TypeError, RuntimeError) as error:
        raise CommandError(f"conversion failed: {one_line(error)}") from error
    for warning in caught:
        if issubclass(warning.category, UserWarning):  # NotBitpackedWarning and LCE's own advice
            print(f"{PROGRAM}: warning: {warning.message}", file=sys.stderr)
    try:
        with open(args.output, "wb") as file:
            file.write(result.flatbuffer)
    except OSError as error:
        raise CommandError(f"cannot write {args.output!r}: {one_line(error)}") from error
    if args.kernels == "lce":
        detail = f"{len(result.not_bitpacked)} binary layer(s) not bitpacked"
    else:
        detail = "TFLite builtin int8 ops only" if args.kernels == "int8" else "stock TFLite float ops"
    print(f"wrote {args.output} ({len(result.flatbuffer):,} bytes; {detail})")
    if args.report:
        print(result)
    return EXIT_OK


@command("inspect", help="print the ops, MACs and size report of a .tflite file",
         configure=lambda parser: parser.add_argument("flatbuffer", metavar="FILE.tflite",
                                                      help="a TFLite / LCE flatbuffer file"))
def _inspect(args: argparse.Namespace) -> int:
    if not os.path.isfile(args.flatbuffer):
        raise CommandError(f"no such file: {args.flatbuffer!r}", EXIT_USAGE)
    import keras_bnn.legacy  # noqa: F401  (first: selects tf-keras)
    from keras_bnn.tflite import inspect

    try:
        report = inspect(args.flatbuffer)
    except ValueError as error:
        raise CommandError(f"cannot inspect {args.flatbuffer!r}: {one_line(error)}") from error
    print(report)
    return EXIT_OK


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="NAME", help="a pretrained zoo model")
    parser.add_argument("--examples", type=_positive_int, default=1000,
                        help="test samples the files are checked on (default 1000)")
    parser.add_argument("--runs", type=_positive_int, default=200, help="timed runs per latency (median; default 200)")
    parser.add_argument("--head", choices=("int8", "float"), default="int8", help="the int8 file's classifier")
    parser.add_argument("--json", action="store_true", help="print the row as one JSON document")


@command("bench", help="one zoo model as LCE, int8 and float files on this machine: accuracy and agreement with "
         "Keras in each runtime, bytes, TFLite Micro arena, latency at batch 1 and 1 thread",
         configure=_bench_arguments)
def _bench(args: argparse.Namespace) -> int:
    import json

    import keras_bnn.zoo as zoo
    from keras_bnn.tflite.bench import format_table, measure

    try:
        zoo.entry(args.model)
        model = zoo.samples.deployment_model(args.model)
        inputs, labels = zoo.samples.test_samples(args.model, args.examples)
        representative = zoo.samples.calibration_samples(args.model)
    except ValueError as error:
        raise CommandError(one_line(error), EXIT_USAGE) from error
    row = {"name": args.model, **measure(model, inputs, labels, representative_data=representative[0],
                                          runs=args.runs, int8_options={"head": args.head})}
    print(json.dumps(row, sort_keys=True) if args.json else format_table([row]))
    return EXIT_OK