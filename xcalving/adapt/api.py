"""``finetune``: a few labelled scenes of one glacier turn a base network into weights for it."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import xcalving
from xcalving.adapt.base import Base, base_recipe, load_base, replay_scenes, scene_glaciers
from xcalving.adapt.card import FACTS_KEY, SCORE_NOTE, render_card, score_scenes
from xcalving.adapt.labels import apply_labels
from xcalving.adapt.loop import BATCHNORM, TRAINABLE, LoopResult, Recipe, run_loop
from xcalving.adapt.prepare import (
    LabelledScene,
    Windows,
    add_context,
    prepare_scenes,
    window_size,
)
from xcalving.adapt.sources import read_scenes
from xcalving.errors import (
    InputError,
    InputTypeError,
    TargetExistsError,
    UnsafeTargetError,
    did_you_mean,
)
from xcalving.model.checkpoint import load_model, save_model
from xcalving.model.context import uses_context
from xcalving.runtime import VERSION, resolve_device

__all__ = ["FinetuneResult", "finetune"]


@dataclass(frozen=True)
class FinetuneResult:
    """The weights file written and the facts recorded in it."""

    path: Path
    facts: dict[str, Any]

    @property
    def interrupted(self) -> bool:
        """Whether Ctrl-C ended the run (the last completed step's weights were kept)."""
        return bool(self.facts["training"]["interrupted"])

    def card(self) -> str:
        """The Markdown card of the weights (see :func:`xcalving.adapt.finetune_card`)."""
        return render_card(self.path.name, self.facts)


def _check_options(max_minutes: Any, max_steps: Any, lr: Any, batch_size: Any, window: Any,
                   trainable: Any, batchnorm: Any) -> None:
    if isinstance(max_minutes, bool) or not isinstance(max_minutes, int | float) \
            or not math.isfinite(max_minutes) or max_minutes <= 0:
        raise InputError(f"max_minutes must be a positive number of minutes, e.g. 10; got "
                         f"{max_minutes!r}.")
    for name, value, low in (("max_steps", max_steps, 1), ("batch_size", batch_size, 1),
                             ("window", window, 16)):
        if value is None and name == "max_steps":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"{name} must be a whole number >= {low}; got {value!r}.")
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr < 1:
        raise InputError(f"lr must be a small positive learning rate such as 5e-4; got {lr!r}.")
    for name, value, choices in (("trainable", trainable, TRAINABLE),
                                 ("batchnorm", batchnorm, BATCHNORM)):
        if value not in choices:
            raise InputError(f"{name} must be one of {choices}; got {value!r}."
                             + did_you_mean(str(value), choices))


def _check_out(out: Any, overwrite: bool, base: Base) -> Path:
    if not isinstance(out, str | os.PathLike):
        raise InputTypeError(f"out must be the path of the new .safetensors file; got "
                             f"{type(out).__name__}.")
    path = Path(out)
    if path.suffix != ".safetensors":
        raise InputError(f"out must end in '.safetensors'; got {os.fspath(out)!r}. Use "
                         f"{os.fspath(path.with_suffix('.safetensors'))!r}.")
    refuse_package_target(path)
    if path.exists() and path.resolve() == Path(base.path).resolve():
        raise InputError(f"out is the base's own file {os.fspath(out)!r}; a target is never an "
                         "input. Write the adapted weights to a new file.")
    if path.exists() and not overwrite:
        raise TargetExistsError(f"out: {os.fspath(out)!r} exists; choose a new name, or pass "
                              "overwrite=True (--overwrite) to replace it.")
    return path


def refuse_package_target(path: str | os.PathLike[str], *, what: str = "out") -> None:
    """Refuse a target inside the installed package (links followed), ``overwrite`` or not."""
    package = Path(xcalving.__file__).resolve().parent
    if Path(os.path.realpath(path)).is_relative_to(package):
        raise UnsafeTargetError(
            f"{what}: {os.fspath(path)!r} lies inside the installed xcalving package "
            f"({package}); writing there would change the package itself (its code and shipped "
            "weights), and an upgrade would delete it. Write the adapted weights outside it, "
            "e.g. mine.safetensors in your project folder.")


def _notes(scenes: list[LabelledScene], recipe: Recipe, run: LoopResult) -> list[str]:
    notes = []
    if recipe.front_only and recipe.zone_weight > 0:
        notes.append("labels are front lines only: the front head learnt them; the zone head "
                     "was frozen and the zones held to the base's (not adapted), so read fronts "
                     "from the probability: fronts(method='probability')")
    elif any(s.labels == "partial zones+front" for s in scenes):
        notes.append("zones were labelled in part: the zone loss ran on labelled pixels and "
                     "elsewhere the zones were held to the base's")
    if recipe.zone_weight == 0:
        notes.append("the base's recipe trains no zones: read fronts from the probability")
    if run.interrupted:
        notes.append(f"interrupted by Ctrl-C: the weights of step {run.steps}, the last "
                     "completed, were kept")
    return notes


