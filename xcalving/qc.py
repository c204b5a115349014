"""Quality control of a front time series: robust rules that flag fronts, never delete them.

Operational front products screen their series (AutoTerm rejects fronts of abnormal length or
jaggedness and spikes in the box-area series; IceLines marks unreliable positions): a single
bad scene (wet snow, mélange, a noisy prediction) makes a spike that a trend or a rate would
otherwise swallow. :func:`flag_outliers` compares every front with the fronts of up to
``window`` dates before and after it **on the same grid** (the ``grid_id`` column), never with
itself, by interquartile-range fences:

* ``distance`` -- the median distance to the neighbouring dates' fronts above ``Q3 + k·IQR``
  (k = 2): a front far from where the fronts before and after it are;
* ``length`` -- front length below ``Q1 - k·IQR`` (k = 1.5; ``length_sides="both"`` adds the
  upper fence ``Q3 + k·IQR``, as AutoTerm does);
* ``jaggedness`` -- sinuosity (length ÷ the distance between the two farthest vertices) above
  ``Q3 + k·IQR`` (AutoTerm: k = 2); off unless ``jaggedness_k`` is given;
* ``position`` -- with a ``box``: the terminus position (box method) outside the two fences
  (k = 2);
* ``empty`` -- no front was found.

The defaults were chosen on the leave-one-glacier-out runs (``benchmarks/confidence_caffe256.py``)
by keeping the rules whose flagged fronts had at least 1.5 × the mean error of the others, on
each held-out glacier alone: both glaciers kept the same rules (distance, short length); long
fronts and jagged ones were not worse than the rest there (0.6-1.4 ×), so those fences are
options, not defaults.

A front breaks a rule only where at least ``min_dates`` neighbours have a value. Flags go in
two columns, ``outlier`` (bool) and ``qc_reason`` (the rules broken, joined by ``","``; ``""``
when none); :func:`xcalving.fronts` adds them with the defaults, and
:func:`xcalving.change.terminus_change` leaves flagged fronts out of the change by default.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

from xcalving.errors import InputError

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

__all__ = ["FLAG_COLUMNS", "REASONS", "flag_outliers", "grid_id", "neighbour_distances",
           "outlier_flags", "position_outliers", "series_rows", "sinuosity", "window_outliers"]

#: The columns the flags are written to.
FLAG_COLUMNS = ("outlier", "qc_reason")
#: The rules, in the order their names appear in ``qc_reason``.
REASONS = ("empty", "length", "jaggedness", "distance", "position")
#: Defaults: dates compared on each side, the IQR multiples of the rules (the jaggedness rule
#: is off by default: None), and the fewest neighbours a rule needs.
WINDOW, LENGTH_K, DISTANCE_K, POSITION_K, MIN_DATES = 8, 1.5, 2.0, 2.0, 4
JAGGEDNESS_K: float | None = None
#: Which fences of the length rule apply by default: ``"short"``, ``"long"`` or ``"both"``.
LENGTH_SIDES = "short"
#: The IQR is never taken below this share of the window's median (a series of identical
#: values would otherwise flag the smallest wiggle).
IQR_FLOOR = 0.1
#: Most points sampled along one front to measure distances between fronts.
_MAX_POINTS = 2000


# --- per-front measures --------------------------------------------------------------------------
def sinuosity(geometry: Any) -> float:
    """Length of a front ÷ the distance between its two farthest vertices (1 for a straight line).

    NaN for an empty front or one whose vertices coincide.

    Examples
    --------
    >>> import shapely
    >>> sinuosity(shapely.LineString([(0, 0), (3, 4)]))
    1.0
    >>> round(sinuosity(shapely.LineString([(0, 0), (1, 1), (2, 0)])), 3)
    1.414
    """
    import shapely

    if geometry is None or geometry.is_empty:
        return float("nan")
    hull = shapely.get_coordinates(shapely.convex_hull(geometry))
    diameter = float(np.max(np.hypot(*(hull[:, None, :] - hull[None, :, :]).transpose(2, 0, 1))))
    return float(geometry.length / diameter) if diameter > 0 else float("nan")


def grid_id(crs: Any, transform: Any, shape: tuple[int, ...]) -> str:
    """A short id of a grid (CRS, transform and shape): fronts are compared only within one.

    Examples
    --------
    >>> grid_id(None, None, (256, 256)) == grid_id(None, None, (256, 256))
    True
    >>> grid_id(None, None, (256, 256)) == grid_id(None, None, (256, 300))
    False
    """
    crs_text = crs.to_wkt() if crs is not None and hasattr(crs, "to_wkt") else str(crs)
    steps = tuple(round(float(v), 9) for v in tuple(transform)[:6]) if transform is not None \
        else None
    text = f"{crs_text}|{steps}|{tuple(int(n) for n in shape)}"
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _samples(geometry: Any, step: float) -> Any:
    """A k-d tree of points every ``step`` (coarser for very long fronts) along ``geometry``."""
    import shapely
    from scipy.spatial import cKDTree

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


# --- the series ----------------------------------------------------------------------------------
def series_rows(frame: Any) -> list[np.ndarray]:
    """Row positions of each grid, in time order (rows without an index value last)."""
    import pandas as pd

    groups = frame["grid_id"].astype(str).to_numpy() if "grid_id" in frame.columns else \
        np.zeros(len(frame), dtype=str)
    index = frame.index
    order = np.arange(len(frame))
    if len(frame) and not pd.isna(index).all():
        try:
            order = np.argsort(np.asarray(index), kind="stable")
        except TypeError:  # an index of mixed types: keep the frame's order
            pass
    out = []
    for group in dict.fromkeys(groups[order]):
        out.append(order[groups[order] == group])
    return out


def neighbour_distances(frame: gpd.GeoDataFrame, *, window: int = WINDOW,
                        step: float | None = None) -> np.ndarray:
    """Median distance from each front to the fronts of up to ``window`` dates either side.

    Only fronts on the same grid (``grid_id`` column, if any) and not empty count; the distance
    between two fronts is the mean, over points sampled every ``step`` along both, of the
    distance to the nearest point sampled on the other front (CaFFe's MDE between two lines, to
    half a step), in the frame's units.

    Parameters
    ----------
    frame
        Fronts indexed by date (from :func:`xcalving.fronts`).
    window
        Dates on each side to compare with.
    step
        Sampling step along the lines; default: 1/200 of the median front length.

    Returns
    -------
    numpy.ndarray
        One value a row; NaN for an empty front or one without a non-empty neighbour.
    """
    geoms = list(frame.geometry)
    valid = np.array([g is not None and not g.is_empty for g in geoms], bool)
    out = np.full(len(frame), np.nan)
    if valid.sum() < 2:
        return out
    if step is None:
        step = float(np.median([geoms[i].length for i in np.flatnonzero(valid)])) / 200 or 1.0
    cache: dict[int, Any] = {}
    pairs: dict[tuple[int, int], float] = {}

    def sampled(i: int) -> Any:
        if i not in cache:
            cache[i] = _samples(geoms[i], step)
        return cache[i]

    for rows in series_rows(frame):
        rows = rows[valid[rows]]
        for pos, i in enumerate(rows):
            near = np.r_[rows[max(0, pos - window):pos], rows[pos + 1:pos + 1 + window]]
            values = []
            for j in near:
                key = (min(i, j), max(i, j))
                if key not in pairs:
                    pairs[key] = _front_distance(sampled(int(i)), sampled(int(j)))
                values.append(pairs[key])
            if values:
                out[i] = float(np.median(values))
    return out


def window_outliers(values: np.ndarray, series: list[np.ndarray], *, window: int, k: float,
                    two_sided: bool, min_dates: int = MIN_DATES,
                    floor: float | None = None) -> np.ndarray:
    """Whether each value lies outside the IQR fences of its neighbours in its series.

    ``series`` lists the row positions of each series in time order (as :func:`flag_outliers`
    builds it); the neighbours of a row are the up to ``window`` finite values on each side,
    never the row itself. The IQR is taken at least :data:`IQR_FLOOR` × the neighbours'
    median, or ``floor`` where given.

    Examples
    --------
    >>> values = np.array([10, 11, 10, 12, 30, 11, 10, 12, 11.0])
    >>> window_outliers(values, [np.arange(9)], window=4, k=1.5, two_sided=True).nonzero()[0]
    array([4])
    """
    values = np.asarray(values, float)
    out = np.zeros(len(values), bool)
    for rows in series:
        rows = rows[np.isfinite(values[rows])]
        for pos, i in enumerate(rows):
            near = values[np.r_[rows[max(0, pos - window):pos], rows[pos + 1:pos + 1 + window]]]
            if len(near) < min_dates:
                continue
            q1, median, q3 = np.percentile(near, [25, 50, 75])
            iqr = max(q3 - q1, IQR_FLOOR * abs(median), floor or 0.0)
            out[i] = values[i] > q3 + k * iqr or (two_sided and values[i] < q1 - k * iqr)
    return out


def _reasons(broken: dict[str, np.ndarray], n: int) -> pd.DataFrame:
    """The flag columns from a boolean array per rule."""
    import pandas as pd

    reason = [",".join(r for r in REASONS if r in broken and broken[r][i]) for i in range(n)]
    return pd.DataFrame({"outlier": np.array([bool(r) for r in reason], bool),
                         "qc_reason": np.array(reason, dtype=object)})


def _check_settings(window: Any, min_dates: Any, length_sides: Any, **ks: Any) -> None:
    for name, value in {"window": window, "min_dates": min_dates}.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise InputError(f"{name} must be a whole number >= 1; got {value!r}.")
    if length_sides not in ("short", "long", "both"):
        raise InputError(f"length_sides must be 'short', 'long' or 'both'; got "
                         f"{length_sides!r}.")
    for name, value in ks.items():
        if value is None and name == "jaggedness_k":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not np.isfinite(value) or value <= 0:
            raise InputError(f"{name} must be a number > 0 (a multiple of the IQR); got "
                             f"{value!r}.")


def _length_outliers(lengths: np.ndarray, series: list[np.ndarray], sides: str, k: float,
                     **common: Any) -> np.ndarray:
    if sides == "both":
        return window_outliers(lengths, series, k=k, two_sided=True, **common)
    sign = -1.0 if sides == "short" else 1.0  # the lower fence of x is the upper one of -x
    return window_outliers(sign * lengths, series, k=k, two_sided=False, **common)


def outlier_flags(frame: gpd.GeoDataFrame, *, box: Any = None, window: int = WINDOW,
                  length_k: float = LENGTH_K, length_sides: str = LENGTH_SIDES,
                  jaggedness_k: float | None = JAGGEDNESS_K, distance_k: float = DISTANCE_K,
                  position_k: float = POSITION_K, min_dates: int = MIN_DATES,
                  distances: np.ndarray | None = None) -> pd.DataFrame:
    """The flag columns of :func:`flag_outliers` as a DataFrame (same row order, plain index).

    ``distances`` are neighbour distances already measured (in any unit: the fences are
    relative), e.g. the ``neighbour_distance_px`` column; measured here when None.
    """
    _check_settings(window, min_dates, length_sides, length_k=length_k,
                    jaggedness_k=jaggedness_k, distance_k=distance_k, position_k=position_k)
    series = series_rows(frame)
    geoms = list(frame.geometry)
    lengths = np.array([g.length if g is not None and not g.is_empty else np.nan for g in geoms])
    common = {"window": window, "min_dates": min_dates}
    if distances is None:
        distances = neighbour_distances(frame, window=window)
    broken = {
        "empty": ~np.isfinite(lengths) | (lengths == 0),
        "length": _length_outliers(lengths, series, length_sides, length_k, **common),
        "distance": window_outliers(np.asarray(distances, float), series, k=distance_k,
                                    two_sided=False, **common),
    }
    if jaggedness_k is not None:
        broken["jaggedness"] = window_outliers(np.array([sinuosity(g) for g in geoms]), series,
                                               k=jaggedness_k, two_sided=False, **common)
    if box is not None:
        from xcalving.change import terminus_position

        positions = np.array([terminus_position(g, box) for g in geoms])
        broken["position"] = position_outliers(positions, series, k=position_k, **common)
    return _reasons(broken, len(frame))


def position_outliers(positions: np.ndarray, series: list[np.ndarray], *, window: int, k: float,
                      min_dates: int = MIN_DATES) -> np.ndarray:
    """Terminus positions outside the IQR fences of their neighbours (the ``position`` rule).

    The IQR is taken at least the median step between consecutive positions of the series,
    so a steady retreat is not a spike.
    """
    positions = np.asarray(positions, float)
    out = np.zeros(len(positions), bool)
    for rows in series:
        finite = positions[rows][np.isfinite(positions[rows])]
        step = float(np.median(np.abs(np.diff(finite)))) if len(finite) > 1 else 0.0
        out |= window_outliers(positions, [rows], window=window, k=k, two_sided=True,
                               min_dates=min_dates, floor=step)
    return out


def flag_outliers(frame: gpd.GeoDataFrame, *, box: Any = None, window: int = WINDOW,
                  length_k: float = LENGTH_K, length_sides: str = LENGTH_SIDES,
                  jaggedness_k: float | None = JAGGEDNESS_K, distance_k: float = DISTANCE_K,
                  position_k: float = POSITION_K, min_dates: int = MIN_DATES
                  ) -> gpd.GeoDataFrame:
    """Flag fronts that break the series' robust rules; a copy with ``outlier`` and ``qc_reason``.

    Parameters
    ----------
    frame
        Fronts indexed by date (:func:`xcalving.fronts`; any GeoDataFrame of lines). Rows with
        different ``grid_id`` values are separate series; without the column, one series.
    box
        A box along the glacier (see :func:`xcalving.change.terminus_change`): adds the
        ``position`` rule on the terminus position. Its orientation does not matter here.
    window
        Dates on each side of a front that it is compared with (default 8).
    length_k, distance_k, position_k
        IQR multiples of the fences: 1.5 for the length, 2 for the neighbour distance (above
        only) and 2 for the position (both sides).
    length_sides
        The length fences that apply: ``"short"`` (default: fronts much shorter than their
        neighbours'), ``"long"`` or ``"both"`` (AutoTerm's rule).
    jaggedness_k
        IQR multiple of the upper sinuosity fence (AutoTerm: 2); None (default) leaves the
        rule out.
    min_dates
        Fewest neighbours with a value for a rule to apply (default 4).

    Returns
    -------
    geopandas.GeoDataFrame
        ``frame`` with ``outlier`` (bool) and ``qc_reason`` (the rules broken, from
        :data:`REASONS`, joined by ``","``; ``""`` when none) set; nothing is dropped.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd, shapely
    >>> ys = [1000, 1010, 995, 1005, 2500, 1000, 990, 1010, 1000]
    >>> frame = gpd.GeoDataFrame(
    ...     geometry=[shapely.LineString([(0, y), (800, y + 50)]) for y in ys],
    ...     index=pd.date_range("2020-01-01", periods=9, freq="12D", name="time"))
    >>> flagged = flag_outliers(frame)
    >>> flagged["qc_reason"].tolist()[3:6]
    ['', 'distance', '']
    """
    flags = outlier_flags(frame, box=box, window=window, length_k=length_k,
                          length_sides=length_sides, jaggedness_k=jaggedness_k,
                          distance_k=distance_k, position_k=position_k, min_dates=min_dates)
    out = frame.copy()
    out["outlier"] = flags["outlier"].to_numpy()
    out["qc_reason"] = flags["qc_reason"].to_numpy()
    return out
