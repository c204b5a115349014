"""The files behind :func:`xcalving.open_scenes`: paths, headers, dates, bands and units.

Everything here reads file headers only (CRS, transform, size, band descriptions, tags), never
pixel data.
"""

from __future__ import annotations

import glob
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xcalving.bands import polarisation_of
from xcalving.errors import (
    DamagedFileError,
    InputError,
    InputNotFoundError,
    InputTypeError,
    did_you_mean,
)
from xcalving.scaling import _UNIT_KINDS

if TYPE_CHECKING:
    import pyproj
    from affine import Affine

__all__ = ["Scene", "common_labels", "cube_attrs", "date_groups", "expand_paths", "read_header",
           "scene_dates"]

# YYYY-MM-DD, YYYY_MM_DD or YYYYMMDD, optionally THHMMSS (Sentinel-1 names), not inside digits
_DATE_IN_NAME = re.compile(
    r"(?<!\d)(\d{4})([-_]?)(\d{2})\2(\d{2})(?:T(\d{2})(\d{2})(\d{2}))?(?!\d)")
_GLOB_CHARS = re.compile(r"[*?\[]")
#: ``times=`` strings: ISO dates, optionally with a time and a zone; nothing left to guess.
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?"
                       r"(Z|[+-]\d{2}(:?\d{2})?)?$")
#: Blocks of one band whose extent :func:`read_header` checks against the file's size, at most.
_MAX_BLOCKS_CHECKED = 50_000


@dataclass(frozen=True)
class Scene:
    """What the header of one file says."""

    path: str
    crs: pyproj.CRS
    transform: Affine
    shape: tuple[int, int]
    bounds: tuple[float, float, float, float]
    labels: tuple[Any, ...]
    units: str | None
    tag_time: str | None

    @property
    def name(self) -> str:
        """The file name, without its folder."""
        return os.path.basename(self.path)


