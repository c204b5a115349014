"""The CaFFe benchmark on disk: scene names, labels, a catalog, scenes and a Zarr patch store.

CaFFe (Gourmelon et al. 2022, ESSD 14, 4287–4313; data doi:10.1594/PANGAEA.940950, CC BY 4.0)
ships as ``data_raw/{sar_images,zones,fronts}/{train,test}/`` PNG files plus
``data_raw/bounding_boxes/``. Scene names follow ``GLACIER_DATE_SATELLITE_RESOLUTION_QUALITY_ORBIT``
and labels carry ``_zones`` / ``_front`` before ``.png``. The scenes are not georeferenced:
coordinates are pixels, and metres come from RESOLUTION — unless the images were resized, as in the
``caffe256`` copy, where the pixel spacing is unknown.

The path from files to training::

    catalog = open_caffe("data_raw")            # one row per scene, labels checked to exist
    scene = load_scene(catalog.iloc[0])         # xarray Dataset: sar, zones, front
    store = caffe_to_zarr(catalog, "patches.zarr", window=256)   # (sample, y, x) patches
    # then xcalving.data.stream.PatchStream(store) feeds PyTorch, one chunk at a time
"""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from xcalving.errors import InputError, InputTypeError, UnsafeFileError, did_you_mean
from xcalving.windows import window_starts
from xcalving.zones import FRONT_GREYS, ZONE_GREYS, zone_attrs

__all__ = [
    "CAFFE_SHA256",
    "CAFFE_URL",
    "CATALOG_COLUMNS",
    "FRONT_GREYS",
    "NAME_PATTERN",
    "ZONE_GREYS",
    "SceneName",
    "caffe_to_zarr",
    "download_caffe",
    "load_scene",
    "open_caffe",
    "parse_name",
    "read_label",
    "shipped_scenes",
    "window_starts",
    "write_fixture_tree",
]

#: Where PANGAEA serves the CaFFe archive (record doi:10.1594/PANGAEA.940950).
CAFFE_URL = "https://download.pangaea.de/dataset/940950/files/data_raw.zip"
#: SHA-256 of ``data_raw.zip``. Unknown to xcalving: ``None`` makes :func:`download_caffe` print
#: the hash of what it fetched and wait for you to confirm it by passing ``sha256=``.
CAFFE_SHA256: str | None = None
NAME_PATTERN = "GLACIER_DATE_SATELLITE_RESOLUTION_QUALITY_ORBIT"
SPLITS = ("train", "test")
CATALOG_COLUMNS = ("stem", "split", "glacier", "date", "satellite", "resolution", "quality",
                   "orbit", "image_path", "zones_path", "front_path", "bbox_path", "pixel_spacing")
_LABELS = {"zones": (ZONE_GREYS, "no data, rock, glacier, ocean"),
           "front": (FRONT_GREYS, "background, front")}
_LABEL_FOLDERS = {"zones": "zones", "front": "fronts"}
_NAME_RE = re.compile(
    r"(?P<glacier>[A-Za-z][A-Za-z0-9-]*)_(?P<date>\d{4}-\d{2}-\d{2})"
    r"_(?P<satellite>[A-Za-z][A-Za-z0-9-]*)_(?P<resolution>\d+(?:\.\d+)?)"
    r"_(?P<quality>[1-6])_(?P<orbit>\d+)"
)
_SUFFIX_RE = re.compile(r"(_zones|_front)?(\.png)?$", re.IGNORECASE)


# --- names -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SceneName:
    """The fields of a CaFFe scene name ``GLACIER_DATE_SATELLITE_RESOLUTION_QUALITY_ORBIT``.

    Parameters
    ----------
    glacier
        Glacier code as written in the name (``"COL"``, ``"Jorum"``: case is kept).
    date
        Acquisition date.
    satellite
        Sensor code (``"TSX"``, ``"ERS"``, ``"S1"``, ...).
    resolution
        Original pixel spacing in metres.
    quality
        1 (best) to 6 (worst).
    orbit
        Orbit or track, a digit string with its leading zeros (``"092"``).

    Examples
    --------
    >>> name = parse_name("COL_2011-11-13_TDX_7_1_092_zones.png")
    >>> name.glacier, name.date.isoformat(), name.resolution, name.orbit
    ('COL', '2011-11-13', 7.0, '092')
    >>> name.stem
    'COL_2011-11-13_TDX_7_1_092'
    """

    glacier: str
    date: dt.date
    satellite: str
    resolution: float
    quality: int
    orbit: str

    def __post_init__(self) -> None:
        # Checking the rebuilt stem keeps one definition of a legal name: the parser's.
        if not isinstance(self.date, dt.date) or not _NAME_RE.fullmatch(self.stem):
            raise InputError(
                f"SceneName fields {self!r} do not make a CaFFe name {NAME_PATTERN}: glacier and "
                "satellite are letters/digits, date a datetime.date, resolution > 0, quality 1 "
                "to 6, orbit digits. Fix the offending field."
            )

    @property
    def stem(self) -> str:
        """The scene name without label suffix or extension."""
        date = self.date.isoformat() if isinstance(self.date, dt.date) else str(self.date)
        return "_".join([self.glacier, date, self.satellite, f"{self.resolution:g}",
                         str(self.quality), str(self.orbit)])

    def __str__(self) -> str:
        return self.stem


