"""Labels drawn in a GIS, onto the scenes' grids: front lines by date, optional zone polygons.

A GeoPackage (every layer is read), GeoParquet or any file geopandas reads, or a GeoDataFrame:
LineStrings are fronts, Polygons are zones. A date column (``date``, ``time``, ``datetime``,
``acquisition_date``; or ``date_column=``) pairs labels with the scene of that day; polygons
without a date apply to every scene. A class column (``zone``, ``class``, ``label``; or
``class_column=``) names each polygon's zone: ``no_data``, ``rock``, ``glacier``, ``ocean`` or
their codes 0..3. Labels are reprojected to each scene's CRS (``to_crs``) and rasterised on its
grid (``rasterio.features.rasterize``); pixels under no polygon keep the zone :data:`UNKNOWN`.
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xcalving.adapt.sources import UNKNOWN, RawScene, check_label_values, valid_pixels
from xcalving.errors import (
    InputError,
    InputNotFoundError,
    InputTypeError,
    XcalvingWarning,
    did_you_mean,
)
from xcalving.grid import transform
from xcalving.io.cube import open_cube
from xcalving.zones import ZONE_NAMES, front_from_zones

__all__ = ["apply_labels", "read_labels"]

DATE_COLUMNS = ("date", "time", "datetime", "acquisition_date", "acq_date")
CLASS_COLUMNS = ("zone", "class", "zones", "label", "classname")
#: Pixels of margin around the labels inside which training windows are drawn.
MARGIN_PX = 128
#: A date written as numbers: year first (2019/02/01), or day and month first in some order.
_NUMERIC_DATE = re.compile(r"^\s*(\d{1,4})[/.-](\d{1,2})[/.-](\d{1,4})\s*$")


def read_labels(labels: Any) -> Any:
    """The labels as one GeoDataFrame (all layers of a GeoPackage), with a CRS."""
    import geopandas as gpd  # heavy: geopandas, loaded on first use

    if isinstance(labels, gpd.GeoDataFrame):
        frame = labels
    elif isinstance(labels, str | os.PathLike):
        frame = _read_file(os.fspath(labels))
    else:
        raise InputTypeError(f"labels must be a GeoPackage/GeoParquet path or a GeoDataFrame "
                             f"(or, for a cube, a Dataset of zones); got {type(labels).__name__}.")
    if frame.crs is None:
        raise InputError("labels have no CRS, so they cannot be placed on the scenes. Set the "
                         "CRS they were drawn in, e.g. labels.set_crs('EPSG:3413'), or set the "
                         "layer's CRS in QGIS before exporting.")
    if frame.empty:
        raise InputError("labels hold no feature: no labelled scene. Draw at least one front "
                         "line with the date of its scene.")
    return frame


def _read_file(path: str) -> Any:
    import geopandas as gpd  # heavy: geopandas, loaded on first use

    if not os.path.isfile(path):
        raise InputNotFoundError(f"labels: no file at {path!r}.")
    if path.lower().endswith((".parquet", ".geoparquet")):
        return gpd.read_parquet(path)
    if path.lower().endswith(".gpkg"):
        import pyogrio  # heavy: pyogrio, loaded on first use

        layers = [name for name, kind in pyogrio.list_layers(path) if kind is not None]
        if not layers:
            raise InputError(f"labels: {path!r} holds no layer with geometries (only attribute "
                             "tables); draw the fronts as lines (and zones as polygons) in a "
                             "layer with a 'date' field.")
        frames = [gpd.read_file(path, layer=layer) for layer in layers]
        crs = {f.crs for f in frames if f.crs is not None}
        frames = [f.to_crs(frames[0].crs) if f.crs is not None and len(crs) > 1 else f
                  for f in frames]
        return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
    return gpd.read_file(path)


def _column(frame: Any, given: str | None, choices: tuple[str, ...], what: str) -> str | None:
    if given is not None:
        if given not in frame.columns:
            raise InputError(f"{what}={given!r} is not a column of the labels (columns: "
                             f"{list(frame.columns)})." + did_you_mean(given, frame.columns))
        return given
    lower = {str(c).lower(): c for c in frame.columns}
    return next((lower[c] for c in choices if c in lower), None)


def _split(frame: Any, date_column: str | None,
           class_column: str | None) -> tuple[Any, Any]:
    """(front lines, zone polygons) with a ``_date`` (day, NaT for none) and polygons' ``_code``."""
    kinds = frame.geometry.geom_type
    odd = sorted(set(kinds) - {"LineString", "MultiLineString", "Polygon", "MultiPolygon"})
    if odd:
        raise InputError(f"labels hold {odd} geometries; draw fronts as lines and zones as "
                         "polygons.")
    date = _column(frame, date_column, DATE_COLUMNS, "date_column")
    columns = list(frame.columns)
    frame = frame.assign(_date=label_days(frame[date], date) if date else pd.NaT)
    lines = frame[kinds.str.endswith("LineString")]
    polygons = frame[kinds.str.endswith("Polygon")]
    if lines["_date"].isna().any():
        why = (f"empty or unreadable in column {date!r}" if date else
               f"no date column among {columns}")
        raise InputError(f"{int(lines['_date'].isna().sum())} front lines have no date ({why}):"
                         " each front belongs to one scene. Add a 'date' column (YYYY-MM-DD).")
    if len(polygons):
        polygons = polygons.assign(_code=_zone_codes(polygons, class_column))
    return lines, polygons


