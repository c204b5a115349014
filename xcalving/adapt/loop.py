"""The fine-tuning loop: what trains, the loss, the time budget, Ctrl-C and the weights kept.

No validation set exists with three to five scenes, so nothing here pretends to validate, and
nothing is chosen on the training loss either (one batch of augmented windows is too noisy to
rank weights by). The weights kept are those after the last completed step: the learning rate
is annealed to zero by the end of the budget, so the last weights are the settled ones. Ctrl-C
keeps the weights of the last step that completed before it, never a half-applied update.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from tqdm import tqdm

from xcalving.adapt.sources import UNKNOWN
from xcalving.errors import InputError
from xcalving.runtime import autocast

__all__ = ["BATCHNORM", "TRAINABLE", "LoopResult", "Recipe", "expected_steps", "run_loop",
           "set_trainable"]

#: What a fine-tuning run may train: everything (default), the decoder and heads, the heads.
TRAINABLE = ("all", "decoder", "heads")
#: BatchNorm statistics: the base's, kept (default), or re-estimated from the labelled scenes.
BATCHNORM = ("frozen", "adapt")
#: Weight of the newest step's loss in the running mean the progress bar shows.
EMA_WEIGHT = 0.1


@dataclass
class Recipe:
    """How a fine-tuning run trains; recorded in the card."""

    trainable: Literal["all", "decoder", "heads"] = "all"
    lr: float = 5e-4
    batch_size: int = 8
    window: int = 256
    front_weight: float = 1.0
    zone_weight: float = 1.0
    zone_loss: str = "ce"
    label_smoothing: float = 0.0
    front_dilation: int = 10
    front_only: bool = False  # no zone labelled anywhere: zone head frozen, zones kept
    replay_share: float = 0.0  # share of windows drawn from the replayed scenes
    augment: str = "heavy"
    batchnorm: Literal["frozen", "adapt"] = "frozen"
    schedule: str = "cosine to 0 by the end of the step or time budget, whichever comes first"
    kept: str = "the last completed step (the learning rate is annealed to 0 by then)"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def set_trainable(net: nn.Module, recipe: Recipe) -> list[nn.Module]:
    """Freeze the weights ``recipe`` keeps; return the frozen modules."""
    groups = {"encoder": [net.encoders, net.bottleneck],
              "decoder": [net.upsamplers, net.decoders]}
    frozen: list[Any] = {"all": [], "decoder": groups["encoder"],
                         "heads": groups["encoder"] + groups["decoder"]}[recipe.trainable]
    if recipe.front_only or recipe.zone_weight == 0:
        frozen = [*frozen, net.zones_head]  # nothing teaches the zones: keep the base's head
    if recipe.front_weight == 0:
        frozen = [*frozen, net.front_head]
    for module in frozen:
        module.requires_grad_(False)
    if not any(p.requires_grad for p in net.parameters()):
        raise InputError(f"trainable={recipe.trainable!r} with these labels and this base "
                         "leaves nothing to train; use trainable='decoder' or 'all'.")
    return frozen


def _masked_zone_loss(logits: torch.Tensor, zones: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    """Cross-entropy (and Dice, if the recipe has it) over pixels whose zone is labelled."""
    ce = F.cross_entropy(logits, zones, ignore_index=UNKNOWN,
                         label_smoothing=recipe.label_smoothing)
    if recipe.zone_loss != "ce+dice":
        return ce
    known = (zones != UNKNOWN).unsqueeze(1).to(logits.dtype)
    prob = logits.softmax(1) * known
    onehot = F.one_hot(zones.clamp(max=logits.shape[1] - 1), logits.shape[1])
    onehot = onehot.permute(0, 3, 1, 2).to(prob.dtype) * known
    inter = (prob * onehot).sum((0, 2, 3))
    dice = 1 - (2 * inter + 1) / (prob.sum((0, 2, 3)) + onehot.sum((0, 2, 3)) + 1)
    return 0.5 * ce + 0.5 * dice.mean()


def _distillation(logits: torch.Tensor, base_logits: torch.Tensor,
                  where: torch.Tensor) -> torch.Tensor:
    """KL divergence of the zones from the base's, over unlabelled pixels (keeps what it knew)."""
    target = base_logits.softmax(1)
    kl = (target * (target.clamp_min(1e-8).log() - logits.log_softmax(1))).sum(1)
    return kl[where].mean()


def loss(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
         base_out: dict[str, torch.Tensor] | None, recipe: Recipe) -> torch.Tensor:
    """Front Dice + zone loss on labelled pixels + zone distillation on unlabelled ones."""
    # heavy: xcalving.train.losses loads matplotlib, PIL
    from xcalving.train.losses import dice_loss

    total = torch.zeros((), device=out["front"].device)
    if recipe.front_weight > 0:
        total = total + recipe.front_weight * dice_loss(out["front"].float(), batch["front"])
    if recipe.zone_weight > 0:
        logits, zones = out["zones"].float(), batch["zones"]
        unknown = zones == UNKNOWN
        if not unknown.all():
            total = total + recipe.zone_weight * _masked_zone_loss(logits, zones, recipe)
        if base_out is not None and unknown.any():
            total = total + recipe.zone_weight * _distillation(
                logits, base_out["zones"].float(), unknown)
    return total


@dataclass
class LoopResult:
    """What the loop did, and the weights it keeps (those of its last completed step)."""

    state: dict[str, torch.Tensor]
    steps: int
    loss: float  # running mean of the training loss at the last step
    seconds: float
    stopped: str
    interrupted: bool


def _stop_reason(step: int, max_steps: int | None, now: float, deadline: float,
                 last_step: float, minutes: float) -> str | None:
    if max_steps is not None and step >= max_steps:
        return f"step budget of {max_steps} reached"
    if step >= 1 and now + last_step > deadline:  # the next step would overrun the budget
        return f"time budget of {minutes:g} min reached"
    return None