def parse_name(name: str | os.PathLike[str]) -> SceneName:
    """Parse a CaFFe scene name (a stem or a file name, label suffix and ``.png`` optional).

    Parameters
    ----------
    name
        ``"COL_2011-11-13_TDX_7_1_092"``, ``".../JAC_2015-12-23_TSX_6_1_005_front.png"``, ...

    Returns
    -------
    SceneName

    Raises
    ------
    InputError
        When the name does not follow ``GLACIER_DATE_SATELLITE_RESOLUTION_QUALITY_ORBIT``.
    """
    if not isinstance(name, str | os.PathLike):
        raise InputTypeError(f"name must be a file name or path; got {type(name).__name__}.")
    given = os.fspath(name)
    stem = _SUFFIX_RE.sub("", os.path.basename(given), count=1)
    match = _NAME_RE.fullmatch(stem)
    date = _iso_date(match["date"]) if match else None
    if match is None or date is None:
        raise InputError(
            f"{given!r} is not a CaFFe scene name: expected {NAME_PATTERN}[_zones|_front][.png], "
            "e.g. 'COL_2011-11-13_TDX_7_1_092.png' (DATE a real YYYY-MM-DD, RESOLUTION metres, "
            "QUALITY 1 to 6, ORBIT digits). Rename the file or move it out of the dataset."
        )
    return SceneName(match["glacier"], date, match["satellite"], float(match["resolution"]),
                     int(match["quality"]), match["orbit"])


def _iso_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:  # 2011-02-30 matches the pattern but is no date
        return None


# --- PNG reading -------------------------------------------------------------------------------
def _read_grey_png(path: str | os.PathLike[str], what: str) -> np.ndarray:
    """Read an 8-bit single-channel PNG fully, turning every decoding failure into InputError."""
    from PIL import Image

    try:
        with Image.open(path, formats=["PNG"]) as image:
            image.load()  # decode now: a truncated file fails here, not later in a worker
            grey = _grey_pixels(image)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what}: no file at {os.fspath(path)!r}.") from None
    except (OSError, SyntaxError, ValueError) as err:  # PIL's errors for broken/non-PNG files
        raise InputError(
            f"{os.fspath(path)!r} ({what}) is not a readable PNG: {err}. The file is corrupted, "
            "truncated or in another format; copy or download it again."
        ) from err
    if grey is None:
        raise InputError(
            f"{os.fspath(path)!r} ({what}) is not an 8-bit grey PNG (mode {image.mode!r}, "
            "channels that differ, or more than 8 bits); CaFFe files are 8-bit single-channel "
            "grey. Convert it, e.g. PIL.Image.open(p).convert('L').save(p)."
        )
    return grey


def _grey_pixels(image: Any) -> np.ndarray | None:
    """8-bit grey values of a decoded image; ``None`` when it is not grey at 8 bits."""
    if image.mode in ("L", "1"):
        return np.asarray(image.convert("L"))
    if image.mode in ("P", "LA", "RGB", "RGBA"):
        rgb = np.asarray(image.convert("RGB"))
        if (rgb == rgb[..., :1]).all():  # grey stored as colour: every channel agrees
            return np.ascontiguousarray(rgb[..., 0])
    return None


def read_label(path: str | os.PathLike[str], kind: Literal["zones", "front"]) -> np.ndarray:
    """Read a CaFFe label PNG as class codes.

    Parameters
    ----------
    path
        The ``*_zones.png`` or ``*_front.png`` file.
    kind
        ``"zones"``: grey 0/64/127/254 become classes 0 no data, 1 rock, 2 glacier, 3 ocean;
        ``"front"``: grey 0/255 become 0/1.

    Returns
    -------
    numpy.ndarray
        uint8 class codes, same shape as the image.

    Raises
    ------
    InputError
        For any other grey value (never read silently as class 0), naming the file, the values
        and their pixel counts; for a corrupted, truncated or non-PNG file.
    """
    if kind not in _LABELS:
        raise InputError(f"kind must be 'zones' or 'front'; got {kind!r}."
                         + did_you_mean(str(kind), _LABELS))
    return _grey_to_classes(_read_grey_png(path, f"{kind} label"), path, kind)


