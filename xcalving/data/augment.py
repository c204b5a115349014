"""Patch transforms on numpy arrays, shared by training and fine-tuning (cheap, no torch).

:func:`thicken_front` widens the one-pixel front label; the random augmentations (zoom-in,
flips and quarter turns, speckle and contrast, coarser or smoother sensors, gamma) are the ones
:class:`~xcalving.data.stream.PatchStream` applies to training patches and
:mod:`xcalving.adapt.prepare` to a user's scenes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

__all__ = ["flip_rotate", "gamma", "radiometry", "resampled", "rezoom", "thicken_front"]


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
            max_zoom: float = 1.5) -> list[np.ndarray]:
    """Zoom in by a random factor in [1, ``max_zoom``]: crop a random window, enlarge it back.

    Nearest-neighbour for every array, so labels keep their classes; the scene looks as if seen
    at a finer pixel spacing, which teaches the network fjords of other sizes in pixels.
    """
    rows, cols = arrays[0].shape
    zoom = rng.uniform(1.0, max_zoom)
    h, w = max(1, round(rows / zoom)), max(1, round(cols / zoom))
    top, left = int(rng.integers(rows - h + 1)), int(rng.integers(cols - w + 1))
    take_r = top + (np.arange(rows) * h // rows)
    take_c = left + (np.arange(cols) * w // cols)
    return [np.ascontiguousarray(a[np.ix_(take_r, take_c)]) for a in arrays]


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
