"""Scores on the labelled scenes, the card facts a fine-tuned weights file carries, its card.

The scores are computed on the very scenes the weights were fitted on. They show that the
adaptation took (the network now reproduces the labels it was given), not how well it does on
the rest of the time series: the card says so next to every number. An honest estimate needs
scenes that chose nothing; ``benchmarks/finetune_caffe256.py`` measures that on CaFFe.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

import xcalving
from xcalving.adapt.prepare import LabelledScene
from xcalving.adapt.sources import UNKNOWN
from xcalving.errors import DamagedFileError, InputError
from xcalving.metrics import mean_distance_error, zone_iou
from xcalving.model.checkpoint import read_metadata
from xcalving.vector.tracing import front_from_probability
from xcalving.zones import front_from_zones

__all__ = ["SCORE_NOTE", "finetune_card", "read_facts", "score_scenes"]

#: What the before/after scores are, written next to them wherever they appear.
SCORE_NOTE = ("training-scene scores: measured on the labelled scenes the weights were fitted "
              "on, so they show the adaptation took, not how well it generalises (not held-out)")
#: Header key of the facts in a fine-tuned weights file.
FACTS_KEY = "finetune"


def _tile(shape: tuple[int, ...], stride: int) -> tuple[int, int]:
    side = max(shape)
    if side <= 512:
        return max(stride, -(-side // stride) * stride), 0
    return 512, 128


def _predictions(net: Any, scenes: list[LabelledScene], device: str
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Front probability and zones of ``net`` on each scene, through :func:`xcalving.predict`.

    Dated scenes of one shape go in together as one (time, y, x) series, so that weights with
    temporal context see each scene's neighbours as predict would give them; the others one
    at a time.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, scene in enumerate(scenes):
        key = scene.grey.shape if scene.date else (-i,)
        groups.setdefault(key, []).append(i)
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for members in groups.values():
        pred = _predict_series(net, [scenes[i] for i in members], device)
        for slot, i in enumerate(members):
            out[i] = (pred["front_probability"].values[slot], pred["zones"].values[slot])
    return [out[i] for i in range(len(scenes))]


def _predict_series(net: Any, scenes: list[LabelledScene], device: str) -> Any:
    rows, cols = scenes[0].grey.shape
    dates = pd.to_datetime([s.date for s in scenes]) if scenes[0].date else [0]
    da = xr.DataArray(np.stack([s.grey for s in scenes]), dims=("time", "y", "x"),
                      coords={"time": dates, "y": np.arange(rows, dtype=float),
                              "x": np.arange(cols, dtype=float)})
    tile, overlap = _tile(scenes[0].grey.shape, int(getattr(net, "stride", 16)))
    return xcalving.predict(da, net, tile=tile, overlap=overlap, scaling="uint8",
                            device=device).compute()


def _clean(value: float) -> float | None:
    return None if not math.isfinite(value) else round(float(value), 3)


def score_scenes(net: Any, scenes: list[LabelledScene], *, device: str = "cpu",
                 min_length_px: float = 10.0) -> dict[str, Any]:
    """MDE (front from zones and from probability, pooled) and zone IoU on labelled pixels."""
    from_zones, from_prob, truth, zones_pred, zones_true = [], [], [], [], []
    for scene, (probability, zones) in zip(scenes, _predictions(net, scenes, device),
                                           strict=True):
        from_zones.append(front_from_zones(zones, min_length_px))
        from_prob.append(front_from_probability(probability, 0.5, min_length_px))
        truth.append(scene.front.astype(bool))
        known = scene.zones != UNKNOWN
        zones_pred.append(zones[known])
        zones_true.append(scene.zones[known])
    out: dict[str, Any] = {"scenes": len(scenes)}
    for key, fronts in (("zones", from_zones), ("probability", from_prob)):
        mde = mean_distance_error(_pad_stack(fronts), _pad_stack(truth))
        out[f"mde_{key}_px"] = _clean(mde.mde)
        out[f"no_front_{key}"] = int(mde.n_no_front)
        spacing = scenes[0].spacing
        if spacing is not None:
            out[f"mde_{key}_m"] = _clean(mde.mde * spacing)
    pred, true = np.concatenate(zones_pred), np.concatenate(zones_true)
    out["zone_iou"] = _clean(zone_iou(pred[None, None], true[None, None]).mean) if true.size \
        else None
    return out


def _pad_stack(arrays: list[np.ndarray]) -> np.ndarray:
    """Scenes of different shapes as one (scene, y, x) stack, padded with background."""
    rows = max(a.shape[0] for a in arrays)
    cols = max(a.shape[1] for a in arrays)
    out = np.zeros((len(arrays), rows, cols), bool)
    for k, a in enumerate(arrays):
        out[k, :a.shape[0], :a.shape[1]] = a
    return out


# --- the card ------------------------------------------------------------------------------------
def read_facts(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The fine-tuning facts recorded in a weights file."""
    meta = read_metadata(path)
    if FACTS_KEY not in meta:
        raise InputError(f"{os.fspath(path)!r} is not a fine-tuned weights file (no "
                         f"{FACTS_KEY!r} entry in its header); write one with "
                         "xcalving.adapt.")
    try:
        facts: dict[str, Any] = json.loads(meta[FACTS_KEY])
    except ValueError as err:
        raise DamagedFileError(f"{os.fspath(path)!r}: the fine-tuning card in its header is "
                               f"damaged ({err}); fine-tune again or use a good copy of the "
                               "file.") from err
    return facts


