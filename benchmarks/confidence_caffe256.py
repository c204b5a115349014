"""Does ``confidence`` rank the fronts of a never-seen glacier, and do the QC flags mark bad ones?

For every finished leave-one-glacier-out run (``runs/logo/<recipe>-<Glacier>``,
``runs/logo12/...``: a run is finished when its ``summary.json`` exists), the held-out glacier's
scenes are predicted as ``benchmarks/logo_caffe256.py`` does (the last epoch's weights,
``tile=256, overlap=0, scaling="uint8"``, here with ``outputs="all"`` for the zone
probabilities) and vectorised by :func:`xcalving.fronts` (``min_length_px=10``: the scenes have
no CRS, so everything is in pixels of the 256 × 256 grid). A front's error is its scene's MDE
against the label front, from the same raster front that :func:`xcalving.fronts` traces.

Confidence is **cross-fitted**: the fronts of a run held out on glacier A are scored by a model
fit (:func:`xcalving.vector.confidence.fit_calibration`) on the runs held out on the other glaciers,
never on A. The selective-prediction curve gives the pooled MDE (CaFFe pooling: all distances of
all kept scenes, one mean) of the x % most confident fronts ÷ that of all fronts; the oracle row
ranks by the true error (the best any confidence could do) and ``mean_probability`` is the
previous baseline. The QC rows compare the mean per-front error of flagged and unflagged fronts.
Finally the model is fit on all runs and printed as the constants of
:data:`xcalving.vector.confidence.CALIBRATION`.

    python benchmarks/confidence_caffe256.py --data ../shared/data/caffe256 \\
        --runs runs/logo runs/logo12 --cache /tmp/confidence \\
        --png docs/images/confidence_caffe256.png
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from logo_caffe256 import (  # noqa: E402
    MAX_NO_FRONT,
    RECIPES,
    epoch_weights,
    held_out_scenes,
    last_weights,
)

#: The shares of most confident fronts the curve is read at.
SHARES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: The goal: the 80 % most confident fronts at most this × the MDE of all fronts.
GOAL = 0.75


def finished_runs(roots: list[Path]) -> list[Path]:
    """Runs with a summary.json, in a fixed order."""
    return sorted((run for root in roots if root.exists() for run in root.iterdir()
                   if (run / "summary.json").exists() and not run.name.startswith("final-")),
                  key=lambda p: (p.parent.name, p.name))


def front_errors(fronts: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per scene: the sum and the number of CaFFe's front distances (NaN/0 without a front)."""
    from scipy import ndimage

    sums, counts = np.full(len(fronts), np.nan), np.zeros(len(fronts), int)
    for k, (pred, true) in enumerate(zip(fronts, labels, strict=True)):
        if pred.any() and true.any():
            d = np.concatenate([ndimage.distance_transform_edt(~true)[pred],
                                ndimage.distance_transform_edt(~pred)[true]])
            sums[k], counts[k] = d.sum(), d.size
    return sums, counts


def run_weights(run: Path, epoch: int | None) -> Path:
    """The run's weights of ``epoch`` where it kept them, else its last epoch's."""
    kept = epoch_weights(run, [epoch]) if epoch else {}
    return kept[epoch] if epoch in kept else last_weights(run)


def run_table(run: Path, data: Path, cache: Path | None, epoch: int | None = None,
              spacing: float | None = None, tta: bool = False,
              members: tuple[str, ...] = (), signal_only: bool = False) -> pd.DataFrame:
    """One row per held-out scene: the front's signals, confidence columns and error.

    With ``spacing`` the scenes are un-squashed to square pixels of ``spacing`` m (a dated,
    georeferenced cube, as ``logo_caffe256.py --spacing`` scores them): ``fronts()`` then runs
    with its defaults in metres (pieces of at most 750 m dropped); errors stay in pixels.
    With ``tta`` every scene is also predicted flipped (``predict(..., tta=True)``); with
    ``members`` the run's weights form an ensemble with the last weights of these recipes'
    runs held out on the same glacier (beside it, in the same folder). Either way the fronts
    are traced from the members' mean, and ``member_distance_px`` is measured; with
    ``signal_only`` the fronts are the run's own weights' (what a user of those weights gets)
    and the members only give the signal.
    """
    import xcalving
    from xcalving.inference.members import MEMBER_VARIABLE
    from xcalving.vector.tracing import front_from_probability
    from xcalving.zones import front_from_zones

    weights = run_weights(run, epoch)
    recipe, held_out = run.name.rsplit("-", 1)
    variant = ("+tta" if tta else "") + "".join(f"+{m}" for m in members) + \
        ("-signal" if signal_only and (tta or members) else "")
    stored = cache / f"{run.parent.name}-{run.name}{variant}-{weights.stem}.parquet" \
        if cache else None
    if stored is not None and stored.exists():
        return pd.read_parquet(stored)
    method = RECIPES[recipe]["method"]
    model: Any = [str(weights), *(str(last_weights(run.parent / f"{m}-{held_out}"))
                                  for m in members)] if members else str(weights)
    scenes = held_out_scenes(data, held_out, spacing)
    options: dict[str, Any] = {"tile": 256, "overlap": 0 if spacing is None else 64,
                               "scaling": "uint8", "outputs": "all"}
    pred = xcalving.predict(scenes.sar, model=model, tta=tta, **options)
    if signal_only and (tta or members):  # fronts of the run's own weights, members' signal
        pred = xcalving.predict(scenes.sar, model=str(weights), **options).assign(
            {MEMBER_VARIABLE: pred[MEMBER_VARIABLE]})
    pred = pred.compute()
    min_px = 10 if spacing is None else 750 / spacing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no CRS: pixel coordinates, as intended
        frame = xcalving.fronts(pred, method=method, region=False, min_length_px=10) \
            if spacing is None else xcalving.fronts(pred, method=method, region=False)
    rasters = np.stack([front_from_zones(z, min_px) for z in pred.zones.values]) \
        if method == "zones" else \
        np.stack([front_from_probability(p, 0.5, min_px) for p in pred.front_probability.values])
    sums, counts = front_errors(rasters, scenes.front.values.astype(bool))
    table = pd.DataFrame(frame.drop(columns="geometry"))
    table = table.assign(run=f"{run.parent.name}/{run.name}{variant}", recipe=recipe,
                         held_out=held_out,
                         method=method, error_sum=sums, error_count=counts,
                         error=sums / np.maximum(counts, 1))
    table.loc[counts == 0, "error"] = np.nan
    if stored is not None:
        stored.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(stored)
    return table


