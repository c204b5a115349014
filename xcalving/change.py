"""Terminus position and its change through time: the rectilinear box method."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from xcalving.errors import InputError, XcalvingWarning

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

__all__ = ["terminus_change", "terminus_position"]


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


def terminus_change(fronts: gpd.GeoDataFrame, box: Any) -> pd.DataFrame:
    """Terminus position through time (box method) with change and change rate.

    Parameters
    ----------
    fronts
        Time-indexed front lines (from :func:`xcalving.fronts`) in a metric CRS.
    box
        A shapely Polygon rectangle along the glacier, in the same CRS (or a one-row GeoSeries
        or GeoDataFrame, whose CRS is checked against the fronts'); its first edge (corner 0
        → 1) crosses the glacier at the upstream end.

    Returns
    -------
    pandas.DataFrame
        Indexed by time: ``position_m`` (distance of the front from the upstream edge, averaged
        across the box), ``change_m`` (since the first valid position; negative is retreat) and
        ``rate_m_per_yr`` (change since the previous valid position ÷ the time between them).
    """
    import pandas as pd

    box = _box_in_crs_of(fronts, box)
    positions = pd.Series([terminus_position(g, box) for g in fronts.geometry],
                          index=fronts.index, name="position_m")
    if positions.isna().any():
        warnings.warn(f"terminus_change: {int(positions.isna().sum())} front(s) do not cross the "
                      "box from side to side; their position is NaN.", XcalvingWarning,
                      stacklevel=2)
    valid = positions.dropna()
    years = (valid.index - valid.index[0]) / pd.Timedelta(days=365.25) if len(valid) else []
    rate = pd.Series(np.diff(valid.to_numpy(), prepend=np.nan) /
                     np.diff(np.asarray(years, float), prepend=np.nan), index=valid.index)
    return pd.DataFrame({
        "position_m": positions,
        "change_m": positions - (valid.iloc[0] if len(valid) else np.nan),
        "rate_m_per_yr": rate.reindex(positions.index),
    })
