"""Patch transforms on numpy arrays, shared by training and fine-tuning (cheap, no torch).

:func:`thicken_front` widens the one-pixel front label; the random augmentations (zoom in or
out, flips and quarter turns, speckle and contrast, coarser or smoother sensors, gamma, another
scene mixed into the ocean) are the ones
:class:`~xcalving.data.stream.PatchStream` applies to training patches and
:mod:`xcalving.adapt.prepare` to a user's scenes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from xcalving.zones import OCEAN

#: The augmentation levels of :class:`~xcalving.data.stream.PatchStream` (``True`` is the basic
#: one: flips, turns, speckle, contrast; the others add to it, see its ``augment``).
AUGMENTS = (False, True, "heavy", "physical", "aimed")

__all__ = ["AUGMENTS", "flip_rotate", "gamma", "ocean_mixup", "radiometry", "resampled", "rezoom",
           "thicken_front"]


def thicken_front(front: np.ndarray, radius: int) -> np.ndarray:
    """Dilate a one-pixel front with a disk of ``radius`` pixels (0 keeps it as it is).

    A Euclidean distance transform gives the disk dilation at a cost independent of the radius.

    Examples
    --------
    >>> front = np.zeros((7, 7), np.uint8); front[3, 3] = 1
    >>> int(thicken_front(front, 2).sum())  # the 13 pixels of a disk of radius 2
    13
    """
    front = np.asarray(front, dtype=bool)
    if radius == 0 or not front.any():
        return front.copy()
    return ndimage.distance_transform_edt(~front) <= radius


def flip_rotate(arrays: Sequence[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """The same random flips and quarter turns for image and labels."""
    flip_y, flip_x = rng.random(2) < 0.5
    turns = int(rng.integers(4))
    square = arrays[0].shape[0] == arrays[0].shape[1]  # a quarter turn would reshape the patch
    out = []
    for a in arrays:
        a = a[::-1] if flip_y else a
        a = a[:, ::-1] if flip_x else a
        out.append(np.ascontiguousarray(np.rot90(a, turns) if square else a))
    return out


def radiometry(sar: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Speckle and contrast/brightness jitter on 8-bit amplitude; no-data (0) stays 0.

    Speckle is multiplicative Gamma noise with a few looks on intensity (amplitude squared),
    as real SAR speckle is; values are kept in 1..255, the grey range of valid pixels.
    """
    looks = rng.uniform(2.0, 8.0)
    speckle = rng.gamma(looks, 1.0 / looks, size=sar.shape).astype(np.float32)
    gain, bias = np.exp(rng.uniform(-0.2, 0.2)), rng.uniform(-20.0, 20.0)
    amplitude = np.sqrt(sar.astype(np.float32) ** 2 * speckle)
    amplitude = np.clip(gain * amplitude + bias, 1.0, 255.0)
    return np.where(sar == 0, np.float32(0.0), amplitude).astype(np.float32)


