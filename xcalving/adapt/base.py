"""The base network fine-tuning starts from, and the labelled scenes it replays.

:func:`load_base` resolves ``base=`` (a registered name or a weights file) to its file, input
scaling, pixel spacing and recorded recipe; :func:`replay_scenes` reads the scenes of other
glaciers the base learnt from (``replay=``), so adapting to one glacier keeps what it knew of
the others.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xcalving.adapt.prepare import LabelledScene, prepare_scenes
from xcalving.adapt.sources import read_scenes
from xcalving.data.caffe.catalog import open_caffe, shipped_scenes
from xcalving.data.caffe.names import parse_name
from xcalving.errors import InputError, InputTypeError, WeightsNotFoundError
from xcalving.model.checkpoint import read_metadata
from xcalving.model.header import weights_facts
from xcalving.model.registry import REGISTRY
from xcalving.model.weights import model_spec
from xcalving.scaling import Scaling

__all__ = ["REPLAY_SETS", "Base", "base_recipe", "load_base", "replay_scenes", "scene_glaciers"]


def _shipped_caffe256() -> Any:
    """The 21 shipped CaFFe scenes, with the copy's per-glacier spacing (un-squashed on read)."""
    return open_caffe(shipped_scenes(), pixel_spacing="caffe256")


def scene_glaciers(names: list[str]) -> set[str]:
    """The glacier codes of CaFFe-named scenes (other names give none).

    >>> sorted(scene_glaciers(["DBE_2011-07-05_TSX_7_1_110", "my_scene"]))
    ['DBE']
    """
    found = set()
    for name in names:
        try:
            found.add(parse_name(name).glacier)
        except InputError:
            continue
    return found


#: Labelled scene sets a registered base may name as its ``replay`` (``replay="auto"``).
REPLAY_SETS: dict[str, Callable[[], Any]] = {"shipped-caffe256": _shipped_caffe256}


@dataclass(frozen=True)
class Base:
    """The base weights: name, sha256, file, input scaling, pixel spacing, header entries."""

    name: str
    sha256: str
    path: str
    scaling: Scaling
    spacing: float | None
    meta: dict[str, str]


def load_base(base: Any) -> Base:
    """``base=`` (a registered name or a .safetensors path) → its file and recorded facts."""
    if not isinstance(base, str | os.PathLike):
        raise InputTypeError(f"base must be a registered weights name ({', '.join(REGISTRY)}) or "
                             f"the path of a .safetensors file; got {type(base).__name__}.")
    try:
        spec = model_spec(base)
    except WeightsNotFoundError as err:
        raise WeightsNotFoundError(str(err).replace("model:", "base:", 1)) from err
    assert spec.path is not None  # a name or a path always resolves to a file
    registered = isinstance(base, str) and base in REGISTRY
    recorded = REGISTRY[str(base)].scaling if registered else weights_facts(spec.path, "base")[1]
    if recorded is None:
        raise InputError(
            f"base: {os.fspath(base)!r} records no input scaling, so the scaling it was trained "
            "on is unknown and fine-tuning would bake in a guess. Rewrite it with "
            "xcalving.model.save_model(net, path, scaling=CAFFE_SCALING) if it was trained on "
            "CaFFe-style 8-bit input (or the Scaling it was trained with).")
    name = str(base) if registered else Path(base).name
    return Base(name, spec.sha256, spec.path, spec.scaling, spec.pixel_spacing,
                 read_metadata(spec.path))


def base_recipe(meta: dict[str, str]) -> dict[str, Any]:
    """Loss weights and front thickening of the base's own recipe (defaults where unrecorded)."""
    try:
        config = json.loads(meta.get("training", "{}")).get("config", {})
    except (ValueError, AttributeError):
        config = {}
    return {"front_weight": float(config.get("front_weight", 1.0)),
            "zone_weight": float(config.get("zone_weight", 1.0)),
            "zone_loss": str(config.get("zone_loss", "ce")),
            "label_smoothing": float(config.get("label_smoothing", 0.0)),
            "front_dilation": int(config.get("front_dilation", 10))}


def replay_scenes(replay: Any, share: Any, scaling: str, base: Base,
                   adapted: set[str] | None = None) -> list[LabelledScene]:
    """The replayed scenes at the training spacing (none without ``replay``).

    Scenes of a glacier being adapted (``adapted``: glacier codes of the data's scene names)
    are never replayed: the replay keeps what the base knew of *other* glaciers.
    """
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
        raise InputError(f"replay_share must be a share of the training windows between 0 and "
                         f"1 (exclusive), e.g. 0.25; got {share!r}.")
    if isinstance(replay, str) and replay == "auto":
        record = REGISTRY.get(base.name)  # the registered file itself, not a namesake
        named = record.replay if record is not None and record.sha256 == base.sha256 else ""
        replay = REPLAY_SETS[named]() if named else None
    if replay is None:
        return []
    # read as the base learnt: at its spacing where it records one, else as they come (caffe256)
    raw = read_scenes(replay, scaling=scaling, resolution=base.spacing,
                      caffe_spacing="name" if base.spacing is not None else None)
    raw = [s for s in raw if not scene_glaciers([s.name]) & (adapted or set())]
    if not raw:
        return []
    if not any(s.zones is not None or s.front is not None for s in raw):
        raise InputError("replay: none of its scenes has labels (zones or a front); replay "
                         "takes labelled scenes of other glaciers, e.g. a CaFFe data_raw tree.")
    scenes, _ = prepare_scenes(raw, target=base.spacing)
    return scenes
