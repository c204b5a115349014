"""From zones or front probability to calving-front polylines in map coordinates.

The numpy core (:func:`front_from_zones`, :func:`front_from_probability`, :func:`trace_lines`)
works on one 2-D scene; :func:`fronts` maps it over the time steps of a prediction Dataset and
returns a GeoDataFrame indexed by time.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from xcalving.errors import InputError, XcalvingWarning
from xcalving.zones import drop_short_pieces, front_from_zones

if TYPE_CHECKING:
    import geopandas as gpd
    import xarray as xr

__all__ = ["front_from_probability", "front_from_zones", "fronts", "read_fronts", "trace_lines",
           "write_fronts"]

_EIGHT = np.ones((3, 3), bool)
#: CaFFe drops front pieces of at most this length.
MIN_LENGTH_M = 750.0


def _component_path(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Indices of the longest shortest path through one 8-connected set of pixels."""
    n = len(rows)
    if n == 1:
        return np.zeros(1, int)
    index = {(r, c): i for i, (r, c) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True))}
    src, dst, cost = [], [], []
    for dr, dc, w in ((0, 1, 1.0), (1, 0, 1.0), (1, 1, np.sqrt(2)), (1, -1, np.sqrt(2))):
        for i, (r, c) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
            j = index.get((r + dr, c + dc))
            if j is not None:
                src.append(i)
                dst.append(j)
                cost.append(w)
    graph = csr_matrix((cost, (src, dst)), shape=(n, n))
    first = dijkstra(graph, directed=False, indices=0)
    start = int(np.argmax(np.where(np.isfinite(first), first, -1)))
    dist, pred = dijkstra(graph, directed=False, indices=start, return_predecessors=True)
    node = int(np.argmax(np.where(np.isfinite(dist), dist, -1)))
    path = [node]
    while pred[node] >= 0:
        node = int(pred[node])
        path.append(node)
    return np.asarray(path[::-1])


def trace_lines(front: np.ndarray) -> list[np.ndarray]:
    """Order the pixels of each 8-connected front piece into a polyline of (row, col) vertices.

    Each piece becomes the longest path through it (spurs of a pixel or two are left out);
    pieces are returned longest first.
    """
    labels, n = ndimage.label(front, structure=_EIGHT)
    lines = []
    for k, piece in enumerate(ndimage.find_objects(labels), start=1):
        rows, cols = np.nonzero(labels[piece] == k)
        path = _component_path(rows, cols)
        lines.append(np.column_stack([rows[path] + piece[0].start, cols[path] + piece[1].start]))
    return sorted(lines, key=_pixel_length, reverse=True)


def _pixel_length(line: np.ndarray) -> float:
    return float(np.hypot(*np.diff(line, axis=0).T).sum()) if len(line) > 1 else 0.0


def front_from_probability(probability: np.ndarray, threshold: float = 0.5,
                           min_pixels: float = 0.0, bbox: np.ndarray | None = None) -> np.ndarray:
    """Threshold, skeletonize, keep the longest path of each piece, then the length rule."""
    from skimage.morphology import skeletonize

    mask = np.nan_to_num(np.asarray(probability, float), nan=0.0) > threshold
    if bbox is not None:
        mask &= np.asarray(bbox, bool)
    skeleton = skeletonize(mask)
    front = np.zeros_like(skeleton)
    for line in trace_lines(skeleton):
        front[line[:, 0], line[:, 1]] = True
    return drop_short_pieces(front, min_pixels)


# --- the xarray / GeoDataFrame shell -------------------------------------------------------------
def _grid(ds: Any) -> tuple[Any, float | None, str]:
    """The affine transform (None without a CRS), metres per pixel (None if unknown) and why not.

    Both come from the coordinates (:mod:`xcalving.grid`), never from a cached GeoTransform;
    without a CRS, the ``pixel_spacing`` attribute gives the spacing.
    """
    import rioxarray  # noqa: F401

    from xcalving import grid

    if ds.rio.crs is None:
        spacing = ds.attrs.get("pixel_spacing")
        if isinstance(spacing, int | float):
            return None, float(spacing), ""
        return None, None, "no CRS and no 'pixel_spacing' attribute"
    transform = grid.transform(ds, what="fronts")  # lines need a regular grid: else an error
    try:
        return transform, grid.pixel_spacing(ds, what="fronts"), ""
    except InputError as err:  # e.g. a lon/lat grid: lines are still drawn, lengths are not
        return transform, None, str(err)


def _min_pixels(spacing: float | None, min_length: float, min_length_px: float | None,
                why: str) -> float:
    if min_length_px is not None:
        return float(min_length_px)
    if spacing is None:
        warnings.warn(
            f"fronts: the pixel spacing is unknown ({why}), so no front piece is dropped for "
            "being short; pass min_length_px=... to set the rule.",
            XcalvingWarning, stacklevel=3,
        )
        return 0.0
    return min_length / spacing