def rezoom(arrays: Sequence[np.ndarray], rng: np.random.Generator,
            max_zoom: float = 1.5, min_zoom: float = 1.0) -> list[np.ndarray]:
    """Zoom by a random factor in [``min_zoom``, ``max_zoom``], keeping the patch size.

    A factor above 1 crops a random window and enlarges it back; below 1 the whole patch
    shrinks into a random place of an empty (0: no data, zone NA, no front) patch of the same
    size. Nearest-neighbour for every array, so labels keep their classes; the scene looks as
    if seen at a finer or coarser pixel spacing, which teaches the network fjords of other
    sizes in pixels.

    Examples
    --------
    >>> a = np.ones((8, 8), np.uint8)
    >>> [int(z.sum()) for z in rezoom([a], np.random.default_rng(0), 0.5, 0.5)]
    [16]
    """
    rows, cols = arrays[0].shape
    zoom = rng.uniform(min_zoom, max_zoom)
    if zoom < 1.0:
        return _shrunk(arrays, rng, zoom)
    h, w = max(1, round(rows / zoom)), max(1, round(cols / zoom))
    top, left = int(rng.integers(rows - h + 1)), int(rng.integers(cols - w + 1))
    take_r = top + (np.arange(rows) * h // rows)
    take_c = left + (np.arange(cols) * w // cols)
    return [np.ascontiguousarray(a[np.ix_(take_r, take_c)]) for a in arrays]


def _shrunk(arrays: Sequence[np.ndarray], rng: np.random.Generator,
            zoom: float) -> list[np.ndarray]:
    """The whole patches shrunk by ``zoom`` < 1 into one random place of empty patches."""
    rows, cols = arrays[0].shape
    h, w = max(1, round(rows * zoom)), max(1, round(cols * zoom))
    top, left = int(rng.integers(rows - h + 1)), int(rng.integers(cols - w + 1))
    take_r, take_c = np.arange(h) * rows // h, np.arange(w) * cols // w
    out = []
    for a in arrays:
        canvas = np.zeros_like(a)
        canvas[top:top + h, left:left + w] = a[np.ix_(take_r, take_c)]
        out.append(canvas)
    return out


def ocean_mixup(amplitude: np.ndarray, zones: np.ndarray, partner: np.ndarray,
                rng: np.random.Generator, rate: float = 0.3,
                weights: tuple[float, float] = (0.15, 0.30)) -> np.ndarray:
    """With probability ``rate``, blend another scene into this one's ocean (and melange).

    Where this patch's label is ocean and both patches hold data, the grey value becomes
    ``(1 - w) * own + w * partner`` with ``w`` drawn from ``weights``: open water, sea ice and
    melange of other scenes show through, so that a bright or textured fjord is not read as
    glacier. Land and no-data pixels are never touched.

    Examples
    --------
    >>> own, other = np.full((2, 2), 100.0), np.full((2, 2), 200.0)
    >>> zones = np.array([[3, 3], [2, 0]])
    >>> mixed = ocean_mixup(own, zones, other, np.random.default_rng(0), rate=1.0)
    >>> bool(mixed[0, 0] > 100), float(mixed[1, 0]), float(mixed[1, 1])  # land, no data kept
    (True, 100.0, 100.0)
    """
    if partner.shape != amplitude.shape or rng.random() >= rate:
        return amplitude
    w = np.float32(rng.uniform(*weights))
    where = (zones == OCEAN) & (amplitude > 0) & (partner > 0)
    mixed = (1 - w) * amplitude.astype(np.float32) + w * partner.astype(np.float32)
    return np.where(where, mixed, amplitude).astype(np.float32)


def gamma(amplitude: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random gamma on the 1..255 grey range; no-data (0) stays 0."""
    g = np.exp(rng.uniform(-0.4, 0.4))
    out = 255.0 * (np.clip(amplitude, 0.0, 255.0) / 255.0) ** g
    return np.where(amplitude == 0, np.float32(0.0), np.maximum(out, 1.0)).astype(np.float32)


def resampled(amplitude: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Half the time, the scene as a coarser or smoother sensor would give it on this grid.

    Either multilooked (block means of 2-3 pixels, interpolated back: what ``predict`` makes of
    coarser data with ``resolution=``) or blurred (a Gaussian of 0.5-1.5 pixels: data resampled
    from another grid). No-data pixels (0) stay 0 and are never blended in.
    """
    if rng.random() >= 0.5:
        return amplitude
    valid = (amplitude > 0).astype(np.float32)
    if rng.random() < 0.5:
        sigma = rng.uniform(0.5, 1.5)
        total = ndimage.gaussian_filter(amplitude * valid, sigma)
        weight = ndimage.gaussian_filter(valid, sigma)
    else:
        k = int(rng.integers(2, 4))
        shape = amplitude.shape
        small = [ndimage.zoom(a, 1 / k, order=1, grid_mode=True, mode="nearest")
                 for a in (amplitude * valid, valid)]
        total, weight = (ndimage.zoom(a, np.divide(shape, a.shape), order=1, grid_mode=True,
                                      mode="nearest")[:shape[0], :shape[1]] for a in small)
    out = np.where(weight > 1e-3, total / np.maximum(weight, 1e-3), 0.0)
    return np.where(valid > 0, np.clip(out, 1.0, 255.0), 0.0).astype(np.float32)
