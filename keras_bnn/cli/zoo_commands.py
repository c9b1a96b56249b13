"""``keras-bnn zoo list``, ``zoo card NAME`` and ``zoo evaluate NAME``."""

from __future__ import annotations

import argparse
import json

from keras_bnn.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CommandError, command

__all__: list[str] = []


def _zoo():
    import keras_bnn.zoo as zoo

    return zoo


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. '*.mnist'")
    parser.add_argument("--pretrained", action="store_true", help="only models with pretrained weights")


@command("zoo list", help="list model names (architecture.tag)", configure=_list_arguments)
def _list(args: argparse.Namespace) -> int:
    try:
        names = _zoo().list_models(args.pattern, pretrained=args.pretrained)
    except (TypeError, ValueError) as error:
        raise CommandError(str(error), EXIT_USAGE) from error
    for name in names:
        print(name)
    return EXIT_OK


@command("zoo card", help="print a model card (markdown)",
         configure=lambda parser: parser.add_argument("name", metavar="NAME"))
def _card(args: argparse.Namespace) -> int:
    try:
        print(_zoo().model_card(args.name), end="")
    except ValueError as error:
        raise CommandError(str(error), EXIT_USAGE) from error
    return EXIT_OK


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("--split", default=None, help="dataset split (default: the card's test split, e.g. test)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document")
    parser.add_argument("--legacy", action="store_true",
                        help="measure the tf-keras model (what the converter takes) instead of the Keras 3 one "
                             "(on the backend KERAS_BACKEND names)")


@command("zoo evaluate", help="re-measure a pretrained model's test metric (accuracy, bits per character) and "
         "compare it with its card", configure=_evaluate_arguments)
def _evaluate(args: argparse.Namespace) -> int:
    zoo = _zoo()
    try:
        result = zoo.evaluate(args.name, split=args.split, legacy=args.legacy)
    except zoo.WeightsFileError as error:
        raise CommandError(str(error), EXIT_FAILURE) from error
    except (ValueError, FileNotFoundError) as error:
        raise CommandError(str(error), EXIT_USAGE) from error
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        metric = zoo.METRICS[result["metric"]]
        print(f"{result['name']} on {result['dataset']} {result['split']} ({result['examples']:,} examples)")
        print(f"  {metric.label}  card: {metric.format(result['card'])}  measured: {metric.format(result['measured'])}")
        if result["card"] is not None:
            print("  matches the card" if result["matches"] else "  DOES NOT match the card")
    return EXIT_OK if result["matches"] or result["card"] is None else EXIT_FAILURE
