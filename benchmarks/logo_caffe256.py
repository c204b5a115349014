"""Leave-one-glacier-out comparison of training recipes on the caffe256 CaFFe scenes.

Each recipe is trained on three glaciers for the same number of epochs (the budget; the width-16
row gets fewer epochs for about the same compute), with no early stopping: every epoch's weights
are kept, and the held-out glacier scores the weights of the epochs asked for (``--at``) and the
mean of the last epochs' weights (``--swa``), so that the folds, and only they, choose the
recipe and the number of epochs. Every candidate is scored on the fourth glacier with one
evaluator: every scene goes through :func:`xcalving.predict` (the user's path), fronts come
from the zones (CaFFe's post-processing) for recipes that train zones and from the front
probability for the front-only GlacierDL recipe, and MDE (pixels of the 256 × 256 grid, pooled
over scenes), the no-front count and the mean zone IoU are computed with :mod:`xcalving.metrics`.

    python benchmarks/logo_caffe256.py train --data ../shared/data/caffe256 --runs runs/logo20 \
        --folds Jorum SI --recipes shipped glacierdl shipped-heavy --epochs 20
    python benchmarks/logo_caffe256.py train --runs runs/logo20 --folds Jorum SI \
        --recipes shipped-w16 --epochs 8
    python benchmarks/logo_caffe256.py score --runs runs/logo20 --at 8 12 16 20 --swa 14 20
    python benchmarks/logo_caffe256.py choose --runs runs/logo20      # prints RECIPE EPOCHS
    python benchmarks/logo_caffe256.py final --runs runs/final20 --recipes RECIPE --epochs N
    python benchmarks/logo_caffe256.py train --runs runs/clean20 --folds DBE JAC \
        --recipes RECIPE --epochs N                 # glaciers that chose nothing: clean scores

Runs resume from their checkpoints when interrupted; a finished run is not trained again.

**Physical scale** (``--spacing 75``): every scene is un-squashed to square 75 m pixels
(:func:`xcalving.data.caffe.load_scene` with ``spacing``) for training and scoring, and the
table reports the MDE in pixels and metres, both halves (predicted→label, label→predicted),
the per-scene median, the no-front count and the zone IoU. The run folder is then
``--runs runs/logo75``; the screening of this round::

    python benchmarks/logo_caffe256.py train --spacing 75 --runs runs/logo75 \
        --recipes glacierdl shipped-heavy front-dist --epochs 5 --folds DBE JAC   # and Jorum SI
    python benchmarks/logo_caffe256.py score --spacing 75 --runs runs/logo75

The choice rule, fixed before any score: among the recipes that leave at most 10 % of the
held-out scenes without a front on every fold, the lowest mean over the four folds of the
pooled MDE in metres wins (:func:`choose`); GlacierDL's recipe and the shipped recipe are
rows under the same budget.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xcalving.scaling import ROBUST_SCALING

GLACIERS = ("DBE", "JAC", "Jorum", "SI")
#: robust per-scene scaling, as TrainConfig takes it
ROBUST = ROBUST_SCALING.to_dict()

#: The recipes compared: TrainConfig fields, and how a front is read from the model.
RECIPES: dict[str, dict[str, Any]] = {
    # the recipe of the caffe256 weights shipped before this comparison
    "shipped": {"config": {"width": 8, "lr": 5e-4, "zone_weight": 1.0, "front_weight": 1.0,
                           "augment": True}, "method": "zones"},
    # GlacierDL: front head only, Dice on fronts thickened by 10 px, Adam 1e-4 (at width 8 like
    # every row, so that the same number of epochs is the same compute)
    "glacierdl": {"config": {"width": 8, "lr": 1e-4, "zone_weight": 0.0, "front_weight": 1.0,
                             "augment": True}, "method": "probability"},
    # the recipe of the caffe256 weights shipped at 75 m: GlacierDL's with the physical
    # augmentation (multilook or blur half the time, zoom, gamma)
    "glacierdl-physical": {"config": {"width": 8, "lr": 1e-4, "zone_weight": 0.0,
                                      "front_weight": 1.0, "augment": "physical"},
                           "method": "probability"},
    # GlacierDL's recipe with a second seed: the baseline re-run in the fifth round, and a
    # measure of one run's noise beside the first seed's row
    "glacierdl-s1": {"config": {"width": 8, "lr": 1e-4, "zone_weight": 0.0, "front_weight": 1.0,
                                "augment": True, "seed": 1}, "method": "probability"},
    # GlacierDL's recipe with augmentation aimed at the failures on never-seen glaciers: zoom
    # 0.5-2x, another scene mixed into the ocean (p 0.3), multilook or blur half the time, no
    # gamma, and every training glacier drawn equally often
    "glacierdl-aimed": {"config": {"width": 8, "lr": 1e-4, "zone_weight": 0.0,
                                   "front_weight": 1.0, "augment": "aimed", "balance": True},
                        "method": "probability"},
    # GlacierDL's recipe with robust per-scene scaling (each scene stretched from its 1st to
    # its 99th percentile; each patch in training), two seeds: the sixth round
    "glacierdl-robust": {"config": {"width": 8, "lr": 1e-4, "zone_weight": 0.0,
                                    "front_weight": 1.0, "augment": True,
                                    "scaling": ROBUST}, "method": "probability"},
    "glacierdl-robust-s1": {"config": {"width": 8, "lr": 1e-4, "zone_weight": 0.0,
                                       "front_weight": 1.0, "augment": True, "seed": 1,
                                       "scaling": ROBUST}, "method": "probability"},
    # GlacierDL's recipe with a third seed: the baseline re-run in the sixth round
    "glacierdl-s2": {"config": {"width": 8, "lr": 1e-4, "zone_weight": 0.0, "front_weight": 1.0,
                                "augment": True, "seed": 2}, "method": "probability"},
    # temporal context: the shipped recipe, each scene fed with the median and spread of its
    # six nearest other dates (xcalving.model.context)
    "temporal": {"config": {"width": 8, "lr": 1e-4, "zone_weight": 0.0, "front_weight": 1.0,
                            "augment": "physical", "context": True}, "method": "probability"},
    # temporal context with the zones as an auxiliary task (and a gate at inference)
    "temporal-mt": {"config": {"width": 8, "lr": 1e-4, "zone_weight": 1.0, "front_weight": 1.0,
                               "augment": "physical", "context": True}, "method": "gated"},
    # the shipped recipe with the heavier augmentation (zoom, gamma on top of flips, turns,
    # speckle, contrast): a candidate for generalising to glaciers never seen
    "shipped-heavy": {"config": {"width": 8, "lr": 5e-4, "zone_weight": 1.0, "front_weight": 1.0,
                                 "augment": "heavy"}, "method": "zones"},
    # the shipped recipe at twice the width (about 3x the compute of an epoch at width 8)
    "shipped-w16": {"config": {"width": 16, "lr": 5e-4, "zone_weight": 1.0, "front_weight": 1.0,
                               "augment": True}, "method": "zones"},
    # Tyrion-like: zones only, 0.5 CE (label smoothing 0.1) + 0.5 Dice, front = zone boundary,
    # heavier augmentation (zoom, gamma on top of flips, turns, speckle, contrast)
    "tyrion": {"config": {"width": 8, "lr": 5e-4, "zone_weight": 1.0, "front_weight": 0.0,
                          "zone_loss": "ce+dice", "label_smoothing": 0.1, "augment": "heavy"},
               "method": "zones"},
    # front head first: zones as an auxiliary task, a narrow 3-px band, cosine decay, and a
    # distance-aware front loss (Dice + class-balanced BCE + a penalty on probability far from
    # the front); the front is read from the front probability
    "front-dist": {"config": {"width": 8, "lr": 5e-4, "zone_weight": 0.5, "front_weight": 1.0,
                              "front_dilation": 3, "augment": "heavy", "schedule": "cosine",
                              "front_loss": "dice+bce+distance"}, "method": "probability"},
    # the same with both heads trained (front head kept for confidence), zones scored
    "tyrion+front": {"config": {"width": 8, "lr": 5e-4, "zone_weight": 1.0, "front_weight": 0.5,
                                "zone_loss": "ce+dice", "label_smoothing": 0.1,
                                "augment": "heavy"}, "method": "zones"},
}


def patch_store(data: Path, runs: Path, spacing: float | None = None) -> Path:
    """The caffe256 scenes as a Zarr patch store, made once.

    As stored (one 256-px patch a scene), or un-squashed to square pixels of ``spacing`` m.
    """
    from xcalving.data.caffe import caffe_to_zarr

    if spacing is None:
        store = runs / "caffe256.zarr"
        if not store.exists():
            caffe_to_zarr(data, store, window=256, pixel_spacing=None, progress=False)
        return store
    # with the temporal context of every patch: one store serves every recipe
    store = runs / f"caffe256-{spacing:g}m-context.zarr"
    if not store.exists():
        caffe_to_zarr(data, store, window=256, pixel_spacing="caffe256", spacing=spacing,
                      progress=False, context=True)
    return store


def recipe_config(recipe: str, augment: str | None = None) -> dict[str, Any]:
    """A recipe's TrainConfig fields, with ``augment`` replaced where given."""
    config = dict(RECIPES[recipe]["config"])
    if augment is not None:
        config["augment"] = {"none": False, "standard": True}.get(augment, augment)
    return config


