"""Few-shot adaptation, measured honestly: zero-shot vs fine-tuned on a glacier never seen.

For each CaFFe glacier with a leave-one-glacier-out model that never saw it (the runs of
``benchmarks/logo_caffe256.py``: ``RUNS/<recipe>-<Glacier>``, the last epoch's weights), five
scenes of that glacier are picked by a fixed rule (:func:`pick_scenes`: spread over sensors in
proportion to their scenes, evenly over dates within each sensor), the model is fine-tuned on
them with :func:`xcalving.finetune` (its defaults, the time budget given here), and
both the zero-shot and the adapted weights are scored on the glacier's OTHER scenes — scenes
that chose nothing — with the LOGO benchmark's own evaluator (:func:`logo_caffe256.evaluate`:
MDE in pixels of the 256 × 256 grid, pooled over scenes; fronts from the zones for zone
recipes, from the probability for the front-only one; no-front counts reported apart).

    python benchmarks/finetune_caffe256.py --data ../shared/data/caffe256 --runs runs/logo12 \\
        --recipe shipped --max-minutes 10
    python benchmarks/finetune_caffe256.py --glaciers Jorum --max-minutes 1   # a smoke test

Writes ``OUT/<recipe>-<Glacier>.safetensors``, ``OUT/table.json`` and ``OUT/table.md``.

Fine-tuning recipes (``--lr``, ``--trainable``, ``--max-steps``) are compared without letting a
glacier's score choose its own recipe: run each candidate into its own OUT, then

    python benchmarks/finetune_caffe256.py --choose runs/ft/lr1e-4 runs/ft/lr5e-4

reports each glacier under the candidate the other glaciers chose (:func:`nested_choice`) and
writes ``nested.json`` and ``nested.md`` beside the candidates.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

try:  # run as a module of the benchmarks package, or as a script from anywhere
    from benchmarks.logo_caffe256 import GLACIERS, RECIPES, evaluate, held_out_scenes, last_weights
except ImportError:  # pragma: no cover - the script's own folder is on sys.path instead
    from logo_caffe256 import (  # type: ignore[no-redef]
        GLACIERS,
        RECIPES,
        evaluate,
        held_out_scenes,
        last_weights,
    )


def pick_scenes(rows: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """``n`` scenes of one glacier spread over sensors and dates, by a fixed rule.

    Slots go to sensors by D'Hondt's rule on their scene counts (the largest sensor first, each
    sensor at most its scenes; ties by name), so the picks follow the glacier's sensor mix;
    within a sensor the picks are evenly spaced in date order. The same catalog always gives
    the same picks.

    >>> rows = pd.DataFrame({"stem": list("abcdefgh"), "satellite": ["ERS"] * 2 + ["TSX"] * 6,
    ...                      "date": pd.date_range("2000", periods=8, freq="YS")})
    >>> pick_scenes(rows, 4)["stem"].tolist()
    ['a', 'c', 'e', 'h']
    """
    rows = rows.sort_values(["date", "stem"], kind="stable")
    if len(rows) <= n:
        return rows
    counts = rows["satellite"].value_counts().to_dict()
    order = sorted(counts, key=lambda s: (-counts[s], s))
    slots = dict.fromkeys(order, 0)
    for _ in range(n):
        open_ = [s for s in order if slots[s] < counts[s]]
        best = max(open_, key=lambda s: (counts[s] / (slots[s] + 1), -order.index(s)))
        slots[best] += 1
    picks = []
    for sensor, k in slots.items():
        if k:
            group = rows[rows["satellite"] == sensor]
            index = np.unique(np.round(np.linspace(0, len(group) - 1, k)).astype(int))
            picks.append(group.iloc[index])
    return pd.concat(picks).sort_values(["date", "stem"], kind="stable")


def replay_picks(catalog: pd.DataFrame, glacier: str, per_glacier: int) -> pd.DataFrame | None:
    """``per_glacier`` scenes of each glacier but ``glacier`` (the base's own), by
    :func:`pick_scenes`; None when ``per_glacier`` is 0."""
    if not per_glacier:
        return None
    return pd.concat([pick_scenes(catalog[catalog["glacier"] == other], per_glacier)
                      for other in GLACIERS if other != glacier])


def adapt_fold(data: Path, runs: Path, out: Path, recipe: str, glacier: str, *, n_scenes: int,
               max_minutes: float, options: dict[str, Any],
               spacing: float | None = None, labels: str = "zones+front") -> dict[str, Any]:
    """Fine-tune one fold's model on ``n_scenes`` of its held-out glacier; score both.

    With ``spacing`` the scenes are read at the copy's per-glacier spacing (fine-tuning
    resamples them to the base's) and scored at square pixels of ``spacing`` m, in metres.
    ``labels="front"`` gives fine-tuning the front lines alone, as a user's line layer drawn
    in QGIS gives them (the labelled front rasterised on the scene grid, no zones): the
    picked scenes as a georeferenced, dated cube at ``spacing`` with ``sar`` and ``front``.
    """
    from xcalving.adapt import finetune
    from xcalving.data.caffe import open_caffe

    base = last_weights(runs / f"{recipe}-{glacier}")
    catalog = open_caffe(data, pixel_spacing=None if spacing is None else "caffe256")
    picked = pick_scenes(catalog[catalog["glacier"] == glacier], n_scenes)
    # the caller's options serve every fold: this fold's replay goes into a copy
    fold = {k: v for k, v in options.items() if k != "replay_per_glacier"}
    fold["replay"] = replay_picks(catalog, glacier, options.get("replay_per_glacier", 0))
    scenes = held_out_scenes(data, glacier, spacing)
    shots: Any = picked
    if labels == "front":
        chosen = np.isin(scenes["stem"].values, picked["stem"].to_numpy())
        shots = scenes[["sar", "front"]].isel(time=chosen).load()
    started = time.perf_counter()
    result = finetune(base, shots, out=out / f"{recipe}-{glacier}.safetensors",
                      max_minutes=max_minutes, score=False, overwrite=True, **fold)
    minutes = (time.perf_counter() - started) / 60
    others = scenes.isel(time=~np.isin(scenes["stem"].values, picked["stem"].to_numpy()))
    method = RECIPES[recipe]["method"]
    zero = evaluate(base, others, method, spacing)
    adapted = evaluate(result.path, others, method, spacing)
    return {"glacier": glacier, "recipe": recipe, "base": str(base),
            "labelled": picked["stem"].tolist(), "scored": int(others.sizes["time"]),
            "zero_shot": zero, "adapted": adapted, "minutes": round(minutes, 2),
            "steps": result.facts["training"]["steps"], "stopped": result.facts["training"]
            ["stopped"], "ratio": adapted["mde_px"] / zero["mde_px"], "spacing": spacing,
            "labels": labels}


def _mde(score: dict[str, Any]) -> str:
    """An MDE cell: pixels, and metres where the scenes had a spacing."""
    metres = f" ({score['mde_m']:.0f} m)" if "mde_m" in score else ""
    return f"{score['mde_px']:.1f}{metres}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Glacier → zero-shot and adapted MDE (px) on the other scenes, ratio, no-front counts."""
    lines = ["| glacier | recipe | scored scenes | zero-shot MDE (px) | adapted MDE (px) | ratio | "
             "no front zero-shot | no front adapted | zone IoU zero-shot → adapted | steps | "
             "minutes |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |"]
    for r in rows:
        z, a = r["zero_shot"], r["adapted"]
        lines.append(f"| {r['glacier']} | {r['recipe']} | {r['scored']} | {_mde(z)} | "
                     f"{_mde(a)} | {r['ratio']:.2f} | {z['n_no_front']} | "
                     f"{a['n_no_front']} | {z['zone_iou']:.3f} → {a['zone_iou']:.3f} | "
                     f"{r['steps']} | {r['minutes']:.1f} |")
    if rows:
        ratios = [r["ratio"] for r in rows]
        lines += ["", f"Mean ratio adapted / zero-shot: {np.mean(ratios):.2f} over {len(rows)} "
                  "glaciers (MDE on each glacier's scenes that were not labelled; "
                  f"{len(rows[0]['labelled'])} labelled scenes each)."]
    return "\n".join(lines) + "\n"


def nested_choice(tables: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each glacier's score under the candidate recipe the OTHER glaciers chose.

    ``tables`` maps a candidate's label to its rows (one per glacier, as :func:`adapt_fold`
    returns). For each glacier, the candidate with the lowest mean ratio (adapted / zero-shot
    MDE) on the other glaciers is chosen, and the glacier's own row under it is reported: no
    glacier's number chose anything that scored it. The last row, ``glacier="all"``, names the
    candidate all glaciers together choose (the one to make the default).

    >>> row = lambda g, r: {"glacier": g, "ratio": r}
    >>> out = nested_choice({"a": [row("X", 0.2), row("Y", 0.9), row("Z", 0.5)],
    ...                      "b": [row("X", 0.6), row("Y", 0.4), row("Z", 0.8)]})
    >>> [(r["glacier"], r["chosen"], r["ratio"]) for r in out]
    [('X', 'b', 0.6), ('Y', 'a', 0.9), ('Z', 'b', 0.8), ('all', 'a', None)]
    """
    by = {label: {r["glacier"]: r for r in rows} for label, rows in tables.items()}
    glaciers = [g for g in next(iter(by.values())) if all(g in rows for rows in by.values())]

    def mean_ratio(label: str, among: list[str]) -> float:
        return float(np.mean([by[label][g]["ratio"] for g in among]))

    out = []
    for glacier in glaciers:
        others = [g for g in glaciers if g != glacier]
        chosen = min(by, key=lambda label: (mean_ratio(label, others), label))
        out.append({**by[chosen][glacier], "chosen": chosen,
                    "chosen_by": {label: round(mean_ratio(label, others), 3) for label in by}})
    overall = min(by, key=lambda label: (mean_ratio(label, glaciers), label))
    out.append({"glacier": "all", "chosen": overall, "ratio": None,
                "chosen_by": {label: round(mean_ratio(label, glaciers), 3) for label in by}})
    return out


def nested_table(rows: list[dict[str, Any]]) -> str:
    """:func:`nested_choice`'s rows as Markdown."""
    labels = list(rows[-1]["chosen_by"])
    lines = ["| glacier | chosen by the other glaciers | " + " | ".join(
                 f"mean ratio of {label} on them" for label in labels) +
             " | zero-shot MDE (px) | adapted MDE (px) | ratio | no front zero-shot / adapted |",
             "| --- | --- | " + "---: | " * len(labels) + "---: | ---: | ---: | --- |"]
    for r in rows[:-1]:
        z, a = r["zero_shot"], r["adapted"]
        lines.append(f"| {r['glacier']} | {r['chosen']} | " + " | ".join(
            f"{r['chosen_by'][label]:.2f}" for label in labels) +
            f" | {z['mde_px']:.1f} | {a['mde_px']:.1f} | {r['ratio']:.2f} | "
            f"{z['n_no_front']} / {a['n_no_front']} |")
    overall = rows[-1]
    means = ", ".join(f"{label} {value:.2f}" for label, value in overall["chosen_by"].items())
    lines += ["", f"All glaciers together choose **{overall['chosen']}** (mean ratios: {means})."]
    return "\n".join(lines) + "\n"


def choose(candidates: list[Path]) -> None:
    """Print and write (next to the first candidate) the nested choice among candidate runs."""
    tables = {path.name: json.loads((path / "table.json").read_text()) for path in candidates}
    rows = nested_choice(tables)
    (candidates[0].parent / "nested.json").write_text(json.dumps(rows, indent=2))
    (candidates[0].parent / "nested.md").write_text(nested_table(rows))
    print(nested_table(rows))


def main() -> None:
    """Adapt and score every fold that has a run."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/caffe256"))
    parser.add_argument("--runs", type=Path, default=Path("runs/logo12"))
    parser.add_argument("--recipe", default="shipped", choices=list(RECIPES))
    parser.add_argument("--glaciers", nargs="+", default=list(GLACIERS), choices=GLACIERS)
    parser.add_argument("--out", type=Path, default=Path("runs/finetune"))
    parser.add_argument("--n-scenes", type=int, default=5)
    parser.add_argument("--max-minutes", type=float, default=10.0)
    parser.add_argument("--max-steps", type=int, default=None,
                        help="also stop after this many steps (a machine-independent budget)")
    parser.add_argument("--trainable", default="all", help="all, decoder or heads")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batchnorm", default="frozen", help="frozen or adapt")
    parser.add_argument("--replay-per-glacier", type=int, default=0,
                        help="replay this many scenes of each of the base's glaciers")
    parser.add_argument("--replay-share", type=float, default=0.25)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--spacing", type=float, default=None,
                        help="score at square pixels of this many metres (the copy un-squashed)")
    parser.add_argument("--labels", default="zones+front", choices=["zones+front", "front"],
                        help="front: the front lines alone (a QGIS line layer's case), as a "
                             "dated cube at --spacing (needs --spacing)")
    parser.add_argument("--choose", type=Path, nargs="+", metavar="OUT",
                        help="only compare earlier runs' OUT folders by nested leave-one-out")
    args = parser.parse_args()
    if args.choose:
        choose(args.choose)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    options = {"trainable": args.trainable, "batchnorm": args.batchnorm, "lr": args.lr,
               "device": args.device, "replay_per_glacier": args.replay_per_glacier,
               "replay_share": args.replay_share,
               "max_steps": args.max_steps}
    rows = []
    for glacier in args.glaciers:
        run = args.runs / f"{args.recipe}-{glacier}"
        if not any((run / "checkpoints").glob("epoch_*.safetensors")):
            print(f"{glacier}: no run at {run}, skipped", flush=True)
            continue
        rows.append(adapt_fold(args.data, args.runs, args.out, args.recipe, glacier,
                               n_scenes=args.n_scenes, max_minutes=args.max_minutes,
                               options=options, spacing=args.spacing, labels=args.labels))
        print(json.dumps(rows[-1]), flush=True)
        (args.out / "table.json").write_text(json.dumps(rows, indent=2))
        (args.out / "table.md").write_text(markdown_table(rows))
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
