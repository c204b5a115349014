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

from xcalving.errors import InputError, XcalvingWarning
from xcalving.zones import ZONE_NAMES

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

__all__ = ["box_from_centreline", "orient_box", "terminus_change", "terminus_position"]

_GLACIER, _OCEAN = ZONE_NAMES.index("glacier"), ZONE_NAMES.index("ocean")
#: Points sampled along each end of the box by the ``zones=`` check.
_SAMPLES = 32


def _check_box(box: Any) -> tuple[Any, float]:
    import shapely

    if not isinstance(box, shapely.Polygon) or len(box.exterior.coords) != 5:
        raise InputError(
            "box must be a shapely Polygon rectangle of 4 corners along the glacier, its first "
            f"edge (corner 0 → 1) across the glacier at the upstream end; got {box!r}."
        )
    upstream = shapely.LineString(box.exterior.coords[:2])
    if upstream.length <= 0 or abs(box.area - box.minimum_rotated_rectangle.area) > 1e-6 * box.area:
        raise InputError("box must be a rectangle with a non-zero upstream edge.")
    return upstream, upstream.length


def terminus_position(front: Any, box: Any) -> float:
    """Area of ``box`` between its upstream edge and ``front``, divided by the box width.

    NaN where the front does not cut the box from side to side.
    """
    import shapely

    upstream, width = _check_box(box)
    if front is None or front.is_empty:
        return float("nan")
    # Noding the unclipped front with the box outline puts the crossings exactly on the outline;
    # the faces inside the box are the pieces the front cuts it into.
    faces = shapely.get_parts(shapely.polygonize([shapely.union(box.boundary, front)]))
    for face in faces:
        if face.area < box.area * (1 - 1e-9) and box.contains(face.representative_point()) and \
                shapely.intersection(face.boundary, upstream).length > 0.5 * width:
            return float(face.area / width)
    return float("nan")


# --- orientation ---------------------------------------------------------------------------------
def box_from_centreline(centreline: Any, width: float) -> Any:
    """A box of ``width`` along a centreline drawn from upstream (on the glacier) to the ocean.

    Parameters
    ----------
    centreline
        A shapely LineString of two or more points, its first point on the glacier upstream of
        every front, its last in the ocean beyond them; only these two points are used (the
        box is straight).
    width
        Width of the box across the glacier, in the units of the coordinates (metres).

    Returns
    -------
    shapely.Polygon
        The rectangle, its first edge (corner 0 → 1) across the centreline's first point: the
        upstream edge :func:`terminus_change` measures from.

    Examples
    --------
    >>> import shapely
    >>> box = box_from_centreline(shapely.LineString([(0, 0), (0, 5000)]), 1000)
    >>> [tuple(map(float, c)) for c in box.exterior.coords[:4]]
    [(500.0, 0.0), (-500.0, 0.0), (-500.0, 5000.0), (500.0, 5000.0)]
    """
    import shapely

    if not isinstance(centreline, shapely.LineString) or centreline.is_empty:
        raise InputError(f"centreline must be a shapely LineString of 2 or more points, drawn "
                         f"from upstream on the glacier to the ocean; got {centreline!r}.")
    start, end = (np.asarray(centreline.coords[k][:2], float) for k in (0, -1))
    length = float(np.hypot(*(end - start)))
    if not np.isfinite(length) or length == 0:
        raise InputError(f"centreline: its first and last points must differ (they are "
                         f"{start.tolist()} and {end.tolist()}); draw it from upstream on the "
                         "glacier to the ocean beyond the fronts.")
    if not isinstance(width, int | float) or not np.isfinite(width) or width <= 0:
        raise InputError(f"width must be the box's width across the glacier, a number > 0; got "
                         f"{width!r}.")
    along = (end - start) / length
    half = np.array([along[1], -along[0]]) * width / 2  # to the right, looking downstream
    corners = [start + half, start - half, end - half, end + half]
    return shapely.Polygon([tuple(map(float, c)) for c in corners])


def _reverse(box: Any) -> Any:
    """The same rectangle with its ends swapped: corners 2, 3, 0, 1."""
    import shapely

    coords = box.exterior.coords[:4]
    return shapely.Polygon([coords[2], coords[3], coords[0], coords[1]])


