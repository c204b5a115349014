"""Front files: GeoParquet, GeoPackage, GeoJSON and FlatGeobuf, chosen by the file's extension.

:func:`check_fronts_path` validates a target before anything is computed; :func:`write_fronts`
writes beside the target and swaps the file in only once it is complete, so a failed write
leaves an existing file as it was; :func:`read_fronts` restores the index.
"""

from __future__ import annotations

import os
import uuid
import warnings
from typing import TYPE_CHECKING, Any

from xcalving.errors import InputError, InputTypeError

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["FRONT_FORMATS", "check_fronts_path", "read_fronts", "write_fronts"]

#: File extension → (format, GDAL driver, or None for GeoParquet).
FRONT_FORMATS: dict[str, tuple[str, str | None]] = {
    ".parquet": ("GeoParquet", None),
    ".gpkg": ("GeoPackage", "GPKG"),
    ".geojson": ("GeoJSON", "GeoJSON"),
    ".json": ("GeoJSON", "GeoJSON"),
    ".fgb": ("FlatGeobuf", "FlatGeobuf"),
}


def _extension(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def check_fronts_path(path: Any, *, overwrite: bool = False) -> str:
    """Check that :func:`write_fronts` can write ``path``; return it as a string.

    Call it before computing fronts, so that a typo in the file name fails in a second, not
    after an hour of inference.

    Parameters
    ----------
    path
        The file to write; its extension picks the format (:data:`FRONT_FORMATS`).
    overwrite
        Whether an existing file may be replaced: only a front file (one that reads in the
        format of its extension and has the columns :func:`xcalving.fronts` computes), never
        another file or a directory.

    Raises
    ------
    InputError
        An extension that names no supported format, or a path that is a directory.
    FileNotFoundError
        The folder to write into does not exist.
    FileExistsError
        ``path`` exists and ``overwrite`` is False, or it is not a front file.

    Examples
    --------
    >>> check_fronts_path("fronts.shp")
    Traceback (most recent call last):
    ...
    xcalving.errors.InputError: path: 'fronts.shp' has extension '.shp', which names no front \
format; use .parquet (GeoParquet), .gpkg (GeoPackage), .geojson or .json (GeoJSON), .fgb \
(FlatGeobuf).
    """
    if not isinstance(path, str | os.PathLike):
        raise InputTypeError(f"path must be a str or os.PathLike; got {type(path).__name__}.")
    path = os.fspath(path)
    ext = _extension(path)
    if ext not in FRONT_FORMATS:
        what = f"has extension {ext!r}, which names no front format" if ext else \
            "has no extension to name the front format"
        raise InputError(f"path: {path!r} {what}; use {_format_list()}.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"path: the folder {folder!r} does not exist; create it first "
                                "(os.makedirs) or choose another path.")
    if os.path.isdir(path):
        raise InputError(f"path: {path!r} is a directory; write_fronts writes one file. Choose "
                         "a file name inside it, e.g. os.path.join(path, 'fronts.parquet').")
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f"path: {path!r} exists; choose a new path or pass "
                              "overwrite=True to replace it.")
    if os.path.lexists(path) and not _is_front_file(path, ext):
        raise FileExistsError(
            f"path: {path!r} exists and is not a front file written by xcalving (a "
            f"{FRONT_FORMATS[ext][0]} file with the columns {list(_OWN_COLUMNS)}); overwrite=True "
            "replaces only those. Choose a new path, or remove the file yourself."
        )
    return path


#: Columns that mark a file as fronts written by :func:`write_fronts`.
_OWN_COLUMNS = ("length_px", "n_segments", "n_pixels")


def _is_front_file(path: str, ext: str) -> bool:
    """Whether ``path`` reads as a front file of its extension's format (schema only)."""
    try:
        if ext == ".parquet":
            import pyarrow.parquet as pq

            names = set(pq.read_schema(path).names)
        else:
            import pyogrio

            layer = "fronts" if ext == ".gpkg" else None
            names = set(pyogrio.read_info(path, layer=layer)["fields"])
    except Exception:  # unreadable in that format (or a link to nothing): not ours
        return False
    return set(_OWN_COLUMNS) <= names


