"""Labelled scenes ready to train on: one pixel spacing, 8-bit grey, random augmented windows.

:func:`prepare_scenes` checks what was read (labels present, values of the kind they claim, one
pixel spacing), converts every image to 8-bit grey values (the documented dB -> grey rule; 0 is
no data) and resamples scenes to the base's pixel spacing. :class:`Windows` draws training
windows from them: a scene at random (each labelled scene equally often), half the windows
centred near its front, the rest anywhere in its labelled region (and, with ``replay``, a share of
windows from scenes of the base's own training data), then the heavy augmentation
of :class:`~xcalving.data.stream.PatchStream` (zoom-in, flips, quarter turns, speckle, contrast,
gamma).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from xcalving.adapt.sources import UNKNOWN, RawScene, valid_pixels
from xcalving.data.augment import flip_rotate, gamma, radiometry, rezoom, thicken_front
from xcalving.errors import InputError, PerformanceWarning, XcalvingWarning
from xcalving.model.context import (
    SINGLE_SCENE_RATE,
    grey_series_context,
    network_channels,
)
from xcalving.scaling import Scaling, check_values, db_to_grey, fill_value, to_network_input
from xcalving.zones import front_from_zones

__all__ = ["LabelledScene", "Windows", "add_context", "prepare_scenes", "to_grey"]

#: Share of windows centred near a front pixel (random windows of a large scene mostly miss it).
FRONT_SHARE = 0.5
#: More labelled scenes than this is a data set, not a handful: warned.
MANY_SCENES = 50


@dataclass
class LabelledScene:
    """One labelled scene at the training spacing: grey image, zones, front, where to draw."""

    name: str
    date: str | None
    grey: np.ndarray  # uint8 (y, x), 0 = no data
    zones: np.ndarray  # uint8 0..3, UNKNOWN where not labelled
    front: np.ndarray  # uint8 0/1, one pixel wide
    spacing: float | None
    region: tuple[int, int, int, int]  # rows r0:r1, cols c0:c1
    source: str
    context: np.ndarray | None = None  # uint8 (2, y, x) temporal context, for such weights

    @property
    def labels(self) -> str:
        """What was labelled: ``"zones+front"``, ``"partial zones+front"`` or ``"front"``."""
        known = self.zones != UNKNOWN
        return "zones+front" if known.all() else "partial zones+front" if known.any() \
            else "front"

    def summary(self) -> dict[str, object]:
        """The scene as the card lists it."""
        return {"name": self.name, "date": self.date, "source": self.source,
                "shape": list(self.grey.shape), "labels": self.labels}


def to_grey(values: np.ndarray, kind: str, name: str) -> np.ndarray:
    """An image of ``kind`` as 8-bit grey values (the documented dB -> 1..255 rule; 0 no data)."""
    if kind not in ("uint8", "db", "linear"):
        raise InputError(f"scene {name!r}: finetune must know what the values are to convert "
                         f"them to the base's scaling; got scaling={kind!r}. Pass scaling='db', "
                         "'linear' or 'uint8'.")
    values = np.asarray(values)
    check_values(values, kind, where=f"scene {name!r}")
    valid = valid_pixels(values, kind)
    v: np.ndarray = np.asarray(values, np.float32)
    if kind == "linear":
        v = 10.0 * np.log10(np.where(valid, v, 1.0))
    if kind in ("db", "linear"):
        v = np.rint(db_to_grey(v))
    return np.where(valid, np.clip(v, 1, 255), 0).astype(np.uint8)


def _common_spacing(scenes: list[RawScene], target: float | None) -> float | None:
    """The spacing to train at: the base's; else the scenes' one spacing; mixed is refused."""
    known = {s.name: s.spacing for s in scenes if s.spacing is not None}
    if target is not None:
        unknown = [s.name for s in scenes if s.spacing is None]
        if unknown:
            warnings.warn(f"scenes {unknown[:3]} have no known pixel spacing; they are taken to be "
                          f"at the base's {target:g} m. Resample them to it if they are not.",
                          XcalvingWarning, stacklevel=4)
        return target
    if known and max(known.values()) > 1.01 * min(known.values()):
        groups: dict[float, list[str]] = {}
        for name, spacing in known.items():
            groups.setdefault(round(spacing, 2), []).append(name)
        listed = "; ".join(f"{k:g} m: {', '.join(v[:3])}" for k, v in sorted(groups.items()))
        raise InputError(
            f"the labelled scenes have mixed pixel spacings ({listed}) and the base records "
            "none to resample them to. Label scenes of one spacing (one sensor), resample them "
            "to one spacing first, or, for a resized CaFFe copy such as caffe256, pass "
            "caffe_spacing=None.")
    return next(iter(known.values()), None)


def prepare_scenes(raw: list[RawScene], *, target: float | None
                   ) -> tuple[list[LabelledScene], float | None]:
    """Labelled scenes at one pixel spacing, and that spacing (None where unknown)."""
    labelled = [s for s in raw if s.zones is not None or s.front is not None]
    if not labelled:
        names = [s.name for s in raw[:3]]
        raise InputError(f"no labelled scene among the {len(raw)} scenes of data ({names}...): "
                         "each needs zones or a front. For GeoTIFF scenes pass labels= a "
                         "GeoPackage of front lines whose date column names the scenes' dates.")
    if len(labelled) > MANY_SCENES:
        warnings.warn(f"{len(labelled)} labelled scenes: finetune holds them all in memory and "
                      "is meant for a handful of one glacier. For a data set, write a patch "
                      "store (xcalving caffe) and train (xcalving train).", PerformanceWarning,
                      stacklevel=3)
    spacing = _common_spacing(labelled, target)
    out = []
    for s in labelled:
        zones = s.zones if s.zones is not None else np.full(s.values.shape, UNKNOWN, np.uint8)
        front = s.front if s.front is not None else front_from_zones(zones).astype(np.uint8)
        grey = to_grey(s.values, s.kind, s.name)
        region = s.region or (0, grey.shape[0], 0, grey.shape[1])
        _check_has_data(grey, region, s)
        if s.spacing is not None and spacing is not None and abs(s.spacing / spacing - 1) > 0.01:
            grey, zones, front, region = _resample(grey, zones, front, region,
                                                   s.spacing / spacing)
        out.append(LabelledScene(s.name, s.date, grey, zones, front, spacing, region, s.source))
    return out, spacing


def _check_has_data(grey: np.ndarray, region: tuple[int, int, int, int], scene: RawScene) -> None:
    """Refuse a scene with no backscatter where its windows are drawn: it would train on nothing."""
    r0, r1, c0, c1 = region
    if not (grey[r0:r1, c0:c1] > 0).any():
        where = "" if grey[r0:r1, c0:c1].size == grey.size else " around its labels"
        raise InputError(
            f"scene {scene.name!r} has no valid pixel{where} (every value is NaN, or 0 for 8-bit "
            "grey, or <= 0 for linear power): there is nothing to train on. Leave it out of "
            "data (and its labels), or check that its values are the backscatter "
            f"(read as {scene.kind!r}; pass scaling= if that is wrong).")


def _resample(grey: np.ndarray, zones: np.ndarray, front: np.ndarray,
              region: tuple[int, int, int, int], factor: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """A scene zoomed by ``factor`` (> 1: finer): anti-aliased image, nearest zones, thin front."""
    from skimage.morphology import skeletonize  # heavy: skimage, loaded on first use
    from skimage.transform import resize  # heavy: skimage, loaded on first use

    shape = tuple(max(1, round(n * factor)) for n in grey.shape)
    valid = resize(grey > 0, shape, order=0, anti_aliasing=False)
    image = resize(grey.astype(np.float32), shape, order=1, anti_aliasing=factor < 1,
                   preserve_range=True)
    grey = np.where(valid, np.clip(np.rint(image), 1, 255), 0).astype(np.uint8)
    zones = resize(zones, shape, order=0, anti_aliasing=False, preserve_range=True)
    if factor < 1:  # coarser: each front pixel to the pixel it falls in keeps the line whole
        rows, cols = np.nonzero(front)
        thin = np.zeros(shape, np.uint8)
        thin[np.minimum((rows + 0.5) * factor, shape[0] - 1).astype(int),
             np.minimum((cols + 0.5) * factor, shape[1] - 1).astype(int)] = 1
    else:
        thin = skeletonize(resize(front, shape, order=0, anti_aliasing=False) > 0)
    r0, r1, c0, c1 = (int(round(v * factor)) for v in region)
    return grey, zones.astype(np.uint8), thin.astype(np.uint8), (r0, max(r1, r0 + 1), c0,
                                                                  max(c1, c0 + 1))


def add_context(scenes: list[LabelledScene], series: Callable[[LabelledScene], str] = str
                ) -> None:
    """Give each dated scene the temporal context of the other scenes on its grid.

    For weights with temporal context (:mod:`xcalving.model.context`): scenes of one
    ``series`` (a key; by default each scene's name, so pass e.g. ``lambda s: ""`` for the
    user's scenes of one glacier) and one shape are one series of dates; each gets the median
    and spread of its nearest others. A scene alone or without a date keeps ``context=None``
    and trains with the single-scene context, as predict runs it.
    """
    groups: dict[tuple[Any, ...], list[LabelledScene]] = {}
    for scene in scenes:
        if scene.date:
            groups.setdefault((series(scene), *scene.grey.shape), []).append(scene)
    for members in (m for m in groups.values() if len(m) > 1):
        context = grey_series_context([s.grey for s in members], [s.date for s in members])
        for scene, one in zip(members, context, strict=True):
            scene.context = one


# --- training windows ----------------------------------------------------------------------------
def window_size(scenes: list[LabelledScene], requested: int, stride: int) -> int:
    """``requested`` or the largest labelled region if smaller, a multiple of ``stride``."""
    largest = max(max(s.region[1] - s.region[0], s.region[3] - s.region[2]) for s in scenes)
    size = min(requested, largest)
    return max(stride, -(-size // stride) * stride)


def _cut(array: np.ndarray, top: int, left: int, size: int, fill: int) -> np.ndarray:
    """``array[top:top+size, left:left+size]``, padded with ``fill`` where it leaves the array."""
    out = np.full((size, size), fill, array.dtype)
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + size, array.shape[0]), min(left + size, array.shape[1])
    if r1 > r0 and c1 > c0:
        out[r0 - top:r1 - top, c0 - left:c1 - left] = array[r0:r1, c0:c1]
    return out


class Windows:
    """Random augmented training windows from labelled scenes, as batches of tensors."""

    def __init__(self, scenes: list[LabelledScene], size: int, scaling: Scaling, *,
                 front_dilation: int = 10, seed: int = 0,
                 replay: list[LabelledScene] | None = None, replay_share: float = 0.0,
                 context: bool = False) -> None:
        self.scenes, self.size, self.scaling, self.context = scenes, size, scaling, context
        self.replay, self.replay_share = list(replay or []), replay_share if replay else 0.0
        self.front_dilation = front_dilation
        self.rng = np.random.default_rng(seed)
        self._fronts = [np.argwhere(s.front[s.region[0]:s.region[1], s.region[2]:s.region[3]])
                        + (s.region[0], s.region[2]) for s in [*scenes, *self.replay]]

    def _corner(self, k: int) -> tuple[int, int]:
        r0, r1, c0, c1 = self._scene(k).region
        size, rng, fronts = self.size, self.rng, self._fronts[k]
        if len(fronts) and rng.random() < FRONT_SHARE:
            r, c = fronts[rng.integers(len(fronts))] + rng.integers(-size // 4, size // 4 + 1, 2)
            return int(r) - size // 2, int(c) - size // 2
        top = int(rng.integers(r0, max(r0, r1 - size) + 1)) if r1 - r0 >= size \
            else r0 - (size - (r1 - r0)) // 2
        left = int(rng.integers(c0, max(c0, c1 - size) + 1)) if c1 - c0 >= size \
            else c0 - (size - (c1 - c0)) // 2
        return top, left

    def _scene(self, k: int) -> LabelledScene:
        """Scene ``k`` of the labelled scenes followed by the replayed ones."""
        return self.scenes[k] if k < len(self.scenes) else self.replay[k - len(self.scenes)]

    def _draw(self) -> int:
        """A labelled scene, each equally often, or a replayed one for ``replay_share``."""
        if self.replay_share and self.rng.random() < self.replay_share:
            return len(self.scenes) + int(self.rng.integers(len(self.replay)))
        return int(self.rng.integers(len(self.scenes)))

    def window(self) -> tuple[np.ndarray, ...]:
        """One (grey, zones, front[, ctx median, ctx spread]) window with some data in it.

        Not yet augmented; the context is there when the windows are for weights with temporal
        context and the scene has one.
        """
        k = self._draw()
        scene = self._scene(k)
        pad_zone = 0 if scene.labels == "zones+front" else UNKNOWN
        for _ in range(8):  # a window all outside the swath teaches nothing
            top, left = self._corner(k)
            grey = _cut(scene.grey, top, left, self.size, 0)
            if (grey > 0).mean() > 0.1:
                break
        context = () if not self.context or scene.context is None else \
            tuple(_cut(c, top, left, self.size, 0) for c in scene.context)
        return (grey, _cut(scene.zones, top, left, self.size, pad_zone),
                _cut(scene.front, top, left, self.size, 0), *context)

    def batch(self, n: int) -> dict[str, torch.Tensor]:
        """``n`` augmented windows: image (n, C, H, W), zones (n, H, W), front (n, 1, H, W).

        C is 1, or 3 for weights with temporal context (the scene, the median and spread of its
        neighbours; :data:`~xcalving.model.context.SINGLE_SCENE_RATE` of the windows, and every
        window of a scene without context, get the single-scene context).
        """
        images, zones, fronts = [], [], []
        for _ in range(n):
            grey, zone, front, *context = flip_rotate(rezoom(self.window(), self.rng),
                                                      self.rng)
            amplitude = gamma(radiometry(grey, self.rng), self.rng)
            image = to_network_input(amplitude, "uint8", self.scaling)
            if self.context:
                single = not context or self.rng.random() < SINGLE_SCENE_RATE
                image = network_channels(image, np.stack(context) if context else None,
                                         self.scaling, single)
            images.append(np.nan_to_num(image, nan=fill_value(self.scaling)))
            zones.append(zone.astype(np.int64))
            fronts.append(thicken_front(front, self.front_dilation).astype(np.float32))
        stacked = np.stack(images)
        return {"image": torch.from_numpy(stacked if stacked.ndim == 4 else stacked[:, None]),
                "zones": torch.from_numpy(np.stack(zones)),
                "front": torch.from_numpy(np.stack(fronts)[:, None])}