def pooled(rows: pd.DataFrame) -> float:
    return float(rows["error_sum"].sum() / rows["error_count"].sum())


def curve(rows: pd.DataFrame, score: np.ndarray, shares: tuple[float, ...] = SHARES) -> list[float]:
    """Pooled MDE of the most trusted share of fronts ÷ the pooled MDE of all (scored) fronts."""
    scored = rows["error_count"].to_numpy() > 0
    rows, score = rows[scored], np.asarray(score, float)[scored]
    order = np.argsort(-score, kind="stable")
    whole = pooled(rows)
    return [pooled(rows.iloc[order[:max(1, int(round(s * len(rows))))]]) / whole
            for s in shares]


def cross_fitted(table: pd.DataFrame) -> tuple[pd.Series, list[str]]:
    """Each front's confidence from a model fit on the runs held out on the other glaciers,
    and a line per model saying what it kept."""
    from xcalving.vector.confidence import fit_calibration

    out, models = pd.Series(np.nan, index=table.index), []
    for (held_out, method), rows in table.groupby(["held_out", "method"]):
        others = table[(table["held_out"] != held_out) & (table["method"] == method)]
        if others["error"].notna().sum() < 20:
            continue
        model = fit_calibration(others, others["error"], groups=others["run"],
                                source=f"not {held_out}")
        out[rows.index] = model.score(rows)
        weights = ", ".join(f"{k} {v:+.2f}" for k, v in model.weights.items()) or "none"
        models.append(f"- {method}, scoring {held_out}: fit on {len(others)} fronts of "
                      f"{others['run'].nunique()} runs held out elsewhere; signals kept "
                      f"(weights): {weights}")
    empty = ~np.isfinite(table["longest_share"].to_numpy(float))
    out[empty] = 0.0
    return out, models


def qc_row(rows: pd.DataFrame) -> dict[str, Any]:
    scored = rows[rows["error_count"] > 0]
    flagged, kept = scored[scored["outlier"]], scored[~scored["outlier"]]
    reasons = pd.Series([r for v in flagged["qc_reason"] for r in v.split(",") if r])
    return {"flagged": len(flagged), "scored": len(scored),
            "mean error flagged": flagged["error"].mean(), "mean error kept": kept["error"].mean(),
            "ratio": flagged["error"].mean() / kept["error"].mean() if len(flagged) else np.nan,
            "pooled MDE kept / all": pooled(kept) / pooled(scored) if len(kept) else np.nan,
            "reasons": ", ".join(f"{k} {v}" for k, v in reasons.value_counts().items())}


