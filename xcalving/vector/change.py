"""Terminus position and its change through time: the rectilinear box method.

The box is a rectangle along the glacier whose first edge (corner 0 → 1) crosses it at the
upstream end, on the glacier; the position is the area between that edge and the front ÷ the
box width. Drawn the other way round, every position is measured from the ocean end, and a
retreat comes out as an advance. Lines and a box alone cannot tell the two apart (a front is
a line, with no glacier side), so the orientation is checked against what can:
an ``ocean=`` geometry or the ``zones=`` of the prediction (:func:`terminus_change` refuses a
box drawn the wrong way round; :func:`orient_box` turns it), and :func:`box_from_centreline`
builds a box the right way round from a line drawn from the glacier to the ocean.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xcalving.errors import InputError, XcalvingWarning

if TYPE_CHECKING:
    import geopandas as gpd

from xcalving.vector.box import check_box, ocean_at_upstream_end, terminus_position
from xcalving.vector.qc import (
    FLAG_COLUMNS,
    MIN_IQR_PX,
    POSITION_K,
    REASONS,
    outlier_flags,
    pixel_size_of,
    position_outliers,
)
from xcalving.vector.series import WINDOW, series_rows, series_times, time_order

__all__ = ["terminus_change"]

# --- the time series -----------------------------------------------------------------------------
def _box_in_crs_of(fronts: Any, box: Any) -> Any:
    """The box as a shapely Polygon, after checking its CRS (if it has one) against the fronts'."""
    crs = getattr(fronts, "crs", None)
    if crs is not None and crs.is_geographic:
        raise InputError(f"fronts are in a geographic CRS ({crs}): positions would be in "
                         "degrees. Reproject them to a metric CRS first, e.g. "
                         "fronts.to_crs(fronts.estimate_utm_crs()), and the box with them.")
    if hasattr(box, "geometry") or hasattr(box, "crs"):  # a GeoSeries or GeoDataFrame
        if len(box) != 1:
            raise InputError(f"box must hold exactly one polygon; got {len(box)}.")
        if box.crs is not None and crs is not None and box.crs != crs:
            raise InputError(f"box is in {box.crs} but the fronts are in {crs}; reproject the "
                             "box first, e.g. box.to_crs(fronts.crs).")
        box = box.geometry.iloc[0] if hasattr(box, "geometry") else box.iloc[0]
    return box


def terminus_change(fronts: gpd.GeoDataFrame, box: Any, *, ocean: Any = None,
                    zones: Any = None, include_outliers: bool = False) -> pd.DataFrame:
    """Terminus position through time (box method) with change and change rate.

    Parameters
    ----------
    fronts
        Front lines indexed by scene (from :func:`xcalving.fronts`) in a metric CRS.
    box
        A shapely Polygon rectangle along the glacier, in the same CRS (or a one-row GeoSeries
        or GeoDataFrame, whose CRS is checked against the fronts'); its first edge (corner 0
        → 1) crosses the glacier at the upstream end. :func:`box_from_centreline` builds one
        from a line drawn from the glacier to the ocean.
    ocean, zones
        What tells the ends of the box apart (see :func:`orient_box`): a geometry in the ocean
        beyond the fronts, and/or the prediction's zones. A box whose first edge is at the
        ocean end is refused. Without either, the orientation is not checked (a front line
        does not say which side is ocean) and ``attrs["orientation"]`` says so.
    include_outliers
        False (default): the change and the rate are computed over the fronts that are not
        flagged, and are NaN for flagged ones; True: over every front with a position. The
        flags are the frame's ``outlier``/``qc_reason`` columns (:func:`xcalving.fronts` sets
        them; computed with :func:`xcalving.vector.flag_outliers`' defaults where missing), plus
        the ``position`` rule on this box's positions.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``fronts``, one row a front, in time order whatever the order of the rows
        of ``fronts``: ``position_m`` (distance of the front from the upstream edge,
        averaged across the box; kept for flagged fronts too), ``change_m`` (since the first
        valid position; negative is retreat), ``rate_m_per_yr`` (change since the previous
        valid position ÷ the time between them; NaN without dates), ``outlier`` and
        ``qc_reason``. :func:`xcalving.plot.terminus_plot` draws it, flagged dates marked.

    Raises
    ------
    InputError
        Two fronts on one date (a change series has one front a date: keep one, e.g.
        ``fronts[~fronts.index.duplicated()]``), or a front without a date (NaT: date it, or
        leave it out with ``fronts[fronts.index.notna()]``). No row is ever dropped silently.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd, shapely
    >>> from xcalving.vector import box_from_centreline
    >>> box = box_from_centreline(shapely.LineString([(0, 0), (0, 5000)]), 1000)
    >>> fronts = gpd.GeoDataFrame(geometry=[shapely.LineString([(-600, y), (600, y)])
    ...                                     for y in (3000, 2409)],
    ...                           index=pd.DatetimeIndex(["2020-01-01", "2021-01-01"]))
    >>> terminus_change(fronts, box, ocean=shapely.Point(0, 6000))["change_m"].tolist()
    [0.0, -591.0]
    """
    box = _box_in_crs_of(fronts, box)
    check_box(box)
    fronts = _in_time_order(fronts)
    crs = getattr(fronts, "crs", None)
    if ocean_at_upstream_end(box, ocean, zones, crs):
        raise InputError(
            "box is drawn the wrong way round: its first edge (corner 0 → 1) is at the ocean "
            "end, so a retreat would read as an advance. Pass "
            "xcalving.vector.orient_box(box, ocean=...) or build the box with "
            "box_from_centreline(line from the glacier to the ocean, width)."
        )
    positions = pd.Series([terminus_position(g, box) for g in fronts.geometry],
                          index=fronts.index, name="position_m")
    if positions.isna().any():
        warnings.warn(f"terminus_change: {int(positions.isna().sum())} front(s) do not cross the "
                      "box from side to side; their position is NaN.", XcalvingWarning,
                      stacklevel=2)
    flags = _flags(fronts, positions.to_numpy(float))
    valid = positions if include_outliers else positions.where(~flags["outlier"].to_numpy())
    result = pd.DataFrame({"position_m": positions, "change_m": valid - _first(valid),
                           "rate_m_per_yr": _rates(valid), "outlier": flags["outlier"].to_numpy(),
                           "qc_reason": flags["qc_reason"].to_numpy()})
    result.attrs["orientation"] = "unchecked: pass ocean= or zones=" if ocean is None and \
        zones is None else "checked"
    return result