def train_fold(store: Path, runs: Path, recipe: str, held_out: str, epochs: int,
               max_minutes: float | None = None, augment: str | None = None) -> Path:
    """Train ``recipe`` on the glaciers other than ``held_out``; return the run folder."""
    from xcalving.train import TrainConfig, train

    out = runs / f"{recipe}-{held_out}"
    if trained_epochs(out) >= epochs:
        return out
    # every epoch's weights are kept, so that the folds can choose the number of epochs
    config = TrainConfig(store=str(store), out=str(out),
                         train_glaciers=[g for g in GLACIERS if g != held_out],
                         val_glaciers=[held_out], epochs=epochs, patience=10_000,
                         keep_last=epochs, max_minutes=max_minutes,
                         **recipe_config(recipe, augment))
    train(config, resume=(out / "checkpoints").exists(),
          on_epoch=lambda row: print(f"  {out.name} epoch {row['epoch']}: loss "
                                     f"{row['loss']:.4f}", flush=True))
    return out


def last_weights(run: Path) -> Path:
    """The last epoch's weights of a run (never the 'best' one, which saw the held-out glacier)."""
    return next(iter(epoch_weights(run).values()))


def averaged_weights(run: Path, first: int, last: int) -> Path:
    """The mean of a run's epoch weights ``first``..``last`` (stochastic weight averaging).

    Written once as ``run/swa_FIRST-LAST.safetensors``; the BatchNorm statistics of the mean
    weights are then recomputed on the run's training glaciers (:func:`recompute_batchnorm`).
    """
    import torch

    from xcalving.model import load_model, read_metadata, save_model

    out = run / f"swa_{first:03d}-{last:03d}.safetensors"
    if out.exists():
        return out
    kept = epoch_weights(run, list(range(first, last + 1)))
    if len(kept) != last - first + 1:
        raise FileNotFoundError(f"{run}: epochs {first}-{last} are not all kept")
    nets = [load_model(p) for p in kept.values()]
    mean = {k: (torch.stack([n.state_dict()[k].double() for n in nets]).mean(0)
                .to(v.dtype)) for k, v in nets[0].state_dict().items()}
    nets[0].load_state_dict(mean)
    recompute_batchnorm(nets[0], json.loads((run / "summary.json").read_text())["config"])
    meta = read_metadata(next(iter(kept.values())))
    meta = {k: v for k, v in meta.items() if not k.startswith("xcalving.")}
    save_model(nets[0], out, metadata=meta, scaling=nets[0].xcalving_scaling)
    return out


