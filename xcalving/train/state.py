"""A training run's state on disk: checkpoints to resume from, the history and its curves.

Everything is safetensors, JSON, CSV or PNG (no pickle), each file written beside its target and
swapped in (:mod:`xcalving.atomic`), so a run killed mid-write resumes from the last good one.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from xcalving.atomic import write_figure, write_text
from xcalving.model.checkpoint import save_tensors
from xcalving.plot import training_curves

__all__ = ["HISTORY_FIELDS", "load_state", "prune", "save_state", "write_history"]

HISTORY_FIELDS = ("epoch", "loss", "val_loss", "bbox_accuracy", "zone_iou", "mde_px",
                  "n_no_front", "mde_front_px", "n_no_front_front", "lr", "seconds")


def save_state(path: Path, model: Any, optimizer: Any, progress: dict[str, Any]) -> None:
    """Everything needed to resume: weights, Adam's moments, epoch, history, early stopping."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for index, slots in opt["state"].items():
        for name, value in slots.items():
            tensors[f"opt.{index}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    groups = [{k: v for k, v in g.items()} for g in opt["param_groups"]]
    header = {"xcalving.training": json.dumps({**progress, "param_groups": groups})}
    save_tensors(tensors, path, header)


def load_state(path: Path, model: Any, optimizer: Any) -> dict[str, Any]:
    """Restore ``model``, ``optimizer`` and torch's RNG from ``path``; return the progress."""
    with safe_open(str(path), framework="pt") as fh:
        progress = json.loads(fh.metadata()["xcalving.training"])
    tensors = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": progress.pop("param_groups")})
    torch.set_rng_state(tensors["rng.torch"])
    return progress


def write_history(out: Path, history: list[dict[str, Any]]) -> None:
    """``history.csv`` and ``curves.png`` in ``out``, each written beside and swapped in."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(history)
    write_text(out / "history.csv", text.getvalue())
    write_figure(out / "curves.png", training_curves(history), dpi=110)


def prune(folder: Path, keep: int) -> None:
    """Keep the last ``keep`` per-epoch weights files."""
    for old in sorted(folder.glob("epoch_*.safetensors"))[:-keep]:
        old.unlink()
