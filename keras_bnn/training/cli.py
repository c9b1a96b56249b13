"""``keras-bnn`` sub-commands of the training tools: ``plot-monitor LOGDIR``.

`add_training_commands` adds them to the main CLI's argparse sub-parsers; each sub-parser stores its handler in
``run`` (called with the parsed arguments, returning the exit status: 0 success, 1 failure), as the main CLI
expects.
"""

from __future__ import annotations

import argparse
import sys


def _plot_monitor(arguments: argparse.Namespace) -> int:
    from keras_bnn.training.monitor import plot_monitor

    try:
        path = plot_monitor(arguments.logdir, arguments.output)
    except FileNotFoundError as error:
        print(f"keras-bnn: error: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0


def add_training_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``plot-monitor`` to `subparsers` (from ``ArgumentParser.add_subparsers``).

    Example:
        >>> import argparse
        >>> import keras_bnn
        >>> from keras_bnn.training.cli import add_training_commands
        >>> parser = argparse.ArgumentParser(prog="keras-bnn")
        >>> add_training_commands(parser.add_subparsers(dest="command"))
        >>> parser.parse_args(["plot-monitor", "logs"]).logdir
        'logs'
    """
    plot = subparsers.add_parser(
        "plot-monitor",
        help="plot a BinarizationMonitor log folder (flip ratio, clip share, activation balance) to PNG",
        description="Plot LOGDIR/binarization_monitor.json, written by keras_bnn.training.BinarizationMonitor.",
    )
    plot.add_argument("logdir", help="the monitor's log_dir")
    plot.add_argument("--output", "-o", default=None, help="PNG path (default LOGDIR/binarization_monitor.png)")
    plot.set_defaults(run=_plot_monitor)