def label_days(values: pd.Series, column: str) -> pd.Series:
    """The day of each label; NaT where empty or unreadable.

    Dates written as numbers are read only where they read one way: year first
    (``2019/02/01``), or with a day above 12 (``13/01/2019``, ``01/13/2019``), one convention
    to a column. ``01/02/2019`` (1 February or 2 January) and two-digit years are refused.

    >>> label_days(pd.Series(["2019-02-01", "13/01/2019", None]), "date").tolist()
    [Timestamp('2019-02-01 00:00:00'), Timestamp('2019-01-13 00:00:00'), NaT]
    """
    read = {text: _numeric_date(text, column) for text in set(values) if isinstance(text, str)}
    orders = {order: text for text, (_, order) in sorted(read.items()) if order}
    if len(orders) > 1:
        raise InputError(f"labels: column {column!r} writes dates day first ({orders['day']!r}) "
                         f"and month first ({orders['month']!r}), so neither order can be "
                         "trusted. Write every date as YYYY-MM-DD (ISO 8601).")
    texts = values.map(lambda v: read[v][0] if isinstance(v, str) else v).astype(object)
    days = pd.to_datetime(texts, errors="coerce", format="mixed")
    return days.dt.normalize()


def _numeric_date(text: str, column: str) -> tuple[str, str | None]:
    """``text`` as YYYY-MM-DD where it is a date of numbers, and which comes first (day, month)."""
    match = _NUMERIC_DATE.match(text)
    if match is None:
        return text, None
    a, b, c = match.groups()
    if len(a) == 4:
        return f"{a}-{int(b):02d}-{int(c):02d}", None
    where = f"labels: the date {text!r} (column {column!r})"
    if len(c) != 4:
        raise InputError(f"{where} has a two-digit year and no telling which number is the "
                         "day. Write dates as YYYY-MM-DD (ISO 8601), e.g. '2019-02-01'.")
    first, second = int(a), int(b)
    day_first = f"{c}-{second:02d}-{first:02d}"
    month_first = f"{c}-{first:02d}-{second:02d}"
    if first <= 12 and second <= 12 and first != second:
        raise InputError(f"{where} reads two ways: {day_first} or {month_first} (day or month "
                         f"first). Write dates as YYYY-MM-DD (ISO 8601): {day_first!r} or "
                         f"{month_first!r}.")
    if first == second:
        return day_first, None
    return (day_first, "day") if first > 12 else (month_first, "month")


