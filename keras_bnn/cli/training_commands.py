"""``keras-bnn plot-monitor LOGDIR``: plot a ``BinarizationMonitor`` log folder."""

from __future__ import annotations

import argparse

from keras_bnn.cli import EXIT_OK, CommandError, command

__all__: list[str] = []


def _plot_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logdir", help="the monitor's log_dir")
    parser.add_argument("--output", "-o", default=None, help="PNG path (default LOGDIR/binarization_monitor.png)")


@command("plot-monitor", help="plot a BinarizationMonitor log folder (flip ratio, clip share, activation balance) "
         "to PNG", configure=_plot_arguments)
def _plot_monitor(args: argparse.Namespace) -> int:
    from keras_bnn.legacy.training.monitor import plot_monitor

    try:
        path = plot_monitor(args.logdir, args.output)
    except FileNotFoundError as error:
        raise CommandError(str(error)) from error
    print(path)
    return EXIT_OK
