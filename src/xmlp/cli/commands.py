"""The ``xmlp`` console command: ``xmlp demo`` and ``xmlp bench`` (also ``python -m xmlp``).

Subcommand modules are imported only when run, so ``xmlp demo`` never loads benchmark code
and ``xmlp --help`` loads neither.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .options import CommandError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="xmlp", description="xmlp: a backend-agnostic MLP written once against the Array API."
    )
    parser.add_argument("--version", action="version", version=f"xmlp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo = commands.add_parser(
        "demo", help="train a model (the seed's regression, or a digits classifier) and plot it",
        description="--task regression (default): train MLP(1, hidden, 1) on y = 2x^2 + 3 + "
        "noise, print the final loss and write a PNG (demo.png) with the data, the fitted and "
        "the true curve and the loss curve. --task digits: train MLP(64, hidden, 10) with Adam "
        "and cross-entropy on the 8x8 handwritten digits, print the test accuracy and write a "
        "PNG (digits.png) with the loss and accuracy curves and the confusion matrix.",
    )
    from . import demo as demo_module

    demo_module.add_arguments(demo)
    # bench's options are defined by xmlp.cli.bench, parsed only once it runs (see main).
    commands.add_parser("bench", help="time training steps on the installed backends",
                        add_help=False)
    return parser


def _run_bench(argv: list[str]) -> int:
    bench = importlib.import_module("xmlp.cli.bench")
    parser = argparse.ArgumentParser(prog="xmlp bench",
                                     description="Time training steps on the installed backends.")
    bench.add_arguments(parser)
    return int(bench.run(parser.parse_args(argv)))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xmlp`` command; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args, rest = parser.parse_known_args(args_list)
    try:
        if args.command == "bench":
            return _run_bench(rest)
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        from . import demo

        return demo.run(args)
    except CommandError as exc:
        print(f"xmlp {args.command}: error: {exc}", file=sys.stderr)
        return 2
