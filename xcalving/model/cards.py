"""Model cards: what each registered weights file is, how it was made and scored, where it fails.

The card's facts are data: :attr:`WeightsRecord.meta <xcalving.model.registry.WeightsRecord.meta>`
(sensors and scene counts, pixel spacing and the range it holds in, bands, input scaling, the
front method, held-out metrics in pixels and metres, licence, citation), read from
``weights/registry.json``. :func:`card` renders them as Markdown — the facts, then the metrics
table, then the hand-written prose kept beside the weights in ``weights/cards/NAME.md``
(recipe, known failure modes); :func:`weights_table` is the README's table, from the same
records.
"""

from __future__ import annotations

from xcalving.errors import WeightsNotFoundError, did_you_mean
from xcalving.model.registry import DEFAULT_WEIGHTS, REGISTRY, WEIGHTS_DIR, WeightsRecord

__all__ = ["CARDS_DIR", "card", "metrics_table", "spacing_table", "weights_table"]

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


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) if counts else "not recorded"


def _range_text(record: WeightsRecord) -> str:
    if record.spacing_range is None:
        return "not measured"
    lo, hi = record.spacing_range
    advice = {"helps": "outside it, pass resolution='model'",
              "hurts": "outside it, resolution='model' was measured to be worse: resample "
                       "the cube yourself or fine-tune",
              "unmeasured": "outside it, unmeasured"}[record.resolution_model]
    return f"{lo:g}–{hi:g} m on the cube's own grid; {advice}"


def metrics_table(record: WeightsRecord) -> str:
    """The held-out scores of a record as a Markdown table, in pixels and metres."""
    if not record.metrics:
        return ""
    rows = ["| recipe | held-out glacier | chose the recipe | MDE px | MDE m | pred→label m | "
            "label→pred m | median m | no front | zone IoU |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for m in record.metrics:
        metres = [f"{m[k]:.0f}" if isinstance(m.get(k), int | float) else "–"
                  for k in ("mde_m", "pred_to_label_m", "label_to_pred_m", "median_m")]
        chose = "yes" if m.get("chose_recipe") else "no"
        pixels = f"{m['mde_px']:.1f}" if isinstance(m.get("mde_px"), int | float) else "–"
        rows.append(f"| {m.get('recipe', '')} | {m.get('held_out', '')} | {chose} | "
                    f"{pixels} | {' | '.join(metres)} | "
                    f"{m.get('n_no_front', '?')}/{m.get('n_scenes', '?')} | "
                    f"{m.get('zone_iou', float('nan')):.3f} |")
    return "\n".join(rows) + "\n"


def spacing_table(record: WeightsRecord) -> str:
    """The measurement behind "Holds on": MDE (m) and dates without a front per spacing."""
    rows = ["| cube spacing (m) | run on | MDE m | no front |", "| ---: | --- | ---: | ---: |"]
    for m in record.spacing_check:
        rows.append(f"| {m['spacing']:g} | {m['resolution']} | {m['mde_m']:.0f} | "
                    f"{m['n_no_front']}/{m['n_scenes']} |")
    return "\n".join(rows) + "\n"


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
        f"- **Sensors** (training scenes): {_counts(record.sensors)}",
        f"- **Glaciers** (training scenes): {_counts(record.scenes)}",
        f"- **Pixel spacing**: {spacing_text(record)}",
        f"- **Holds on**: {_range_text(record)}",
        f"- **Bands**: {', '.join(record.bands)}",
        f"- **Fronts**: `fronts()` reads them with method={record.front_method!r} by default",
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
    table = metrics_table(record)
    scores = ["## Held-out scores", "", table] if table else []
    if record.spacing_check:
        scores += ["## Spacing check", "", spacing_table(record)]
    return "\n".join([f"# {name}", "", record.description, "", *_facts(record), "", *scores,
                      body, ""])


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
