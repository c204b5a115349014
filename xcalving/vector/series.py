"""Fronts as a time series: their order in time and the distances between their dates.

The measures :mod:`xcalving.vector.qc` fences and :mod:`xcalving.vector.confidence` scores: fronts
of one grid (``grid_id``) in time order, and the distance between two fronts -- the mean, over
points sampled along both, of the distance to the nearest point sampled on the other (CaFFe's mean
distance error between two lines).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["EXCESS_GAPS", "WINDOW", "FrontPairs", "distance_excess", "front_pairs",
           "neighbour_distances", "series_rows", "series_times", "time_order"]

#: Dates compared on each side of a front.
WINDOW = 8
#: Dates on each side the distance rule measures a front against: the nearest tell a spike
#: best (a front gone back along the glacier's path lies near far dates of that path).
EXCESS_GAPS = 4
#: Most points sampled along one front to measure distances between fronts.
_MAX_POINTS = 2000


# --- order ---------------------------------------------------------------------------------------
def time_order(index: Any) -> np.ndarray:
    """Positions of ``index`` in time (index) order, equal values in the frame's order.

    Positions whose index value is missing (NaT) are left out, unless all are: a frame without
    any date is a series in its rows' order, as is one whose index does not sort (mixed types).
    """
    positions = np.arange(len(index))
    dated = positions[~np.asarray(pd.isna(index), bool)]
    if not len(dated):
        return positions
    try:
        return dated[np.argsort(np.asarray(index)[dated], kind="stable")]
    except TypeError:  # an index of mixed types: keep the frame's order
        return dated


def series_rows(frame: Any) -> list[np.ndarray]:
    """Row positions of each grid, in time order (:func:`time_order`; undated rows left out)."""
    groups = frame["grid_id"].astype(str).to_numpy() if "grid_id" in frame.columns else \
        np.zeros(len(frame), dtype=str)
    order = time_order(frame.index)
    return [order[groups[order] == group] for group in dict.fromkeys(groups[order])]


def series_times(frame: Any, series: list[np.ndarray]) -> np.ndarray:
    """Each row's time for trend lines: days for a DatetimeIndex, else its rank in its series."""
    times = np.full(len(frame), np.nan)
    for rows in series:
        if isinstance(frame.index, pd.DatetimeIndex) and len(rows):
            times[rows] = (frame.index[rows] - frame.index[rows[0]]) / pd.Timedelta(days=1)
        else:
            times[rows] = np.arange(len(rows))
    return times


# --- distances -----------------------------------------------------------------------------------
def _samples(geometry: Any, step: float) -> Any:
    """A k-d tree of points every ``step`` (coarser for very long fronts) along ``geometry``."""
    import shapely  # heavy: shapely, loaded on first use

    step = max(step, geometry.length / _MAX_POINTS)
    # a piece of one pixel is a line of two equal points, which GEOS will not segmentize
    parts = [shapely.segmentize(part, step) if part.length > 0 else part
             for part in shapely.get_parts(geometry)]
    return cKDTree(np.concatenate([shapely.get_coordinates(p) for p in parts]))


def _front_distance(a: Any, b: Any) -> float:
    """Symmetric mean distance between two fronts sampled as k-d trees (to half a step).

    Points to nearest sampled points, not to the lines: O(n log n) where point-to-line
    distances cost O(n²), at most half a sampling step too long.
    """
    both = np.concatenate([b.query(a.data)[0], a.query(b.data)[0]])
    return float(both.mean())


@dataclass(frozen=True)
class FrontPairs:
    """Distances between the fronts of each series up to ``window`` dates apart."""

    series: list[np.ndarray]  # rows with a front, of each series, in time order
    distance: dict[tuple[int, int], float]  # keyed (smaller row, larger row)
    rows: int  # rows of the frame
    window: int
    step: float  # sampling step along the fronts (the distances are right to half a step)

    def between(self, i: int, j: int) -> float:
        """Distance between the fronts of rows ``i`` and ``j``."""
        return self.distance[(min(i, j), max(i, j))]