def _grey_to_classes(grey: np.ndarray, path: str | os.PathLike[str], kind: str) -> np.ndarray:
    greys, meanings = _LABELS[kind]
    lookup = np.full(256, 255, np.uint8)  # 255 marks grey values that are no class
    lookup[list(greys)] = np.arange(len(greys))
    classes = lookup[grey]
    illegal = classes == 255
    if illegal.any():
        values, counts = np.unique(grey[illegal], return_counts=True)
        listed = ", ".join(f"{v} ({c} px)" for v, c in zip(values[:8], counts[:8], strict=True))
        more = f" and {values.size - 8} more values" if values.size > 8 else ""
        raise InputError(
            f"{os.fspath(path)!r}: {kind} label has grey values that are no CaFFe class: "
            f"{listed}{more}; {int(illegal.sum())} pixels in all. Expected only "
            f"{', '.join(map(str, greys))} ({meanings}). Fix the file, e.g. map resampling "
            "artefacts to the nearest legal value."
        )
    return classes


def _image_shape(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(rows, cols) of a PNG from its header, without decoding the pixels."""
    from PIL import Image

    try:
        with Image.open(path, formats=["PNG"]) as image:
            cols, rows = image.size
    except (OSError, SyntaxError, ValueError) as err:
        raise InputError(f"{os.fspath(path)!r} is not a readable PNG: {err}. Copy or download "
                         "it again.") from err
    return rows, cols


# --- catalog ----------------------------------------------------------------------------------
def _find_data_raw(root: str | os.PathLike[str]) -> Path:
    """Accept ``data_raw`` itself or the folder that holds it."""
    if not isinstance(root, str | os.PathLike):
        raise InputTypeError(f"root must be a folder path; got {type(root).__name__}.")
    path = Path(root)
    if not path.is_dir():
        raise FileNotFoundError(
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


def _catalog_row(data_raw: Path, split: str, image: Path, bboxes: Mapping[str, str],
                 pixel_spacing: str | None) -> dict[str, Any]:
    name = parse_name(image)
    stem = name.stem
    return {
        "stem": stem, "split": split, "glacier": name.glacier,
        "date": pd.Timestamp(name.date), "satellite": name.satellite,
        "resolution": name.resolution, "quality": name.quality, "orbit": name.orbit,
        "image_path": str(image),
        "zones_path": str(data_raw / "zones" / split / f"{stem}_zones.png"),
        "front_path": str(data_raw / "fronts" / split / f"{stem}_front.png"),
        "bbox_path": bboxes.get(stem),
        "pixel_spacing": name.resolution if pixel_spacing == "name" else np.nan,
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
               pixel_spacing: Literal["name"] | None = "name") -> pd.DataFrame:
    """Catalog the scenes of a CaFFe tree, one row per scene.

    Parameters
    ----------
    root
        CaFFe's ``data_raw`` folder, or the folder that contains it.
    pixel_spacing
        ``"name"`` (default): the pixel spacing is the RESOLUTION of the file name, true of the
        original scenes; ``None``: unknown (NaN), for resized copies such as ``caffe256``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CATALOG_COLUMNS`; ``date`` is datetime64, paths are strings,
        ``bbox_path`` is None where no bounding-box file exists. ``attrs["pixel_spacing"]`` holds
        the ``pixel_spacing`` argument, ``attrs["root"]`` the data_raw folder.

    Examples
    --------
    >>> catalog = open_caffe(shipped_scenes(), pixel_spacing=None)
    >>> sorted(catalog.glacier.unique())
    ['DBE', 'JAC', 'Jorum', 'SI']
    """
    if pixel_spacing not in ("name", None):
        raise InputError(f"pixel_spacing must be 'name' (from the file name) or None (unknown, "
                         f"for resized images); got {pixel_spacing!r}.")
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
    catalog["pixel_spacing"] = catalog["pixel_spacing"].astype(float)
    catalog.attrs.update(pixel_spacing=pixel_spacing, root=str(data_raw))
    return catalog


# --- scenes -----------------------------------------------------------------------------------
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


def _read_scene_arrays(row: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sar = _read_grey_png(row["image_path"], "SAR image")
    zones = read_label(row["zones_path"], "zones")
    front = read_label(row["front_path"], "front")
    if not sar.shape == zones.shape == front.shape:
        raise InputError(
            f"scene {row['stem']!r}: image {sar.shape}, zones {zones.shape} and front "
            f"{front.shape} differ in shape; the three files of a scene must match pixel for "
            "pixel. Replace the mismatched file."
        )
    return sar, zones, front


def load_scene(scene: pd.Series | Mapping[str, Any] | str,
               catalog: pd.DataFrame | None = None) -> xr.Dataset:
    """Load one scene with its labels as an ``xarray.Dataset`` in pixel coordinates.

    Parameters
    ----------
    scene
        A row of :func:`open_caffe`'s catalog, or a scene stem (then ``catalog`` is required).
    catalog
        The catalog to look a stem up in.

    Returns
    -------
    xarray.Dataset
        Dims ``(y, x)`` with pixel-centre coordinates 0, 1, 2, ... (no CRS: CaFFe scenes are not
        georeferenced). ``sar`` uint8 (``attrs["nodata"] = 0``), ``zones`` uint8 classes 0..3,
        ``front`` uint8 0/1. Attributes: stem, split, glacier, date (ISO), satellite,
        resolution, quality, orbit, pixel_spacing (metres, or ``"unknown"``).

    Examples
    --------
    >>> catalog = open_caffe(shipped_scenes(), pixel_spacing=None)
    >>> scene = load_scene(catalog.iloc[0])
    >>> scene.sar.dims, scene.sar.dtype.name, scene.attrs["pixel_spacing"]
    (('y', 'x'), 'uint8', 'unknown')
    """
    row = _catalog_entry(scene, catalog)
    sar, zones, front = _read_scene_arrays(row)
    coords = {"y": np.arange(sar.shape[0], dtype=np.float64),
              "x": np.arange(sar.shape[1], dtype=np.float64)}
    ds = xr.Dataset({"sar": (("y", "x"), sar, _SAR_ATTRS),
                     "zones": (("y", "x"), zones, _ZONES_ATTRS),
                     "front": (("y", "x"), front, _FRONT_ATTRS)}, coords=coords)
    ds.attrs.update(
        stem=str(row["stem"]), split=str(row["split"]), glacier=str(row["glacier"]),
        date=pd.Timestamp(row["date"]).date().isoformat(), satellite=str(row["satellite"]),
        resolution=float(row["resolution"]), quality=int(row["quality"]),
        orbit=str(row["orbit"]), pixel_spacing=_spacing_attr(row["pixel_spacing"]),
    )
    return ds


_SAR_ATTRS = {"long_name": "SAR amplitude, 8-bit grey", "nodata": 0}
_ZONES_ATTRS = zone_attrs()
_FRONT_ATTRS = {"long_name": "calving front, one pixel wide", "flag_values": [0, 1],
                "flag_meanings": "background front"}


# --- patch store ------------------------------------------------------------------------------
def _check_patch_args(window: int, stride: int, chunk_samples: int, mode: str) -> None:
    for name, value in (("window", window), ("stride", stride), ("chunk_samples", chunk_samples)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise InputError(f"{name} must be a whole number >= 1; got {value!r}.")
    if mode not in ("w-", "w"):
        raise InputError(f"mode must be 'w-' (never overwrite) or 'w' (replace); got {mode!r}.")


def _as_catalog(root_or_catalog: Any, pixel_spacing: Literal["name"] | None) -> pd.DataFrame:
    if not isinstance(root_or_catalog, pd.DataFrame):
        return open_caffe(root_or_catalog, pixel_spacing=pixel_spacing)
    missing = [c for c in CATALOG_COLUMNS if c not in root_or_catalog.columns]
    if missing:
        raise InputError(f"root_or_catalog is a DataFrame without the catalog columns {missing};"
                         " pass open_caffe(root) (filtered rows are fine) or the root folder.")
    if root_or_catalog.empty:
        raise InputError("root_or_catalog is an empty catalog: there are no scenes to write.")
    return root_or_catalog


def _plan_patches(catalog: pd.DataFrame, window: int, stride: int) -> list[np.ndarray]:
    """Per scene, the (row, col) offsets of its windows in row-major order, shape (n, 2)."""
    plan = []
    for path in catalog["image_path"]:
        rows, cols = _image_shape(path)
        r, c = np.meshgrid(window_starts(rows, window, stride),
                           window_starts(cols, window, stride), indexing="ij")
        plan.append(np.column_stack([r.ravel(), c.ravel()]))
    return plan


def _skeleton(catalog: pd.DataFrame, plan: list[np.ndarray], window: int,
              chunk_samples: int) -> xr.Dataset:
    """The store's layout: lazy zeros for the patches, the per-sample coordinates filled in."""
    import dask.array as da

    scene = np.repeat(np.arange(len(plan)), [len(p) for p in plan])
    offsets = np.concatenate(plan)
    n = len(scene)
    chunks = (min(chunk_samples, n), window, window)
    dims = ("sample", "y", "x")
    data = {name: (dims, da.zeros((n, window, window), dtype=np.uint8, chunks=chunks), attrs)
            for name, attrs in (("sar", _SAR_ATTRS), ("zones", _ZONES_ATTRS),
                                ("front", _FRONT_ATTRS))}
    # object strings: zarr writes them as its stable variable-length string type
    coords: dict[str, Any] = {"sample": np.arange(n, dtype=np.int64)}
    for name in ("stem", "glacier", "satellite", "split"):
        coords[name] = ("sample", catalog[name].astype(str).to_numpy(dtype=object)[scene])
    coords["date"] = ("sample", pd.to_datetime(catalog["date"]).to_numpy()[scene])
    coords["row"] = ("sample", offsets[:, 0])
    coords["col"] = ("sample", offsets[:, 1])
    spacing = catalog["pixel_spacing"].to_numpy(dtype=np.float64)[scene]
    coords["pixel_spacing"] = ("sample", spacing, {"units": "m", "long_name": "pixel spacing"})
    ds = xr.Dataset(data, coords=coords)
    # Coordinates share the patches' chunks (xarray needs that to report chunk sizes) but live
    # in one shard, one file, each: cheap to read whole when a stream selects samples.
    shard = (-(-n // chunks[0]) * chunks[0],)
    for name in coords:
        ds[name].encoding.update(chunks=chunks[:1], shards=shard)
    return ds


class _ChunkWriter:
    """Collects patches and writes them to the store in whole, chunk-aligned blocks."""

    def __init__(self, group: Any, chunk_samples: int) -> None:
        self.group, self.chunk_samples = group, chunk_samples
        self.start = 0
        self.pending: dict[str, list[np.ndarray]] = {"sar": [], "zones": [], "front": []}

    def add(self, patches: Mapping[str, np.ndarray]) -> None:
        for name, values in patches.items():
            self.pending[name].extend(values)
        full = len(self.pending["sar"]) // self.chunk_samples * self.chunk_samples
        if full:
            self._write(full)

    def close(self) -> None:
        self._write(len(self.pending["sar"]))

    def _write(self, count: int) -> None:
        if count == 0:
            return
        for name, values in self.pending.items():
            self.group[name][self.start:self.start + count] = np.stack(values[:count])
            self.pending[name] = values[count:]
        self.start += count


def _cut_patches(arrays: Mapping[str, np.ndarray], offsets: np.ndarray,
                 window: int) -> dict[str, np.ndarray]:
    """Windows of every array at ``offsets``; scenes smaller than a window are padded with 0."""
    out = {}
    for name, values in arrays.items():
        pad = [(0, max(0, window - n)) for n in values.shape]
        padded = np.pad(values, pad, constant_values=0)  # 0 is no data in sar and in zones
        out[name] = np.stack([padded[r:r + window, c:c + window] for r, c in offsets])
    return out


def _write_patches(catalog: pd.DataFrame, plan: list[np.ndarray], store: Any, window: int,
                   chunk_samples: int, progress: bool) -> None:
    import zarr

    from xcalving._progress import tqdm_class

    tqdm = tqdm_class()
    writer = _ChunkWriter(zarr.open_group(store, mode="r+"), chunk_samples)
    rows = tqdm(catalog.to_dict("records"), desc="caffe_to_zarr", unit="scene",
                disable=not progress)
    for row, offsets in zip(rows, plan, strict=True):
        sar, zones, front = _read_scene_arrays(row)
        writer.add(_cut_patches({"sar": sar, "zones": zones, "front": front}, offsets, window))
    writer.close()


def _refuse_existing(store: Any, mode: str) -> None:
    local = isinstance(store, os.PathLike) or "://" not in str(store)
    if mode == "w-" and local and os.path.exists(store):
        raise FileExistsError(
            f"store: {os.fspath(store)!r} already exists and mode='w-' never overwrites. "
            "Choose a new path, or pass mode='w' to replace it."
        )


def caffe_to_zarr(
    root_or_catalog: str | os.PathLike[str] | pd.DataFrame,
    store: str | os.PathLike[str],
    *,
    window: int = 256,
    stride: int | None = None,
    pixel_spacing: Literal["name"] | None = "name",
    mode: Literal["w-", "w"] = "w-",
    chunk_samples: int = 16,
    progress: bool = True,
) -> str:
    """Cut CaFFe scenes into square patches and write them to a Zarr v3 store for training.

    Parameters
    ----------
    root_or_catalog
        A CaFFe ``data_raw`` folder (or its parent), or a catalog from :func:`open_caffe` —
        filter its rows to write a subset.
    store
        Path of the new store.
    window
        Patch side in pixels.
    stride
        Step between windows (default ``window``: no overlap). The last window of every axis is
        snapped inside the scene, so no pixel is dropped; scenes smaller than ``window`` are
        padded with 0 (no data in ``sar``, class no data in ``zones``).
    pixel_spacing
        Used only when a folder is given; see :func:`open_caffe`.
    mode
        ``"w-"`` (default) refuses an existing store; ``"w"`` replaces it.
    chunk_samples
        Samples per chunk: the unit a :class:`~xcalving.data.stream.PatchStream` reads.
    progress
        Show a progress bar over scenes.

    Returns
    -------
    str
        The store path. ``xcalving.open_cube(store)`` opens it lazily: ``sar``, ``zones`` and
        ``front`` uint8 (sample, y, x) chunked ``(chunk_samples, window, window)``, with
        per-sample coordinates stem, glacier, date, satellite, split, row, col (window offset in
        the scene) and pixel_spacing (NaN when unknown). Samples are sorted by glacier, then
        date, so a chunk rarely mixes glaciers.

    Notes
    -----
    Scenes are read and written one at a time: the dataset never has to fit in memory.

    Examples
    --------
    >>> import tempfile, xcalving
    >>> store = caffe_to_zarr(shipped_scenes(), tempfile.mkdtemp() + "/p.zarr", window=128,
    ...                       pixel_spacing=None, progress=False)
    >>> xcalving.open_cube(store).sar.shape
    (56, 128, 128)
    """
    stride = window if stride is None else stride
    _check_patch_args(window, stride, chunk_samples, mode)
    catalog = _as_catalog(root_or_catalog, pixel_spacing)
    catalog = catalog.sort_values(["glacier", "date", "stem"], kind="stable")
    plan = _plan_patches(catalog, window, stride)
    _refuse_existing(store, mode)
    skeleton = _skeleton(catalog, plan, window, chunk_samples)
    skeleton.attrs.update(
        title="CaFFe training patches", source="CaFFe, doi:10.1594/PANGAEA.940950",
        license="CC-BY-4.0", window=int(window), stride=int(stride),
        pixel_spacing="name" if catalog["pixel_spacing"].notna().all() else "unknown",
    )
    skeleton.to_zarr(store, mode=mode, compute=False, consolidated=False, zarr_format=3)
    _write_patches(catalog, plan, store, window, chunk_samples, progress)
    return os.fspath(store)


# --- download ---------------------------------------------------------------------------------
def _import_pooch() -> Any:
    try:
        import pooch
    except ImportError as err:
        raise ImportError("download_caffe needs pooch: pip install pooch") from err
    return pooch


def _fetch(url: str, dest: Path, sha256: str | None, progress: bool) -> Path:
    """Download the archive into ``dest`` (pooch skips it when a verified copy is there)."""
    pooch = _import_pooch()
    known = None if sha256 is None else f"sha256:{sha256.lower()}"
    try:
        path = Path(pooch.retrieve(url, known_hash=known, fname="data_raw.zip", path=dest,
                                   progressbar=progress))
    except ValueError as err:  # pooch's hash mismatch; it has deleted the download already
        raise UnsafeFileError(
            f"download of {url} failed verification against sha256={sha256!r}: {err} "
            "Nothing was extracted. Check the hash (or the URL) and try again."
        ) from err
    if sha256 is None:
        digest = pooch.file_hash(str(path), alg="sha256")
        print(f"sha256 of {path}: {digest}")
        raise UnsafeFileError(
            f"downloaded {path} (sha256 {digest}) but did not extract it: no sha256 was given to "
            "check it against. Compare the hash with a trusted source, then call "
            f"download_caffe({os.fspath(dest)!r}, sha256={digest!r}) to extract it (the file is "
            "not downloaded again)."
        )
    return path


def _check_member(info: zipfile.ZipInfo, archive: Path, dest: Path) -> None:
    name = info.filename.replace("\\", "/")
    escapes = (name.startswith("/") or re.match(r"^[A-Za-z]:", name) is not None
               or ".." in PurePosixPath(name).parts
               or not (dest / name).resolve().is_relative_to(dest.resolve()))
    if escapes or stat.S_ISLNK(info.external_attr >> 16):
        raise UnsafeFileError(
            f"{os.fspath(archive)!r}: member {info.filename!r} is a link or would be written "
            f"outside {os.fspath(dest)!r}; nothing was extracted. The archive is damaged or "
            "malicious: delete it and download it again from a trusted source."
        )


def _extract_safely(archive: Path, dest: Path) -> None:
    """Check every member first, then extract: a bad member means nothing is written."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as err:
        raise InputError(f"{os.fspath(archive)!r} is not a zip archive ({err}); delete it and "
                         "download it again.") from err
    with zf:
        for info in zf.infolist():
            _check_member(info, archive, dest)
        names = [n for n in zf.namelist() if not n.endswith("/")]
        # the archive may or may not wrap its folders in data_raw/; the result is the same
        nested = all(n.startswith("data_raw/") for n in names)
        zf.extractall(dest if nested else dest / "data_raw")


def download_caffe(dest: str | os.PathLike[str], *, url: str = CAFFE_URL,
                   sha256: str | None = CAFFE_SHA256, progress: bool = True) -> Path:
    """Download CaFFe's ``data_raw.zip`` from PANGAEA and unzip it safely into ``dest``.

    Parameters
    ----------
    dest
        Folder that receives ``data_raw.zip`` and ``data_raw/``.
    url
        Where to fetch the archive (default: PANGAEA, doi:10.1594/PANGAEA.940950).
    sha256
        Expected SHA-256 of the archive. ``None`` (the default, because xcalving does not know
        the hash of the published file): the archive is downloaded, its hash printed, and
        :class:`~xcalving.errors.UnsafeFileError` raised without extracting; confirm by calling
        again with ``sha256=`` that hash — the download is reused.
    progress
        Show a download progress bar.

    Returns
    -------
    pathlib.Path
        ``dest / "data_raw"``.

    Raises
    ------
    FileExistsError
        When ``dest/data_raw`` exists and is not empty (it is never overwritten).
    UnsafeFileError
        On a hash mismatch, without ``sha256``, or when a member of the archive is a link or
        would land outside ``dest`` (absolute path, ``..``): then nothing is extracted.

    Notes
    -----
    The data are CC BY 4.0: cite Gourmelon et al. (2022), ESSD 14, 4287–4313.
    """
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", str(sha256)):
        raise InputError(f"sha256 must be 64 hexadecimal digits; got {sha256!r}.")
    dest = Path(dest)
    data_raw = dest / "data_raw"
    if data_raw.is_dir() and any(data_raw.iterdir()):
        raise FileExistsError(f"dest: {os.fspath(data_raw)!r} exists and is not empty; "
                              "download_caffe never overwrites it. Choose another dest, or "
                              "remove that folder first.")
    dest.mkdir(parents=True, exist_ok=True)
    _extract_safely(_fetch(url, dest, sha256, progress), dest)
    return data_raw


# --- shipped real scenes and generated fixtures -----------------------------------------------
def shipped_scenes() -> Path:
    """The ``data_raw`` folder of the 14 real CaFFe scenes shipped with xcalving.

    Eight TerraSAR-X scenes of Jorum glacier spread over 2010–2014 and two scenes each of DBE,
    JAC and SI, from the ``caffe256`` copy: resized to 256 × 256, so open them with
    ``open_caffe(shipped_scenes(), pixel_spacing=None)``. CC BY 4.0, Gourmelon et al. (2022);
    see the README next to them.
    """
    path = Path(__file__).parent / "scenes" / "caffe256" / "data_raw"
    if not (path / "sar_images").is_dir():
        raise FileNotFoundError(f"the shipped scenes are missing from {os.fspath(path)!r}: "
                                "the installation is incomplete; reinstall xcalving.")
    return path


#: (glacier, satellite, resolution, orbit) of generated fixture scenes, train then test.
_FIXTURE_TRAIN = (("DBE", "TSX", 7, "034"), ("JAC", "TSX", 6, "005"), ("Jorum", "ERS", 20, "152"),
                  ("SI", "ENVISAT", 20, "288"), ("Crane", "PALSAR", 17, "110"))
_FIXTURE_TEST = (("COL", "TDX", 7, "092"), ("Mapple", "S1", 20, "038"))


def _fixture_names(n_train: int, n_test: int, dates: pd.DatetimeIndex) -> Iterator[tuple]:
    for k, date in enumerate(dates):
        split, i = ("train", k) if k < n_train else ("test", k - n_train)
        pool = _FIXTURE_TRAIN if split == "train" else _FIXTURE_TEST
        glacier, satellite, resolution, orbit = pool[i % len(pool)]
        name = SceneName(glacier, date.date(), satellite, float(resolution), k % 6 + 1, orbit)
        yield split, name.stem


def _write_png(path: Path, grey: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(grey, dtype=np.uint8)).save(path)


def _write_fixture_scene(data_raw: Path, split: str, stem: str, scene: xr.Dataset,
                         bounding_boxes: bool) -> None:
    db = scene["sar"].to_numpy()
    grey = np.rint(1 + 254 * np.clip((db + 25) / 30, 0, 1))  # the documented dB -> 8-bit rule
    _write_png(data_raw / "sar_images" / split / f"{stem}.png", np.where(np.isnan(db), 0, grey))
    zones = np.asarray(ZONE_GREYS, np.uint8)[scene["zones"].to_numpy()]
    _write_png(data_raw / "zones" / split / f"{stem}_zones.png", zones)
    front = np.asarray(FRONT_GREYS, np.uint8)[scene["front"].to_numpy()]
    _write_png(data_raw / "fronts" / split / f"{stem}_front.png", front)
    if bounding_boxes:
        rows, cols = db.shape
        box = data_raw / "bounding_boxes" / f"{stem}_bbox.txt"
        box.parent.mkdir(parents=True, exist_ok=True)
        # placeholder: the whole image as corner points; xcalving records the path only
        box.write_text(f"x,y\n0,0\n0,{rows - 1}\n{cols - 1},{rows - 1}\n{cols - 1},0\n")


def write_fixture_tree(root: str | os.PathLike[str], *, seed: int = 0, n_train: int = 3,
                       n_test: int = 0, shape: tuple[int, int] = (64, 80),
                       bounding_boxes: bool = True) -> Path:
    """Write a tiny CaFFe tree of synthetic scenes with real-looking names and legal values.

    Parameters
    ----------
    root
        Folder that receives ``data_raw/``.
    seed
        Seed of :func:`xcalving.data.synthetic.glacier_cube`; one fjord, one date per scene.
    n_train, n_test
        Number of scenes in each split (names cycle through DBE, JAC, Jorum, SI, Crane for
        train and COL, Mapple for test).
    shape
        ``(rows, cols)`` of every scene, each at least 64.
    bounding_boxes
        Also write ``bounding_boxes/<stem>_bbox.txt`` (placeholder contents: the whole image).

    Returns
    -------
    pathlib.Path
        ``root / "data_raw"``.

    Examples
    --------
    >>> import tempfile
    >>> data_raw = write_fixture_tree(tempfile.mkdtemp(), n_train=2, n_test=1)
    >>> catalog = open_caffe(data_raw)
    >>> catalog["stem"][0], catalog["split"].tolist()
    ('DBE_2011-11-13_TSX_7_1_034', ['train', 'train', 'test'])
    """
    from xcalving.data.synthetic import glacier_cube

    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(n, int | np.integer) or n < 0:
            raise InputError(f"{name} must be a whole number >= 0; got {n!r}.")
    if n_train + n_test < 1:
        raise InputError("write_fixture_tree needs at least one scene: n_train + n_test >= 1.")
    data_raw = Path(root) / "data_raw"
    if data_raw.is_dir() and any(data_raw.iterdir()):
        raise FileExistsError(f"root: {os.fspath(data_raw)!r} exists and is not empty.")
    cube, _ = glacier_cube(n_train + n_test, shape=shape, seed=seed, start="2011-11-13")
    names = _fixture_names(n_train, n_test, pd.DatetimeIndex(cube["time"].to_numpy()))
    for k, (split, stem) in enumerate(names):
        _write_fixture_scene(data_raw, split, stem, cube.isel(time=k), bounding_boxes)
    return data_raw


def write_synthetic_tree(root: str | os.PathLike[str], *, train_seeds: Iterable[int] = range(40),
                         test_seeds: Iterable[int] = range(1000, 1008), n_times: int = 6,
                         shape: tuple[int, int] = (256, 256)) -> Path:
    """Write synthetic glacier scenes as a CaFFe ``data_raw`` tree, one 'glacier' per seed.

    Scene names are ``SYN<seed>_<date>_S1_20_1_001``; seeds of ``train_seeds`` go to the
    ``train`` split and those of ``test_seeds`` to ``test``, so that a network trained with
    ``xcalving train --train-split train --val-split test`` is scored on fjords it never saw.
    SAR is written with the documented dB → 8-bit rule, NaN as 0 (no data).
    """
    from xcalving.data.synthetic import glacier_cube

    data_raw = Path(root) / "data_raw"
    if data_raw.is_dir() and any(data_raw.iterdir()):
        raise FileExistsError(f"root: {os.fspath(data_raw)!r} exists and is not empty.")
    for split, seeds in (("train", train_seeds), ("test", test_seeds)):
        for seed in seeds:
            cube, _ = glacier_cube(n_times, shape=shape, seed=int(seed), freq="30D")
            for k, date in enumerate(pd.DatetimeIndex(cube["time"].to_numpy())):
                stem = SceneName(f"SYN{seed}", date.date(), "S1", 20.0, 1, "001").stem
                _write_fixture_scene(data_raw, split, stem, cube.isel(time=k), False)
    return data_raw


def time_series(catalog: pd.DataFrame, *, glacier: str, satellite: str) -> xr.Dataset:
    """Stack the scenes of one glacier and one sensor into a (time, y, x) cube.

    One sensor shares one pixel grid; across sensors resized scenes do not line up, which is
    why ``satellite`` is required. Coordinates are pixels (CaFFe scenes have no CRS).
    """
    rows = catalog[(catalog["glacier"] == glacier) & (catalog["satellite"] == satellite)]
    if rows.empty:
        pairs = sorted({(g, s) for g, s in zip(catalog["glacier"], catalog["satellite"],
                                               strict=True)})
        raise InputError(f"no scene of glacier={glacier!r} and satellite={satellite!r}; the "
                         f"catalog has {pairs}.")
    scenes = [load_scene(row) for _, row in rows.sort_values("date").iterrows()]
    shapes = {s.sar.shape for s in scenes}
    if len(shapes) > 1:
        raise InputError(f"the {glacier} {satellite} scenes have different shapes {shapes}; "
                         "they do not share a pixel grid.")
    cube = xr.concat([s.drop_attrs() if hasattr(s, "drop_attrs") else s for s in scenes],
                     dim="time")
    cube = cube.assign_coords(time=pd.DatetimeIndex([s.attrs["date"] for s in scenes],
                                                    name="time"),
                              stem=("time", np.array([s.attrs["stem"] for s in scenes],
                                                     dtype=object)))
    for name, attrs in (("sar", _SAR_ATTRS), ("zones", _ZONES_ATTRS), ("front", _FRONT_ATTRS)):
        cube[name].attrs = dict(attrs)
    cube.attrs.update(glacier=glacier, satellite=satellite, pixel_spacing="unknown",
                      source="CaFFe (caffe256), CC BY 4.0, doi:10.1594/PANGAEA.940950")
    return cube
