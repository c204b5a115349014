"""Where labelled scenes come from: a CaFFe tree or catalog, a Zarr cube, GeoTIFF scenes.

Each reader returns :class:`RawScene` objects: the image as stored (8-bit grey, dB or linear
power), its date, pixel spacing and, where it has them, the grid (transform and CRS) that
vector labels are rasterised onto, and raster labels (zones with :data:`UNKNOWN` where not
labelled, the one-pixel front). Nothing here trains or resamples.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xcalving.data.caffe.catalog import (
    CATALOG_COLUMNS,
    _bbox_index,
    _catalog_row,
    _check_labels_exist,
    _find_data_raw,
    load_scene,
)
from xcalving.data.caffe.png import _read_scene_arrays
from xcalving.errors import InputError, InputNotFoundError, InputTypeError
from xcalving.grid import attrs_spacing, pixel_spacing, transform
from xcalving.io.cube import open_cube
from xcalving.io.scene_files import expand_paths, read_header
from xcalving.io.scenes import is_scene_path, open_scenes
from xcalving.scaling import input_kind
from xcalving.zones import ZONE_NAMES

__all__ = ["UNKNOWN", "RawScene", "read_scenes", "valid_pixels"]

#: Zone code of pixels whose class is not labelled (no loss there).
UNKNOWN = 255
#: The kinds of DATA ``finetune`` reads, for error messages.
DATA_KINDS = ("a CaFFe data_raw folder (or its parent) or a catalog from open_caffe",
              "a Zarr cube (or xarray Dataset) with sar and zones (front optional)",
              "GeoTIFF scenes (a path, a glob pattern or a list) with labels=<GeoPackage or "
              "GeoParquet of front lines and optional zone polygons>")


@dataclass
class RawScene:
    """One scene as read, before it is checked, converted and resampled for training."""

    name: str
    date: str | None  # ISO date
    values: Any  # (y, x) as stored: numpy, or a lazy DataArray read where labelled
    kind: str  # "uint8", "db" or "linear"
    spacing: float | None  # metres per pixel; None where unknown
    source: str  # "caffe", "zarr" or "geotiff"
    zones: np.ndarray | None = None  # uint8 0..3, UNKNOWN where not labelled
    front: np.ndarray | None = None  # uint8 0/1
    transform: Any = None  # affine.Affine of the grid, where georeferenced
    crs: Any = None  # pyproj.CRS, where georeferenced
    region: tuple[int, int, int, int] | None = None  # rows r0:r1, cols c0:c1 to draw windows in


def valid_pixels(values: np.ndarray, kind: str) -> np.ndarray:
    """Where an image has backscatter: finite, and not 0 (8-bit) or <= 0 (linear power)."""
    v = np.asarray(values, np.float32)
    valid = np.isfinite(v)
    if kind == "uint8":
        valid &= v != 0
    elif kind == "linear":
        valid &= v > 0
    return valid


def read_scenes(data: Any, *, scaling: str = "auto", caffe_spacing: str | None = "name",
                resolution: float | None = None) -> list[RawScene]:
    """The scenes of ``data`` (any kind ``finetune`` takes), in their order on disk."""
    if isinstance(data, pd.DataFrame):
        return _caffe_scenes(data)

    if isinstance(data, xr.Dataset | xr.DataArray):
        return _cube_scenes(data, scaling)
    if isinstance(data, str | os.PathLike):
        return _path_scenes(os.fspath(data), scaling, caffe_spacing, resolution)
    if isinstance(data, Sequence) and data and all(isinstance(p, str | os.PathLike) for p in data):
        return _geotiff_scenes(list(data), scaling, resolution)
    raise InputTypeError(f"data must be one of: {'; '.join(DATA_KINDS)}; got "
                         f"{type(data).__name__}.")


def _path_scenes(path: str, scaling: str, caffe_spacing: str | None,
                 resolution: float | None) -> list[RawScene]:
    if is_scene_path(path):
        return _geotiff_scenes([path], scaling, resolution)
    folder = Path(path)
    if not folder.exists():
        raise InputNotFoundError(f"data: nothing at {path!r}. Pass {'; or '.join(DATA_KINDS)}.")
    if (folder / "sar_images").is_dir() or (folder / "data_raw" / "sar_images").is_dir():
        return _caffe_scenes(caffe_catalog(folder, caffe_spacing))
    if folder.suffix == ".zarr" or (folder / "zarr.json").is_file() \
            or (folder / ".zgroup").is_file():
        return _cube_scenes(open_cube(folder), scaling)
    raise InputError(f"data: {path!r} is neither a CaFFe tree (no sar_images folder) nor a Zarr "
                     f"store nor GeoTIFF scenes. Pass {'; or '.join(DATA_KINDS)}.")


# --- CaFFe ---------------------------------------------------------------------------------------
def caffe_catalog(root: str | os.PathLike[str], pixel_spacing: str | None) -> pd.DataFrame:
    """:func:`~xcalving.data.caffe.open_caffe`'s catalog, of every split folder (any name)."""
    if pixel_spacing not in ("name", "caffe256", None):
        raise InputError(f"caffe_spacing must be 'name' (RESOLUTION of the file names, with "
                         f"CaFFe's rounding rules), 'caffe256' (the 256 x 256 copy's per-glacier "
                         f"spacing) or None (unknown); got {pixel_spacing!r}.")
    data_raw = _find_data_raw(root)
    bboxes = _bbox_index(data_raw)
    splits = sorted(p.name for p in (data_raw / "sar_images").iterdir() if p.is_dir())
    rows = [_catalog_row(data_raw, split, image, bboxes, pixel_spacing) for split in splits
            for image in sorted((data_raw / "sar_images" / split).glob("*.png"))]
    if not rows:
        raise InputError(f"data: no labelled scene under {os.fspath(data_raw)!r}: expected PNG "
                         "files in sar_images/<split>/ with their zones/<split>/ and "
                         "fronts/<split>/ labels.")
    _check_labels_exist(rows, data_raw)
    catalog = pd.DataFrame(rows, columns=list(CATALOG_COLUMNS))
    catalog["pixel_spacing"] = catalog["pixel_spacing"].astype(float)
    return catalog


