"""`keras-bnn zoo ...` commands: `zoo list`, `zoo card NAME`, `zoo evaluate NAME`.

`add_zoo_commands(subparsers)` adds them to an argparse subparsers object; every leaf parser gets
`run=<function(args) -> exit code>` as its default, the convention of `keras_bnn.cli`. User errors (unknown
name, no weights, corrupted file) print one line on stderr and return exit code 2 (usage) or 1 (failure).

Example:
    >>> from keras_bnn.zoo.cli import main
    >>> main(["list", "*.imagenet"])
    birealnet18.imagenet
    xnornet18.imagenet
    0
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

__all__ = ["add_zoo_commands", "main"]

PROGRAM = "keras-bnn zoo"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _error(message: str, code: int) -> int:
    print(f"{PROGRAM}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def _list(args: argparse.Namespace) -> int:
    import keras_bnn.zoo as zoo

    try:
        names = zoo.list_models(args.pattern, pretrained=args.pretrained)
    except (TypeError, ValueError) as error:
        return _error(str(error), EXIT_USAGE)
    for name in names:
        print(name)
    return EXIT_OK


def _card(args: argparse.Namespace) -> int:
    import keras_bnn.zoo as zoo

    try:
        print(zoo.model_card(args.name), end="")
    except ValueError as error:
        return _error(str(error), EXIT_USAGE)
    return EXIT_OK


def _evaluate(args: argparse.Namespace) -> int:
    import keras_bnn.zoo as zoo

    try:
        result = zoo.evaluate(args.name, split=args.split)
    except zoo.WeightsFileError as error:
        return _error(str(error), EXIT_FAILURE)
    except (ValueError, FileNotFoundError) as error:
        return _error(str(error), EXIT_USAGE)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        metric = zoo.pretrained.METRICS[result["metric"]]
        print(f"{result['name']} on {result['dataset']} {result['split']} ({result['examples']:,} examples)")
        print(f"  {metric.label}  card: {metric.format(result['card'])}  measured: {metric.format(result['measured'])}")
        if result["card"] is not None:
            print("  matches the card" if result["matches"] else "  DOES NOT match the card")
    return EXIT_OK if result["matches"] or result["card"] is None else EXIT_FAILURE


def add_zoo_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `zoo` command and its `list`, `card` and `evaluate` subcommands to `subparsers`.

    Args:
        subparsers: What `ArgumentParser.add_subparsers()` returned.

    Returns:
        The `zoo` parser.
    """
    zoo_parser = subparsers.add_parser("zoo", help="list zoo models, print their cards, evaluate them",
                                       description="The keras_bnn model zoo.")
    commands = zoo_parser.add_subparsers(dest="zoo_command", metavar="ZOO_COMMAND", required=True)

    list_parser = commands.add_parser("list", help="list model names (architecture.dataset)")
    list_parser.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. '*.mnist'")
    list_parser.add_argument("--pretrained", action="store_true", help="only models with pretrained weights")
    list_parser.set_defaults(run=_list)

    card_parser = commands.add_parser("card", help="print a model card (markdown)")
    card_parser.add_argument("name", metavar="NAME")
    card_parser.set_defaults(run=_card)

    evaluate_parser = commands.add_parser(
        "evaluate", help="re-measure a pretrained model's test metric (accuracy, bits per character) and compare "
        "it with its card"
    )
    evaluate_parser.add_argument("name", metavar="NAME")
    evaluate_parser.add_argument("--split", default=None,
                                 help="dataset split (default: the card's test split, e.g. test)")
    evaluate_parser.add_argument("--json", action="store_true", help="print the result as JSON")
    evaluate_parser.set_defaults(run=_evaluate)
    return zoo_parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the zoo commands on their own: `python -m keras_bnn.zoo.cli list` (same as `keras-bnn zoo list`)."""
    parser = argparse.ArgumentParser(prog="keras-bnn")
    add_zoo_commands(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(["zoo", *(sys.argv[1:] if argv is None else argv)])
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    return args.run(args)


if __name__ == "__main__":
    import keras_bnn  # noqa: F401  (selects tf-keras before TensorFlow is imported)

    sys.exit(main())
