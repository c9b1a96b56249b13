"""The ``keras-bnn`` command line: one registry of commands, one error type, results alone on stdout.

Commands (``keras-bnn COMMAND --help`` for each):
    ``convert MODEL -o OUT.tflite``, ``inspect FILE.tflite`` (:mod:`keras_bnn.cli.model_commands`);
    ``zoo list|card|evaluate`` (:mod:`keras_bnn.cli.zoo_commands`); ``plot-monitor LOGDIR``
    (:mod:`keras_bnn.cli.training_commands`).

Conventions: a command writes its result, and only its result, to stdout (``--json`` output is one JSON
document); everything else (progress, TensorFlow/absl logs, larq's advice, warnings) goes to stderr. A user error
raises :class:`CommandError`: ``main`` prints it on one line on stderr, without a traceback, and returns its exit
code: 0 success, 1 failure (loading, converting, writing, a check that failed), 2 usage error (bad arguments,
missing input).

Example:
    >>> from keras_bnn.cli import main
    >>> main(["zoo", "list", "*.imagenet"])
    birealnet18.imagenet
    xnornet18.imagenet
    0
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "CommandError", "command", "main", "one_line"]

PROGRAM = "keras-bnn"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
_COMMAND_MODULES = ("model_commands", "zoo_commands", "training_commands")


class CommandError(Exception):
    """A user error: ``main`` prints the message on one line and exits with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class _Command:
    path: tuple[str, ...]  # ("convert",) or ("zoo", "list")
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


_COMMANDS: dict[tuple[str, ...], _Command] = {}
_GROUPS = {"zoo": "list zoo models, print their cards, evaluate them"}


def command(name: str, *, help: str, configure: Callable[[argparse.ArgumentParser], None] = lambda parser: None):
    """Decorator: register the subcommand `name` (``"convert"``, or ``"zoo list"`` inside a group).

    `configure(parser)` adds its arguments; the decorated function receives the parsed arguments and returns the
    exit code, raising :class:`CommandError` for a user error.
    """

    def decorator(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        path = tuple(name.split())
        _COMMANDS[path] = _Command(path, help, configure, run)
        return run

    return decorator


def one_line(error: BaseException | str) -> str:
    """An error's message on one line."""
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())


def quiet_libraries() -> None:
    """Keep TensorFlow's, absl's and larq's notices off the terminal (warnings still reach stderr)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("larq.layers_base").setLevel(logging.ERROR)  # training-only advice while copying layers
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # absl comes with TensorFlow; without it there is nothing to silence
        pass


def _parser() -> argparse.ArgumentParser:
    import importlib

    for module in _COMMAND_MODULES:
        importlib.import_module(f"keras_bnn.cli.{module}")
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description="Binary Neural Networks for Keras: convert, inspect, the model zoo and more.",
        epilog="Exit codes: 0 success, 1 failure (loading, converting, writing, a failed check), 2 usage error.")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    for path, entry in sorted(_COMMANDS.items()):
        parent = top
        if len(path) == 2:
            group = path[0]
            if group not in groups:
                group_parser = top.add_parser(group, help=_GROUPS.get(group, ""), description=_GROUPS.get(group))
                groups[group] = group_parser.add_subparsers(dest=f"{group}_command", metavar="COMMAND",
                                                            required=True)
            parent = groups[group]
        sub = parent.add_parser(path[-1], help=entry.help, description=entry.help)
        entry.configure(sub)
        sub.set_defaults(run=entry.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``keras-bnn`` command line with `argv` (default: ``sys.argv[1:]``); return the exit code."""
    quiet_libraries()
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2), message already printed
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    try:
        return args.run(args)
    except CommandError as error:
        print(f"{PROGRAM}: error: {one_line(error)}", file=sys.stderr)
        return error.exit_code