def _caffe_scenes(catalog: pd.DataFrame) -> list[RawScene]:
    missing = [c for c in CATALOG_COLUMNS if c not in catalog.columns]
    if missing or catalog.empty:
        raise InputError(f"data: a DataFrame must be rows of open_caffe's catalog (missing "
                         f"columns {missing}, {len(catalog)} rows); no labelled scene to train "
                         "on. Pass open_caffe(root) filtered to the scenes you labelled.")
    return [_caffe_scene(row) for row in catalog.to_dict("records")]


def _caffe_scene(row: dict[str, Any]) -> RawScene:
    """One catalog row as read.

    A scene of known but unequal x/y spacing (the caffe256 copy) is un-squashed to square
    pixels of the finer of the two first, so no detail is lost.
    """
    along = (float(row.get("spacing_x", np.nan)), float(row.get("spacing_y", np.nan)))
    if all(np.isfinite(along)) and along[0] != along[1]:
        scene = load_scene(row, spacing=min(along))
        sar, zones, front = (scene[k].to_numpy() for k in ("sar", "zones", "front"))
        spacing: float | None = min(along)
    else:
        sar, zones, front = _read_scene_arrays(row)
        square = float(row["pixel_spacing"])
        spacing = square if np.isfinite(square) else None
    return RawScene(name=str(row["stem"]), date=pd.Timestamp(row["date"]).date().isoformat(),
                    values=sar, kind="uint8", spacing=spacing, source="caffe", zones=zones,
                    front=front)


# --- Zarr cubes and xarray objects ---------------------------------------------------------------
def _cube_scenes(cube: Any, scaling: str) -> list[RawScene]:
    sar = cube if not hasattr(cube, "data_vars") else _variable(cube, "sar")
    if not {"y", "x"} <= set(sar.dims) or sar.ndim not in (2, 3) \
            or (sar.ndim == 3 and "time" not in sar.dims):
        raise InputError(f"data: sar must have dims (y, x) or (time, y, x); got {sar.dims}. "
                         "Rename or transpose it, e.g. sar.rename(lat='y', lon='x').")
    kind = input_kind(sar, scaling)
    spacing, transform, crs = _grid_facts(sar)
    has = hasattr(cube, "data_vars")
    zones = cube["zones"] if has and "zones" in cube.data_vars else None
    front = cube["front"] if has and "front" in cube.data_vars else None
    stack = sar.expand_dims("time") if "time" not in sar.dims else sar
    stems = stack["stem"].values if "stem" in stack.coords else None
    scenes = []
    for k in range(stack.sizes["time"]):
        date = _iso(stack["time"].values[k]) if "time" in stack.coords else None
        name = str(stems[k]) if stems is not None else (date or f"scene {k}")
        scenes.append(RawScene(
            name=name, date=date, values=stack.isel(time=k).transpose("y", "x"),
            kind=kind, spacing=spacing, source="zarr",
            zones=_labels_of(zones, k, "zones"), front=_labels_of(front, k, "front"),
            transform=transform, crs=crs))
    return scenes


