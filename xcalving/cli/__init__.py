"""The ``xcalving`` command line: one subcommand a job, each registered by its module."""

from __future__ import annotations

import argparse
import contextlib
import sys
import textwrap
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from xcalving.cli import data, demo, export, finetune, fronts, predict, training, weights
from xcalving.errors import UnknownScalingError, XcalvingError
from xcalving.runtime import VERSION

__all__ = ["HelpFormatter", "main", "one_line_warnings"]

_DESCRIPTION = """\
Calving fronts from SAR time series: predict them, turn them into lines, train networks.
Run 'xcalving COMMAND --help' for each command's options and an example."""

_EPILOG = """\
examples:
  xcalving demo --out xcalving-demo
  xcalving predict cube.zarr --out pred.zarr
  xcalving predict 's1/*.tif' --out pred.zarr --scaling linear   # RTC gamma0: linear power
  xcalving fronts pred.zarr --out fronts.gpkg --map fronts.png
  xcalving export pred.zarr --out pred-tifs                      # GeoTIFFs for QGIS
  xcalving weights"""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Each option's default after its help; indented lines (examples) printed as written.

    No ``(default: None)`` or ``(default: False)``: an option whose help already says what its
    default is, a flag, or one without a default, is left as it is. In descriptions and
    epilogs, lines that start with a space are kept as they are; the others are filled.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines: list[str] = []
        paragraph: list[str] = []
        for line in [*text.splitlines(), ""]:
            if line.strip() and not line[0].isspace():
                paragraph.append(line.strip())
                continue
            if paragraph:
                lines.append(textwrap.fill(" ".join(paragraph), width, initial_indent=indent,
                                           subsequent_indent=indent))
                paragraph = []
            lines.append(indent + line)
        return "\n".join(lines).rstrip()

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        shown = (action.option_strings or action.nargs in (argparse.OPTIONAL,
                                                           argparse.ZERO_OR_MORE))
        if (not shown or action.nargs == 0 or default is None or default is False
                or default is argparse.SUPPRESS or "default" in text.lower()):
            return text
        if isinstance(default, list | tuple):
            default = " ".join(str(v) for v in default)
        return f"{text} (default: {str(default).replace('%', '%%')})"


class _Parser(argparse.ArgumentParser):
    """The parser of every subcommand: :class:`HelpFormatter` unless one is asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="xcalving", description=_DESCRIPTION, epilog=_EPILOG)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND",
                                title="commands")
    for add in (demo.add_demo, predict.add_predict, fronts.add_fronts, export.add_export,
                weights.add_weights, finetune.add_finetune, data.add_synth, data.add_caffe,
                training.add_train, training.add_tune):
        add(sub)
    return parser


#: The input says nothing of its values: the message names the option and its values.
NO_UNITS = ("--scaling: the input has no units tag (nor a units attribute), so --scaling auto "
            "cannot tell whether it holds dB, linear power or 8-bit grey values. Sentinel-1 RTC "
            "gamma0 GeoTIFFs hold linear power: pass --scaling linear; for dB pass --scaling db, "
            "for 8-bit grey values --scaling uint8.")


def _in_shell_terms(err: Exception, args: argparse.Namespace) -> Exception:
    """``err``, its message naming command-line options where the library's names Python's."""
    if isinstance(err, UnknownScalingError) and getattr(args, "scaling", None) == "auto":
        return UnknownScalingError(NO_UNITS)
    return err


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    """Print a warning as ``xcalving: warning: <message>``, one line, above any progress bar."""
    from tqdm import tqdm  # heavy: tqdm, loaded on first use

    text = " ".join(str(message).split())
    tqdm.write(f"xcalving: warning: {text}", file=file or sys.stderr)


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """While the command runs, warnings print as one clean line each, not as Python source.

    :func:`warnings.showwarning` is replaced, for the warnings of every thread (Dask's
    included); through :func:`tqdm.tqdm.write`, so that a warning raised while a progress bar
    is drawn is printed above it and the bar goes on, instead of being broken in two.
    """
    shown = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        yield
    finally:
        warnings.showwarning = shown


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        print(VERSION)
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    try:
        with one_line_warnings():
            return int(args.run(args))
    except KeyboardInterrupt:
        print(f"xcalving {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as raised:  # one line, no traceback, unless --debug asks for it
        if args.debug:
            raise
        err = _in_shell_terms(raised, args)
        expected = isinstance(err, XcalvingError | FileNotFoundError | FileExistsError)
        kind = "" if expected else f"{type(err).__name__}: "
        hint = "" if expected else " (run again with --debug for the traceback)"
        print(f"xcalving {args.command}: error: {kind}{err}{hint}", file=sys.stderr)
        return 1