def _spent(step: int, max_steps: int | None, start: float, deadline: float) -> float:
    """How much of the budget is spent, 0..1: of the steps or of the time, whichever is more.

    The learning rate follows it down to 0, so it reaches 0 whichever budget ends the run.

    >>> _spent(30, 100, start=0.0, deadline=1e12)
    0.3
    >>> _spent(30, None, start=time.perf_counter() - 50, deadline=time.perf_counter() + 50) > 0.49
    True
    """
    by_time = (time.perf_counter() - start) / max(deadline - start, 1e-9)
    by_steps = step / max_steps if max_steps else 0.0
    return min(max(by_time, by_steps), 1.0)


def expected_steps(step: int, max_steps: int | None, *, elapsed: float,
                   left: float) -> int | None:
    """Steps the run will have made when it ends: ``max_steps``, or fewer if the time runs out.

    After ``step`` steps in ``elapsed`` seconds, with ``left`` seconds of the time budget left,
    at the mean pace so far; ``max_steps`` (None: unknown) before the first step. The progress
    bar counts to it, so its total and its estimate of the time left follow whichever budget
    ends first.

    >>> expected_steps(10, 1000, elapsed=5.0, left=20.0)  # 0.5 s a step: 40 more, not 990
    50
    >>> expected_steps(10, 30, elapsed=5.0, left=20.0)
    30
    """
    if step == 0 or elapsed <= 0:
        return max_steps
    by_time = step + int(max(left, 0.0) / (elapsed / step))
    return by_time if max_steps is None else min(max_steps, by_time)


def _set_total(bar: Any, total: int | None) -> None:
    """Count ``bar`` to ``total`` steps (a notebook widget's bar length too)."""
    bar.total = total
    container = getattr(bar, "container", None)  # tqdm.notebook: (text, bar, text) widgets
    if container is not None and total is not None:
        container.children[1].max = total


@dataclass
class _Progress:
    step: int = 0
    ema: float = math.inf  # running mean of the training loss
    last_step: float = 0.0  # seconds the last step took

    def record(self, value: float) -> None:
        """Count a step of loss ``value``."""
        self.step += 1
        self.ema = value if self.step == 1 else (1 - EMA_WEIGHT) * self.ema + EMA_WEIGHT * value


def run_loop(net: nn.Module, base: nn.Module | None, windows: Any, recipe: Recipe, *,
             device: torch.device, deadline: float, max_steps: int | None, minutes: float,
             callback: Callable[[dict[str, Any]], None] | None = None,
             progress: bool = True) -> LoopResult:
    """Train ``net`` on batches of ``windows`` until a budget is spent or Ctrl-C.

    ``base`` (frozen, eval mode) gives the zones that unlabelled pixels are held to; None when
    every zone is labelled. ``deadline`` is a :func:`time.perf_counter` time.
    """
    from xcalving._progress import tqdm_class  # heavy: xcalving._progress loads dask

    # tqdm.auto (a notebook's widgets) warns where it cannot draw, even for a disabled bar
    bar_class = tqdm_class() if progress else tqdm

    set_trainable(net, recipe)
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=recipe.lr)
    start = last = time.perf_counter()
    done = _Progress()
    kept, kept_step = {k: v.detach().clone() for k, v in net.state_dict().items()}, 0
    bar = bar_class(total=max_steps, desc="finetune", unit="step", disable=not progress)
    stopped, interrupted = "", False
    try:
        while (reason := _stop_reason(done.step, max_steps, time.perf_counter(), deadline,
                                      done.last_step, minutes)) is None:
            lr = recipe.lr * 0.5 * (1 + math.cos(math.pi * _spent(done.step, max_steps, start,
                                                                 deadline)))
            for group in optimizer.param_groups:
                group["lr"] = lr
            value = _step(net, base, optimizer, windows, recipe, device)
            now = time.perf_counter()
            done.last_step, last = now - last, now
            done.record(value)
            kept, kept_step = ({k: v.detach().clone() for k, v in net.state_dict().items()},
                               done.step)
            _set_total(bar, expected_steps(done.step, max_steps, elapsed=now - start,
                                           left=deadline - now))
            bar.update(1)
            bar.set_postfix(loss=f"{done.ema:.4f}", left=f"{max(0.0, deadline - now):.0f}s")
            if callback is not None:
                callback({"step": done.step, "loss": value, "ema_loss": done.ema, "lr": lr,
                          "seconds": now - start})
        stopped = reason
        _set_total(bar, done.step)  # ended: the bar is full, whichever budget ended it
        bar.refresh()
    except KeyboardInterrupt:
        stopped, interrupted = f"interrupted (Ctrl-C) after {kept_step} steps", True
    finally:
        bar.close()
    return LoopResult({k: v.cpu() for k, v in kept.items()}, kept_step, done.ema,
                      time.perf_counter() - start, stopped, interrupted)


def _step(net: nn.Module, base: nn.Module | None, optimizer: Any, windows: Any, recipe: Recipe,
          device: torch.device) -> float:
    batch = {k: v.to(device) for k, v in windows.batch(recipe.batch_size).items()}
    net.train()
    if recipe.batchnorm == "frozen":  # the base's statistics; else each batch updates them
        for module in net.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
    base_out = None
    needs_base = recipe.zone_weight > 0 and bool((batch["zones"] == UNKNOWN).any())
    with autocast(device):
        if base is not None and needs_base:
            with torch.no_grad():
                base_out = base(batch["image"])
        out = net(batch["image"])
    value = loss(out, batch, base_out, recipe)
    optimizer.zero_grad(set_to_none=True)
    value.backward()
    optimizer.step()
    return float(value.detach())
