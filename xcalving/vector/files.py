"""Front files: GeoParquet, GeoPackage, GeoJSON and FlatGeobuf, chosen by the file's extension.

:func:`check_fronts_path` validates a target before anything is computed; :func:`write_fronts`
writes beside the target, reads the result back and swaps it in only then, so a failed or
short write leaves an existing file as it was, and replaces only the ``fronts`` layer of a
GeoPackage (the user's other layers stay); :func:`read_fronts` restores the index.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow.parquet as pq

from xcalving.atomic import staged_file
from xcalving.errors import (
    InputError,
    InputNotFoundError,
    InputTypeError,
    TargetExistsError,
    WriteVerificationError,
)

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
    >>> check_fronts_path("fronts.geotiff")
    Traceback (most recent call last):
    ...
    xcalving.errors.InputError: path: 'fronts.geotiff' has extension '.geotiff', which names no \
front format; use .parquet (GeoParquet), .gpkg (GeoPackage), .geojson or .json (GeoJSON), .fgb \
(FlatGeobuf).
    """
    if not isinstance(path, str | os.PathLike):
        raise InputTypeError(f"path must be a str or os.PathLike; got {type(path).__name__}.")
    path = os.fspath(path)
    ext = _extension(path)
    if ext == ".shp":
        raise InputError(
            f"path: {path!r}: Shapefiles are not written: they cut field names to 10 characters "
            "(mean_probability, head_distance_px would collide) and cannot store a date and "
            f"time. Use a GeoPackage, which QGIS opens the same way: "
            f"{path[:-4]}.gpkg.")
    if ext not in FRONT_FORMATS:
        what = f"has extension {ext!r}, which names no front format" if ext else \
            "has no extension to name the front format"
        raise InputError(f"path: {path!r} {what}; use {_format_list()}.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputNotFoundError(f"path: the folder {folder!r} does not exist; create it first "
                                "(os.makedirs) or choose another path.")
    if os.path.isdir(path):
        raise InputError(f"path: {path!r} is a directory; write_fronts writes one file. Choose "
                         "a file name inside it, e.g. os.path.join(path, 'fronts.parquet').")
    if os.path.lexists(path) and not overwrite:
        raise TargetExistsError(f"path: {path!r} exists; choose a new path or pass "
                              "overwrite=True to replace it.")
    if ext == ".gpkg" and os.path.exists(path):
        _refuse_open_elsewhere(path)
    if os.path.lexists(path) and not _is_front_file(path, ext):
        raise TargetExistsError(
            f"path: {path!r} exists and is not a front file written by xcalving (a "
            f"{FRONT_FORMATS[ext][0]} file with the columns {list(_OWN_COLUMNS)}); overwrite=True "
            "replaces only those. Choose a new path, or remove the file yourself."
        )
    return path


#: The layer of a GeoPackage that :func:`write_fronts` writes (and alone replaces).
_LAYER = "fronts"
#: Columns that mark a file as fronts written by :func:`write_fronts`.
_OWN_COLUMNS = ("length_px", "n_segments", "n_pixels")


