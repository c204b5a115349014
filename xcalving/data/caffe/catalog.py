"""The CaFFe tree on disk: finding ``data_raw``, the catalog of scenes, one scene, a time series."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage

from xcalving.data.caffe.names import parse_name
from xcalving.data.caffe.png import _read_scene_arrays
from xcalving.data.caffe.scale import copy_spacing, name_spacing, unsquash
from xcalving.errors import InputError, InputNotFoundError, InputTypeError, did_you_mean
from xcalving.zones import zone_attrs

__all__ = ["CATALOG_COLUMNS", "REGION_PAD_PX", "SPACING_RULES", "front_region", "label_region",
           "load_scene",
           "open_caffe", "shipped_scenes", "time_series"]

SPLITS = ("train", "test")
CATALOG_COLUMNS = ("stem", "split", "glacier", "date", "satellite", "resolution", "quality",
                   "orbit", "image_path", "zones_path", "front_path", "bbox_path", "pixel_spacing",
                   "spacing_x", "spacing_y")
#: How a catalog knows the pixel spacing: the file name's RESOLUTION (full resolution), the
#: caffe256 copy's per-glacier table, or not at all.
SPACING_RULES = ("name", "caffe256", None)
#: ``label_region`` is the labelled front grown by this many pixels.
REGION_PAD_PX = 3
_REGION_ATTRS = {"long_name": "region where the front is scored (CaFFe's bounding box; the "
                              "whole scene where the scene has no box file)",
                 "flag_values": [0, 1], "flag_meanings": "outside inside"}
_LABEL_REGION_ATTRS = {"long_name": "the labelled front grown by a few pixels: checks the "
                                    "extraction of label zones, never scores a model",
                       "flag_values": [0, 1], "flag_meanings": "outside inside"}
# Variable attributes of a loaded scene, a time series and the patch store alike.
_SAR_ATTRS = {"long_name": "SAR amplitude, 8-bit grey", "nodata": 0}
_ZONES_ATTRS = zone_attrs()
_FRONT_ATTRS = {"long_name": "calving front, one pixel wide", "flag_values": [0, 1],
                "flag_meanings": "background front"}


def shipped_scenes() -> Path:
    """The ``data_raw`` folder of the 14 real CaFFe scenes shipped with xcalving.

    Eight TerraSAR-X scenes of Jorum glacier spread over 2010–2014 and two scenes each of DBE,
    JAC and SI, from the ``caffe256`` copy: resized to 256 × 256, so open them with
    ``open_caffe(shipped_scenes(), pixel_spacing=None)``. CC BY 4.0, Gourmelon et al. (2022);
    see the README next to them.
    """
    path = Path(__file__).parents[1] / "scenes" / "caffe256" / "data_raw"
    if not (path / "sar_images").is_dir():
        raise InputNotFoundError(f"the shipped scenes are missing from {os.fspath(path)!r}: "
                                "the installation is incomplete; reinstall xcalving.")
    return path


# --- catalog --------------------------------------------------------------------------------------
def _find_data_raw(root: str | os.PathLike[str]) -> Path:
    """Accept ``data_raw`` itself or the folder that holds it."""
    if not isinstance(root, str | os.PathLike):
        raise InputTypeError(f"root must be a folder path; got {type(root).__name__}.")
    path = Path(root)
    if not path.is_dir():
        raise InputNotFoundError(
            f"root: no folder at {os.fspath(root)!r}. Pass CaFFe's data_raw folder (or its "
            "parent); download_caffe(dest) fetches it."
        )
    if not (path / "sar_images").is_dir() and (path / "data_raw").is_dir():
        path = path / "data_raw"
    if not (path / "sar_images").is_dir():
        raise InputError(
            f"root: {os.fspath(root)!r} holds no sar_images folder, nor a data_raw folder with "
            "one. Expected CaFFe's layout data_raw/{sar_images,zones,fronts}/{train,test}/."
        )
    return path


def _bbox_index(data_raw: Path) -> dict[str, str]:
    """Bounding-box files by scene stem (the first six fields of their names)."""
    folder = data_raw / "bounding_boxes"
    if not folder.is_dir():
        return {}
    return {"_".join(p.stem.split("_")[:6]): str(p) for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _spacings(name: Any, rule: str | None) -> tuple[float, float, float]:
    """(square pixel spacing or NaN, x spacing, y spacing) of a scene under a spacing rule."""
    if rule == "name":
        true = name_spacing(name.resolution)
        return true, true, true
    if rule == "caffe256":
        x, y = copy_spacing(name.glacier)
        return (x if x == y else np.nan), x, y
    return np.nan, np.nan, np.nan


def _catalog_row(data_raw: Path, split: str, image: Path, bboxes: Mapping[str, str],
                 pixel_spacing: str | None) -> dict[str, Any]:
    name = parse_name(image)
    stem = name.stem
    square, along_x, along_y = _spacings(name, pixel_spacing)
    return {
        "stem": stem, "split": split, "glacier": name.glacier,
        "date": pd.Timestamp(name.date), "satellite": name.satellite,
        "resolution": name.resolution, "quality": name.quality, "orbit": name.orbit,
        "image_path": str(image),
        "zones_path": str(data_raw / "zones" / split / f"{stem}_zones.png"),
        "front_path": str(data_raw / "fronts" / split / f"{stem}_front.png"),
        "bbox_path": bboxes.get(stem),
        "pixel_spacing": square, "spacing_x": along_x, "spacing_y": along_y,
    }


def _check_labels_exist(rows: Sequence[Mapping[str, Any]], data_raw: Path) -> None:
    missing = [(row["stem"], os.path.relpath(row[key], data_raw)) for row in rows
               for key in ("zones_path", "front_path") if not os.path.isfile(row[key])]
    if missing:
        listed = "; ".join(f"{stem} (no {path})" for stem, path in missing[:5])
        more = f"; and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InputError(
            f"{len(missing)} label files are missing under {os.fspath(data_raw)!r}: {listed}{more}."
            " Every sar_images/<split>/<stem>.png needs zones/<split>/<stem>_zones.png and "
            "fronts/<split>/<stem>_front.png: restore them, or remove the image."
        )


def open_caffe(root: str | os.PathLike[str], *,
               pixel_spacing: Literal["name", "caffe256"] | None = "name") -> pd.DataFrame:
    """Catalog the scenes of a CaFFe tree, one row per scene.

    Parameters
    ----------
    root
        CaFFe's ``data_raw`` folder, or the folder that contains it.
    pixel_spacing
        ``"name"`` (default): the pixel spacing comes from the RESOLUTION of the file name,
        true of the original scenes, with CaFFe's rounded labels read exactly ("7" is 6.67 m,
        "17" 16.67 m, "12" 12.5 m; :func:`~xcalving.data.caffe.scale.name_spacing`);
        ``"caffe256"``: the 256 × 256 copy, one x and one y spacing per glacier
        (:data:`~xcalving.data.caffe.scale.COPY_SPACING`); ``None``: unknown (NaN).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CATALOG_COLUMNS`; ``date`` is datetime64, paths are strings,
        ``spacing_x``/``spacing_y`` metres per pixel along each axis and ``pixel_spacing`` the
        square spacing (NaN where the pixels are not square or the spacing is unknown),
        ``bbox_path`` is None where no bounding-box file exists. ``attrs["pixel_spacing"]`` holds
        the ``pixel_spacing`` argument, ``attrs["root"]`` the data_raw folder.

    Examples
    --------
    >>> catalog = open_caffe(shipped_scenes(), pixel_spacing=None)
    >>> sorted(catalog.glacier.unique())
    ['DBE', 'JAC', 'Jorum', 'SI']
    """
    if pixel_spacing not in SPACING_RULES:
        raise InputError(f"pixel_spacing must be 'name' (from the file name), 'caffe256' (the "
                         f"256 x 256 copy's per-glacier table) or None (unknown); got "
                         f"{pixel_spacing!r}." + did_you_mean(str(pixel_spacing), ["name",
                                                                                   "caffe256"]))
    data_raw = _find_data_raw(root)
    bboxes = _bbox_index(data_raw)
    rows = [_catalog_row(data_raw, split, image, bboxes, pixel_spacing) for split in SPLITS
            for image in sorted((data_raw / "sar_images" / split).glob("*.png"))]
    if not rows:
        raise InputError(f"root: no scenes under {os.fspath(data_raw)!r}; expected PNG files in "
                         "sar_images/train/ or sar_images/test/.")
    _check_labels_exist(rows, data_raw)
    catalog = pd.DataFrame(rows, columns=list(CATALOG_COLUMNS))
    catalog["date"] = pd.to_datetime(catalog["date"])
    for column in ("pixel_spacing", "spacing_x", "spacing_y"):
        catalog[column] = catalog[column].astype(float)
    catalog.attrs.update(pixel_spacing=pixel_spacing, root=str(data_raw))
    return catalog


# --- one scene, a time series of scenes -----------------------------------------------------------
def _catalog_entry(scene: pd.Series | Mapping[str, Any] | str,
                   catalog: pd.DataFrame | None) -> Mapping[str, Any]:
    if isinstance(scene, pd.Series | Mapping):
        return scene
    if not isinstance(scene, str):
        raise InputTypeError(f"scene must be a catalog row or a scene stem; got "
                             f"{type(scene).__name__}.")
    if catalog is None:
        raise InputError(f"scene={scene!r} is a stem, so load_scene needs the catalog to find "
                         "it: load_scene(stem, catalog=open_caffe(root)).")
    stem = parse_name(scene).stem
    hits = catalog[catalog["stem"] == stem]
    if hits.empty:
        raise InputError(f"scene {stem!r} is not in the catalog ({len(catalog)} scenes)."
                         + did_you_mean(stem, catalog["stem"]))
    return hits.iloc[0]


def _spacing_attr(value: Any) -> float | str:
    """Pixel spacing for attrs: netCDF/Zarr attributes cannot hold None, so unknown is a word."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "unknown"
    return float(value)


def _read_bbox(path: str, shape: tuple[int, int]) -> np.ndarray:
    """A CaFFe bounding-box file (corner points "x,y", one a line) as a boolean raster."""
    points = []
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise InputError(f"{path!r}: the bounding-box file cannot be read ({err}).") from err
    for line in text.splitlines():
        numbers = re.findall(r"-?\d+(?:\.\d+)?", line)
        if len(numbers) == 2:
            points.append((float(numbers[0]), float(numbers[1])))
    if len(points) < 2:
        raise InputError(f"{path!r}: a CaFFe bounding-box file lists corner points 'x,y', one a "
                         f"line; found {len(points)}. Restore the file or remove it.")
    xs, ys = zip(*points, strict=True)
    box = np.zeros(shape, bool)
    box[max(0, math.floor(min(ys))):math.ceil(max(ys)) + 1,
        max(0, math.floor(min(xs))):math.ceil(max(xs)) + 1] = True
    return box


def front_region(shape: tuple[int, int], bbox_path: str | None = None) -> np.ndarray:
    """Where CaFFe scores a scene's front: its bounding-box file, else the whole scene."""
    if isinstance(bbox_path, str):
        return _read_bbox(bbox_path, shape)
    return np.ones(shape, bool)


def label_region(front: np.ndarray, pad: int = REGION_PAD_PX) -> np.ndarray:
    """The labelled front grown by ``pad`` pixels (a disk); the whole scene without a front.

    The caffe256 copy lost CaFFe's bounding boxes; this stands in for them to check that label
    zones give the labelled front back (``fronts(ds, region="label_region")``). Derived from the
    label itself, it would hide every false front further away: never score a model with it.
    """
    from skimage.morphology import disk  # heavy: skimage, loaded on first use

    if not front.any():
        return np.ones(front.shape, bool)
    return ndimage.binary_dilation(front.astype(bool), structure=disk(pad))


def load_scene(scene: pd.Series | Mapping[str, Any] | str,
               catalog: pd.DataFrame | None = None, *,
               spacing: float | None = None) -> xr.Dataset:
    """Load one scene with its labels as an ``xarray.Dataset``.

    Parameters
    ----------
    scene
        A row of :func:`open_caffe`'s catalog, or a scene stem (then ``catalog`` is required).
    catalog
        The catalog to look a stem up in.
    spacing
        ``None`` (default): the scene as stored, in pixel coordinates 0, 1, 2, ... without a
        CRS. A number of metres: the scene resampled to square pixels of that spacing
        (:func:`~xcalving.data.caffe.scale.unsquash`), with coordinates in metres in a local
        engineering CRS of the glacier; needs a catalog that knows the spacing
        (``open_caffe(root, pixel_spacing="name" | "caffe256")``).

    Returns
    -------
    xarray.Dataset
        Dims ``(y, x)``. ``sar`` uint8 (``attrs["nodata"] = 0``), ``zones`` uint8 classes
        0..3, ``front`` uint8 0/1, ``front_region`` uint8 0/1, where CaFFe scores the front
        (:func:`front_region`: the scene's bounding-box file, else the whole scene;
        :func:`xcalving.fronts` reads it), and ``label_region`` (:func:`label_region`: the
        labelled front grown by 3 px, to check extraction only). Attributes: stem, split,
        glacier, date (ISO), satellite, resolution, quality, orbit, pixel_spacing (metres, or
        ``"unknown"``).

    Examples
    --------
    >>> catalog = open_caffe(shipped_scenes(), pixel_spacing=None)
    >>> scene = load_scene(catalog.iloc[0])
    >>> scene.sar.dims, scene.sar.dtype.name, scene.attrs["pixel_spacing"]
    (('y', 'x'), 'uint8', 'unknown')
    >>> catalog = open_caffe(shipped_scenes(), pixel_spacing="caffe256")
    >>> metric = load_scene(catalog.iloc[0], spacing=75.0)  # DBE: 80.2 x 73.4 m a pixel
    >>> dict(metric.sizes), metric.attrs["pixel_spacing"]
    ({'y': 251, 'x': 274}, 75.0)
    """
    row = _catalog_entry(scene, catalog)
    sar, zones, front = _read_scene_arrays(row)
    region = front_region(front.shape, row.get("bbox_path"))
    coords = {"y": np.arange(sar.shape[0], dtype=np.float64),
              "x": np.arange(sar.shape[1], dtype=np.float64)}
    ds = xr.Dataset({"sar": (("y", "x"), sar, _SAR_ATTRS),
                     "zones": (("y", "x"), zones, _ZONES_ATTRS),
                     "front": (("y", "x"), front, _FRONT_ATTRS),
                     "front_region": (("y", "x"), region.astype(np.uint8), _REGION_ATTRS),
                     "label_region": (("y", "x"), label_region(front).astype(np.uint8),
                                      _LABEL_REGION_ATTRS)},
                    coords=coords)
    ds.attrs.update(
        stem=str(row["stem"]), split=str(row["split"]), glacier=str(row["glacier"]),
        date=pd.Timestamp(row["date"]).date().isoformat(), satellite=str(row["satellite"]),
        resolution=float(row["resolution"]), quality=int(row["quality"]),
        orbit=str(row["orbit"]), pixel_spacing=_spacing_attr(row["pixel_spacing"]),
    )
    return ds if spacing is None else unsquash(ds, _row_spacing(row), spacing)


def _row_spacing(row: Mapping[str, Any]) -> tuple[float, float]:
    along = (float(row.get("spacing_x", np.nan)), float(row.get("spacing_y", np.nan)))
    if not all(np.isfinite(along)):
        raise InputError(
            f"scene {row['stem']!r}: its pixel spacing is unknown, so it cannot be resampled to "
            "a spacing in metres. Open the tree with open_caffe(root, pixel_spacing='name') "
            "(full resolution) or pixel_spacing='caffe256' (the 256 x 256 copy)."
        )
    return along


def time_series(catalog: pd.DataFrame, *, glacier: str, satellite: str | None = None,
                spacing: float | None = None) -> xr.Dataset:
    """Stack the scenes of one glacier into a (time, y, x) cube.

    Within one glacier every scene of every sensor covers the same ground rectangle, so
    ``satellite=None`` (default) stacks them all; name one (``"TSX"``) to keep one sensor.
    ``spacing`` resamples every scene to square pixels of that many metres, as in
    :func:`load_scene`; without it the scenes must share a shape.
    """
    rows = catalog[catalog["glacier"] == glacier]
    if satellite is not None:
        rows = rows[rows["satellite"] == satellite]
    if rows.empty:
        pairs = sorted({(g, s) for g, s in zip(catalog["glacier"], catalog["satellite"],
                                               strict=True)})
        raise InputError(f"no scene of glacier={glacier!r} and satellite={satellite!r}; the "
                         f"catalog has {pairs}.")
    scenes = [load_scene(row, spacing=spacing)
              for _, row in rows.sort_values(["date", "stem"]).iterrows()]
    shapes = {s.sar.shape for s in scenes}
    if len(shapes) > 1:
        raise InputError(f"the {glacier} scenes have different shapes {shapes}; stack them at "
                         "one spacing: time_series(..., spacing=75.0).")
    crs = scenes[0].rio.crs if spacing is not None else None
    cube = xr.concat([s.drop_attrs() if hasattr(s, "drop_attrs") else s for s in scenes],
                     dim="time")
    cube = cube.assign_coords(time=pd.DatetimeIndex([s.attrs["date"] for s in scenes],
                                                    name="time"),
                              stem=("time", np.array([s.attrs["stem"] for s in scenes],
                                                     dtype=object)),
                              satellite=("time", np.array([s.attrs["satellite"] for s in scenes],
                                                          dtype=object)))
    for name, attrs in (("sar", _SAR_ATTRS), ("zones", _ZONES_ATTRS), ("front", _FRONT_ATTRS),
                        ("front_region", _REGION_ATTRS),
                        ("label_region", _LABEL_REGION_ATTRS)):
        cube[name].attrs = dict(attrs)
    cube.attrs.update(glacier=glacier, pixel_spacing=_spacing_attr(
        spacing if spacing is not None else np.nan),
        source="CaFFe, CC BY 4.0, doi:10.1594/PANGAEA.940950")
    if satellite is not None:
        cube.attrs["satellite"] = satellite
    return cube if crs is None else cube.rio.write_crs(crs)
