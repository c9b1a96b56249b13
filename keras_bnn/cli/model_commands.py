"""``keras-bnn convert`` and ``keras-bnn inspect``."""

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


def load_model(source: str, *, unsafe: bool = False):
    """A Keras model from a saved file/directory (code in it refused unless `unsafe`), or a zoo model by name (a
    language model as its one-step model)."""
    import keras_bnn  # noqa: F401  (selects tf-keras before TensorFlow is imported)
    import keras_bnn.tflite.forms  # noqa: F401  (the inference forms, should a saved model hold them)

    if os.path.exists(source):
        from keras_bnn.saving import load_model as load_saved

        try:
            return load_saved(source, safe_mode=not unsafe)
        except Exception as error:  # noqa: BLE001  (Keras raises many types for unreadable files)
            raise CommandError(f"cannot load Keras model {source!r}: {one_line(error)}") from error
    if os.sep in source or source.endswith((".keras", ".h5", ".hdf5", ".tflite")):
        raise CommandError(f"no such file or directory: {source!r}", EXIT_USAGE)
    import keras_bnn.zoo as zoo

    try:
        entry = zoo.entry(source)
        model = zoo.get(source, pretrained=True)
    except (KeyError, ValueError) as error:
        raise CommandError(f"{source!r} is neither a saved model nor a zoo model: {one_line(error)}",
                           EXIT_USAGE) from error
    if entry.task == "language_modeling":
        from keras_bnn.text import step_model

        print(f"{source}: converting its one-character step model (keras_bnn.text.step_model: ids (batch, 1) and "
              "the recurrent states in, logits and the new states out)", file=sys.stderr)
        model = step_model(model)
    return model


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


@command("convert", help="convert a Keras BNN to a bitpacked LCE flatbuffer", configure=_convert_arguments)
def _convert(args: argparse.Namespace) -> int:
    output_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(output_dir):
        raise CommandError(f"output directory does not exist: {output_dir!r}", EXIT_USAGE)
    model = load_model(args.model, unsafe=args.unsafe)
    import tensorflow as tf

    from keras_bnn.tflite import convert

    io_type = tf.int8 if args.int8_io else tf.float32
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = convert(model, inference_input_type=io_type, inference_output_type=io_type,
                             target=args.target, strict=args.strict, batch_size=args.batch_size, report=True)
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
    print(f"wrote {args.output} ({len(result.flatbuffer):,} bytes; {len(result.not_bitpacked)} binary layer(s) not "
          "bitpacked)")
    if args.report:
        print(result)
    return EXIT_OK


@command("inspect", help="print the ops, MACs and size report of a .tflite file",
         configure=lambda parser: parser.add_argument("flatbuffer", metavar="FILE.tflite",
                                                      help="a TFLite / LCE flatbuffer file"))
def _inspect(args: argparse.Namespace) -> int:
    if not os.path.isfile(args.flatbuffer):
        raise CommandError(f"no such file: {args.flatbuffer!r}", EXIT_USAGE)
    import keras_bnn  # noqa: F401
    from keras_bnn.tflite import inspect

    try:
        report = inspect(args.flatbuffer)
    except ValueError as error:
        raise CommandError(f"cannot inspect {args.flatbuffer!r}: {one_line(error)}") from error
    print(report)
    return EXIT_OK
