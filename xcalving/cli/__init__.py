"""The ``xcalving`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from xcalving.cli import data, demo, predict, training
from xcalving.errors import XcalvingError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xcalving", description=__doc__)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line")
    sub = parser.add_subparsers(dest="command")
    for add in (demo.add_demo, predict.add_predict, predict.add_fronts, data.add_synth,
                data.add_caffe, training.add_train, training.add_tune):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        from xcalving import __version__

        print(__version__)
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print(f"xcalving {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one line, no traceback, unless --debug asks for it
        if args.debug:
            raise
        expected = isinstance(err, XcalvingError | FileNotFoundError | FileExistsError)
        kind = "" if expected else f"{type(err).__name__}: "
        hint = "" if expected else " (run again with --debug for the traceback)"
        print(f"xcalving {args.command}: error: {kind}{err}{hint}", file=sys.stderr)
        return 1