def recompute_batchnorm(net: Any, config: dict[str, Any], batches: int = 40) -> None:
    """Re-estimate ``net``'s BatchNorm statistics on ``batches`` unaugmented training batches.

    Averaged weights need it (Izmailov et al. 2018): the mean of several networks' running
    statistics is not the statistics of the mean network. ``config`` is the run's TrainConfig
    as a dict (its summary.json).
    """
    import torch

    from xcalving.data.stream import PatchStream
    from xcalving.scaling import Scaling

    stream = PatchStream(config["store"], glaciers=config["train_glaciers"], augment=False,
                         scaling=Scaling.from_dict(config["scaling"]),
                         context=bool(config.get("context", False)))
    loader = torch.utils.data.DataLoader(stream, batch_size=config["batch_size"])
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative mean over every batch seen
    net.train()
    with torch.no_grad():
        for step, batch in enumerate(loader):
            if step >= batches:
                break
            net(batch["image"])
    net.eval()


def trained_epochs(run: Path) -> int:
    """How many epochs a run has finished (0 when it has not started)."""
    summary = run / "summary.json"
    return json.loads(summary.read_text())["epochs"] if summary.exists() else 0


def epoch_weights(run: Path, at: list[int] | None = None) -> dict[int, Path]:
    """Epoch → weights of a run: the epochs in ``at`` that were kept, else the last one.

    Never the 'best' weights, which the held-out glacier chose.
    """
    kept = {int(p.stem.split("_")[1]): p
            for p in (run / "checkpoints").glob("epoch_*.safetensors")}
    if at is None:
        return {max(kept): kept[max(kept)]}
    return {e: kept[e] for e in at if e in kept}