def _along(box: Any, point: Any) -> float:
    """Where ``point`` projects on the box's axis: 0 at the upstream edge, 1 at the other end."""
    c = np.asarray(box.exterior.coords[:4])
    start, end = (c[0] + c[1]) / 2, (c[2] + c[3]) / 2
    axis = end - start
    return float(np.dot(np.asarray(point.coords[0][:2]) - start, axis) / np.dot(axis, axis))


def _ocean_vote(box: Any, ocean: Any) -> float:
    """> 0 where ``ocean`` (a geometry) lies towards the box's downstream end, < 0 upstream."""
    import shapely
    from shapely.ops import nearest_points

    if not isinstance(ocean, shapely.Geometry) or ocean.is_empty:
        raise InputError(f"ocean must be a shapely geometry in the ocean beyond the fronts (a "
                         f"Point will do), in the fronts' CRS; got {ocean!r}.")
    inside = shapely.intersection(ocean, box)
    point = inside.centroid if not inside.is_empty else nearest_points(ocean, box)[0]
    return _along(box, point) - 0.5


def _edge_points(box: Any, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Points across the box just inside its upstream (0) or downstream (1) edge."""
    c = np.asarray(box.exterior.coords[:4])
    a, b = (c[0], c[1]) if end == 0 else (c[3], c[2])
    inward = ((c[3] - c[0]) if end == 0 else (c[0] - c[3])) * 0.02
    t = (np.arange(_SAMPLES) + 0.5) / _SAMPLES
    points = a + np.outer(t, b - a) + inward
    return points[:, 0], points[:, 1]


def _zones_vote(box: Any, zones: Any, crs: Any) -> float:
    """> 0 where the zones put glacier at the upstream end and ocean at the other, < 0 reversed.

    Pixels just inside both ends are counted over every scene of ``zones``.
    """
    import rioxarray  # noqa: F401  (registers .rio)
    import xarray as xr

    if isinstance(zones, xr.Dataset) and "zones" in zones:
        zones = zones["zones"]
    if not isinstance(zones, xr.DataArray) or not {"y", "x"} <= set(zones.dims):
        raise InputError(f"zones must be the prediction's zones (a DataArray on y, x, e.g. "
                         f"pred.zones); got {type(zones).__name__}.")
    if zones.rio.crs is not None and crs is not None and zones.rio.crs != crs:
        raise InputError(f"zones are in {zones.rio.crs} but the fronts are in {crs}; pass zones "
                         "on the fronts' grid.")
    counts = []
    for end in (0, 1):
        xs, ys = _edge_points(box, end)
        keep = _within(zones["x"].values, xs) & _within(zones["y"].values, ys)
        if not keep.any():
            counts.append((0, 0))
            continue
        values = zones.sel(x=xr.DataArray(xs[keep], dims="point"),
                           y=xr.DataArray(ys[keep], dims="point"), method="nearest").values
        counts.append((int((values == _GLACIER).sum()), int((values == _OCEAN).sum())))
    (up_glacier, up_ocean), (down_glacier, down_ocean) = counts
    return float((up_glacier + down_ocean) - (up_ocean + down_glacier))


def _within(coords: np.ndarray, values: np.ndarray) -> np.ndarray:
    half = abs(coords[1] - coords[0]) / 2 if len(coords) > 1 else 0.5
    return (values >= coords.min() - half) & (values <= coords.max() + half)


def _ocean_at_upstream_end(box: Any, ocean: Any, zones: Any, crs: Any) -> bool | None:
    """Whether the hints put the ocean at the box's upstream end; None without hints."""
    if ocean is None and zones is None:
        return None
    votes = {}
    if ocean is not None:
        votes["ocean"] = _ocean_vote(box, ocean)
    if zones is not None:
        votes["zones"] = _zones_vote(box, zones, crs)
    undecided = [name for name, vote in votes.items() if vote == 0]
    if undecided or len({vote > 0 for vote in votes.values()}) > 1:
        why = f"{undecided[0]}= does not decide" if undecided else "ocean= and zones= disagree"
        raise InputError(
            f"box: cannot tell which end is the ocean's ({why}). The box must reach from the "
            "glacier upstream of every front (corners 0 → 1) to the ocean beyond them; pass "
            "ocean= as a point in the ocean beyond the fronts."
        )
    return next(iter(votes.values())) < 0


def orient_box(box: Any, *, ocean: Any = None, zones: Any = None) -> Any:
    """``box`` with its first edge (corner 0 → 1) at the end away from the ocean.

    Parameters
    ----------
    box
        A shapely Polygon rectangle along the glacier.
    ocean
        A shapely geometry in the ocean beyond the fronts (a Point will do): the end of the box
        nearer to it (along the box) is the downstream end.
    zones
        The prediction's zones (DataArray on y, x, any scenes): sampled just inside both ends
        of the box, glacier upstream and ocean downstream vote for an end. Reads only these
        pixels, but a lazy prediction computes the blocks under them.

    Examples
    --------
    >>> import shapely
    >>> box = shapely.Polygon([(0, 5000), (1000, 5000), (1000, 0), (0, 0)])  # ocean at y > 5000
    >>> orient_box(box, ocean=shapely.Point(500, 6000)).exterior.coords[0]
    (1000.0, 0.0)
    """
    _check_box(box)
    upstream_ocean = _ocean_at_upstream_end(box, ocean, zones, None)
    if upstream_ocean is None:
        raise InputError("orient_box needs ocean= (a geometry in the ocean) or zones= (the "
                         "prediction's zones) to tell the ends of the box apart.")
    return _reverse(box) if upstream_ocean else box


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
        them; computed with :func:`xcalving.qc.flag_outliers`' defaults where missing), plus
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
    >>> box = box_from_centreline(shapely.LineString([(0, 0), (0, 5000)]), 1000)
    >>> fronts = gpd.GeoDataFrame(geometry=[shapely.LineString([(-600, y), (600, y)])
    ...                                     for y in (3000, 2409)],
    ...                           index=pd.DatetimeIndex(["2020-01-01", "2021-01-01"]))
    >>> terminus_change(fronts, box, ocean=shapely.Point(0, 6000))["change_m"].tolist()
    [0.0, -591.0]
    """
    import pandas as pd

    box = _box_in_crs_of(fronts, box)
    _check_box(box)
    fronts = _in_time_order(fronts)
    crs = getattr(fronts, "crs", None)
    if _ocean_at_upstream_end(box, ocean, zones, crs):
        raise InputError(
            "box is drawn the wrong way round: its first edge (corner 0 → 1) is at the ocean "
            "end, so a retreat would read as an advance. Pass "
            "xcalving.change.orient_box(box, ocean=...) or build the box with "
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
    import pandas as pd

    from xcalving.qc import time_order

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
    from xcalving import qc

    if set(qc.FLAG_COLUMNS) <= set(getattr(fronts, "columns", ())):
        flags = fronts[list(qc.FLAG_COLUMNS)].reset_index(drop=True)
        flags = flags.assign(outlier=flags["outlier"].fillna(False).astype(bool),
                             qc_reason=flags["qc_reason"].fillna("").astype(str))
    else:
        flags = qc.outlier_flags(fronts)
    series = qc.series_rows(fronts)
    spikes = qc.position_outliers(positions, series, window=qc.WINDOW, k=qc.POSITION_K,
                                  times=qc.series_times(fronts, series),
                                  floor=qc.MIN_IQR_PX * qc.pixel_size_of(fronts))
    reasons = [",".join(r for r in qc.REASONS if r in set(old.split(",")) or
                        (r == "position" and spike))
               for old, spike in zip(flags["qc_reason"], spikes, strict=True)]
    return flags.assign(outlier=flags["outlier"].to_numpy(bool) | spikes, qc_reason=reasons)


def _first(positions: pd.Series) -> float:
    valid = positions.dropna()
    return float(valid.iloc[0]) if len(valid) else float("nan")


def _rates(positions: pd.Series) -> pd.Series:
    """Change since the previous valid position ÷ years between them (NaN without dates)."""
    import pandas as pd

    valid = positions.dropna()
    if not isinstance(valid.index, pd.DatetimeIndex):
        return pd.Series(np.nan, index=positions.index)
    years = np.asarray((valid.index - valid.index[0]) / pd.Timedelta(days=365.25), float) \
        if len(valid) else np.array([])
    rate = pd.Series(np.diff(valid.to_numpy(), prepend=np.nan) / np.diff(years, prepend=np.nan),
                     index=valid.index)
    return rate.reindex(positions.index)