def _facts(base: Base, scenes: list[LabelledScene], spacing: float | None, recipe: Recipe,
           run: LoopResult, device: str, scores: dict[str, Any]) -> dict[str, Any]:

    kinds = {s.labels for s in scenes}
    return {
        "base": {"name": base.name, "sha256": base.sha256, "scaling": base.scaling.to_dict(),
                 "pixel_spacing": base.spacing},
        "scenes": [s.summary() for s in scenes],
        "labels": kinds.pop() if len(kinds) == 1 else "mixed: " + ", ".join(sorted(kinds)),
        "pixel_spacing": spacing,
        "recipe": recipe.to_dict(),
        "training": {"steps": run.steps,
                     "final_loss": None if not math.isfinite(run.loss) else round(run.loss, 5),
                     "seconds": round(run.seconds, 1), "stopped": run.stopped,
                     "interrupted": run.interrupted, "device": device},
        "scores": scores,
        "notes": _notes(scenes, recipe, run),
        "xcalving_version": VERSION,
    }


def finetune(
    base: str | os.PathLike[str],
    data: Any,
    *,
    out: str | os.PathLike[str],
    labels: Any = None,
    replay: Any = "auto",
    replay_share: float = 0.25,
    max_minutes: float = 10.0,
    max_steps: int | None = 1000,
    device: str = "auto",
    trainable: str = "all",
    batchnorm: str = "frozen",
    lr: float = 5e-4,
    batch_size: int = 8,
    window: int = 256,
    scaling: str = "auto",
    caffe_spacing: str | None = "name",
    date_column: str | None = None,
    class_column: str | None = None,
    score: bool = True,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> FinetuneResult:
    """Adapt ``base`` weights to a glacier from a handful of its labelled scenes.

    The labelled scenes themselves are the training data: random windows of them, heavily
    augmented (and, for ``caffe256``, a quarter of windows replayed from CaFFe scenes it was
    trained on), train ``base`` (its BatchNorm statistics frozen by default) for 1000 steps
    at Adam's 5e-4, annealed to zero over the budget. These defaults were chosen on four CaFFe
    glaciers, each scored under the recipe the other three chose (``docs/finetune.rst``). The
    result is an ordinary weights file for
    :func:`xcalving.predict`, with the base's input scaling and pixel spacing, and card facts in
    its header (:func:`~xcalving.adapt.finetune_card`).

    Parameters
    ----------
    base
        A registered weights name (``"caffe256"``, ``"demo"``) or a ``.safetensors`` path.
    data
        A CaFFe ``data_raw`` folder (any split names; or a filtered :func:`open_caffe` catalog);
        a Zarr cube or ``xarray.Dataset`` with ``sar`` and ``zones`` (``front`` optional) on one
        grid; or GeoTIFF scenes (a path, a glob pattern or a list) with ``labels``.
    out
        The new ``.safetensors`` file.
    labels
        For georeferenced scenes: a GeoPackage/GeoParquet (or GeoDataFrame) of front lines with
        a date column and, optionally, zone polygons with a class column (``no_data``, ``rock``,
        ``glacier``, ``ocean``), rasterised onto each scene's grid in its CRS; or a Dataset of
        ``zones`` (and ``front``) on the cube's grid. Only scenes of a labelled date are used.
        With front lines only the zone head is frozen and the zones are held to the base's.
    replay, replay_share
        Labelled scenes drawn for ``replay_share`` of the training windows, so that the network
        keeps what it knew while it learns the new glacier. ``"auto"`` (default): those a
        registered base names from its own training data (for ``caffe256``, the 21 CaFFe
        scenes of :func:`~xcalving.data.caffe.catalog.shipped_scenes`), else none; ``None``: no
        replay; or labelled scenes of other glaciers in any form ``data`` takes. They are read
        as the base learnt them (a CaFFe tree at the base's pixel spacing where it records one,
        from the file names, else as the files come) and listed in the card.
    max_minutes
        Wall-clock budget of the whole call (reading, scoring and training).
    max_steps
        Optimiser steps (1000: about 9 minutes on two CPU cores); ``None``: as many as the
        time budget allows. The run ends at whichever budget ends first.
    device
        ``"auto"`` (a GPU where there is one), ``"cpu"`` or ``"cuda[:N]"``.
    trainable
        ``"all"`` (default), ``"decoder"`` (the encoder and ASPP bottleneck frozen) or
        ``"heads"``.
    batchnorm
        ``"frozen"`` (default): the base's BatchNorm statistics are kept; ``"adapt"``: they are
        re-estimated from the training batches (the scales and shifts learn either way).
    lr, batch_size, window
        Adam's peak learning rate (cosine-annealed to 0 over ``max_steps`` or the time budget,
        whichever ends first), windows per step and their side in pixels (the scene size where
        smaller).
    scaling
        What the scenes' values are: ``"auto"`` (from dtype and ``units``), ``"db"``,
        ``"linear"`` or ``"uint8"``.
    caffe_spacing
        For CaFFe trees: ``"name"`` (RESOLUTION of the file names, with CaFFe's rounding
        rules: scenes of several sensors get each its own spacing), ``"caffe256"`` (the
        256 × 256 copy: each glacier's x and y spacing, un-squashed on read) or ``None``
        (unknown). Scenes are then resampled to the base's spacing where it states one.
    date_column, class_column
        Columns of ``labels`` holding the date and the zone class (found by name otherwise).
    score
        Score base and result on the labelled scenes (training-scene scores, never held-out).
    seed
        Seeds the windows, the augmentation and torch.
    overwrite
        Replace an existing ``out``.
    progress
        Show a progress bar with the running loss.
    callback
        Called after every step with ``{"step", "loss", "ema_loss", "lr", "seconds"}``.

    Returns
    -------
    FinetuneResult
        ``path`` and the card ``facts``; ``card()`` renders them.

    Notes
    -----
    Ctrl-C stops training and keeps the weights of the last completed step (as the end of the
    budget does). There is no validation set with three to five scenes, and the scenes' own
    loss is not used to pick weights either; see :mod:`xcalving.adapt.loop`.
    """
    started = time.perf_counter()
    _check_options(max_minutes, max_steps, lr, batch_size, window, trainable, batchnorm)
    spec = load_base(base)
    path = _check_out(out, overwrite, spec)
    raw = read_scenes(data, scaling=scaling, caffe_spacing=caffe_spacing,
                      resolution=spec.spacing)
    if labels is not None:
        raw = apply_labels(raw, labels, date_column=date_column, class_column=class_column)
    scenes, spacing = prepare_scenes(raw, target=spec.spacing)
    kept = replay_scenes(replay, replay_share, scaling, spec,
                         adapted=scene_glaciers([s.name for s in raw]))
    dev = resolve_device(device)
    torch.manual_seed(seed)
    net = load_model(spec.path, device=dev)
    recipe = Recipe(trainable=trainable, batchnorm=batchnorm,  # type: ignore[arg-type]
                    lr=float(lr), batch_size=batch_size,
                    window=window_size(scenes, window, net.stride),
                    front_only=all(s.labels == "front" for s in scenes),
                    replay_share=replay_share if kept else 0.0, **base_recipe(spec.meta))
    scoring = time.perf_counter()
    before = score_scenes(net, scenes, device=dev) if score else None
    reserve = time.perf_counter() - scoring + 1.0  # to score the result the same way, and save
    needs_base = recipe.zone_weight > 0 and any(s.labels != "zones+front" for s in scenes + kept)
    frozen_base = load_model(spec.path, device=dev).requires_grad_(False) if needs_base else None
    context = uses_context(net.get_config())
    if context:  # the user's scenes are one series; replayed CaFFe scenes, one per glacier
        add_context(scenes, series=lambda s: "")
        add_context(kept, series=lambda s: s.name.split("_")[0])
    windows = Windows(scenes, recipe.window, spec.scaling, front_dilation=recipe.front_dilation,
                      seed=seed, replay=kept, replay_share=recipe.replay_share, context=context)
    run = run_loop(net, frozen_base, windows, recipe, device=torch.device(dev),
                   deadline=started + 60 * max_minutes - reserve, max_steps=max_steps,
                   minutes=max_minutes, callback=callback, progress=progress)
    if run.steps == 0:
        raise KeyboardInterrupt  # interrupted before a single step: nothing to keep
    net.load_state_dict(run.state)
    scores = _scores(before, net, scenes, dev, run) if score else {"skipped": "score=False"}
    facts = _facts(spec, scenes, spacing, recipe, run, dev, scores)
    facts["replay"] = [r.summary() for r in kept]
    _save(net, path, spec, facts, spacing)
    return FinetuneResult(path, facts)


def _scores(before: dict[str, Any] | None, net: Any, scenes: list[LabelledScene], device: str,
            run: LoopResult) -> dict[str, Any]:
    if run.interrupted:
        return {"note": SCORE_NOTE, "before": before, "after": None}
    try:
        after = score_scenes(net, scenes, device=device)
    except KeyboardInterrupt:  # the trained weights are saved all the same
        return {"note": SCORE_NOTE, "before": before, "after": None,
                "interrupted": "Ctrl-C while scoring the result"}
    return {"note": SCORE_NOTE, "before": before, "after": after}


def _save(net: Any, path: Path, base: Base, facts: dict[str, Any],
          spacing: float | None) -> None:
    names = ", ".join(s["name"] for s in facts["scenes"][:5])
    metadata = {
        FACTS_KEY: json.dumps(facts),
        "description": f"{base.name} fine-tuned on {len(facts['scenes'])} labelled scenes "
                       f"({names}{', ...' if len(facts['scenes']) > 5 else ''})",
        "data": f"{len(facts['scenes'])} labelled scenes ({facts['labels']}); base: {base.name}",
    }
    for key in ("licence", "citation"):
        if base.meta.get(key):
            metadata[key] = base.meta[key]
    save_model(net, path, metadata=metadata, scaling=base.scaling, pixel_spacing=spacing)
