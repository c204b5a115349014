"""Training objectives: the front and zone losses the recipes combine.

A recipe weighs two heads. The front head learns a thickened one-pixel front with a soft Dice
loss (GlacierDL's recipe). The zone head learns the four zone classes with cross-entropy,
optionally with label smoothing and a soft multi-class Dice term (the recipe that moved the CaFFe
benchmark most: Tyrion's 0.5 cross-entropy with smoothing 0.1 + 0.5 Dice); a zones-only recipe
then reads the front as the glacier–ocean boundary (:func:`xcalving.zones.front_from_zones`).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F  # noqa: N812
from scipy import ndimage

__all__ = ["DISTANCE_CAP_PX", "FRONT_LOSSES", "ZONE_LOSSES", "dice_loss", "distance_penalty",
           "front_loss", "recipe_loss", "zone_dice_loss", "zone_loss"]

#: Zone losses a recipe can name.
ZONE_LOSSES = ("ce", "ce+dice")
#: Front losses a recipe can name: Dice on the thickened front (GlacierDL), or Dice plus a
#: class-balanced BCE plus a penalty on probability far from the front (distance-aware).
FRONT_LOSSES = ("dice", "dice+bce+distance")
#: Distances (pixels) to the labelled front are capped here in the distance penalty.
DISTANCE_CAP_PX = 32.0


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss of sigmoid(logits) against a {0, 1} target, averaged over the batch.

    Examples
    --------
    >>> import torch
    >>> target = torch.tensor([[[[0.0, 1.0]]]])
    >>> round(float(dice_loss(torch.tensor([[[[-20.0, 20.0]]]]), target, eps=0)), 6)
    0.0
    """
    prob = torch.sigmoid(logits).flatten(1)
    target = target.flatten(1)
    inter = (prob * target).sum(1)
    return (1 - (2 * inter + eps) / (prob.sum(1) + target.sum(1) + eps)).mean()


def distance_penalty(logits: torch.Tensor, front: torch.Tensor,
                     cap: float = DISTANCE_CAP_PX) -> torch.Tensor:
    """mean(p · min(D, cap) / cap), D the distance (pixels) to the labelled one-pixel front.

    It costs exactly what the predicted→label half of the MDE counts: probability far from the
    front. Scenes (batch items) without a front count every pixel at the cap.

    Examples
    --------
    >>> import torch
    >>> front = torch.zeros(1, 1, 1, 8); front[..., 0] = 1
    >>> logits = torch.full((1, 1, 1, 8), -30.0); logits[..., 0] = 30.0  # only on the front
    >>> float(distance_penalty(logits, front)) < 1e-9
    True
    """
    marks = front.detach().to("cpu", torch.bool).numpy()
    distance = torch.full(marks.shape, cap, dtype=torch.float32)
    for k, item in enumerate(marks):
        if item.any():
            edt = ndimage.distance_transform_edt(~item)
            distance[k] = torch.from_numpy(edt.astype("float32")).clamp_(max=cap)
    weight = (distance / cap).to(logits.device)
    return (torch.sigmoid(logits) * weight).mean()


def front_loss(logits: torch.Tensor, band: torch.Tensor, front: torch.Tensor | None = None,
               kind: str = "dice") -> torch.Tensor:
    """The front head's loss: Dice on the band, or Dice + balanced BCE + distance penalty."""
    dice = dice_loss(logits, band)
    if kind == "dice":
        return dice
    positive = band.mean().clamp(min=1e-4)
    bce = F.binary_cross_entropy_with_logits(logits, band, pos_weight=(1 - positive) / positive)
    penalty = distance_penalty(logits, band if front is None else front)
    return dice + 0.1 * bce + penalty


def zone_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice of softmax(logits) (N, C, H, W) against class indices (N, H, W), mean over C."""
    prob = logits.softmax(1).flatten(2)
    onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).flatten(2).to(prob.dtype)
    inter = (prob * onehot).sum((0, 2))
    return (1 - (2 * inter + eps) / (prob.sum((0, 2)) + onehot.sum((0, 2)) + eps)).mean()


def zone_loss(logits: torch.Tensor, target: torch.Tensor, kind: Literal["ce", "ce+dice"] = "ce",
              label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy (with ``label_smoothing``), or the mean of it and :func:`zone_dice_loss`."""
    ce = F.cross_entropy(logits, target, label_smoothing=label_smoothing)
    if kind == "ce":
        return ce
    return 0.5 * ce + 0.5 * zone_dice_loss(logits, target)


def recipe_loss(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], *,
                front_weight: float = 1.0, zone_weight: float = 1.0,
                zone_kind: Literal["ce", "ce+dice"] = "ce",
                label_smoothing: float = 0.0, front_kind: str = "dice") -> torch.Tensor:
    """``front_weight`` × front loss + ``zone_weight`` × zone loss (a zero weight skips a head)."""
    loss = torch.zeros((), device=out["front"].device)
    if front_weight > 0:
        loss = loss + front_weight * front_loss(out["front"].float(), batch["front"],
                                                batch.get("front_raw"), front_kind)
    if zone_weight > 0:
        loss = loss + zone_weight * zone_loss(out["zones"].float(), batch["zones"], zone_kind,
                                              label_smoothing)
    return loss
