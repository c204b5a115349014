"""Training the ASPP U-Net on a Zarr patch store, with GlacierDL's recipe as the default.

Adam, Dice loss on the front (thickened by a 10-px dilation, as GlacierDL trained it) plus a
cross-entropy zone loss, batch 16, lr 1e-4, early stopping on the validation loss with patience
5 within an epoch budget, a checkpoint every epoch, resume after a kill, validation by glacier.
Everything written is safetensors, JSON, CSV or PNG: no pickle.

Multi-GPU (or multi-process CPU) training runs under ``torchrun``: each process reads its own
shard of the stream, DistributedDataParallel averages the gradients and rank 0 writes the files.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xcalving.atomic import write_text
from xcalving.data.stream import PatchStream
from xcalving.errors import InputError
from xcalving.metrics import bbox_accuracy, mean_distance_error, zone_iou
from xcalving.model.checkpoint import load_model, save_model
from xcalving.model.context import CONTEXT_CHANNELS
from xcalving.model.unet import ASPPUNet
from xcalving.model.weights import model_spec
from xcalving.runtime import autocast, resolve_device
from xcalving.scaling import Scaling
from xcalving.train.config import TrainConfig, learning_rate
from xcalving.train.losses import dice_loss, recipe_loss
from xcalving.train.state import load_state, prune, save_state, write_history
from xcalving.vector.tracing import front_from_probability
from xcalving.zones import front_from_zones

__all__ = ["dice_loss", "train", "train_step"]



def _loss(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
          config: TrainConfig) -> torch.Tensor:
    return recipe_loss(out, batch, front_weight=config.front_weight,
                       zone_weight=config.zone_weight, zone_kind=config.zone_loss,
                       label_smoothing=config.label_smoothing, front_kind=config.front_loss)


# --- distributed plumbing ------------------------------------------------------------------------
def _dist_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment, (0, 1, 0) without it."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def _device(config: TrainConfig, local_rank: int) -> torch.device:
    if config.device == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")

    return torch.device(resolve_device(config.device))


def _init_distributed(device: torch.device) -> bool:
    rank, world, _ = _dist_env()
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return world > 1


def _mean_across_ranks(values: Sequence[float], distributed: bool) -> list[float]:
    if not distributed:
        return list(values)
    t = torch.tensor(list(values), dtype=torch.float64)
    torch.distributed.all_reduce(t)
    return (t / torch.distributed.get_world_size()).tolist()


# --- data ----------------------------------------------------------------------------------------
def _streams(config: TrainConfig) -> tuple[Any, Any]:
    rank, world, _ = _dist_env()
    scaling = Scaling.from_dict(config.scaling)
    common: dict[str, Any] = {"scaling": scaling, "front_dilation": config.front_dilation,
                              "seed": config.seed, "rank": rank, "world_size": world,
                              "context": config.context}
    train = PatchStream(config.store, glaciers=config.train_glaciers, split=config.train_split,
                        augment=config.augment, shuffle=True, balance=config.balance,
                        **common)
    val = PatchStream(config.store, glaciers=config.val_glaciers, split=config.val_split,
                      augment=False, shuffle=False, **common)
    if train.n_samples == 0 or val.n_samples == 0:
        raise InputError(
            f"store {config.store!r} has {train.n_samples} training samples (glaciers "
            f"{config.train_glaciers}) and {val.n_samples} validation samples (glaciers "
            f"{config.val_glaciers}); both must be > 0. Check the glacier names."
        )
    return train, val


def _loader(stream: Any, config: TrainConfig) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(stream, batch_size=config.batch_size,
                                       num_workers=config.num_workers,
                                       persistent_workers=False, pin_memory=False)


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    # channels_last: oneDNN (CPU) and cuDNN both run these convolutions faster in NHWC
    return {k: v.to(device, non_blocking=True,
                    memory_format=torch.channels_last if v.ndim == 4 else torch.preserve_format)
            for k, v in batch.items()}


# --- one epoch -----------------------------------------------------------------------------------
def train_step(model: Any, batch: dict[str, torch.Tensor], optimizer: Any, config: TrainConfig,
               device: torch.device, lr: float) -> float:
    """One optimisation step on one batch at learning rate ``lr``; the batch's loss.

    What ``benchmarks/bench_train.py`` times against a bare forward and backward pass.
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
    batch = _to(batch, device)
    with autocast(device):
        out = model(batch["image"])
    loss = _loss(out, batch, config)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.item())


def _train_epoch(model: Any, loader: Any, optimizer: Any, config: TrainConfig,
                 device: torch.device, steps: int, epoch: int, show: bool) -> float:
    from xcalving._progress import tqdm_class  # heavy: xcalving._progress loads dask

    tqdm = tqdm_class()

    model.train()
    total, count = 0.0, 0
    bar = tqdm(loader, total=steps, desc=f"epoch {epoch}", unit="batch", disable=not show,
               leave=False)
    for step, batch in enumerate(bar):
        lr = learning_rate(config, (epoch - 1) * steps + step, config.epochs * steps)
        loss = train_step(model, batch, optimizer, config, device, lr)
        total += loss * len(batch["image"])
        count += len(batch["image"])
        bar.set_postfix(loss=f"{total / count:.4f}")
    return total / max(count, 1)


