"""The configuration of a training run, checked when it is made, and its learning-rate curve.

:class:`TrainConfig` is everything a run of :func:`xcalving.train.loop.train` depends on; it is
stored in every checkpoint, so a resumed run matches the one it continues.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from xcalving.data.augment import AUGMENTS
from xcalving.errors import InputError
from xcalving.scaling import CAFFE_SCALING, Scaling
from xcalving.train.losses import FRONT_LOSSES, ZONE_LOSSES

__all__ = ["TrainConfig", "learning_rate"]


@dataclass
class TrainConfig:
    """Everything a training run depends on; stored in every checkpoint, so a resume matches."""

    store: str
    out: str
    train_glaciers: Sequence[str] | None = None
    val_glaciers: Sequence[str] | None = None
    train_split: str | None = None
    val_split: str | None = None
    width: int = 16
    aspp_rates: Sequence[int] = (6, 12, 18)
    epochs: int = 50
    batch_size: int = 16
    lr: float = 1e-4
    patience: int = 5
    zone_weight: float = 1.0
    front_weight: float = 1.0
    zone_loss: Literal["ce", "ce+dice"] = "ce"
    label_smoothing: float = 0.0
    front_dilation: int = 10
    augment: bool | Literal["heavy", "physical", "aimed"] = True
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    max_minutes: float | None = None
    min_length_px: float = 10.0
    scaling: dict[str, Any] = field(default_factory=CAFFE_SCALING.to_dict)
    keep_last: int = 3
    #: "constant" learning rate, or "cosine": annealed from ``lr`` to 0 over the epoch budget
    schedule: Literal["constant", "cosine"] = "constant"
    #: the front head's loss (:data:`xcalving.train.losses.FRONT_LOSSES`)
    front_loss: Literal["dice", "dice+bce+distance"] = "dice"
    #: weights to start from instead of a random initialisation (a registered name or a
    #: .safetensors path of the same width); its input scaling replaces ``scaling``
    init: str | None = None
    #: temporal context: the network sees each scene with the median and spread of its nearest
    #: other dates (:mod:`xcalving.model.context`); the store needs ``caffe_to_zarr(context=True)``
    context: bool = False
    #: draw every training glacier equally often in each epoch (same number of samples)
    balance: bool = False

    def __post_init__(self) -> None:
        for name in ("width", "epochs", "batch_size", "patience"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a whole number >= 1; got {value!r}.")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise InputError(f"lr must be a positive learning rate such as 1e-4; got {self.lr!r}.")
        self._check_recipe()

    def _check_recipe(self) -> None:
        weights = (self.zone_weight, self.front_weight)
        if min(weights) < 0 or sum(weights) <= 0:
            raise InputError(
                f"zone_weight and front_weight must be >= 0 and not both 0 (0: that head is not "
                f"trained); got zone_weight={self.zone_weight}, front_weight={self.front_weight}.")
        if self.zone_loss not in ZONE_LOSSES:
            raise InputError(f"zone_loss must be one of {ZONE_LOSSES}; got {self.zone_loss!r}.")
        if not 0 <= self.label_smoothing < 1:
            raise InputError(f"label_smoothing must be in [0, 1); got {self.label_smoothing!r}.")
        if self.schedule not in ("constant", "cosine"):
            raise InputError(f"schedule must be 'constant' or 'cosine'; got {self.schedule!r}.")
        if self.front_loss not in FRONT_LOSSES:
            raise InputError(f"front_loss must be one of {FRONT_LOSSES}; got "
                             f"{self.front_loss!r}.")
        if self.augment not in AUGMENTS:
            raise InputError(f"augment must be one of {AUGMENTS}; got {self.augment!r}.")
        self._check_scaling()

    def _check_scaling(self) -> None:
        try:
            scaling = Scaling.from_dict(self.scaling)
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"scaling must be a Scaling's to_dict() (e.g. "
                             f"ROBUST_SCALING.to_dict()); got {self.scaling!r}.") from err
        if self.context and scaling.stretch is not None:
            raise InputError("context=True and a scaling with a stretch (robust per-scene "
                             "scaling) cannot be combined: the stored context is summarised from "
                             "unstretched scenes. Pass one of the two.")


def learning_rate(config: TrainConfig, step: int, total: int) -> float:
    """The rate at global step ``step`` of ``total``: constant, or a cosine from ``lr`` to 0.

    A function of the step alone, so a resumed run continues on the same curve.

    Examples
    --------
    >>> config = TrainConfig(store="s", out="o", lr=1e-3, schedule="cosine")
    >>> [learning_rate(config, step, 100) for step in (0, 50, 100)]
    [0.001, 0.0005, 0.0]
    """
    if config.schedule == "constant" or total <= 0:
        return config.lr
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total)))