def _zone_codes(polygons: Any, class_column: str | None) -> np.ndarray:
    column = _column(polygons, class_column, CLASS_COLUMNS, "class_column")
    if column is None:
        raise InputError(f"zone polygons need a class column ({', '.join(CLASS_COLUMNS)}, or "
                         f"class_column=) naming each polygon's zone: {', '.join(ZONE_NAMES)}.")
    names = {n: k for k, n in enumerate(ZONE_NAMES)} | {"no data": 0, "nodata": 0}
    codes = []
    for value in polygons[column]:
        text = str(value).strip().lower()
        if text in names:
            codes.append(names[text])
        elif text.isdigit() and int(text) < len(ZONE_NAMES):
            codes.append(int(text))
        else:
            raise InputError(f"labels: zone class {value!r} (column {column!r}) is not one of "
                             f"{', '.join(ZONE_NAMES)} (or 0..3)." + did_you_mean(text, names))
    return np.array(codes, np.uint8)


def apply_labels(scenes: list[RawScene], labels: Any, *, date_column: str | None = None,
                 class_column: str | None = None) -> list[RawScene]:
    """The scenes with ``labels`` rasterised on their grids; scenes of no labelled date dropped."""
    if isinstance(labels, xr.Dataset | xr.DataArray) or (
            isinstance(labels, str | os.PathLike) and os.fspath(labels).rstrip("/").endswith(
                ".zarr")):
        return _raster_labels(scenes, labels)
    lines, polygons = _split(read_labels(labels), date_column, class_column)
    ungridded = [s.name for s in scenes if s.transform is None or s.crs is None]
    if ungridded:
        raise InputError(f"scenes {ungridded[:3]} have no CRS, so vector labels cannot be placed "
                         "on them. Pass georeferenced scenes (GeoTIFF, or a cube with a CRS); "
                         "CaFFe scenes bring their labels as PNGs.")
    dated = pd.concat([lines["_date"], polygons["_date"]]).dropna().unique()
    days = {s.date for s in scenes if s.date is not None}
    orphans = sorted(str(d.date()) for d in pd.DatetimeIndex(dated) if str(d.date()) not in days)
    if orphans and len(orphans) == len(dated):
        raise InputError(f"no labelled scene: the labels' dates {orphans[:5]} match none of the "
                         f"scenes' dates {sorted(days)[:5]}. Check the date column (the day each "
                         "scene was acquired, YYYY-MM-DD) or pass date_column=.")
    if orphans:
        warnings.warn(f"labels of {orphans} match no scene's date (scenes: {sorted(days)}); "
                      "they are not used.", XcalvingWarning, stacklevel=3)
    out = []
    for scene in scenes:
        day = pd.Timestamp(scene.date) if scene.date else None
        mine = [f[f["_date"] == day] for f in (lines, polygons)]
        if day is None or not (len(mine[0]) or len(mine[1])):
            continue  # no label of its date: not a labelled scene
        static = polygons[polygons["_date"].isna()]
        out.append(_rasterise(scene, mine[0], pd.concat([static, mine[1]]), mine[1]))
    return out


def _rasterise(scene: RawScene, lines: Any, polygons: Any, dated: Any) -> RawScene:
    """The labels burnt onto the scene, cropped to the labelled region (only that is read)."""
    from affine import Affine  # heavy: affine, loaded on first use
    from rasterio.features import rasterize  # heavy: rasterio, loaded on first use

    lines, polygons = lines.to_crs(scene.crs), polygons.to_crs(scene.crs)
    _check_inside(scene, lines, polygons)
    r0, r1, c0, c1 = _region(scene, pd.concat([lines.geometry,
                                               dated.to_crs(scene.crs).geometry]))
    scene.values = np.asarray(scene.values[r0:r1, c0:c1])
    scene.transform = scene.transform * Affine.translation(c0, r0)
    shape = scene.values.shape
    zones = np.full(shape, UNKNOWN, np.uint8)
    if len(polygons):
        rasterize(zip(polygons.geometry, polygons["_code"].astype(int), strict=True),
                  out=zones, transform=scene.transform)
        # no backscatter: the no-data class, whatever was drawn there
        zones[~valid_pixels(scene.values, scene.kind)] = 0
    front = np.zeros(shape, np.uint8)
    if len(lines):
        rasterize(((g, 1) for g in lines.geometry), out=front, transform=scene.transform)
    scene.zones, scene.front, scene.region = zones, front, None
    return scene


