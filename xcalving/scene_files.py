"""The files behind :func:`xcalving.open_scenes`: paths, headers, dates, bands and units.

Everything here reads file headers only (CRS, transform, size, band descriptions, tags), never
pixel data.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from xcalving.errors import InputError, InputTypeError, did_you_mean

if TYPE_CHECKING:
    import pyproj
    from affine import Affine

__all__ = ["Scene", "common_labels", "cube_attrs", "date_groups", "expand_paths", "read_header",
           "scene_dates"]

# YYYY-MM-DD, YYYY_MM_DD or YYYYMMDD, optionally THHMMSS (Sentinel-1 names), not inside digits
_DATE_IN_NAME = re.compile(
    r"(?<!\d)(\d{4})([-_]?)(\d{2})\2(\d{2})(?:T(\d{2})(\d{2})(\d{2}))?(?!\d)")
_GLOB_CHARS = re.compile(r"[*?\[]")


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
            matches = sorted(glob.glob(path))
            if not matches:
                raise FileNotFoundError(f"paths: the pattern {path!r} matches no file."
                                        + _nearby(path, pattern=True))
            files += matches
        elif not os.path.isfile(path):
            raise FileNotFoundError(f"paths: no file at {path!r}.{_nearby(path)}")
        else:
            files.append(path)
    if not files:
        raise InputError("paths is empty; pass GeoTIFF files or a pattern such as 's1/*.tif'.")
    return files


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
    import warnings

    import pyproj
    import rasterio

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                if src.crs is None:
                    raise InputError(
                        f"{path!r} has no CRS, so it cannot be placed on a map. Write one, e.g. "
                        "rioxarray.open_rasterio(path).rio.write_crs('EPSG:32624')"
                        ".rio.to_raster(new_path) (or gdal_edit.py -a_srs EPSG:32624 path).")
                return Scene(path, pyproj.CRS.from_wkt(src.crs.to_wkt()), src.transform,
                              (src.height, src.width), tuple(src.bounds), _labels(src),
                              _units(src), src.tags().get("TIFFTAG_DATETIME"))
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"{path!r} cannot be read as a raster (not a GeoTIFF, or truncated?): "
                         f"{exc}") from exc


def _labels(src: Any) -> tuple[Any, ...]:
    """Band labels: polarisations (``"VV"``), else descriptions, else band numbers."""
    from xcalving.inference.inputs import polarisation_of

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
    from xcalving.scaling import _UNIT_KINDS

    if not raw:
        words = set(re.split(r"[^0-9a-z]+", description.lower()))
        raw = "dB" if "db" in words else "linear" if words & {"linear", "power"} else ""
    kind = _UNIT_KINDS.get(raw.strip().lower(), "")
    return {"db": "dB", "linear": "linear"}.get(kind, raw.strip()) or None


# --- dates ---------------------------------------------------------------------------------------
def scene_dates(scenes: list[Scene], times: Sequence[Any] | None) -> list[np.datetime64]:
    """One date per scene: from ``times``, else the file name, else the TIFF datetime tag."""
    import pandas as pd

    if times is not None:
        if len(times) != len(scenes):
            raise InputError(f"times= has {len(times)} dates for {len(scenes)} files; give one "
                             "date per file, in the order of paths.")
        index = pd.DatetimeIndex(pd.to_datetime(list(times)))
        index = index.tz_convert(None) if index.tz is not None else index
        return list(index.values.astype("datetime64[ns]"))
    dates = [_date_of(scene) for scene in scenes]
    undated = [s.name for s, d in zip(scenes, dates, strict=True) if d is None]
    if undated:
        raise InputError(
            f"no date for {undated[:3]}{' …' if len(undated) > 3 else ''}: neither the name "
            "(YYYY-MM-DD, YYYY_MM_DD or YYYYMMDD) nor a TIFFTAG_DATETIME tag gives one. Pass "
            "times=[...] (one per file) or put the date in the file names.")
    return [d for d in dates if d is not None]


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