def _score_rows(scores: dict[str, Any]) -> list[str]:
    before, after = scores.get("before") or {}, scores.get("after") or {}
    rows = ["| score (training scenes) | base | adapted |", "| --- | ---: | ---: |"]
    names = {"mde_zones_px": "MDE, front from zones (px)", "mde_zones_m": "… in metres",
             "no_front_zones": "scenes without a front (zones)",
             "mde_probability_px": "MDE, front from probability (px)",
             "mde_probability_m": "… in metres",
             "no_front_probability": "scenes without a front (probability)",
             "zone_iou": "mean zone IoU, labelled pixels"}
    for key, label in names.items():
        if key in before or key in after:
            rows.append(f"| {label} | {_fmt(before.get(key))} | {_fmt(after.get(key))} |")
    return rows


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def render_card(name: str, facts: dict[str, Any]) -> str:
    """The Markdown card of a fine-tuned weights file from its facts."""
    base, recipe, run = facts["base"], facts["recipe"], facts["training"]
    scenes = "\n".join(f"  - `{s['name']}` ({s['date'] or 'no date'}, {s['shape'][0]} × "
                       f"{s['shape'][1]} px, {s['labels']})" for s in facts["scenes"])
    spacing = facts.get("pixel_spacing")
    lines = [
        f"# {name}", "",
        f"Fine-tuned from `{base['name']}` on {len(facts['scenes'])} labelled scenes.", "",
        f"- **Base**: `{base['name']}`, sha256 `{base['sha256']}`",
        f"- **Scenes seen** ({facts['labels']}):", scenes,
        f"- **Pixel spacing**: {f'{spacing:g} m' if spacing else 'unknown'} (the base's "
        "where it records one); **input scaling**: the base's",
        f"- **Recipe**: trains {recipe['trainable']} ({_frozen(recipe)}), Adam lr "
        f"{recipe['lr']:g} ({recipe['schedule']}), batch {recipe['batch_size']}, "
        f"{recipe['window']}-px windows, {recipe['augment']} augmentation, loss "
        f"{recipe['front_weight']:g} × front Dice + {recipe['zone_weight']:g} × zone "
        f"{recipe['zone_loss']}; weights kept: {recipe['kept']}",
        *_replay_line(facts.get("replay") or [], recipe),
        f"- **Run**: {run['steps']} steps in {run['seconds'] / 60:.1f} min on {run['device']}; "
        f"{run['stopped']}; final running training loss {_fmt(run['final_loss'])}",
    ]
    lines += [f"- **Note**: {note}" for note in facts.get("notes", [])]
    scores = facts.get("scores", {})
    if scores.get("skipped"):
        lines += ["", f"Scores not computed: {scores['skipped']}."]
    else:
        lines += ["", f"Scores — {SCORE_NOTE}:", "", *_score_rows(scores)]
    return "\n".join(lines) + "\n"


def _replay_line(replay: list[dict[str, Any]], recipe: dict[str, Any]) -> list[str]:
    if not replay:
        return []
    names = ", ".join(f"`{r['name']}`" for r in replay[:6]) + (", ..." if len(replay) > 6 else "")
    return [f"- **Replay**: {recipe.get('replay_share', 0):.0%} of the windows from "
            f"{len(replay)} labelled scenes replayed to keep what the base knew ({names})"]


def _frozen(recipe: dict[str, Any]) -> str:
    frozen = {"decoder": "encoder and ASPP bottleneck frozen", "all": "no layer frozen",
              "heads": "all but the heads frozen"}[recipe["trainable"]]
    batchnorm = recipe.get("batchnorm", "frozen")
    frozen += "; BatchNorm: " + {"frozen": "the base's statistics, frozen",
                                 "adapt": "statistics re-estimated on the labelled scenes"}.get(
        batchnorm, str(batchnorm))
    if recipe.get("front_only"):
        frozen += "; zone head frozen, zones held to the base's"
    return frozen


def finetune_card(path: str | os.PathLike[str]) -> str:
    """The Markdown card of a fine-tuned weights file: base, scenes, recipe, scores.

    Examples
    --------
    >>> from xcalving.model.registry import REGISTRY
    >>> finetune_card(REGISTRY["demo"].path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    xcalving.errors.InputError: '...demo.safetensors' is not a fine-tuned weights file ...
    """
    return render_card(os.path.basename(os.fspath(path)), read_facts(path))