def _format_list() -> str:
    by_format: dict[str, list[str]] = {}
    for ext, (name, _) in FRONT_FORMATS.items():
        by_format.setdefault(name, []).append(ext)
    return ", ".join(f"{' or '.join(exts)} ({name})" for name, exts in by_format.items())


def write_fronts(frame: gpd.GeoDataFrame, path: Any, *, overwrite: bool = False) -> str:
    """Write fronts to a file whose extension picks the format; the index becomes a column.

    Parameters
    ----------
    frame
        Fronts from :func:`xcalving.fronts` (or any GeoDataFrame).
    path
        ``.parquet`` (GeoParquet: times kept exactly), ``.gpkg`` (GeoPackage, layer ``fronts``),
        ``.geojson``/``.json`` (GeoJSON) or ``.fgb`` (FlatGeobuf); GeoPackage, GeoJSON and
        FlatGeobuf keep times to the millisecond.
    overwrite
        Replace an existing front file (never another file: see :func:`check_fronts_path`).
        It is replaced only after the new one has been written completely beside it (then
        :func:`os.replace`), so a failed write changes nothing.

    Returns
    -------
    str
        The path written. :func:`read_fronts` reads it back with the index restored.
    """
    import geopandas as gpd

    path = check_fronts_path(path, overwrite=overwrite)
    if not isinstance(frame, gpd.GeoDataFrame):
        raise InputTypeError(f"frame must be a GeoDataFrame of fronts (xcalving.fronts); got "
                             f"{type(frame).__name__}.")
    out = frame.reset_index()  # the index first: read_fronts restores it from the first column
    head, tail = os.path.split(os.path.abspath(path))
    ext = _extension(path)
    tmp = os.path.join(head, f".{tail}.{uuid.uuid4().hex[:8]}.tmp{ext}")
    try:
        _write(out, tmp, FRONT_FORMATS[ext][1])
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):  # only the file this call created
            os.remove(tmp)
    return path


def _write(out: Any, path: str, driver: str | None) -> None:
    if driver is None:
        out.to_parquet(path)
        return
    with warnings.catch_warnings():  # pixel-coordinate fronts have no CRS, and say so
        warnings.filterwarnings("ignore", message="'crs' was not provided")
        # FlatGeobuf's spatial index refuses the empty geometry of a scene without a front
        options = {"GPKG": {"layer": "fronts"}, "FlatGeobuf": {"SPATIAL_INDEX": "NO"}}
        kwargs = options.get(driver, {})
        out.to_file(path, driver=driver, engine="pyogrio", **kwargs)


def read_fronts(path: Any, *, index: str | None = None) -> gpd.GeoDataFrame:
    """Read fronts written by :func:`write_fronts`, with the index restored.

    Parameters
    ----------
    path
        A file of any of the :data:`FRONT_FORMATS`.
    index
        The column to index by; default: the first column (where :func:`write_fronts` puts the
        index). A datetime column comes back as a DatetimeIndex (time-zone naive).
    """
    import geopandas as gpd
    import pandas as pd
    import shapely

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: {path!r} does not exist.")
    frame = gpd.read_parquet(path) if _extension(path) == ".parquet" else \
        gpd.read_file(path, engine="pyogrio")
    name = index if index is not None else frame.columns[0]
    if name not in frame.columns or name == frame.geometry.name:
        raise InputError(f"index={name!r} is not a column of {path!r}; it has "
                         f"{[c for c in frame.columns if c != frame.geometry.name]}.")
    column = frame[name]
    if pd.api.types.is_datetime64_any_dtype(column):
        if getattr(column.dt, "tz", None) is not None:
            column = column.dt.tz_localize(None)
        frame[name] = column.astype("datetime64[ns]")
    # an empty geometry (no front found) may come back missing: fronts() writes it empty
    missing = frame.geometry.isna().to_numpy()
    if missing.any():
        frame.loc[missing, frame.geometry.name] = shapely.LineString()
    return frame.set_index(name)