def _geometry(lines: list[np.ndarray], transform: Any) -> Any:
    """Polylines of (row, col) pixel centres → (Multi)LineString in map or pixel coordinates."""
    import shapely

    parts = []
    for line in lines:
        rows, cols = line[:, 0] + 0.5, line[:, 1] + 0.5
        xs, ys = (cols, rows) if transform is None else \
            (transform.c + transform.a * cols + transform.b * rows,
             transform.f + transform.d * cols + transform.e * rows)
        coords = np.column_stack([xs, ys])
        parts.append(shapely.LineString(coords if len(coords) > 1 else np.repeat(coords, 2, 0)))
    if not parts:
        return shapely.LineString()
    return parts[0] if len(parts) == 1 else shapely.MultiLineString(parts)


def _scene_front(zones: np.ndarray | None, probability: np.ndarray | None, method: str,
                 min_pixels: float, threshold: float) -> np.ndarray:
    if method == "zones" and zones is not None:
        return front_from_zones(zones, min_pixels)
    if method == "probability" and probability is not None:
        return front_from_probability(probability, threshold, min_pixels)
    raise InputError(f"method={method!r}: the variable it needs is missing.")


def _scene_row(front: np.ndarray, probability: np.ndarray | None, transform: Any,
               spacing: float | None) -> dict[str, Any]:
    lines = trace_lines(front)
    geometry = _geometry(lines, transform)
    length_px = sum(_pixel_length(line) for line in lines)
    mean_p = float(np.nanmean(probability[front])) if probability is not None and front.any() \
        else np.nan
    return {"geometry": geometry, "length_m": length_px * spacing if spacing else np.nan,
            "length_px": length_px, "mean_probability": mean_p, "n_segments": len(lines),
            "n_pixels": int(front.sum())}


def _check_fronts_input(ds: Any, method: str) -> None:
    import xarray as xr

    if not isinstance(ds, xr.Dataset):
        raise InputError(
            f"ds must be a prediction Dataset (from predict()); got {type(ds).__name__}."
        )
    need = {"zones": "zones", "probability": "front_probability"}
    if method not in need:
        raise InputError(f"method must be 'zones' or 'probability'; got {method!r}.")
    if need[method] not in ds:
        raise InputError(
            f"method={method!r} needs ds[{need[method]!r}], which is missing (ds has "
            f"{list(ds.data_vars)}). Use method={'probability' if method == 'zones' else 'zones'!r}"
            " or pass the output of predict()."
        )
    if "y" not in ds.dims or "x" not in ds.dims or set(ds.dims) - {"time", "y", "x", "zone"}:
        raise InputError(f"ds must have dims (time,) y, x; it has {dict(ds.sizes)}.")


