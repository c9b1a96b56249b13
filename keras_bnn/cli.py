"""The ``keras-bnn`` command line.

Commands:
    ``keras-bnn convert MODEL -o out.tflite [--report] [--strict] [--target arm|xcore] [--int8-io]
    [--batch-size N]``: convert a saved Keras model (``.keras``/``.h5`` file or SavedModel directory, or a
    model-zoo name) to a bitpacked LCE flatbuffer.

    ``keras-bnn inspect FILE.tflite``: print the ops, MACs and size report of a flatbuffer.

Exit codes: 0 success, 2 usage error (bad arguments, missing input), 1 failure while loading, converting or
writing; user errors print one line on stderr, without a traceback.

More commands register themselves with :func:`register_command`.

Example:
    >>> from keras_bnn.cli import main
    >>> main(["convert", "--help"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass, replace
from typing import Callable, Sequence

__all__ = ["CommandError", "main", "register_command"]

PROGRAM = "keras-bnn"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class CommandError(Exception):
    """A user error: ``main`` prints the message on one line and exits with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class _Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


_COMMANDS: dict[str, _Command] = {}


def register_command(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None]
                     ) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Decorator: add a subcommand `name`; `configure` adds its arguments, the decorated function runs it.

    The function receives the parsed arguments and returns the exit code; it raises :class:`CommandError`
    for a user error.

    Example:
        >>> from keras_bnn.cli import register_command
        >>> @register_command("hello", help="say hello", configure=lambda parser: parser.add_argument("who"))
        ... def _hello(args):
        ...     print(f"hello {args.who}")
        ...     return 0
    """

    def decorator(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        _COMMANDS[name] = _Command(name, help, configure, run)
        return run

    return decorator


def _import_library() -> None:
    """Import keras_bnn (selects tf-keras) and larq, so that their layers deserialize by name."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras_bnn  # noqa: F401
    import larq  # noqa: F401

    import keras_bnn.tflite.rewrite  # noqa: F401  (the rewritten layers, should a saved model hold them)


def _load_model(source: str, *, unsafe: bool = False):
    """A Keras model from a saved file/directory, or from the model zoo by name."""
    _import_library()

    if os.path.exists(source):
        from keras_bnn.saving import load_model

        larq_log = logging.getLogger("larq.layers_base")  # training-only advice, noise when converting
        level = larq_log.level
        larq_log.setLevel(logging.ERROR)
        try:
            return load_model(source, safe_mode=not unsafe)
        except Exception as error:  # Keras raises many types for unreadable files
            raise CommandError(f"cannot load Keras model {source!r}: {_one_line(error)}") from error
        finally:
            larq_log.setLevel(level)
    import keras_bnn.zoo as zoo

    get = getattr(zoo, "get", None)
    looks_like_path = os.sep in source or source.endswith((".keras", ".h5", ".hdf5"))
    if get is None or looks_like_path:
        raise CommandError(f"no such file or directory: {source!r}", EXIT_USAGE)
    try:
        model = get(source, pretrained=True)
    except (KeyError, ValueError) as error:
        raise CommandError(f"{source!r} is neither a saved model nor a zoo model: {_one_line(error)}",
                           EXIT_USAGE) from error
    from keras_bnn.zoo import _registry

    if _registry.spec(source).task == "language_modeling":
        from keras_bnn.text import step_model

        print(f"{source}: converting its one-character step model (keras_bnn.text.step_model: ids (batch, 1) and "
              "the recurrent states in, logits and the new states out)", file=sys.stderr)
        model = step_model(model)
    return model


def _one_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _convert_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL",
                        help="saved Keras model: a .keras or .h5 file or a SavedModel directory; or a zoo name")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.tflite",
                        help="where to write the flatbuffer")
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


def _inspect_report(flatbuffer, not_bitpacked=()):
    try:
        from keras_bnn.tflite.inspection import inspect
    except ImportError as error:
        raise CommandError(f"flatbuffer inspection is not available: {_one_line(error)}") from error
    report = inspect(flatbuffer)
    if not_bitpacked:
        report = replace(report, not_bitpacked=tuple(f"{layer.name} ({layer.reason})" for layer in not_bitpacked))
    return report


@register_command("convert", help="convert a Keras BNN to a bitpacked LCE flatbuffer", configure=_convert_arguments)
def _convert(args: argparse.Namespace) -> int:
    output_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(output_dir):
        raise CommandError(f"output directory does not exist: {output_dir!r}", EXIT_USAGE)
    model = _load_model(args.model, unsafe=args.unsafe)
    import warnings

    import tensorflow as tf

    from keras_bnn.tflite.converter import convert_with_report

    io_type = tf.int8 if args.int8_io else tf.float32
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            flatbuffer, not_bitpacked = convert_with_report(
                model, inference_input_type=io_type, inference_output_type=io_type, target=args.target,
                strict=args.strict, batch_size=args.batch_size)
    except (ValueError, TypeError, RuntimeError) as error:
        raise CommandError(f"conversion failed: {_one_line(error)}") from error
    for warning in caught:
        if issubclass(warning.category, UserWarning):  # NotBitpackedWarning and LCE's own advice
            print(f"{PROGRAM}: warning: {warning.message}", file=sys.stderr)
    try:
        with open(args.output, "wb") as file:
            file.write(flatbuffer)
    except OSError as error:
        raise CommandError(f"cannot write {args.output!r}: {_one_line(error)}") from error
    print(f"wrote {args.output} ({len(flatbuffer):,} bytes; {len(not_bitpacked)} binary layer(s) not bitpacked)")
    if args.report:
        print(_inspect_report(flatbuffer, not_bitpacked))
    return EXIT_OK


def _inspect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("flatbuffer", metavar="FILE.tflite", help="a TFLite / LCE flatbuffer file")


@register_command("inspect", help="print the ops, MACs and size report of a .tflite file",
                  configure=_inspect_arguments)
def _inspect(args: argparse.Namespace) -> int:
    if not os.path.isfile(args.flatbuffer):
        raise CommandError(f"no such file: {args.flatbuffer!r}", EXIT_USAGE)
    _import_library()
    try:
        report = _inspect_report(args.flatbuffer)
    except ValueError as error:
        raise CommandError(f"cannot inspect {args.flatbuffer!r}: {_one_line(error)}") from error
    print(report)
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description="Binary Neural Networks for Keras: convert, inspect and more.",
        epilog="Exit codes: 0 success, 1 failure (loading, converting, writing), 2 usage error.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in _COMMANDS.values():
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.configure(sub)
        sub.set_defaults(run=command.run)
    from keras_bnn.zoo.cli import add_zoo_commands

    add_zoo_commands(subparsers)
    from keras_bnn.training.cli import add_training_commands

    add_training_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``keras-bnn`` command line with `argv` (default: ``sys.argv[1:]``); return the exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2), message already printed
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    try:
        return args.run(args)
    except CommandError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