def _in_time_order(fronts: Any) -> Any:
    """``fronts`` sorted by date; refused where a front has no date or shares its date."""
    missing = np.flatnonzero(np.asarray(pd.isna(fronts.index), bool))
    if len(missing):
        raise InputError(
            f"fronts: {len(missing)} of {len(fronts)} fronts have no date (NaT, at rows "
            f"{missing[:5].tolist()}), so they have no place in the change. Give them their "
            "dates, or leave them out explicitly: fronts[fronts.index.notna()].")
    twice = fronts.index[fronts.index.duplicated(keep=False)]
    if len(twice):
        dates = [str(d.date()) if isinstance(d, pd.Timestamp) and d == d.normalize() else str(d)
                 for d in dict.fromkeys(twice)]
        raise InputError(
            f"fronts: {len(dates)} date(s) hold more than one front ({', '.join(dates[:5])}); "
            "the change needs one front per date. Keep one of each, e.g. the first: "
            "fronts[~fronts.index.duplicated(keep='first')], or the most confident: "
            "fronts.sort_values('confidence').pipe(lambda f: f[~f.index.duplicated(keep='last')])"
            ".sort_index().")
    return fronts.iloc[time_order(fronts.index)]


def _flags(fronts: Any, positions: np.ndarray) -> pd.DataFrame:
    """The frame's QC flags (or the defaults'), with the ``position`` rule on ``positions``."""
    if set(FLAG_COLUMNS) <= set(getattr(fronts, "columns", ())):
        flags = fronts[list(FLAG_COLUMNS)].reset_index(drop=True)
        flags = flags.assign(outlier=flags["outlier"].fillna(False).astype(bool),
                             qc_reason=flags["qc_reason"].fillna("").astype(str))
    else:
        flags = outlier_flags(fronts)
    series = series_rows(fronts)
    spikes = position_outliers(positions, series, window=WINDOW, k=POSITION_K,
                                  times=series_times(fronts, series),
                                  floor=MIN_IQR_PX * pixel_size_of(fronts))
    reasons = [",".join(r for r in REASONS if r in set(old.split(",")) or
                        (r == "position" and spike))
               for old, spike in zip(flags["qc_reason"], spikes, strict=True)]
    return flags.assign(outlier=flags["outlier"].to_numpy(bool) | spikes, qc_reason=reasons)


def _first(positions: pd.Series) -> float:
    valid = positions.dropna()
    return float(valid.iloc[0]) if len(valid) else float("nan")


def _rates(positions: pd.Series) -> pd.Series:
    """Change since the previous valid position ÷ years between them (NaN without dates)."""
    valid = positions.dropna()
    if not isinstance(valid.index, pd.DatetimeIndex):
        return pd.Series(np.nan, index=positions.index)
    years = np.asarray((valid.index - valid.index[0]) / pd.Timedelta(days=365.25), float) \
        if len(valid) else np.array([])
    rate = pd.Series(np.diff(valid.to_numpy(), prepend=np.nan) / np.diff(years, prepend=np.nan),
                     index=valid.index)
    return rate.reindex(positions.index)
