"""Model cards: what each registered weights file is, how it was made and scored, where it fails.

A card is the registry's facts (data, pixel spacing, input scaling, licence, training summary)
followed by a hand-written part kept beside the weights in ``weights/cards/NAME.md`` (recipe,
compute, the leave-one-glacier-out table, known failure modes). :func:`card` renders one;
:func:`weights_table` is the README's table of shipped weights, derived from the same records.
"""

from __future__ import annotations

from xcalving.errors import WeightsNotFoundError, did_you_mean
from xcalving.model.weights import DEFAULT_WEIGHTS, REGISTRY, WEIGHTS_DIR, WeightsRecord

__all__ = ["CARDS_DIR", "card", "weights_table"]

CARDS_DIR = WEIGHTS_DIR / "cards"
#: What a card says where the training scenes had no common pixel spacing.
UNKNOWN_SPACING = "unknown: resized scenes, use on 256-px CaFFe-like scenes"


def _record(name: str) -> WeightsRecord:
    if name not in REGISTRY:
        raise WeightsNotFoundError(f"no registered weights named {name!r}; registered: "
                                   f"{sorted(REGISTRY)}.{did_you_mean(name, REGISTRY)}")
    return REGISTRY[name]


def spacing_text(record: WeightsRecord) -> str:
    """The pixel spacing line of a card."""
    if record.pixel_spacing is None:
        return UNKNOWN_SPACING
    return f"{record.pixel_spacing:g} m"


def _facts(record: WeightsRecord) -> list[str]:
    training = record.training or {}
    minutes = training.get("train_seconds")
    compute = (f"{training.get('epochs', '?')} epochs, {minutes / 60:.0f} min "
               f"({training.get('device', 'CPU')})" if minutes else "not recorded")
    scaling = record.scaling
    return [
        f"- **File**: `{record.filename}`, sha256 `{record.sha256}`",
        f"- **Default**: {'yes, `model=None` uses it' if record.name == DEFAULT_WEIGHTS else 'no'}",
        f"- **Data**: {record.data or record.description}",
        f"- **Pixel spacing**: {spacing_text(record)}",
        f"- **Input scaling**: {scaling.domain}, normalised with mean {scaling.mean} and "
        f"standard deviation {scaling.std}",
        f"- **Compute**: {compute}",
        f"- **Licence**: {record.licence}" + (f"; cite {record.citation}" if record.citation
                                              else ""),
    ]


def card(name: str) -> str:
    """The model card of registered weights ``name`` as Markdown.

    Examples
    --------
    >>> text = card("demo")
    >>> text.splitlines()[0]
    '# demo'
    >>> "Known failure modes" in text
    True
    """
    record = _record(name)
    written = CARDS_DIR / f"{name}.md"
    body = written.read_text().strip() if written.exists() else "(no written card yet)"
    return "\n".join([f"# {name}", "", record.description, "", *_facts(record), "", body, ""])


def _summary(name: str) -> str:
    """The card's one-line 'In short' paragraph (first line after that heading)."""
    written = CARDS_DIR / f"{name}.md"
    lines = written.read_text().splitlines() if written.exists() else []
    for i, line in enumerate(lines):
        if line.strip().lower() == "## in short":
            return next((x.strip() for x in lines[i + 1:] if x.strip()), "")
    return ""


def weights_table() -> str:
    """The README's table of shipped weights (Markdown), from the registry and the cards."""
    rows = ["| name | data | pixel spacing | in short | licence |",
            "| --- | --- | --- | --- | --- |"]
    for name in sorted(REGISTRY):
        record = REGISTRY[name]
        default = " (default)" if name == DEFAULT_WEIGHTS else ""
        rows.append(f"| `{name}`{default} | {record.data or record.description} | "
                    f"{spacing_text(record)} | {_summary(name)} | {record.licence} |")
    return "\n".join(rows) + "\n"