def _is_front_file(path: str, ext: str) -> bool:
    """Whether ``path`` reads as a front file of its extension's format (schema only)."""
    try:
        if ext == ".parquet":
            names = set(pq.read_schema(path).names)
        else:
            import pyogrio  # heavy: pyogrio, loaded on first use

            layer = _LAYER if ext == ".gpkg" else None
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
        In a GeoPackage only the ``fronts`` layer is replaced: layers added beside it (an
        outline drawn in QGIS) are kept.

    Returns
    -------
    str
        The path written. :func:`read_fronts` reads it back with the index restored.

    Notes
    -----
    The file is written beside the target (a GeoPackage: into a copy of it), read back and
    checked -- every row there, every other layer of a GeoPackage as it was -- and only then
    moved over the target (:func:`xcalving.atomic.staged_file`, which also holds the target's
    lock against a second run). A write that fails or stops short (a full disk) raises
    :class:`~xcalving.errors.WriteVerificationError` and changes nothing.
    """
    import geopandas as gpd  # heavy: geopandas, loaded on first use


    path = check_fronts_path(path, overwrite=overwrite)
    if not isinstance(frame, gpd.GeoDataFrame):
        raise InputTypeError(f"frame must be a GeoDataFrame of fronts (xcalving.fronts); got "
                             f"{type(frame).__name__}.")
    out = frame.reset_index()  # the index first: read_fronts restores it from the first column
    ext = _extension(path)
    into_existing = ext == ".gpkg" and os.path.exists(path)
    others = _other_layers(path) if into_existing else {}
    with staged_file(path, what="path", seed=into_existing,
                     verify=lambda tmp: _check_written(tmp, ext, len(out), others)) as tmp:
        _write(out, os.fspath(tmp), FRONT_FORMATS[ext][1])
    return path


def _other_layers(path: str) -> dict[str, int]:
    """Feature counts of the layers of a GeoPackage other than ``fronts`` (kept on rewrite)."""
    import pyogrio  # heavy: pyogrio, loaded on first use

    _refuse_open_elsewhere(path)
    names = [str(name) for name, _ in pyogrio.list_layers(path) if name != _LAYER]
    return {name: int(pyogrio.read_info(path, layer=name)["features"]) for name in names}


def _refuse_open_elsewhere(path: str) -> None:
    """Refuse a GeoPackage whose -wal journal holds changes not yet in the file (QGIS has it)."""
    if os.path.exists(f"{path}-wal") and os.path.getsize(f"{path}-wal") > 0:
        raise InputError(f"path: {path!r} is open in another program (its -wal journal holds "
                         "unsaved changes); close it there (QGIS: remove the layers) and write "
                         "again, so no layer of yours is lost.")


def _check_written(path: Any, ext: str, rows: int, others: dict[str, int]) -> None:
    """Read the staged file back in full: ``rows`` fronts, and ``others`` layers unchanged."""
    path = os.fspath(path)
    if ext == ".parquet":
        found = pq.read_table(path).num_rows
    else:
        import pyogrio  # heavy: pyogrio, loaded on first use

        layer = _LAYER if ext == ".gpkg" else None
        found = len(pyogrio.read_dataframe(path, layer=layer, read_geometry=True))
        kept = _other_layers(path) if ext == ".gpkg" else {}
        if kept != others:
            raise WriteVerificationError(f"its other layers are {kept}, not {others} as before")
    if found != rows:
        raise WriteVerificationError(f"it holds {found} fronts where {rows} were written")


def _write(out: Any, path: str, driver: str | None) -> None:
    if driver is None:
        out.to_parquet(path)
        return
    with warnings.catch_warnings():  # pixel-coordinate fronts have no CRS, and say so
        warnings.filterwarnings("ignore", message="'crs' was not provided")
        # FlatGeobuf's spatial index refuses the empty geometry of a scene without a front
        options = {"GPKG": {"layer": _LAYER}, "FlatGeobuf": {"SPATIAL_INDEX": "NO"}}
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
    import shapely  # heavy: shapely, loaded on first use

    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputNotFoundError(f"path: {path!r} does not exist.")
    frame = _read(path, _extension(path))
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


def _read(path: str, ext: str) -> Any:
    """The frame of a front file: a GeoPackage's ``fronts`` layer, wherever it lies in the file."""
    import geopandas as gpd  # heavy: geopandas, loaded on first use
    import pyogrio  # heavy: pyogrio, loaded on first use

    if ext == ".parquet":
        return gpd.read_parquet(path)
    layers = [str(name) for name, _ in pyogrio.list_layers(path)] if ext == ".gpkg" else []
    layer = _LAYER if _LAYER in layers else None
    return gpd.read_file(path, engine="pyogrio", layer=layer)