# --- paths and headers ---------------------------------------------------------------------------
def expand_paths(paths: Any, *, patterns_allowed: bool) -> list[str]:
    """The files ``paths`` names, patterns expanded in name order; missing ones raise."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if not isinstance(paths, Sequence) or not all(isinstance(p, str | os.PathLike) for p in paths):
        raise InputTypeError(f"paths must be a path, a glob pattern or a list of them; got "
                             f"{type(paths).__name__}.")
    files: list[str] = []
    for path in map(os.fspath, paths):
        if _GLOB_CHARS.search(path) and not os.path.exists(path):
            if not patterns_allowed:
                raise InputError(f"times= pairs dates with files one by one; {path!r} is a glob "
                                 "pattern. List the files: paths=sorted(glob.glob(pattern)).")
            files += _matches(path)
        elif os.path.isdir(path):
            raise InputError(f"paths: {path!r} is a folder, not a GeoTIFF file; give the files "
                             f"in it, e.g. the pattern {os.path.join(path, '*.tif')!r}.")
        elif not os.path.isfile(path):
            raise InputNotFoundError(f"paths: no file at {path!r}.{_nearby(path)}")
        else:
            files.append(path)
    if not files:
        raise InputError("paths is empty; pass GeoTIFF files or a pattern such as 's1/*.tif'.")
    return files


def _matches(pattern: str) -> list[str]:
    """The files ``pattern`` matches; a folder whose own name has brackets is taken literally.

    ``glob`` reads ``run[1]/*.tif`` as ``run1/*.tif``; where the folder ``run[1]`` exists, its
    files are meant. Where both readings match files, the pattern is ambiguous and refused.
    """
    found = sorted(glob.glob(pattern))
    folder, name = os.path.split(pattern)
    literal: list[str] = []
    if folder and _GLOB_CHARS.search(folder) and os.path.isdir(folder):
        literal = sorted(glob.glob(os.path.join(glob.escape(folder), name)))
    if found and literal and found != literal:
        raise InputError(
            f"paths: the pattern {pattern!r} is ambiguous: the folder {folder!r} exists, and "
            f"read as a pattern its brackets match other files ({found[0]!r}). Escape the "
            f"folder's name to mean it: {os.path.join(glob.escape(folder), name)!r} "
            "(glob.escape), or list the files.")
    matches = literal or found
    if not matches:
        raise InputNotFoundError(f"paths: the pattern {pattern!r} matches no file."
                                + _nearby(pattern, pattern=True))
    folders = [m for m in matches if os.path.isdir(m)]
    if folders:
        raise InputError(
            f"paths: the pattern {pattern!r} matches {folders[0]!r}, which is a folder (an "
            "output written among the inputs?), not a GeoTIFF. Move it out of the inputs' "
            "folder, or narrow the pattern.")
    return matches


def _nearby(path: str, *, pattern: bool = False) -> str:
    """What is beside a missing file or pattern: a did-you-mean, or some names."""
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        return f" The folder {folder!r} does not exist either."
    names = sorted(os.listdir(folder))
    if pattern:
        return f" {folder!r} holds {len(names)} entries{': ' + str(names[:3]) if names else ''}."
    return did_you_mean(os.path.basename(path), names)


def read_header(path: str) -> Scene:
    """CRS, grid, bands, units and date tag of one file; reads no pixels."""
    import pyproj  # heavy: pyproj, loaded on first use
    import rasterio  # heavy: rasterio, loaded on first use

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                if src.crs is None:
                    raise InputError(
                        f"{path!r} has no CRS, so it cannot be placed on a map. Write one, e.g. "
                        "rioxarray.open_rasterio(path).rio.write_crs('EPSG:32624')"
                        ".rio.to_raster(new_path) (or gdal_edit.py -a_srs EPSG:32624 path).")
                _check_complete(src, path)
                return Scene(path, pyproj.CRS.from_wkt(src.crs.to_wkt()), src.transform,
                              (src.height, src.width), tuple(src.bounds), _labels(src),
                              _units(src), src.tags().get("TIFFTAG_DATETIME"))
    except rasterio.errors.RasterioError as exc:
        raise DamagedFileError(f"{path!r} cannot be read as a raster (not a GeoTIFF, or "
                               f"damaged or truncated?): {exc}. Check the file (gdalinfo), or "
                               "download or export it again.") from exc


def _check_complete(src: Any, path: str) -> None:
    """Refuse a GeoTIFF shorter than its header says its pixel blocks reach (truncated)."""
    if src.driver != "GTiff":
        return
    size = os.path.getsize(path)
    end = max((_block_end(src, band, row, col) for band, row, col in _blocks(src)), default=0)
    if end > size:
        raise DamagedFileError(
            f"{path!r} is truncated: its header places pixel data up to byte {end:,} but the "
            f"file has {size:,} bytes (an interrupted download or copy?). Download or export it "
            "again; leave it out meanwhile.")


def _blocks(src: Any) -> list[tuple[int, int, int]]:
    """(band, block row, block col) to check: every block, the last ones of a huge file."""
    bands = [1] if str(src.interleaving).endswith("pixel") else range(1, src.count + 1)
    found = []
    for band in bands:
        height, width = src.block_shapes[band - 1]
        rows, cols = -(-src.height // height), -(-src.width // width)
        first = max(0, rows * cols - _MAX_BLOCKS_CHECKED)
        found += [(band, k // cols, k % cols) for k in range(first, rows * cols)]
    return found


def _block_end(src: Any, band: int, row: int, col: int) -> int:
    offset = src.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=band)
    length = src.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=band)
    return int(offset) + int(length) if offset and length else 0  # sparse blocks: none


def _labels(src: Any) -> tuple[Any, ...]:
    """Band labels: polarisations (``"VV"``), else descriptions, else band numbers."""
    descriptions = [d or "" for d in src.descriptions]
    if src.count == 1:  # only a polarisation matters (predict's rule); other names may hold dates
        return ((polarisation_of(descriptions[0]) or "").upper() or 1,)
    if not any(descriptions):
        return tuple(range(1, src.count + 1))
    labels = tuple((polarisation_of(d) or "").upper() or d or str(i + 1)
                   for i, d in enumerate(descriptions))
    return labels if len(set(labels)) == len(labels) else tuple(map(str, range(1, src.count + 1)))


def _units(src: Any) -> str | None:
    """The file's units (``"dB"``, ``"linear"`` or as tagged), from band or file tags."""
    found: set[str] = set()
    file_tags = {k.lower(): v for k, v in src.tags().items()}
    for band in range(1, src.count + 1):
        band_tags = {k.lower(): v for k, v in src.tags(band).items()}
        raw = src.units[band - 1] or band_tags.get("units") or file_tags.get("units")
        found.update(filter(None, [_normalise_units(raw, src.descriptions[band - 1] or "")]))
    if len(found) > 1:
        raise InputError(f"{src.name!r}: its bands have different units {sorted(found)}; "
                         "open files whose bands share units.")
    return found.pop() if found else None


def _normalise_units(raw: str | None, description: str) -> str | None:
    """``"dB"``/``"linear"`` for units predict knows (a tag, else words of the description)."""
    if not raw:
        words = set(re.split(r"[^0-9a-z]+", description.lower()))
        raw = "dB" if "db" in words else "linear" if words & {"linear", "power"} else ""
    kind = _UNIT_KINDS.get(raw.strip().lower(), "")
    return {"db": "dB", "linear": "linear"}.get(kind, raw.strip()) or None


# --- dates ---------------------------------------------------------------------------------------
def scene_dates(scenes: list[Scene], times: Sequence[Any] | None) -> list[np.datetime64]:
    """One date per scene: from ``times``, else the file name, else the TIFF datetime tag."""
    if times is not None:
        if len(times) != len(scenes):
            raise InputError(f"times= has {len(times)} dates for {len(scenes)} files; give one "
                             "date per file, in the order of paths.")
        return [_given_date(i, value) for i, value in enumerate(times)]
    dates = [_date_of(scene) for scene in scenes]
    undated = [s.name for s, d in zip(scenes, dates, strict=True) if d is None]
    if undated:
        raise InputError(
            f"no date for {undated[:3]}{' …' if len(undated) > 3 else ''}: neither the name "
            "(YYYY-MM-DD, YYYY_MM_DD or YYYYMMDD) nor a TIFFTAG_DATETIME tag gives one. Pass "
            "times=[...] (one per file) or put the date in the file names.")
    return [d for d in dates if d is not None]


def _given_date(i: int, value: Any) -> np.datetime64:
    """``times[i]`` as a date; a missing one (None, NaT, NaN, "") or a bare number refused."""
    if isinstance(value, int | float | np.number) and not isinstance(value, bool):
        if not (isinstance(value, float | np.floating) and np.isnan(value)):
            raise InputError(f"times[{i}]={value!r} is a number, whose unit (days? seconds? "
                             "nanoseconds?) would be guessed; give a date such as '2020-01-31' "
                             "or numpy.datetime64('2020-01-31').")
    if isinstance(value, str) and value.strip() and not _ISO_DATE.match(value.strip()):
        raise InputError(f"times[{i}]={value!r} is not a date in ISO form (YYYY-MM-DD, "
                         "optionally THH:MM:SS), so its day, month and year would be guessed; "
                         "give dates such as '2020-01-31', one per file in the order of paths.")
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as err:
        raise InputError(f"times[{i}]={value!r} is not a date ({err}); give dates such as "
                         "'2020-01-31', one per file in the order of paths.") from None
    if pd.isna(stamp):
        raise InputError(f"times[{i}] is {value!r}: every file needs its date, and a missing "
                         "one would put the scene at no time (NaT). Give its date (e.g. "
                         "'2020-01-31'), or leave the file out of paths.")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(None)
    return np.datetime64(stamp.to_datetime64(), "ns")


def _date_of(scene: Scene) -> np.datetime64 | None:
    """The date in the file name, else the TIFF datetime tag, else None."""
    for match in _DATE_IN_NAME.finditer(scene.name):
        year, _, month, day, hour, minute, second = match.groups()
        try:
            when = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                            int(second or 0))
        except ValueError:
            continue
        if 1950 <= when.year <= 2100:
            return np.datetime64(when, "ns")
    try:
        return np.datetime64(datetime.strptime(scene.tag_time or "", "%Y:%m:%d %H:%M:%S"), "ns")
    except ValueError:
        return None


def date_groups(scenes: list[Scene], dates: list[np.datetime64],
                 duplicates: str) -> list[list[int]]:
    """Indices of the scenes of each date, dates ascending, files in the order given."""
    groups: dict[np.datetime64, list[int]] = {}
    for i in sorted(range(len(dates)), key=lambda i: dates[i]):
        groups.setdefault(dates[i], []).append(i)
    repeated = {str(d)[:19]: [scenes[i].name for i in g] for d, g in groups.items() if len(g) > 1}
    if repeated and duplicates == "error":
        raise InputError(
            f"several scenes have the same date: {repeated}. Pass duplicates='first' (keep the "
            "first file given), duplicates='mean' (average them where they have data: a "
            "mosaic of frames of one pass), or drop the extra files.")
    return [g[:1] if duplicates == "first" else g for g in groups.values()]


def common_labels(scenes: list[Scene]) -> tuple[Any, ...]:
    """The band labels all files share (in any order), those of the first file."""
    first = scenes[0].labels
    if all(len(s.labels) == 1 for s in scenes):
        named = {s.name: s.labels[0] for s in scenes if s.labels[0] != 1}
        if len(set(named.values())) > 1:
            raise InputError(f"the files hold different polarisations {named}; a cube holds "
                             "one. Open each polarisation's files on their own.")
        return first
    for scene in scenes[1:]:
        if sorted(map(str, scene.labels)) != sorted(map(str, first)):
            raise InputError(
                f"the files have different bands: {scenes[0].name!r} {list(first)}, "
                f"{scene.name!r} {list(scene.labels)}. Open each polarisation's files on "
                "their own (or give the bands the same descriptions).")
    return first


def cube_attrs(scenes: list[Scene]) -> dict[str, Any]:
    """``units`` (all files agree) and ``band`` (single-band files naming one band)."""
    units = {s.units for s in scenes}
    if len(units) > 1:
        named = {s.name: s.units for s in scenes}
        raise InputError(
            f"the files have different units {named}; a cube has one. Open them apart (and "
            "convert one kind: dB = 10*log10(linear)), or fix a wrong or missing 'units' tag "
            "(gdal_edit.py -mo units=dB path).")
    attrs: dict[str, Any] = {} if units == {None} else {"units": units.pop()}
    if all(len(s.labels) == 1 and isinstance(s.labels[0], str) for s in scenes):
        attrs["band"] = scenes[0].labels[0]  # one polarisation: common_labels checked it
    return attrs
