"""The one window grid: where windows lie on an array, and how overlapping windows are blended.

The grid is global: anchored at pixel (0, 0) of the whole array, never of a dask block, which is
what makes predict chunk-invariant. The last window of an axis is snapped inside the array rather
than dropped, so every pixel is seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Placement", "WindowPlan", "blend_weights", "placements", "plan_windows", "redundancy",
           "window_starts"]

_MIN_WEIGHT = 1e-3


# --- the plan ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WindowPlan:
    """Where the windows of one (y, x) array are, and how big the network input is.

    ``starts_y``/``starts_x`` are the first row/column of every window; a window covers
    ``extent`` pixels of the array along each axis (``tile``, or the axis length when that is
    shorter) and is fed to the network as ``size`` pixels (``extent`` padded up to the stride).
    """

    shape: tuple[int, int]
    tile: int
    overlap: int
    starts_y: np.ndarray
    starts_x: np.ndarray
    extent: tuple[int, int]
    size: tuple[int, int]

    @property
    def n_windows(self) -> int:
        """Number of windows in the plan."""
        return len(self.starts_y) * len(self.starts_x)


def window_starts(size: int, window: int, step: int) -> np.ndarray:
    """Offsets of windows along one axis: every ``step`` pixels, the last window snapped inside.

    An axis no longer than ``window`` gets one window at 0 (it is padded). No pixel is left out,
    unlike a plain grid that drops the remainder. Predict steps by ``tile - overlap``; the CaFFe
    patch store steps by its ``stride``.

    Examples
    --------
    >>> window_starts(100, 30, 30).tolist()
    [0, 30, 60, 70]
    >>> window_starts(20, 30, 30).tolist()
    [0]
    """
    if size <= window:
        return np.zeros(1, np.int64)
    starts = np.arange(0, size - window + 1, step, dtype=np.int64)
    if starts[-1] + window < size:
        starts = np.append(starts, size - window)
    return starts


def plan_windows(shape: tuple[int, int], tile: int, overlap: int, stride: int = 1) -> WindowPlan:
    """Lay the global window grid over an array of ``shape`` = (rows, cols).

    Examples
    --------
    >>> plan = plan_windows((100, 40), tile=32, overlap=8, stride=16)
    >>> plan.starts_y.tolist(), plan.starts_x.tolist(), plan.extent, plan.size
    ([0, 24, 48, 68], [0, 8], (32, 32), (32, 32))
    >>> plan_windows((20, 50), tile=32, overlap=8, stride=16).size  # short axis: one padded window
    (32, 32)
    """
    extent = (min(tile, shape[0]), min(tile, shape[1]))
    size = tuple(-(-e // stride) * stride for e in extent)
    return WindowPlan(
        shape=(int(shape[0]), int(shape[1])), tile=tile, overlap=overlap,
        starts_y=window_starts(shape[0], tile, tile - overlap),
        starts_x=window_starts(shape[1], tile, tile - overlap),
        extent=extent, size=(int(size[0]), int(size[1])),
    )


def _ramp(n: int, overlap: int) -> np.ndarray:
    """1-D weight: raised cosine over ``overlap`` pixels at both ends, 1 in between, > 0."""
    w = np.ones(n, dtype=np.float64)
    ramp = min(overlap, n // 2)
    if ramp > 0:
        rise = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
        w[:ramp] = rise
        w[n - ramp:] = rise[::-1]
    return np.maximum(w, _MIN_WEIGHT)


def blend_weights(extent: tuple[int, int], overlap: int) -> np.ndarray:
    """2-D blend weight of a window of ``extent`` (rows, cols): outer product of two ramps."""
    return np.outer(_ramp(extent[0], overlap), _ramp(extent[1], overlap)).astype(np.float32)


# --- the windows of one block --------------------------------------------------------------------
@dataclass(frozen=True)
class Placement:
    """Where one window of the plan meets a block's core, and its share of each pixel there.

    ``window`` and ``core`` are (rows, cols) slices of the window and of the core that cover the
    same pixels. The window's share of a pixel is its blend weight there divided by the sum of
    the weights of every window covering the pixel, so the shares at a pixel add up to 1 and
    the blended value is ``sum(share * value)``: no division pass. Weights are outer products
    of two ramps (:func:`blend_weights`), so their sums are too, and a share is the outer
    product ``weight`` of its row and column shares ``share_rows``, ``share_cols`` (float32).
    """

    start: tuple[int, int]
    window: tuple[slice, slice]
    core: tuple[slice, slice]
    share_rows: np.ndarray
    share_cols: np.ndarray

    @property
    def weight(self) -> np.ndarray:
        """The window's share of each pixel it covers in the core, (rows, cols) float32."""
        return np.outer(self.share_rows, self.share_cols)


def placements(plan: WindowPlan, core: tuple[int, int, int, int]) -> list[Placement]:
    """Every window of ``plan`` touching ``core`` = (row0, row1, col0, col1), rows first.

    Examples
    --------
    >>> plan = plan_windows((10, 4), tile=4, overlap=2)
    >>> [p.start for p in placements(plan, (0, 5, 0, 4))]
    [(0, 0), (2, 0), (4, 0)]
    >>> shares = sum(p.weight.sum() for p in placements(plan, (0, 5, 0, 4)))
    >>> round(float(shares), 4)  # one per pixel of the 5 x 4 core
    20.0
    """
    rows = _axis_shares(plan.starts_y, plan.extent[0], plan.overlap, core[0], core[1])
    cols = _axis_shares(plan.starts_x, plan.extent[1], plan.overlap, core[2], core[3])
    return [Placement((y0, x0), (wy, wx), (cy, cx), sy, sx)
            for y0, wy, cy, sy in rows for x0, wx, cx, sx in cols]


def _axis_shares(starts: np.ndarray, extent: int, overlap: int, lo: int,
                 hi: int) -> list[tuple[int, slice, slice, np.ndarray]]:
    """Along one axis, each window touching [lo, hi): start, slices, share of each pixel.

    The share is the window's ramp divided by the sum of the ramps of all windows at a pixel,
    summed in window order in float32.
    """
    ramp = _ramp(extent, overlap).astype(np.float32)
    found = [(int(s), *_overlap(int(s), extent, lo, hi))
             for s in starts[(starts < hi) & (starts + extent > lo)]]
    total = np.zeros(hi - lo, np.float32)
    for _, window, part in found:
        total[part] += ramp[window]
    return [(s, window, part, ramp[window] / total[part]) for s, window, part in found]


def _overlap(start: int, extent: int, lo: int, hi: int) -> tuple[slice, slice]:
    """(slice of the window, slice of [lo, hi)) where a window at ``start`` meets [lo, hi)."""
    first, last = max(start, lo), min(start + extent, hi)
    return slice(first - start, last - start), slice(first - lo, last - lo)


def redundancy(shape: tuple[int, int], chunks: tuple[Sequence[int], Sequence[int]], tile: int,
               overlap: int) -> float:
    """Windows computed over all blocks of ``chunks`` ÷ windows in the plan (1.0: no waste)."""
    plan = plan_windows(shape, tile, overlap)
    computed = 1
    for starts, extent, axis_chunks in zip((plan.starts_y, plan.starts_x), plan.extent, chunks,
                                           strict=True):
        edges = np.cumsum([0, *axis_chunks])
        computed *= sum(int(((starts < hi) & (starts + extent > lo)).sum())
                        for lo, hi in zip(edges[:-1], edges[1:], strict=True))
    return computed / plan.n_windows