def fronts(
    ds: xr.Dataset,
    *,
    method: Literal["zones", "probability"] = "zones",
    min_length: float = MIN_LENGTH_M,
    min_length_px: float | None = None,
    threshold: float = 0.5,
) -> gpd.GeoDataFrame:
    """Calving fronts as time-indexed vector lines in the cube's CRS.

    Parameters
    ----------
    ds
        A prediction Dataset with ``zones`` and/or ``front_probability`` on dims (time,) y, x.
    method
        ``"zones"``: CaFFe's post-processing of the zone map
        (:func:`~xcalving.vector.front_from_zones`); ``"probability"``: threshold, skeletonize
        and keep the longest paths of the front probability
        (:func:`~xcalving.vector.front_from_probability`).
    min_length
        Front pieces of at most this many metres (÷ the pixel spacing) are dropped; CaFFe uses
        750 m.
    min_length_px
        The same rule in pixels; it wins over ``min_length`` and is needed where the pixel
        spacing in metres is unknown (see :func:`xcalving.grid.pixel_spacing`; without a CRS,
        the ``pixel_spacing`` attribute gives it).
    threshold
        Probability above which a pixel is front (``method="probability"``).

    Returns
    -------
    geopandas.GeoDataFrame
        Indexed by a DatetimeIndex named ``time`` (one row per time step, an empty geometry
        where no front was found), with a (Multi)LineString through pixel centres in map
        coordinates, ``length_m``, ``length_px``, ``mean_probability`` (of the front pixels),
        ``n_segments`` and ``n_pixels``. Without a CRS the coordinates are pixels
        (x = column + 0.5, y = row + 0.5), a warning says so and ``attrs["georeference"]`` too.

    Raises
    ------
    InputError
        Coordinates that are not a regular grid: not monotonic, repeated, unevenly spaced, or
        a single pixel along ``y`` or ``x`` (see :func:`xcalving.grid.transform`).

    Notes
    -----
    The transform and the pixel spacing come from the ``y``/``x`` coordinates
    (:mod:`xcalving.grid`), never from a cached GeoTransform, so ascending or descending axes,
    decimated (``isel(y=slice(None, None, 2))``), coarsened and reprojected predictions all
    give fronts in the right place, with ``length_m`` and the ``min_length`` rule in metres of
    the actual spacing. On a geographic (lon/lat) CRS the lines are drawn in degrees, but a
    warning says that the spacing in metres is unknown: ``length_m`` is NaN and no piece is
    dropped for being short (a lon/lat pixel's size in metres changes with latitude and
    differs between x and y); reproject first, e.g.
    ``ds.rio.reproject(ds.rio.estimate_utm_crs())`` (nearest, the default, keeps zone classes).

    This is where numbers are computed: the scenes are computed with Dask, in parallel, one
    time step a task.

    Examples
    --------
    >>> from xcalving.data.synthetic import glacier_cube
    >>> cube, truth = glacier_cube(2, shape=(192, 192), resolution=25.0, seed=7)
    >>> frame = fronts(cube[["zones"]])
    >>> frame.crs.to_epsg(), len(frame), bool((frame["length_m"] > 750).all())
    (3031, 2, True)
    >>> flipped = fronts(cube[["zones"]].sortby("y"))  # ascending y: the same lines
    >>> bool(flipped.geometry.geom_equals(frame.geometry).all())
    True
    """
    import dask
    import geopandas as gpd
    import pandas as pd

    _check_fronts_input(ds, method)
    transform, spacing, why = _grid(ds)
    min_pixels = _min_pixels(spacing, min_length, min_length_px, why)
    if spacing is None and transform is not None and min_length_px is not None:
        warnings.warn(f"fronts: length_m is NaN: {why}", XcalvingWarning, stacklevel=2)
    single = "time" not in ds.dims
    scenes = (ds.expand_dims("time") if single else ds).transpose(..., "y", "x")  # rows are y
    tasks = []
    for k in range(scenes.sizes["time"]):
        scene = scenes.isel(time=k)
        zones = scene["zones"].data if "zones" in scene else None
        prob = scene["front_probability"].data if "front_probability" in scene else None
        front = dask.delayed(_scene_front)(zones, prob, method, min_pixels, threshold)
        tasks.append(dask.delayed(_scene_row)(front, prob, transform, spacing))
    rows = dask.compute(*tasks)
    times = pd.DatetimeIndex(scenes["time"].values if "time" in scenes.coords else
                             [pd.NaT] * len(rows), name="time")
    frame = gpd.GeoDataFrame(list(rows), index=times, geometry="geometry",
                             crs=ds.rio.crs if transform is not None else None)
    if transform is None:
        warnings.warn("fronts: the Dataset has no CRS; front coordinates are pixels.",
                      XcalvingWarning, stacklevel=2)
        frame.attrs["georeference"] = "none: x = column + 0.5, y = row + 0.5 (pixels)"
    frame.attrs.update(method=method, min_length_px=min_pixels)
    return frame


def write_fronts(frame: gpd.GeoDataFrame, path: Any, *, overwrite: bool = False) -> str:
    """Write fronts to GeoParquet (``.parquet``) or GeoPackage (``.gpkg``), times kept.

    GeoPackage stores times with millisecond precision; GeoParquet keeps them exactly.
    """
    import os

    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"path: {path!r} exists; choose a new path or pass overwrite=True.")
    out = frame.reset_index()
    if path.endswith(".parquet"):
        out.to_parquet(path)
    elif path.endswith(".gpkg"):
        if os.path.exists(path):
            os.remove(path)
        with warnings.catch_warnings():  # pixel-coordinate fronts have no CRS, and say so
            warnings.filterwarnings("ignore", message="'crs' was not provided")
            out.to_file(path, driver="GPKG", layer="fronts")
    else:
        raise InputError(f"path must end in .parquet (GeoParquet) or .gpkg (GeoPackage); got "
                         f"{path!r}.")
    return path


def read_fronts(path: Any) -> gpd.GeoDataFrame:
    """Read fronts written by :func:`write_fronts`, with the DatetimeIndex ``time`` restored."""
    import os

    import geopandas as gpd
    import pandas as pd

    path = os.fspath(path)
    frame = gpd.read_parquet(path) if path.endswith(".parquet") else gpd.read_file(path)
    frame["time"] = pd.to_datetime(frame["time"]).dt.tz_localize(None) \
        if getattr(frame["time"].dt, "tz", None) is not None else pd.to_datetime(frame["time"])
    return frame.set_index("time")