@torch.inference_mode()
def _validate(model: Any, loader: Any, config: TrainConfig,
              device: torch.device) -> dict[str, float]:
    model.eval()
    total, count = 0.0, 0
    probs, zones_pred, zones_true, fronts_true = [], [], [], []
    for batch in loader:
        batch = _to(batch, device)
        with autocast(device):
            out = model(batch["image"])
        total += float(_loss(out, batch, config)) * len(batch["image"])
        count += len(batch["image"])
        probs.append(torch.sigmoid(out["front"].float())[:, 0].cpu().numpy())
        zones_pred.append(out["zones"].argmax(1).cpu().numpy().astype(np.uint8))
        zones_true.append(batch["zones"].cpu().numpy().astype(np.uint8))
        fronts_true.append(batch["front_raw"][:, 0].cpu().numpy().astype(bool))
    return _scores(total / max(count, 1), np.concatenate(probs), np.concatenate(zones_pred),
                   np.concatenate(zones_true), np.concatenate(fronts_true), config)


def _scores(val_loss: float, probs: np.ndarray, zones_pred: np.ndarray, zones_true: np.ndarray,
            fronts_true: np.ndarray, config: TrainConfig) -> dict[str, float]:
    """Validation numbers: loss, bbox accuracy, zone IoU and MDE (pixels) both ways."""
    from_zones = np.stack([front_from_zones(z, config.min_length_px) for z in zones_pred])
    from_prob = np.stack([front_from_probability(p, 0.5, config.min_length_px) for p in probs])
    mde_z = mean_distance_error(from_zones, fronts_true)
    mde_p = mean_distance_error(from_prob, fronts_true)
    return {
        "val_loss": val_loss,
        "bbox_accuracy": bbox_accuracy(probs, fronts_true, dilation=config.front_dilation),
        "zone_iou": zone_iou(zones_pred, zones_true).mean,
        "mde_px": mde_z.mde, "n_no_front": mde_z.n_no_front,
        "mde_front_px": mde_p.mde, "n_no_front_front": mde_p.n_no_front,
    }


# --- the run -------------------------------------------------------------------------------------
def _weights_metadata(config: TrainConfig, progress: dict[str, Any]) -> dict[str, str]:
    best: dict[str, Any] = next(
        (h for h in progress["history"] if h["epoch"] == progress["best_epoch"]), {})
    return {"training": json.dumps({"config": asdict(config), "best_epoch": progress["best_epoch"],
                                    "validation": best}, default=str)}


def _setup(config: TrainConfig) -> tuple[Any, Any, torch.device, bool, int]:
    rank, _, local_rank = _dist_env()
    device = _device(config, local_rank)
    distributed = _init_distributed(device)
    torch.manual_seed(config.seed)
    net = _initial_net(config)
    net = net.to(device).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    return net, optimizer, device, distributed, rank


def _initial_net(config: TrainConfig) -> ASPPUNet:
    """A fresh network, or the ``init`` weights (warm start) when they match the config."""
    net = ASPPUNet(CONTEXT_CHANNELS if config.context else 1, width=config.width,
                   aspp_rates=tuple(config.aspp_rates))
    # a plain attribute, not a module (as load_model sets it)
    object.__setattr__(net, "xcalving_scaling", Scaling.from_dict(config.scaling))
    if config.init is None:
        return net

    spec = model_spec(config.init)
    start = load_model(spec.path) if spec.path is not None else None
    if not isinstance(start, ASPPUNet) or start.get_config() != net.get_config():
        raise InputError(
            f"init: {config.init!r} is not an ASPP U-Net of width {config.width} with ASPP rates "
            f"{tuple(config.aspp_rates)} and {net.get_config()['in_channels']} input channels "
            "(context=True: 3); start from weights of the same width and input or set them.")
    scaling = getattr(start, "xcalving_scaling", None)
    if scaling is None or scaling.to_dict() != config.scaling:
        raise InputError(
            f"init: {config.init!r} was trained with input scaling "
            f"{scaling.to_dict() if scaling else None}, the run asks for {config.scaling}; pass "
            "scaling=<the init weights' scaling> so that the network sees what it learned on.")
    return start


def _wrap(net: Any, device: torch.device, distributed: bool, config: TrainConfig) -> Any:
    model = torch.compile(net) if device.type == "cuda" else net
    if distributed:
        ids = [device.index] if device.type == "cuda" else None
        # a head without a loss gets no gradient, which DDP must be told
        unused = 0 in (config.zone_weight, config.front_weight)
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=ids, find_unused_parameters=unused)
    return model


