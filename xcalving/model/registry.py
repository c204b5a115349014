"""The registry of named weights: one table, read from ``weights/registry.json``.

:data:`REGISTRY` lists every weights file the package ships: name, file, sha256 and metadata.
Everything else (names, paths, lookups, the cards) is derived from it. It stands alone,
as torchgeo's ``models/api.py``: it imports neither torch nor another module of the model wing.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xcalving.scaling import Scaling

__all__ = ["DEFAULT_WEIGHTS", "REGISTRY", "REGISTRY_FILE", "WEIGHTS_DIR", "WeightsRecord",
           "list_weights"]

WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class WeightsRecord:
    """One shipped weights file and what it was trained on."""

    name: str
    filename: str
    sha256: str
    description: str
    scaling: Scaling
    pixel_spacing: float | None = None  # metres; None where the training data had none
    licence: str = "Apache-2.0"
    citation: str = ""
    data: str = ""
    training: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: Labelled scenes of its own training data that ``finetune(replay="auto")`` mixes in: a
    #: key of :data:`xcalving.adapt.base.REPLAY_SETS`, or "" for none.
    replay: str = ""
    #: The front method the leave-one-glacier-out folds chose for these weights: ``fronts()``
    #: uses it by default on their predictions ("zones", "probability" or "gated").
    front_method: str = "zones"
    #: Training scenes per sensor and per glacier (or synthetic source).
    sensors: dict[str, int] = field(default_factory=dict, compare=False)
    scenes: dict[str, int] = field(default_factory=dict, compare=False)
    #: What the one input band is.
    bands: tuple[str, ...] = ("SAR amplitude, one polarisation",)
    #: Held-out scores, one dict a row: recipe, held_out, chose_recipe, mde_px, mde_m,
    #: pred_to_label_m, label_to_pred_m, median_m, n_no_front, n_scenes, zone_iou.
    metrics: tuple[dict[str, Any], ...] = field(default=(), compare=False)
    #: (lowest, highest) pixel spacing in metres of cubes on whose own grid the weights were
    #: measured to hold on held-out data; None where unmeasured.
    spacing_range: tuple[float, float] | None = None
    #: Measured on held-out data: "helps" when ``resolution="model"`` beats the cube's own grid
    #: outside ``spacing_range``, "hurts" when it is worse, "unmeasured".
    resolution_model: str = "unmeasured"
    #: The measurement behind the two: one row a (spacing, resolution) pair on a held-out
    #: glacier (spacing, resolution, mde_m, n_no_front, n_scenes).
    spacing_check: tuple[dict[str, Any], ...] = field(default=(), compare=False)

    @property
    def meta(self) -> dict[str, Any]:
        """The structured card: every fact of the record as plain JSON-able data.

        Examples
        --------
        >>> meta = REGISTRY["demo"].meta
        >>> meta["name"], meta["licence"], meta["pixel_spacing"]
        ('demo', 'Apache-2.0', 20.0)
        """
        facts = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                 if f.name != "training"}
        facts.update(scaling=self.scaling.to_dict(), bands=list(self.bands),
                     metrics=[dict(m) for m in self.metrics],
                     spacing_check=[dict(m) for m in self.spacing_check],
                     default=self.name == DEFAULT_WEIGHTS,
                     spacing_range=list(self.spacing_range) if self.spacing_range else None)
        return facts

    @property
    def path(self) -> Path:
        """Where the file lies inside the installed package."""
        return WEIGHTS_DIR / self.filename


REGISTRY_FILE = WEIGHTS_DIR / "registry.json"


def _load_registry() -> dict[str, WeightsRecord]:
    """Read the registry file shipped next to the weights (written by scripts/ship_weights.py)."""
    if not REGISTRY_FILE.exists():
        return {}
    entries = json.loads(REGISTRY_FILE.read_text())
    return {name: _record(name, entry) for name, entry in entries.items()}


def _record(name: str, entry: dict[str, Any]) -> WeightsRecord:
    """One registry entry as a record (lists of the JSON file become tuples)."""
    entry = dict(entry)
    scaling = Scaling.from_dict(entry.pop("scaling"))
    for key in ("bands", "metrics", "spacing_range", "spacing_check"):
        if entry.get(key) is not None:
            entry[key] = tuple(entry[key])
    return WeightsRecord(name=name, scaling=scaling, **entry)


#: Every weights file the package ships, read once from ``weights/registry.json``.
REGISTRY: dict[str, WeightsRecord] = _load_registry()
#: The name ``model=None`` stands for.
DEFAULT_WEIGHTS = "caffe256"


def list_weights() -> list[str]:
    """Names of the registered weights."""
    return sorted(REGISTRY)