def _variable(ds: Any, name: str) -> Any:
    if name not in ds.data_vars:
        raise InputError(f"data: the cube has no {name!r} variable (it has "
                         f"{sorted(map(str, ds.data_vars))}); finetune reads sar (backscatter) and "
                         "zones (0 no data, 1 rock, 2 glacier, 3 ocean), front optional.")
    return ds[name]


def _grid_facts(sar: Any) -> tuple[float | None, Any, Any]:
    """Pixel spacing, transform and CRS of a georeferenced cube; (attrs spacing, None, None)."""
    # heavy: rioxarray, loaded on first use
    import rioxarray  # noqa: F401  (registers .rio)


    if sar.rio.crs is None:
        return attrs_spacing(sar), None, None
    return pixel_spacing(sar, what="data"), transform(sar, what="data"), sar.rio.crs


def _iso(value: Any) -> str | None:
    try:
        return pd.Timestamp(value).date().isoformat()
    except (TypeError, ValueError):
        return None


def _labels_of(labels: Any, k: int, what: str) -> np.ndarray | None:
    """Scene ``k`` of a zones or front variable, checked to hold only its classes."""
    if labels is None:
        return None
    values = np.asarray(labels.isel(time=k) if "time" in labels.dims else labels)
    return check_label_values(values, what, f"data[{what!r}] (scene {k})")


def check_label_values(values: np.ndarray, what: str, where: str) -> np.ndarray:
    """Labels as uint8 classes: zones 0..3 (NaN: unknown), front 0/1; anything else refused."""
    values = np.asarray(values)
    unknown = np.isnan(values) if values.dtype.kind == "f" else np.zeros(values.shape, bool)
    legal = range(len(ZONE_NAMES)) if what == "zones" else (0, 1)
    filled = np.where(unknown, 0, values)
    odd = np.setdiff1d(np.unique(filled), list(legal))
    if odd.size:
        meaning = ("the zone classes 0 no data, 1 rock, 2 glacier, 3 ocean (NaN: not labelled)"
                   if what == "zones" else "0 background, 1 front")
        grey = " CaFFe's grey values? Read PNGs with xcalving.data.caffe.png.read_label." \
            if what == "zones" and set(odd.tolist()) & {64, 127, 254} else ""
        raise InputError(f"{where} has label values {odd.tolist()[:6]} outside {meaning}."
                         + grey + " Map them onto the classes first.")
    out = filled.astype(np.uint8)
    if what == "zones":
        out[unknown] = UNKNOWN
    return out


# --- GeoTIFF scenes ------------------------------------------------------------------------------
def _geotiff_scenes(paths: list[Any], scaling: str, resolution: float | None) -> list[RawScene]:
    scenes = []
    for path in expand_paths(paths, patterns_allowed=True):
        header = read_header(path)
        native = min(abs(header.transform.a), abs(header.transform.e))
        coarser = resolution is not None and resolution > 1.01 * native
        da = open_scenes(path, resolution=resolution,
                         resampling="average" if coarser else "nearest")
        if "band" in da.dims:
            raise InputError(f"data: {path!r} has {da.sizes['band']} bands; finetune trains on "
                             "one band of backscatter. Write one band per file (e.g. HH or VV).")
        sar = da.isel(time=0)  # lazy: only the labelled region of a labelled scene is read
        spacing, transform, crs = _grid_facts(sar)
        scenes.append(RawScene(name=os.path.basename(path), date=_iso(da["time"].values[0]),
                               values=sar, kind=input_kind(sar, scaling),
                               spacing=spacing, source="geotiff", transform=transform, crs=crs))
    return scenes
