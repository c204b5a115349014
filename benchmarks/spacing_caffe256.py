"""Where real weights hold: a held-out glacier on grids of other spacings (a report, not asv).

The held-out glacier's scenes are un-squashed to square pixels at 75 m (their own scale in the
caffe256 copy); coarser grids are block means of that amplitude over valid pixels (what a
coarser sensor or multilooking gives: integer multiples of 75 m), finer grids interpolate the
copy (a proxy: no new detail, as a finer cube of coarse data would be). Each is predicted on its
own grid (``resolution=None``) and with ``resolution="model"``, fronts with ``fronts()``'s
defaults, scored in metres against the labelled fronts at 75 m as lines (the vector MDE, lines
sampled every pixel of the prediction's grid), so every grid is scored against the same lines.
The range where the weights hold: every spacing
whose own-grid MDE is at most :data:`TOLERANCE` × the MDE at the weights' own spacing, with at
most 10 % of dates without a front; ``resolution="model"`` helps where it beats the own grid
outside that range. The registry records both (``spacing_range``, ``resolution_model``).

    python benchmarks/spacing_caffe256.py --weights caffe256-nodbe --glacier DBE \
        --data ../shared/data/caffe256 [--spacings 37.5 50 75 150]
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import Any

#: A spacing "holds" where its MDE is at most this many times the MDE at the weights' spacing.
TOLERANCE = 1.25
#: ... and at most this share of dates has no front.
MAX_NO_FRONT = 0.10


#: The copy's own scale: the grid the labels are traced on and coarser grids are made from.
BASE = 75.0


def sar_at(data: Path, glacier: str, spacing: float) -> Any:
    """The glacier's SAR scenes on square pixels of ``spacing`` m (see the module)."""
    from xcalving.data.caffe import open_caffe, time_series

    catalog = open_caffe(data, pixel_spacing="caffe256")
    if spacing <= BASE:
        return time_series(catalog, glacier=glacier, spacing=spacing).sar
    k = round(spacing / BASE)
    if abs(k * BASE - spacing) > 1e-6:
        raise SystemExit(f"coarser spacings must be multiples of {BASE:g} m; got {spacing:g}")
    sar = time_series(catalog, glacier=glacier, spacing=BASE).sar
    valid = (sar > 0).astype("float32")
    total = (sar.astype("float32") * valid).coarsen(y=k, x=k, boundary="trim").sum()
    count = valid.coarsen(y=k, x=k, boundary="trim").sum()
    return (total / count.where(count > 0)).fillna(0).round().clip(0, 255).astype("uint8")


def labelled(data: Path, glacier: str) -> Any:
    """The labelled fronts of the glacier as lines, traced on the 75 m grid."""
    from xcalving.data.caffe import open_caffe, time_series
    from xcalving.vector.api import label_fronts

    catalog = open_caffe(data, pixel_spacing="caffe256")
    return label_fronts(time_series(catalog, glacier=glacier, spacing=BASE).front)


def score(weights: str, sar: Any, labels: Any, resolution: str | None) -> dict[str, float]:
    """Pooled MDE (m) of the default fronts against the labelled ones, and the no-front count."""
    import xcalving
    from xcalving.grid import pixel_spacing
    from xcalving.metrics import mean_distance_error

    spacing = pixel_spacing(sar)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = xcalving.predict(sar, model=weights, tile=256, overlap=64, scaling="uint8",
                                resolution=resolution)
        frame = xcalving.fronts(pred)
    result = mean_distance_error(frame, labels, resolution=spacing)
    return {"spacing": spacing, "resolution": resolution or "own grid", "mde_m": result.mde,
            "mde_px": result.mde / spacing, "n_no_front": result.n_no_front,
            "n_scenes": int(sar.sizes["time"])}


def _holds(row: dict[str, Any], base: float) -> bool:
    """Within :data:`TOLERANCE` of the weights' own MDE, with few dates without a front."""
    return bool(row["mde_m"] <= TOLERANCE * base
                and row["n_no_front"] <= MAX_NO_FRONT * row["n_scenes"])


def holds(rows: list[dict[str, Any]], trained: float) -> tuple[list[float] | None, str]:
    """(spacing range where the own grid holds, whether resolution='model' helps outside it).

    ``resolution="model"`` "helps" where it holds (by the same rule) at every measured spacing
    outside the range, "hurts" where it fails at one of them.
    """
    own = {r["spacing"]: r for r in rows if r["resolution"] == "own grid"}
    model = {r["spacing"]: r for r in rows if r["resolution"] == "model"}
    base = own[trained]["mde_m"]
    good = sorted(s for s, r in own.items() if _holds(r, base))
    span = [good[0], good[-1]] if good else None
    outside = [s for s in own if s in model and (span is None or not span[0] <= s <= span[1])]
    if not outside:
        return span, "unmeasured"
    return span, "helps" if all(_holds(model[s], base) for s in outside) else "hurts"


def reapply(path: Path) -> tuple[list[float] | None, str]:
    """:func:`holds` on the rows of an earlier ``--out`` (the trained spacing: the one row of a
    spacing without a ``resolution="model"`` twin)."""
    rows = json.loads(path.read_text())["rows"]
    modelled = {r["spacing"] for r in rows if r["resolution"] == "model"}
    trained = next(r["spacing"] for r in rows if r["spacing"] not in modelled)
    return holds(rows, trained)


def main() -> None:
    """Print a Markdown table and the record; write it as JSON with --out."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="caffe256-nodbe")
    parser.add_argument("--glacier", default="DBE")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/caffe256"))
    parser.add_argument("--spacings", type=float, nargs="+", default=[37.5, 50, 75, 150])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--rows", type=Path, default=None,
                        help="re-apply the rule to the rows of an earlier --out, measuring nothing")
    args = parser.parse_args()
    if args.rows is not None:
        print(reapply(args.rows))
        return
    from xcalving.model.weights import model_spec

    has_spacing = model_spec(args.weights).pixel_spacing is not None
    trained = model_spec(args.weights).pixel_spacing or BASE
    labels = labelled(args.data, args.glacier)
    rows = []
    print("| spacing (m) | resolution= | MDE (m) | MDE (px) | no front |")
    print("| ---: | --- | ---: | ---: | ---: |")
    for spacing in args.spacings:
        sar = sar_at(args.data, args.glacier, spacing)
        for resolution in (None, "model") if spacing != trained and has_spacing else (None,):
            row = score(args.weights, sar, labels, resolution)
            rows.append(row)
            print(f"| {spacing:g} | {row['resolution']} | {row['mde_m']:.0f} | "
                  f"{row['mde_px']:.1f} | {row['n_no_front']}/{row['n_scenes']} |", flush=True)
    span, advice = holds(rows, trained)
    print(f"spacing_range {span}, resolution_model {advice!r}")
    if args.out is not None:
        args.out.write_text(json.dumps({"rows": rows, "spacing_range": span,
                                        "resolution_model": advice}, indent=2))


if __name__ == "__main__":
    main()
