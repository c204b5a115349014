"""Quality control of a front time series: robust rules that flag fronts, never delete them.

Operational front products screen their series (AutoTerm rejects fronts of abnormal length or
jaggedness and spikes in the box-area series; IceLines marks unreliable positions): a single
bad scene (wet snow, mélange, a noisy prediction) makes a spike that a trend or a rate would
otherwise swallow. :func:`flag_outliers` compares every front with the fronts of up to
``window`` dates before and after it **on the same grid** (the ``grid_id`` column), never with
itself, by interquartile-range fences:

* ``distance`` -- the distance excess (:func:`~xcalving.vector.series.distance_excess`: how
  much farther the front lies from the fronts of the nearest earlier, and later, dates than
  they lie from each other as many dates apart) above the same excess of the neighbours: by
  ``k/2·IQR`` above Q3 on both sides, or on its one side by ``k·IQR`` for the first and last
  front (k = 2). A front off the path of the fronts before and after it, whatever the speed of
  the series; the fronts on either side of a real jump (a calving event) stand out on one side
  only and are not flagged;
* ``length`` -- front length below ``Q1 - k·IQR`` (k = 1.5; ``length_sides="both"`` adds the
  upper fence ``Q3 + k·IQR``, as AutoTerm does);
* ``jaggedness`` -- sinuosity (length ÷ the distance between the two farthest vertices) above
  ``Q3 + k·IQR`` (AutoTerm: k = 2); off unless ``jaggedness_k`` is given;
* ``position`` -- with a ``box``: the terminus position (box method) outside the two fences
  about the neighbours' trend line (Theil–Sen, extrapolated at the ends) (k = 2);
* ``empty`` -- no front was found.

The defaults were chosen on the leave-one-glacier-out runs (``benchmarks/confidence_caffe256.py``)
by keeping the rules whose flagged fronts had at least 1.5 × the mean error of the others, on
each held-out glacier alone: both glaciers kept the same rules (distance, short length); long
fronts and jagged ones were not worse than the rest there (0.6-1.4 ×), so those fences are
options, not defaults.

The first and last dates are compared with the neighbours they have, against the series' own
trend (the distances between the neighbours as many dates apart, on the one side there is; the
neighbours' trend line, extrapolated), so a steady advance or retreat flags nothing, at its
ends too. The IQR of the distance and position rules is never below :data:`MIN_IQR_PX` pixel
(``frame.attrs["pixel_size"]``), so a front a pixel off a still series never flags. Rows without
a date (NaT) are compared with no other; rows are put in time order, whatever the frame's.

A front breaks a rule only where at least ``min_dates`` neighbours have a value. Flags go in
two columns, ``outlier`` (bool) and ``qc_reason`` (the rules broken, joined by ``","``; ``""``
when none); :func:`xcalving.fronts` adds them with the defaults, and
:func:`xcalving.vector.change.terminus_change` leaves flagged fronts out of the change by default.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xcalving.errors import InputError
from xcalving.vector.box import terminus_position
from xcalving.vector.series import (
    WINDOW,
    FrontPairs,
    distance_excess,
    front_pairs,
    series_rows,
    series_times,
)

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["FLAG_COLUMNS", "REASONS", "flag_outliers", "grid_id", "outlier_flags",
           "pixel_size_of", "position_outliers", "sinuosity", "window_outliers"]

#: The columns the flags are written to.
FLAG_COLUMNS = ("outlier", "qc_reason")
#: The rules, in the order their names appear in ``qc_reason``.
REASONS = ("empty", "length", "jaggedness", "distance", "position")
#: Defaults: the IQR multiples of the rules (the jaggedness rule is off by default: None), and
#: the fewest neighbours a rule needs (the dates compared on each side: :data:`WINDOW`).
LENGTH_K, DISTANCE_K, POSITION_K, MIN_DATES = 1.5, 2.0, 2.0, 4
JAGGEDNESS_K: float | None = None
#: Which fences of the length rule apply by default: ``"short"``, ``"long"`` or ``"both"``.
LENGTH_SIDES = "short"
#: The IQR is never taken below this share of the window's median (a series of identical
#: values would otherwise flag the smallest wiggle).
IQR_FLOOR = 0.1
#: Nor is the IQR of the distance and position rules ever below this many pixels (nor, for
#: distances, the sampling step): however still a series, a front a pixel off is no outlier.
MIN_IQR_PX = 1.0


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
    import shapely  # heavy: shapely, loaded on first use

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


# --- the series ----------------------------------------------------------------------------------
def pixel_size_of(frame: Any, pixel_size: Any = None) -> float:
    """``pixel_size``, else ``frame.attrs["pixel_size"]`` (CRS units a pixel), else 1."""
    value = frame.attrs.get("pixel_size", 1.0) if pixel_size is None else pixel_size
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating) or \
            not np.isfinite(value) or value <= 0:
        raise InputError(f"pixel_size must be the fronts' CRS units per pixel, a number > 0 "
                         f"(frame.attrs['pixel_size'] where fronts() set it); got {value!r}.")
    return float(value)


def _trend(t: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    """Theil–Sen line through (t, v): slope and intercept (flat where all ``t`` are equal)."""
    i, j = np.triu_indices(len(t), 1)
    dt = t[j] - t[i]
    keep = dt != 0
    slope = float(np.median((v[j] - v[i])[keep] / dt[keep])) if keep.any() else 0.0
    return slope, float(np.median(v - slope * t))


def _outside(values: np.ndarray, i: int, near: np.ndarray, times: np.ndarray | None, *,
             k: float, two_sided: bool, floor: float) -> bool:
    """Whether ``values[i]`` lies outside the IQR fences of ``values[near]``.

    With ``times``, of their residuals from the neighbours' trend line, which is extrapolated
    where the front lies beyond them (the first and last dates).
    """
    mine, theirs = float(values[i]), values[near]
    floor = max(IQR_FLOOR * abs(float(np.median(theirs))), floor)
    if times is not None:
        t = times[near] - times[i]
        slope, intercept = _trend(t, theirs)
        mine, theirs = mine - intercept, theirs - (intercept + slope * t)
    q1, q3 = np.percentile(theirs, [25, 75])
    iqr = max(q3 - q1, floor)
    return bool(mine > q3 + k * iqr or (two_sided and mine < q1 - k * iqr))


def window_outliers(values: np.ndarray, series: list[np.ndarray], *, window: int, k: float,
                    two_sided: bool, min_dates: int = MIN_DATES, floor: float | None = None,
                    times: np.ndarray | None = None) -> np.ndarray:
    """Whether each value lies outside the IQR fences of its neighbours in its series.

    ``series`` lists the row positions of each series in time order (as :func:`flag_outliers`
    builds it); the neighbours of a row are the up to ``window`` finite values on each side,
    never the row itself. The IQR is taken at least :data:`IQR_FLOOR` × the neighbours'
    median, and at least ``floor`` where given. With ``times`` (one a row), the fences are
    about the neighbours' robust trend line (Theil–Sen), extrapolated at the ends of a series.

    Examples
    --------
    >>> values = np.array([10, 11, 10, 12, 30, 11, 10, 12, 11.0])
    >>> window_outliers(values, [np.arange(9)], window=4, k=1.5, two_sided=True).nonzero()[0]
    array([4])
    >>> steady = np.arange(9) * 50.0  # the ends of a trend are not outliers about it
    >>> window_outliers(steady, [np.arange(9)], window=4, k=1.5, two_sided=True,
    ...                 times=np.arange(9.0)).any()
    np.False_
    """
    values = np.asarray(values, float)
    out = np.zeros(len(values), bool)
    for rows in series:
        rows = rows[np.isfinite(values[rows])]
        for pos, i in enumerate(rows):
            near = np.r_[rows[max(0, pos - window):pos], rows[pos + 1:pos + 1 + window]]
            if len(near) >= min_dates:
                out[i] = _outside(values, i, near, times, k=k, two_sided=two_sided,
                                  floor=floor or 0.0)
    return out


def _reasons(broken: dict[str, np.ndarray], n: int) -> pd.DataFrame:
    """The flag columns from a boolean array per rule."""
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


def _distance_outliers(excess: np.ndarray, series: list[np.ndarray], k: float,
                       **common: Any) -> np.ndarray:
    """The distance rule on :func:`distance_excess` (column 0: earlier dates, 1: later ones).

    Each side is fenced against the same side of the neighbours. A front with both sides must
    stand out on both, by half the fence each (``Q3 + k/2·IQR``): a front beside a real jump (a
    calving event), or beside a spike, stands out on one side only. A first or last front,
    which has one side, must stand out on it by the whole fence (``Q3 + k·IQR``).
    """
    has = np.isfinite(excess)
    half, whole = ([window_outliers(excess[:, side], series, two_sided=False, k=kk, **common)
                    for side in (0, 1)] for kk in (k / 2, k))
    return (half[0] & half[1] & has.all(axis=1)) | (whole[0] & ~has[:, 1]) | \
        (whole[1] & ~has[:, 0])


def outlier_flags(frame: gpd.GeoDataFrame, *, box: Any = None, window: int = WINDOW,
                  length_k: float = LENGTH_K, length_sides: str = LENGTH_SIDES,
                  jaggedness_k: float | None = JAGGEDNESS_K, distance_k: float = DISTANCE_K,
                  position_k: float = POSITION_K, min_dates: int = MIN_DATES,
                  pixel_size: float | None = None, pairs: FrontPairs | None = None
                  ) -> pd.DataFrame:
    """The flag columns of :func:`flag_outliers` as a DataFrame (same row order, plain index).

    ``pairs`` are the distances between fronts already measured (:func:`front_pairs`, with the
    same ``window``); measured here when None.
    """
    _check_settings(window, min_dates, length_sides, length_k=length_k,
                    jaggedness_k=jaggedness_k, distance_k=distance_k, position_k=position_k)
    series = series_rows(frame)
    geoms = list(frame.geometry)
    lengths = np.array([g.length if g is not None and not g.is_empty else np.nan for g in geoms])
    common: dict[str, Any] = {"window": window, "min_dates": min_dates}
    min_iqr = MIN_IQR_PX * pixel_size_of(frame, pixel_size)
    pairs = pairs if pairs is not None else front_pairs(frame, window=window)
    broken = {
        "empty": ~np.isfinite(lengths) | (lengths == 0),
        "length": _length_outliers(lengths, series, length_sides, length_k, **common),
        "distance": _distance_outliers(distance_excess(frame, pairs=pairs), series, distance_k,
                                       floor=max(min_iqr, pairs.step), **common),
    }
    if jaggedness_k is not None:
        broken["jaggedness"] = window_outliers(np.array([sinuosity(g) for g in geoms]), series,
                                               k=jaggedness_k, two_sided=False, **common)
    if box is not None:
        positions = np.array([terminus_position(g, box) for g in geoms])
        broken["position"] = position_outliers(positions, series, k=position_k, floor=min_iqr,
                                               times=series_times(frame, series), **common)
    return _reasons(broken, len(frame))


def position_outliers(positions: np.ndarray, series: list[np.ndarray], *, window: int, k: float,
                      min_dates: int = MIN_DATES, floor: float = 0.0,
                      times: np.ndarray | None = None) -> np.ndarray:
    """Terminus positions outside the IQR fences of their neighbours (the ``position`` rule).

    With ``times`` (:func:`series_times`) the fences are about the neighbours' trend line, so
    a steady retreat is not a spike, at its first and last dates either. The IQR is taken at
    least the median step between consecutive positions of the series and ``floor`` (CRS
    units).
    """
    positions = np.asarray(positions, float)
    out = np.zeros(len(positions), bool)
    for rows in series:
        finite = positions[rows][np.isfinite(positions[rows])]
        step = float(np.median(np.abs(np.diff(finite)))) if len(finite) > 1 else 0.0
        out |= window_outliers(positions, [rows], window=window, k=k, two_sided=True,
                               min_dates=min_dates, floor=max(step, floor), times=times)
    return out


def flag_outliers(frame: gpd.GeoDataFrame, *, box: Any = None, window: int = WINDOW,
                  length_k: float = LENGTH_K, length_sides: str = LENGTH_SIDES,
                  jaggedness_k: float | None = JAGGEDNESS_K, distance_k: float = DISTANCE_K,
                  position_k: float = POSITION_K, min_dates: int = MIN_DATES,
                  pixel_size: float | None = None) -> gpd.GeoDataFrame:
    """Flag fronts that break the series' robust rules; a copy with ``outlier`` and ``qc_reason``.

    Parameters
    ----------
    frame
        Fronts indexed by date (:func:`xcalving.fronts`; any GeoDataFrame of lines). Rows with
        different ``grid_id`` values are separate series; without the column, one series.
    box
        A box along the glacier (see :func:`xcalving.vector.change.terminus_change`): adds the
        ``position`` rule on the terminus position. Its orientation does not matter here.
    window
        Dates on each side of a front that it is compared with (default 8).
    length_k, distance_k, position_k
        IQR multiples of the fences: 1.5 for the length, 2 for the distance excess (above
        only: half of it on each side of an inner front, all of it on the one side of the first
        and last) and 2 for the position about the neighbours' trend (both sides).
    length_sides
        The length fences that apply: ``"short"`` (default: fronts much shorter than their
        neighbours'), ``"long"`` or ``"both"`` (AutoTerm's rule).
    jaggedness_k
        IQR multiple of the upper sinuosity fence (AutoTerm: 2); None (default) leaves the
        rule out.
    min_dates
        Fewest neighbours with a value for a rule to apply (default 4).
    pixel_size
        CRS units per pixel (default ``frame.attrs["pixel_size"]``, which :func:`xcalving.fronts`
        sets; 1 where missing): the IQR of the distance and position rules is never taken
        below :data:`MIN_IQR_PX` pixels, so a front a pixel off its neighbours never flags.

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
                          distance_k=distance_k, position_k=position_k, min_dates=min_dates,
                          pixel_size=pixel_size)
    out = frame.copy()
    out["outlier"] = flags["outlier"].to_numpy()
    out["qc_reason"] = flags["qc_reason"].to_numpy()
    return out
