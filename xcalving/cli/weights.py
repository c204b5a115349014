"""``xcalving weights``: the registered weights, one's model card, or a fine-tuned file's card."""

from __future__ import annotations

import argparse
import os
from typing import Any

from xcalving.errors import DamagedFileError, XcalvingError

__all__ = ["add_weights"]

_EPILOG = """\
examples:
  xcalving weights           # the table of registered weights
  xcalving weights caffe256  # its card: data, pixel spacing, scores, known failure modes
  xcalving weights mine.safetensors  # the card xcalving finetune wrote into the file"""


def add_weights(sub: Any) -> None:
    """Register ``xcalving weights`` on the subparsers ``sub``."""
    we = sub.add_parser(
        "weights", help="list the registered weights, or show the model card of one",
        description="Without NAME: the table of registered weights (name, data, pixel spacing, "
                    "licence). With NAME: its model card (how it was trained and scored, where "
                    "it fails). Pass a name to 'xcalving predict --model'.",
        epilog=_EPILOG)
    we.add_argument("name", nargs="?", default=None, metavar="NAME",
                    help="registered weights name, e.g. caffe256, or a fine-tuned .safetensors "
                         "file (default: list them all)")
    we.set_defaults(run=_run_weights)


def _run_weights(args: argparse.Namespace) -> int:
    # heavy: xcalving.adapt.card loads torch, safetensors, tqdm
    from xcalving.adapt.card import finetune_card

    # heavy: xcalving.model.cards loads torch, safetensors, tqdm
    from xcalving.model.cards import card, weights_table

    if args.name is None:
        print(weights_table(), end="")
    elif os.path.lexists(args.name):  # a weights file (or what was taken for one): its card
        print(_file_card(args.name, finetune_card), end="")
    else:
        print(card(args.name), end="")
    return 0


def _file_card(path: str, finetune_card: Any) -> str:
    """The card finetune wrote into ``path``; a damaged one is named, not a JSON error."""
    try:
        return str(finetune_card(path))
    except ValueError as err:
        if isinstance(err, XcalvingError):
            raise
        raise DamagedFileError(f"{path!r}: the fine-tuning card in its header is damaged "
                               f"({type(err).__name__}: {err}); the weights may still load, "
                               "but their record cannot be read. Fine-tune again to write a "
                               "new file.") from err