def held_out_scenes(data: Path, glacier: str, spacing: float | None = None) -> xr.Dataset:
    """All scenes of one glacier as a (time, y, x) Dataset with sar, zones and front.

    With ``spacing``, at square pixels of that many metres, with coordinates in metres.
    """
    from xcalving.data.caffe import load_scene, open_caffe, time_series

    if spacing is not None:  # dated: weights with temporal context order the scenes by date
        catalog = open_caffe(data, pixel_spacing="caffe256")
        return time_series(catalog, glacier=glacier, spacing=spacing)
    catalog = open_caffe(data, pixel_spacing=None)
    rows = catalog[catalog["glacier"] == glacier].sort_values("stem")
    scenes = [load_scene(row) for _, row in rows.iterrows()]
    cube = xr.concat([s.drop_attrs() for s in scenes], dim="time")
    return cube.assign_coords(time=np.arange(len(scenes)),
                              stem=("time", rows["stem"].to_numpy(dtype=object)))


def front_halves(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Pooled MDE (px), its two halves, the per-scene median and the no-front count.

    ``pred`` and ``true`` are (scene, y, x) front rasters; scenes without a predicted front are
    counted, not scored (CaFFe's rule).
    """
    from xcalving.metrics import front_distance_halves

    to_label, to_pred, per_scene, no_front = [], [], [], 0
    for p, t in zip(pred.astype(bool), true.astype(bool), strict=True):
        if not t.any():
            continue
        if not p.any():
            no_front += 1
            continue
        a, b = front_distance_halves(p, t)
        to_label.append(a)
        to_pred.append(b)
        per_scene.append(float(np.concatenate([a, b]).mean()))
    if not per_scene:
        return {"mde_px": float("nan"), "pred_to_label_px": float("nan"),
                "label_to_pred_px": float("nan"), "median_px": float("nan"),
                "n_no_front": no_front}
    both = np.concatenate(to_label + to_pred)
    return {"mde_px": float(both.mean()),
            "pred_to_label_px": float(np.concatenate(to_label).mean()),
            "label_to_pred_px": float(np.concatenate(to_pred).mean()),
            "median_px": float(np.median(per_scene)), "n_no_front": no_front}


def _fronts(pred: xr.Dataset, method: str, min_pixels: float) -> np.ndarray:
    """Front rasters (scene, y, x) of a prediction read by one front method."""
    from xcalving.vector.tracing import front_from_head, front_from_probability
    from xcalving.zones import front_from_zones

    if method == "zones":
        return np.stack([front_from_zones(z, min_pixels) for z in pred.zones.values])
    if method == "gated":
        return np.stack([front_from_head(p, 0.5, min_pixels, zones=z) for p, z in
                         zip(pred.front_probability.values, pred.zones.values, strict=True)])
    return np.stack([front_from_probability(p, 0.5, min_pixels)
                     for p in pred.front_probability.values])


def evaluate(weights: Path | str | list[Path], scenes: xr.Dataset, method: str | list[str],
             spacing: float | None = None) -> dict[str, Any]:
    """MDE (px and m, pooled, both halves, per-scene median), no-front count and zone IoU.

    Fronts come from the whole scene (no region: the user's default path); pieces of at most
    750 m (10 px without a spacing) are dropped. With several methods, a dict method → row.
    A list of weights is an ensemble: their probabilities are averaged before extraction.
    """
    from xcalving.metrics import zone_iou

    members = weights if isinstance(weights, list) else [weights]
    pred = _mean_prediction([_predict(w, scenes, spacing) for w in members])
    min_pixels = 10 if spacing is None else 750 / spacing
    iou = float(zone_iou(pred.zones.values, scenes.zones.values).mean)
    rows = {}
    for name in [method] if isinstance(method, str) else method:
        row: dict[str, Any] = dict(front_halves(_fronts(pred, name, min_pixels),
                                                scenes.front.values))
        if spacing is not None:
            for key in ("mde", "pred_to_label", "label_to_pred", "median"):
                row[f"{key}_m"] = row[f"{key}_px"] * spacing
        rows[name] = {**row, "n_scenes": int(scenes.sizes["time"]), "zone_iou": iou}
    return rows[method] if isinstance(method, str) else rows


def _predict(weights: Path | str, scenes: xr.Dataset, spacing: float | None) -> xr.Dataset:
    import xcalving

    return xcalving.predict(scenes.sar, model=str(weights), tile=256,
                            overlap=0 if spacing is None else 64, scaling="uint8",
                            outputs="all").compute()


def _mean_prediction(preds: list[xr.Dataset]) -> xr.Dataset:
    """An ensemble's prediction: mean front and zone probabilities, zones their arg-max."""
    if len(preds) == 1:
        return preds[0]
    front = sum(p.front_probability for p in preds) / len(preds)
    zone = sum(p.zone_probability for p in preds) / len(preds)
    zones = zone.fillna(0).argmax("zone").where(front.notnull(), 0).astype(np.uint8)
    return xr.Dataset({"front_probability": front, "zones": zones, "zone_probability": zone})


def score_ensemble(data: Path, runs: Path, members: list[str], spacing: float | None,
                   folds: list[str], method: str = "probability") -> list[dict[str, Any]]:
    """Score, on each fold, the mean prediction of the members' fold models (last epochs).

    Every member of a fold never saw its held-out glacier, so the ensemble did not either; it
    costs ``len(members)`` predictions. Rows go to ensemble-MEMBERS-FOLDS.json.
    """
    rows = []
    for held_out in folds:
        scenes = held_out_scenes(data, held_out, spacing)
        weights = [last_weights(runs / f"{m}-{held_out}") for m in members]
        row = {"recipe": "ensemble(" + "+".join(members) + ")", "held_out": held_out,
               "epochs": trained_epochs(runs / f"{members[0]}-{held_out}"), "method": method,
               "train_minutes": float("nan"), "inference_cost": len(members),
               **evaluate(weights, scenes, method, spacing)}
        rows.append(row)
        print(row, flush=True)
    name = f"ensemble-{'+'.join(members)}-{'-'.join(folds)}.json"
    (runs / name).write_text(json.dumps(rows, indent=2))
    return rows


def score(data: Path, runs: Path, at: list[int] | None = None,
          swa: tuple[int, int] | None = None, spacing: float | None = None,
          methods: list[str] | None = None, folds: list[str] | None = None,
          recipes: list[str] | None = None) -> list[dict[str, Any]]:
    """Score every run on its held-out glacier (at the epochs ``at``, else the last epoch).

    ``recipes`` (where given) limits the runs scored to theirs; the table's name then says so.

    With ``swa=(first, last)``, the mean of the epoch weights first..last is scored too, as the
    recipe ``NAME+swa``. Writes table.json and table.md; with ``folds`` (a subset, scored in
    a process of its own beside another), table-FOLDS.json, which :func:`read_tables` merges.
    """
    rows = []
    for run in sorted(p for p in runs.iterdir() if (p / "summary.json").exists()
                      and not p.name.startswith("final-")):
        recipe, held_out = run.name.rsplit("-", 1)
        if (folds is not None and held_out not in folds) or \
                (recipes is not None and recipe not in recipes):
            continue
        summary = json.loads((run / "summary.json").read_text())
        minutes_per_epoch = summary["train_seconds"] / 60 / summary["epochs"]
        scenes = held_out_scenes(data, held_out, spacing)
        candidates = [(recipe, epoch, weights) for epoch, weights in epoch_weights(run, at).items()]
        if swa is not None and trained_epochs(run) >= swa[1]:
            candidates.append((f"{recipe}+swa", swa[1], averaged_weights(run, *swa)))
        own = RECIPES[recipe]["method"]
        for label, epoch, weights in candidates:
            results = evaluate(weights, scenes, sorted({own, *(methods or [])}), spacing)
            for method, result in results.items():
                row = {"recipe": label if method == own else f"{label}/{method}",
                       "held_out": held_out, "epochs": epoch, "method": method,
                       "train_minutes": round(minutes_per_epoch * epoch, 1), **result}
                rows.append(row)
                print(row, flush=True)
    name = "table" if folds is None or set(folds) == set(GLACIERS) else \
        "table-" + "-".join(sorted(folds))
    name += "" if recipes is None else "-" + "+".join(recipes)
    (runs / f"{name}.json").write_text(json.dumps(rows, indent=2))
    (runs / f"{name}.md").write_text(markdown_table(rows))
    return rows


def read_tables(runs: Path, ensembles: bool = False) -> list[dict[str, Any]]:
    """The rows of every table*.json of ``runs`` (folds scored apart), each row once.

    With ``ensembles``, the rows of ensemble-*.json too (where the round's rule named them).
    """
    rows: dict[tuple[str, str, int], dict[str, Any]] = {}
    paths = [*runs.glob("table*.json"), *(runs.glob("ensemble-*.json") if ensembles else [])]
    for path in sorted(paths):
        for row in json.loads(path.read_text()):
            rows[(row["recipe"], row["held_out"], row["epochs"])] = row
    return list(rows.values())


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Recipe × held-out glacier → MDE (px, m), both halves, median, no front, IoU, as Markdown."""
    metres = all("mde_m" in r for r in rows)
    unit = "m" if metres else "px"
    lines = [f"| recipe | held-out glacier | MDE px | MDE {unit} | pred→label {unit} | "
             f"label→pred {unit} | median {unit} | no front | zone IoU | epochs | minutes |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(
            f"| {r['recipe']} | {r['held_out']} | {r['mde_px']:.1f} | "
            f"{r.get(f'mde_{unit}', r['mde_px']):.0f} | "
            f"{r.get(f'pred_to_label_{unit}', float('nan')):.0f} | "
            f"{r.get(f'label_to_pred_{unit}', float('nan')):.0f} | "
            f"{r.get(f'median_{unit}', float('nan')):.0f} | {r['n_no_front']}/{r['n_scenes']} | "
            f"{r['zone_iou']:.3f} | {r['epochs']} | {r['train_minutes']} |")
    means: dict[tuple[str, int], list[float]] = {}
    for r in rows:
        means.setdefault((r["recipe"], r["epochs"]), []).append(r.get(f"mde_{unit}", r["mde_px"]))
    lines += ["", f"| recipe | epochs | mean LOGO MDE ({unit}) | folds |",
              "| --- | ---: | ---: | ---: |"]
    lines += [f"| {k} | {e} | {np.mean(v):.1f} | {len(v)} |" for (k, e), v in means.items()]
    return "\n".join(lines) + "\n"


def seed_rule(rows: list[dict[str, Any]], candidate: list[str], baseline: list[str],
              ensembles: tuple[str, str]) -> dict[str, Any]:
    """The sixth round's rule: a recipe against the baseline by its seeds, never one run.

    ``candidate`` and ``baseline`` are the row labels of each recipe's seeds, ``ensembles`` the
    labels of (candidate, baseline) seed ensembles. The candidate wins if every one of its seeds
    leaves at most :data:`MAX_NO_FRONT` of held-out scenes without a front on every fold, the
    mean of its seeds' four-fold mean MDE (m) is below the baseline seeds', and its seed
    ensemble's four-fold mean is below the baseline ensemble's.
    """
    def fold_mean(label: str) -> float:
        picked = [r for r in rows if r["recipe"] == label]
        if sorted(r["held_out"] for r in picked) != sorted(GLACIERS):
            raise SystemExit(f"{label} is not scored on all four folds")
        return float(np.mean([r.get("mde_m", r["mde_px"]) for r in picked]))

    means = {label: fold_mean(label) for label in (*candidate, *baseline, *ensembles)}
    eligible = all(r["n_no_front"] <= MAX_NO_FRONT * r["n_scenes"]
                   for r in rows if r["recipe"] in candidate)
    seeds = (float(np.mean([means[c] for c in candidate])),
             float(np.mean([means[b] for b in baseline])))
    wins = eligible and seeds[0] < seeds[1] and means[ensembles[0]] < means[ensembles[1]]
    return {"means": means, "eligible": eligible, "seed_means": seeds, "candidate_wins": wins}


def train_final(store: Path, runs: Path, recipe: str, epochs: int,
                max_minutes: float | None = None, augment: str | None = None) -> Path:
    """Train ``recipe`` on all four glaciers for ``epochs`` (chosen by the folds), no stopping.

    Jorum is the validation stream only because training needs one: it is a training glacier
    here, its numbers are a training-set monitor, and the last epoch's weights are kept.
    """
    from xcalving.train import TrainConfig, train

    out = runs / f"final-{recipe}"
    config = TrainConfig(store=str(store), out=str(out), train_glaciers=list(GLACIERS),
                         val_glaciers=["Jorum"], epochs=epochs, patience=10_000,
                         keep_last=epochs, max_minutes=max_minutes,
                         **recipe_config(recipe, augment))
    train(config, resume=(out / "checkpoints").exists())
    return out


#: A recipe that leaves more than this share of held-out scenes without a front is not chosen:
#: the MDE leaves those scenes out, so predicting nothing would otherwise pay.
MAX_NO_FRONT = 0.10


def choose(rows: list[dict[str, Any]]) -> tuple[str, int]:
    """The (recipe, epochs) with the lowest mean held-out MDE (metres where known) over the folds.

    A recipe is a row label: ``RECIPE`` read its own way, or ``RECIPE/METHOD`` read another way.

    Only pairs scored on every fold and with at most :data:`MAX_NO_FRONT` of the held-out
    scenes without a front on each fold are eligible.
    """
    folds = {r["held_out"] for r in rows}
    eligible: dict[tuple[str, int], list[float]] = {}
    for key in {(r["recipe"], r["epochs"]) for r in rows}:
        mine = [r for r in rows if (r["recipe"], r["epochs"]) == key]
        if {r["held_out"] for r in mine} == folds and all(
                r["n_no_front"] <= MAX_NO_FRONT * r["n_scenes"] for r in mine):
            eligible[key] = [r.get("mde_m", r["mde_px"]) for r in mine]
    return min(eligible, key=lambda k: float(np.mean(eligible[k])))


def main() -> None:
    """Train the folds, or score them."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action",
                        choices=["train", "score", "final", "choose", "ensemble", "seeds"])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/caffe256"))
    parser.add_argument("--runs", type=Path, default=Path("runs/logo"))
    parser.add_argument("--folds", nargs="+", default=list(GLACIERS), choices=GLACIERS)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--spacing", type=float, default=None,
                        help="un-squash every scene to square pixels of this many metres")
    parser.add_argument("--methods", nargs="+", default=None,
                        choices=["zones", "probability", "gated"],
                        help="score: also read every model's fronts these ways")
    parser.add_argument("--augment", default=None,
                        choices=["none", "standard", "heavy", "physical", "aimed"],
                        help="train/final: replace the recipe's augmentation")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="train: a time budget per fold-run on top of the epochs")
    parser.add_argument("--epochs", type=int, default=5,
                        help="the budget: the same number of epochs for every recipe and fold")
    parser.add_argument("--at", type=int, nargs="+", default=None,
                        help="score: the epochs whose kept weights are scored (default: the last)")
    parser.add_argument("--swa", type=int, nargs=2, default=None, metavar=("FIRST", "LAST"),
                        help="score: also the mean of the epoch weights FIRST..LAST")
    parser.add_argument("--candidate", nargs="+", default=["glacierdl-robust",
                                                           "glacierdl-robust-s1"],
                        help="seeds: the candidate's seed rows")
    parser.add_argument("--baseline", nargs="+", default=["glacierdl", "glacierdl-s1",
                                                          "glacierdl-s2"],
                        help="seeds: the baseline's seed rows (its ensemble: the first two)")
    parser.add_argument("--ensembles", action="store_true",
                        help="choose: ensemble rows (action ensemble) are candidates too")
    args = parser.parse_args()
    args.runs.mkdir(parents=True, exist_ok=True)
    if args.action == "score":
        score(args.data, args.runs, args.at, args.swa, args.spacing, args.methods,
              args.folds if args.folds != list(GLACIERS) else None,
              args.recipes if args.recipes != list(RECIPES) else None)
        return
    if args.action == "ensemble":  # the mean prediction of the --recipes' fold models
        score_ensemble(args.data, args.runs, args.recipes, args.spacing, args.folds)
        return
    if args.action == "seeds":  # the sixth round's rule: --candidate SEEDS against --baseline
        rows = read_tables(args.runs, ensembles=True)
        (args.runs / "all.md").write_text(markdown_table(rows))
        print(json.dumps(seed_rule(rows, args.candidate, args.baseline,
                                   (f"ensemble({'+'.join(args.candidate)})",
                                    f"ensemble({'+'.join(args.baseline[:2])})")), indent=1))
        return
    if args.action == "choose":  # print the recipe the rule picks from the scored folds
        rows = read_tables(args.runs, args.ensembles)
        (args.runs / "all.md").write_text(markdown_table(rows))
        recipe, epochs = choose(rows)
        print(recipe, epochs)
        return
    store = patch_store(args.data, args.runs, args.spacing)
    if args.action == "final":
        for recipe in args.recipes:
            train_final(store, args.runs, recipe, args.epochs, args.max_minutes, args.augment)
        return
    for held_out in args.folds:
        for recipe in args.recipes:
            start = time.perf_counter()
            train_fold(store, args.runs, recipe, held_out, args.epochs, args.max_minutes,
                       args.augment)
            print(f"{recipe} without {held_out}: {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