def front_pairs(frame: gpd.GeoDataFrame, *, window: int = WINDOW,
                step: float | None = None) -> FrontPairs:
    """Measure the distances :func:`neighbour_distances` and the distance rule share.

    The distance between two fronts is the mean, over points sampled every ``step`` along both,
    of the distance to the nearest point sampled on the other (CaFFe's MDE between two lines,
    to half a step), in the frame's units; ``step`` defaults to 1/200 of the median length.
    Only non-empty fronts of one grid (``grid_id``) and at most ``window`` dates apart count.
    """
    geoms = list(frame.geometry)
    valid = np.array([g is not None and not g.is_empty for g in geoms], bool)
    if step is None:
        lengths = [geoms[i].length for i in np.flatnonzero(valid)]
        step = (float(np.median(lengths)) / 200 if lengths else 0.0) or 1.0
    series = [rows[valid[rows]] for rows in series_rows(frame)]
    trees: dict[int, Any] = {}
    distance: dict[tuple[int, int], float] = {}
    for rows in series:
        for pos, i in enumerate(rows):
            for j in rows[pos + 1:pos + 1 + window]:
                for row in (i, j):
                    if row not in trees:
                        trees[row] = _samples(geoms[row], step)
                distance[(min(i, j), max(i, j))] = _front_distance(trees[i], trees[j])
    return FrontPairs(series, distance, len(frame), window, float(step))


def neighbour_distances(frame: gpd.GeoDataFrame, *, window: int = WINDOW,
                        step: float | None = None, pairs: FrontPairs | None = None
                        ) -> np.ndarray:
    """Median distance from each front to the fronts of up to ``window`` dates either side.

    Only fronts on the same grid (``grid_id`` column, if any) and not empty count; distances as
    :func:`front_pairs` measures them (``pairs``: already measured).

    Returns
    -------
    numpy.ndarray
        One value a row; NaN for an empty front or one without a non-empty neighbour.
    """
    pairs = pairs if pairs is not None else front_pairs(frame, window=window, step=step)
    out = np.full(pairs.rows, np.nan)
    for rows in pairs.series:
        for pos, i in enumerate(rows):
            near = np.r_[rows[max(0, pos - pairs.window):pos], rows[pos + 1:pos + 1 + pairs.window]]
            if len(near):
                out[i] = float(np.median([pairs.between(i, j) for j in near]))
    return out


def distance_excess(frame: gpd.GeoDataFrame, *, window: int = WINDOW, step: float | None = None,
                    pairs: FrontPairs | None = None) -> np.ndarray:
    """How much farther each front lies from the fronts before and after it than they do apart.

    For each neighbour ``g`` dates away (up to :data:`EXCESS_GAPS` and ``window``), the
    distance between the two fronts less the median distance between the *other* fronts of the
    window that are ``g`` apart; the median of these excesses over the earlier fronts (column 0)
    and over the later ones (column 1). About 0 for a steady advance or retreat at any speed;
    large on both sides for a front off the path of the others; NaN for an empty front and for
    a side without a front to compare with.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> ys = [1000 - 50 * k for k in range(10)]  # a steady retreat of 50 m a date
    >>> ys[5] = 1500  # and a spike
    >>> frame = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, y), (800, y)]) for y in ys])
    >>> distance_excess(frame)[[0, 4, 5, 9]].round().tolist()
    [[nan, 0.0], [0.0, 0.0], [500.0, 750.0], [0.0, nan]]
    """
    pairs = pairs if pairs is not None else front_pairs(frame, window=window, step=step)
    gaps = min(pairs.window, EXCESS_GAPS)
    out = np.full((pairs.rows, 2), np.nan)
    for rows in pairs.series:
        table = np.full((len(rows), gaps + 1), np.nan)  # [a, g]: front a to front a + g
        for a in range(len(rows)):
            for g in range(1, min(gaps, len(rows) - 1 - a) + 1):
                table[a, g] = pairs.between(rows[a], rows[a + g])
        for pos, i in enumerate(rows):
            out[i] = _excess(table, pos, pairs.window)
    return out


def _excess(table: np.ndarray, pos: int, window: int) -> list[float]:
    """The two excesses of front ``pos`` of a gap ``table`` (see :func:`distance_excess`)."""
    n = len(table)
    lo, hi = max(0, pos - window), min(n - 1, pos + window)
    sides: tuple[list[float], list[float]] = ([], [])
    for g in range(1, table.shape[1]):
        starts = np.arange(lo, hi - g + 1)
        others = table[starts[(starts != pos) & (starts + g != pos)], g]
        for side, a in enumerate((pos - g, pos)):
            if len(others) and a >= 0 and a + g < n:
                sides[side].append(table[a, g] - float(np.median(others)))
    return [float(np.median(s)) if s else float("nan") for s in sides]
