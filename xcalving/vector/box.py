"""The terminus box: a rectangle along the glacier, its orientation, and a front's position in it.

The box's first edge (corner 0 → 1) crosses the glacier at the upstream end, on the glacier; a
front's position is the area between that edge and the front ÷ the box width. Lines and a box
alone cannot tell upstream from downstream, so the orientation is checked against an ``ocean=``
geometry or the ``zones=`` of the prediction (:func:`orient_box`), and
:func:`box_from_centreline` builds a box the right way round from a line drawn from the glacier
to the ocean. :mod:`xcalving.vector.change` and :mod:`xcalving.vector.qc` measure with it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from xcalving.errors import InputError
from xcalving.zones import ZONE_NAMES

__all__ = ["box_from_centreline", "check_box", "ocean_at_upstream_end", "orient_box",
           "terminus_position"]

_GLACIER, _OCEAN = ZONE_NAMES.index("glacier"), ZONE_NAMES.index("ocean")
#: Points sampled along each end of the box by the ``zones=`` check.
_SAMPLES = 32


def check_box(box: Any) -> tuple[Any, float]:
    """A shapely rectangle's upstream edge and its width; refused unless a rectangle in metres."""
    import shapely  # heavy: shapely, loaded on first use

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
    import shapely  # heavy: shapely, loaded on first use

    upstream, width = check_box(box)
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
    import shapely  # heavy: shapely, loaded on first use

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
    import shapely  # heavy: shapely, loaded on first use

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
    import shapely  # heavy: shapely, loaded on first use
    from shapely.ops import nearest_points  # heavy: shapely, loaded on first use

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
    # heavy: rioxarray, loaded on first use
    import rioxarray  # noqa: F401  (registers .rio)

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


def ocean_at_upstream_end(box: Any, ocean: Any, zones: Any, crs: Any) -> bool | None:
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
    check_box(box)
    upstream_ocean = ocean_at_upstream_end(box, ocean, zones, None)
    if upstream_ocean is None:
        raise InputError("orient_box needs ocean= (a geometry in the ocean) or zones= (the "
                         "prediction's zones) to tell the ends of the box apart.")
    return _reverse(box) if upstream_ocean else box