def markdown(table: pd.DataFrame) -> str:
    lines = ["### Selective prediction: pooled MDE of the x % most confident fronts ÷ all fronts",
             "", "| run (held-out glacier) | fronts | MDE all (px) | ranking | " +
             " | ".join(f"{int(s * 100)} %" for s in SHARES[:-1]) + " | goal ≤ 0.75 at 80 % |",
             "| --- | ---: | ---: | --- |" + " ---: |" * (len(SHARES) - 1) + " :---: |"]
    # pooled over runs, and over the runs logo_caffe256.choose would rank (at most MAX_NO_FRONT
    # of the scenes without a front: the MDE leaves those scenes out)
    eligible = table.groupby("run")["error_count"].transform(
        lambda c: (c == 0).mean() <= MAX_NO_FRONT)
    groups = [(name, rows) for name, rows in table.groupby("run", sort=False)] + \
        [(f"all runs, {g}", rows) for g, rows in table.groupby("held_out")] + \
        [(f"runs with ≤ {MAX_NO_FRONT:.0%} no-front scenes, {g}", rows)
         for g, rows in table[eligible].groupby("held_out")]
    for name, rows in groups:
        scored = rows[rows["error_count"] > 0]
        for label, score in (("confidence", rows["cv_confidence"]),
                             ("mean_probability", rows["mean_probability"].fillna(-1)),
                             ("oracle (true error)", -rows["error"].fillna(np.inf))):
            values = curve(rows, score.to_numpy(float))
            met = "yes" if values[SHARES.index(0.8)] <= GOAL else "no"
            lines.append(f"| {name} | {len(scored)} | {pooled(scored):.1f} | {label} | " +
                         " | ".join(f"{v:.3f}" for v in values[:-1]) +
                         f" | {met if label == 'confidence' else ''} |")
    lines += ["", "### QC flags: mean per-front error of flagged and unflagged fronts", "",
              "| run | flagged / scored | mean error flagged (px) | mean error kept (px) | "
              "ratio (goal ≥ 1.5) | pooled MDE kept ÷ all | reasons |",
              "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name, rows in groups:
        r = qc_row(rows)
        lines.append(f"| {name} | {r['flagged']}/{r['scored']} | {r['mean error flagged']:.1f} | "
                     f"{r['mean error kept']:.1f} | {r['ratio']:.3f} | "
                     f"{r['pooled MDE kept / all']:.3f} | {r['reasons']} |")
    return "\n".join(lines) + "\n"


def constants(table: pd.DataFrame) -> str:
    """The shipped models: fit on every run's held-out fronts, as Python for CALIBRATION."""
    from xcalving.vector.confidence import fit_calibration

    out = []
    for method, rows in table.groupby("method"):
        runs = ", ".join(sorted(rows["run"].unique()))
        m = fit_calibration(rows, rows["error"], groups=rows["run"],
                            source=f"held-out fronts of {runs}")
        out.append(f'    "{method}": Calibration(\n        intercept={m.intercept:.4f},\n'
                   f"        weights={_rounded(m.weights)},\n        means={_rounded(m.means)},\n"
                   f"        scales={_rounded(m.scales)},\n        source={m.source!r}),")
    return "CALIBRATION = {\n" + "\n".join(out) + "\n}\n"


def _rounded(values: dict[str, float]) -> str:
    return "{" + ", ".join(f'"{k}": {v:.4f}' for k, v in values.items()) + "}"


def plot(table: pd.DataFrame, path: Path) -> None:
    from matplotlib.figure import Figure

    shares = np.linspace(0.2, 1.0, 17)
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for k, (name, rows) in enumerate(table.groupby("run", sort=False)):
        colour = f"C{k}"
        ax.plot(shares * 100, curve(rows, rows["cv_confidence"].to_numpy(float), tuple(shares)),
                "-", color=colour, label=name)
        ax.plot(shares * 100, curve(rows, -rows["error"].fillna(np.inf).to_numpy(float),
                                    tuple(shares)), ":", color=colour, lw=1)
    ax.axhline(GOAL, color="grey", lw=0.8, ls="--")
    ax.axvline(80, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("most confident fronts kept [%]")
    ax.set_ylabel("pooled MDE ÷ MDE of all fronts")
    ax.set_title("held-out glaciers: confidence (solid) and the oracle (dotted)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/caffe256"))
    parser.add_argument("--runs", type=Path, nargs="+",
                        default=[Path("runs/logo"), Path("runs/logo12")])
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder for each run's table, so a rerun skips the predictions")
    parser.add_argument("--png", type=Path, default=None, help="write the curves here")
    parser.add_argument("--epoch", type=int, default=None,
                        help="score each run's weights of this epoch where kept (default: last)")
    parser.add_argument("--spacing", type=float, default=None,
                        help="un-squash the scenes to square pixels of this many metres")
    parser.add_argument("--recipes", nargs="+", default=None,
                        help="only the runs of these recipes")
    parser.add_argument("--tta", action="store_true",
                        help="predict every scene flipped too; fronts from the mean of the four")
    parser.add_argument("--members", nargs="+", default=(),
                        help="ensemble each run with these recipes' runs of its held-out glacier")
    parser.add_argument("--signal-only", action="store_true",
                        help="with --tta/--members: fronts of the run's own weights, the members "
                             "only measure member_distance_px")
    args = parser.parse_args()
    runs = [run for run in finished_runs(args.runs)
            if args.recipes is None or run.name.rsplit("-", 1)[0] in args.recipes]
    table = pd.concat([run_table(run, args.data, args.cache, args.epoch, args.spacing, args.tta,
                                 tuple(args.members), args.signal_only) for run in runs],
                      ignore_index=True)
    table["cv_confidence"], models = cross_fitted(table)
    print(markdown(table))
    print("Cross-fitted models:\n" + "\n".join(models) + "\n")
    print(constants(table))
    if args.png:
        plot(table, args.png)


if __name__ == "__main__":
    main()