def _bounds(scene: RawScene) -> tuple[float, float, float, float]:
    rows, cols = scene.values.shape
    xs, ys = zip(scene.transform * (0, 0), scene.transform * (cols, rows), strict=True)
    return min(xs), min(ys), max(xs), max(ys)


def _check_inside(scene: RawScene, lines: Any, polygons: Any) -> None:
    import shapely  # heavy: shapely, loaded on first use

    left, bottom, right, top = _bounds(scene)
    footprint = shapely.box(left, bottom, right, top)
    labels = pd.concat([lines.geometry, polygons.geometry])
    if not labels.intersects(footprint).any():
        lb = tuple(round(v) for v in labels.total_bounds)
        raise InputError(
            f"the labels of {scene.date} lie outside scene {scene.name!r}: labels {lb}, scene "
            f"{tuple(round(v) for v in (left, bottom, right, top))} in {scene.crs.to_string()}. "
            "Was the labels' CRS declared wrongly (e.g. drawn in EPSG:3413 but saved as "
            "EPSG:4326)? Fix it with labels.set_crs(..., allow_override=True).")


def _region(scene: RawScene, labels: Any) -> tuple[int, int, int, int]:
    """Rows and columns of the labels' extent plus :data:`MARGIN_PX`, clipped to the scene."""
    rows, cols = scene.values.shape
    x0, y0, x1, y1 = labels.total_bounds
    corners = [~scene.transform * (x, y) for x in (x0, x1) for y in (y0, y1)]
    c = [p[0] for p in corners]
    r = [p[1] for p in corners]
    return (max(0, int(min(r)) - MARGIN_PX), min(rows, int(np.ceil(max(r))) + MARGIN_PX),
            max(0, int(min(c)) - MARGIN_PX), min(cols, int(np.ceil(max(c))) + MARGIN_PX))


def _raster_labels(scenes: list[RawScene], labels: Any) -> list[RawScene]:
    """Zones (and front) from a cube on the scenes' grid, paired by date."""
    if not isinstance(labels, xr.Dataset | xr.DataArray):
        labels = open_cube(labels)
    zones = labels if isinstance(labels, xr.DataArray) else labels.get("zones")
    if zones is None:
        raise InputError("labels: a Dataset of labels needs a 'zones' variable (0 no data, 1 "
                         "rock, 2 glacier, 3 ocean).")
    front = labels.get("front") if isinstance(labels, xr.Dataset) else None
    out = []
    for scene in scenes:
        z = _same_day(zones, scene)
        if z is None:
            continue
        _check_grid(scene, z)
        scene.zones = check_label_values(np.asarray(z), "zones", "labels['zones']")
        f = _same_day(front, scene) if front is not None else None
        scene.front = (check_label_values(np.asarray(f), "front", "labels['front']")
                       if f is not None else front_from_zones(scene.zones).astype(np.uint8))
        out.append(scene)
    return out


def _same_day(da: Any, scene: RawScene) -> Any:
    if "time" not in da.dims:
        return da
    days = pd.DatetimeIndex(da["time"].values).normalize()
    if not scene.date:
        return None
    hits = np.flatnonzero(days == pd.Timestamp(scene.date))
    return da.isel(time=int(hits[0])) if len(hits) else None


def _check_grid(scene: RawScene, zones: Any) -> None:
    # heavy: rioxarray, loaded on first use
    import rioxarray  # noqa: F401  (registers .rio)


    same_crs = scene.crs is None or zones.rio.crs is None or zones.rio.crs == scene.crs
    shape_ok = zones.shape == scene.values.shape
    if not (same_crs and shape_ok and ("x" not in zones.coords or scene.transform is None
                                       or transform(zones).almost_equals(scene.transform))):
        raise InputError(
            f"labels are not on the grid of scene {scene.name!r} (labels {zones.shape}, CRS "
            f"{zones.rio.crs}; scene {scene.values.shape}, CRS {scene.crs}). Put them on it "
            "first: labels.rio.reproject_match(data['sar'], resampling=Resampling.nearest).")