def _start(config: TrainConfig, net: Any, optimizer: Any, resume: bool) -> dict[str, Any]:
    state = Path(config.out) / "checkpoints" / "state.safetensors"
    if resume and state.exists():
        progress = load_state(state, net, optimizer)
        # a finished run resumed with a larger budget goes on; early stopping still holds
        progress["stopped"] = _budget_spent(progress, config)
        return progress
    if not resume and state.exists():
        raise InputError(f"out: {config.out} already holds a training run; pass resume=True "
                         "(--resume) to continue it, or choose a new folder.")
    return {"epoch": 0, "best_val": float("inf"), "best_epoch": 0, "bad_epochs": 0,
            "history": [], "stopped": None}


def train(config: TrainConfig, *, resume: bool = False,
          on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train an ASPPUNet on ``config.store``; write checkpoints, history, curves, final weights.

    Files under ``config.out``: ``checkpoints/state.safetensors`` (resume point, rewritten each
    epoch), ``checkpoints/epoch_NNN.safetensors`` (weights each epoch, the last
    ``keep_last`` kept), ``best.safetensors`` (lowest validation loss), ``history.csv``,
    ``curves.png`` and ``summary.json``. With ``resume=True`` a killed run continues from its
    last finished epoch; the history has no gap.

    Returns the summary: epochs run, best epoch, why it stopped and the best epoch's scores
    (an empty dict on ranks other than 0 of a distributed run).
    """
    net, optimizer, device, distributed, rank = _setup(config)
    out = Path(config.out)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    progress = _start(config, net, optimizer, resume)
    model = _wrap(net, device, distributed, config)
    train_stream, val_stream = _streams(config)
    if train_stream.pixel_spacing is not None:  # recorded in every weights file saved below
        net.xcalving_pixel_spacing = train_stream.pixel_spacing
    steps = train_stream.steps_per_epoch(config.batch_size)
    while progress["stopped"] is None:
        epoch = progress["epoch"] + 1
        started = time.perf_counter()
        train_stream.set_epoch(epoch)
        loss = _train_epoch(model, _loader(train_stream, config), optimizer, config, device,
                            steps, epoch, show=rank == 0)
        scores = _validate(model, _loader(val_stream, config), config, device)
        loss, scores["val_loss"] = _mean_across_ranks([loss, scores["val_loss"]], distributed)
        row = {"epoch": epoch, "loss": loss, **scores, "lr": optimizer.param_groups[0]["lr"],
               "seconds": time.perf_counter() - started}
        _advance(progress, row, config)
        if rank == 0:
            _checkpoint(out, net, optimizer, progress, config)
            if on_epoch is not None:
                on_epoch(row)
    if distributed:
        torch.distributed.barrier()
    return _finish(out, progress, config) if rank == 0 else {}


def _budget_spent(progress: dict[str, Any], config: TrainConfig,
                  next_epoch_seconds: float = 0.0) -> str | None:
    """Why the run must stop now (early stopping, epoch or time budget), or None."""
    spent = sum(h["seconds"] for h in progress["history"])
    if progress["bad_epochs"] >= config.patience:
        return f"early stopping: no better validation loss in {config.patience} epochs"
    if progress["epoch"] >= config.epochs:
        return f"epoch budget of {config.epochs} reached"
    if config.max_minutes is not None and spent + next_epoch_seconds > 60 * config.max_minutes:
        return f"time budget of {config.max_minutes:g} min reached"
    return None


def _advance(progress: dict[str, Any], row: dict[str, Any], config: TrainConfig) -> None:
    """Record an epoch and decide whether to stop (early stopping, epoch or time budget)."""
    progress["history"].append(row)
    progress["epoch"] = row["epoch"]
    if row["val_loss"] < progress["best_val"]:
        progress.update(best_val=row["val_loss"], best_epoch=row["epoch"], bad_epochs=0,
                        improved=True)
    else:
        progress.update(bad_epochs=progress["bad_epochs"] + 1, improved=False)
    # stop before an epoch that would overrun the time budget (the last one's length as a guess)
    progress["stopped"] = _budget_spent(progress, config, next_epoch_seconds=row["seconds"])


def _checkpoint(out: Path, net: Any, optimizer: Any, progress: dict[str, Any],
                config: TrainConfig) -> None:
    folder = out / "checkpoints"
    meta = _weights_metadata(config, progress)
    save_model(net, folder / f"epoch_{progress['epoch']:03d}.safetensors", metadata=meta)
    if progress.get("improved"):
        save_model(net, out / "best.safetensors", metadata=meta)
    prune(folder, config.keep_last)
    save_state(folder / "state.safetensors", net, optimizer, progress)
    write_history(out, progress["history"])


def _finish(out: Path, progress: dict[str, Any], config: TrainConfig) -> dict[str, Any]:
    best = next(h for h in progress["history"] if h["epoch"] == progress["best_epoch"])
    summary = {"epochs": progress["epoch"], "best_epoch": progress["best_epoch"],
               "stopped": progress["stopped"], "best": best,
               "train_seconds": sum(h["seconds"] for h in progress["history"]),
               "config": asdict(config)}
    write_text(out / "summary.json", json.dumps(summary, indent=2, default=str))
    return summary
