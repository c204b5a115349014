"""A prediction as Cloud-Optimized GeoTIFFs that GIS programs open as they are.

:func:`export_geotiffs` writes one COG per scene and raster variable, into a folder::

    OUT/front_probability/2020-01-05.tif    # uint8, scale 1/254: QGIS shows probabilities
    OUT/zones/2020-01-05.tif                # uint8 codes 0..3 with a colour table
    OUT/zone_probability/2020-01-05.tif     # four bands, one per zone (outputs="all")

Files are named by date (``YYYY-MM-DD``), or date and time (``YYYY-MM-DDTHHMMSS``) when two
scenes share a day or a scene is not at midnight; a variable without a time dim is
``OUT/NAME.tif``. Each file has the CRS, the transform from the coordinates (north up), nodata,
band names and the variable's attributes as tags. Packed probabilities stay packed, their CF
``scale_factor``/``add_offset`` the GeoTIFF's scale and offset, which QGIS, GDAL and rioxarray
(``mask_and_scale=True``) apply.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from xcalving.atomic import is_url
from xcalving.errors import (
    InputError,
    InputNotFoundError,
    InputTypeError,
    UnsafeTargetError,
    XcalvingWarning,
    did_you_mean,
)
from xcalving.grid import transform
from xcalving.io.cog import Storage, cog_profile, is_zones, storage_of, write_geotiff, zone_colours
from xcalving.io.cube import open_cube
from xcalving.io.lineage import input_paths
from xcalving.safety import check_names, check_target, is_zarr_store, mark_folder, marked_by, staged

__all__ = ["CLI_NAMES", "WRITTEN_BY", "Names", "export_geotiffs", "scene_labels", "write_export"]

#: How an export folder is marked (``xcalving.safety.MARKER``): only such a folder is replaced.
WRITTEN_BY = "xcalving export"
#: One variable to write: its scenes (a Dask array), their files in the folder, the COG profile
#: and each file's extras (band names, tags, colour table).
Task = tuple[Any, list[str], dict[str, Any], list[dict[str, Any]]]


class Layout(NamedTuple):
    """How a variable becomes files: its scene dim (or None) and its band dim (or None)."""

    scene: str | None
    band: str | None


def export_geotiffs(
    pred: xr.Dataset | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    variables: Sequence[str] | None = None,
    mode: Literal["w-", "w"] = "w-",
) -> list[str]:
    """Write each scene of each raster variable of ``pred`` as a Cloud-Optimized GeoTIFF.

    The layout of ``out`` and the files are described in :mod:`xcalving.io.export`. One Dask
    computation writes a file a task (wrap it in :func:`xcalving.progress` for a bar), into a
    folder beside ``out`` that is moved there when complete (:mod:`xcalving.safety`).

    Parameters
    ----------
    pred
        A prediction Dataset (from :func:`xcalving.predict` or :func:`xcalving.open_cube`), or
        the path of a prediction store. Any variable whose last dims are ``y``, ``x`` is
        exported, with at most one scene dim before them (``time``) and one band dim (the
        ``zone`` of ``zone_probability``); other variables are left out.
    out
        The folder to create; never the store ``pred`` is read from, inside it or holding it.
    variables
        Names of the variables to export (default: every raster variable).
    mode
        ``"w-"`` (default) refuses an existing ``out``; ``"w"`` replaces a folder an earlier
        export wrote, never another folder or a file.

    Returns
    -------
    list of str
        The paths of the files written, under ``out``.

    Raises
    ------
    InputError
        No raster variable, an unknown name in ``variables``, an irregular grid, two scenes
        at one time, ``out`` overlapping the input.
    FileExistsError
        ``out`` exists (``mode="w-"``) or is no export folder (``mode="w"``).

    Examples
    --------
    >>> import tempfile, rasterio, xcalving
    >>> from xcalving.data.synthetic import glacier_cube
    >>> cube, _ = glacier_cube(2, shape=(64, 64), seed=0)
    >>> pred = cube.sar.calving.predict("demo", tile=64, overlap=16)
    >>> files = xcalving.export_geotiffs(pred, tempfile.mkdtemp() + "/tifs")
    >>> [f.split("/tifs/")[1] for f in files]  # doctest: +NORMALIZE_WHITESPACE
    ['front_probability/2019-01-01.tif', 'front_probability/2019-01-13.tif',
     'zones/2019-01-01.tif', 'zones/2019-01-13.tif']
    >>> with rasterio.open(files[0]) as tif:
    ...     tif.crs.to_epsg(), tif.dtypes[0], round(tif.scales[0] * 254, 6), tif.nodata
    (3031, 'uint8', 1.0, 255.0)
    """
    return write_export(pred, out, variables=variables, mode=mode)


class Names(NamedTuple):
    """How messages name the arguments: the Python API's, or the command line's options."""

    pred: str = "pred"
    out: str = "out"
    variables: str = "variables"
    flag: str = "mode='w'"


#: The command line's names (``xcalving export STORE --out --variables --overwrite``).
CLI_NAMES = Names("STORE", "--out", "--variables", "--overwrite")


def write_export(pred: Any, out: Any, *, variables: Sequence[str] | None, mode: str,
                 names: Names | None = None) -> list[str]:
    """:func:`export_geotiffs`, its messages naming the arguments as ``names`` says."""
    names = names or Names()
    ds, inputs = _open_prediction(pred, names)
    chosen = _raster_variables(ds, variables, names)
    check_names(ds[chosen])  # a name is a folder: no '/', no '..'
    _check_out(out, mode, inputs, names)
    return _run(_write_tasks(ds, chosen), out, mode, names)


# --- what is exported ---------------------------------------------------------------------------
def _open_prediction(pred: Any, names: Names) -> tuple[xr.Dataset, list[str]]:
    """The Dataset to export and the paths it reads (which ``out`` must stay clear of)."""
    if isinstance(pred, str | os.PathLike):
        if not is_url(pred) and not is_zarr_store(pred):
            what = ("nothing is there" if not os.path.lexists(pred) else "a folder without "
                    "Zarr metadata" if os.path.isdir(pred) else "a file")
            error = InputError if os.path.lexists(pred) else InputNotFoundError
            raise error(f"{names.pred}: {os.fspath(pred)!r} is not a Zarr store ({what}); give "
                        "the prediction store that xcalving predict (--out) or write_cube "
                        "wrote, e.g. pred.zarr.")
        return open_cube(pred), [os.fspath(pred)]
    if isinstance(pred, xr.DataArray):
        pred = pred.to_dataset(name=pred.name or "data")
    if not isinstance(pred, xr.Dataset):
        raise InputTypeError(f"pred must be a prediction Dataset or the path of a prediction "
                             f"store; got {type(pred).__name__}.")
    return pred, input_paths(pred)


def _layout(var: xr.DataArray) -> Layout | None:
    """How ``var`` is cut into files; None when it is no raster (no trailing ``y``, ``x``)."""
    if var.dims[-2:] != ("y", "x") or var.ndim > 4:
        return None
    lead = [str(d) for d in var.dims[:-2]]
    if len(lead) == 1:  # scenes (time, or another datetime dim), else bands
        dated = lead[0] in var.coords and np.issubdtype(var[lead[0]].dtype, np.datetime64)
        return Layout(lead[0], None) if dated or lead[0] == "time" else Layout(None, lead[0])
    return Layout(*lead) if lead else Layout(None, None)


def _raster_variables(ds: xr.Dataset, variables: Sequence[str] | None,
                      names: Names) -> list[str]:
    """The names to export: ``variables``, checked, or every raster variable of ``ds``."""
    rasters = [str(n) for n, v in ds.data_vars.items() if _layout(v) is not None]
    if variables is None:
        if not rasters:
            raise InputError(f"{names.pred} has no raster variable to export (dims ending in y, "
                             f"x; it has {[str(n) for n in ds.data_vars]}); give a prediction "
                             "from xcalving predict.")
        return rasters
    for name in [variables] if isinstance(variables, str) else variables:
        if name not in rasters:
            raise InputError(f"{names.variables}: {name!r} is not a raster variable of "
                             f"{names.pred}; it has {rasters}." + did_you_mean(str(name), rasters))
    return [variables] if isinstance(variables, str) else list(variables)


def scene_labels(times: Any) -> list[str]:
    """File stems of scenes at ``times``: ``YYYY-MM-DD``, or ``YYYY-MM-DDTHHMMSS`` for all.

    Dates alone when every time is at midnight and no two share a day; date and time otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> scene_labels(np.array(["2020-01-05", "2020-01-17"], "datetime64[ns]"))
    ['2020-01-05', '2020-01-17']
    >>> scene_labels(np.array(["2020-01-05T10:30", "2020-01-05T22:00"], "datetime64[ns]"))
    ['2020-01-05T103000', '2020-01-05T220000']
    """
    stamps = pd.DatetimeIndex(np.asarray(times))
    days = stamps.strftime("%Y-%m-%d")
    midnight = bool((stamps == stamps.normalize()).all())
    labels = list(days) if midnight and len(set(days)) == len(days) else \
        list(stamps.strftime("%Y-%m-%dT%H%M%S"))
    if len(set(labels)) < len(labels):
        twice = next(label for label in labels if labels.count(label) > 1)
        raise InputError(f"pred: two scenes have the time {twice} (to the second), so their files "
                         "would have one name; drop one first, e.g. "
                         "pred.drop_duplicates('time').")
    return labels


def _scenes(ds: xr.Dataset, layout: Layout) -> list[tuple[str, dict[str, str]]]:
    """(file stem, tags) of each scene: ``("2020-01-05", {"time": "2020-01-05T00:00:00"})``."""
    dim = layout.scene
    if dim is None:
        return [("", {})]
    if dim in ds.coords and np.issubdtype(ds[dim].dtype, np.datetime64):
        times = ds[dim].values
        return [(label, {dim: str(np.datetime_as_string(t, unit="s"))})
                for label, t in zip(scene_labels(times), times, strict=True)]
    return [(f"{dim}-{i}", {}) for i in range(ds.sizes[dim])]


# --- the files ----------------------------------------------------------------------------------
def _north_up(ds: xr.Dataset) -> tuple[Any, bool, bool]:
    """The transform of ``ds``'s grid with north up and x east, and whether to flip y, x."""
    from affine import Affine  # heavy: affine, loaded on first use


    t = transform(ds, what="export_geotiffs")
    height, width = ds.sizes["y"], ds.sizes["x"]
    flip_y, flip_x = t.e > 0, t.a < 0
    c = t.c + t.a * width if flip_x else t.c
    f = t.f + t.e * height if flip_y else t.f
    return Affine(abs(t.a), 0.0, c, 0.0, -abs(t.e), f), bool(flip_y), bool(flip_x)


def _extras(ds: xr.Dataset, name: str, layout: Layout, storage: Storage) -> dict[str, Any]:
    """What a file carries besides pixels: packing, band names, tags, a colour table."""
    var = ds[name]
    keep = ("model", "model_sha256", "xcalving_version", "title", "history")
    tags = {str(k): str(v) for k, v in var.attrs.items()}
    tags.update({k: str(ds.attrs[k]) for k in keep if k in ds.attrs})
    if layout.band is None:
        bands = [name]
    else:
        labels = var[layout.band].values if layout.band in var.coords else \
            range(var.sizes[layout.band])
        bands = [f"{name} {label}" for label in labels]
    colours = zone_colours() if is_zones(var) else None
    return {"storage": storage, "bands": bands, "tags": tags, "colours": colours}


def _scene_stack(var: xr.DataArray, layout: Layout, flips: tuple[bool, bool]) -> Any:
    """``var`` as a Dask array (scene, band, y, x), north up, one chunk a scene."""
    import dask.array as dsa  # heavy: dask, loaded on first use

    data = var.transpose(*[d for d in layout if d], "y", "x").data
    if not isinstance(data, dsa.Array):
        data = dsa.from_array(np.asarray(data), chunks=-1)
    data = data if layout.scene else data[None]
    data = data if layout.band else data[:, None]
    data = data[:, :, ::-1] if flips[0] else data
    data = data[:, :, :, ::-1] if flips[1] else data
    return data.rechunk({0: 1, 1: -1, 2: -1, 3: -1})


def _write_tasks(ds: xr.Dataset, names: list[str]) -> list[Task]:
    """(scenes, file paths relative to the export folder, profile, extras) of each variable."""
    # heavy: rioxarray, loaded on first use
    import rioxarray  # noqa: F401  (registers .rio)

    transform, flip_y, flip_x = _north_up(ds)
    crs = ds.rio.crs
    if crs is None:
        warnings.warn("export_geotiffs: pred has no CRS (spatial_ref); the GeoTIFFs get a "
                      "transform but no CRS, and GIS programs will not place them. Write it "
                      "first, e.g. pred.rio.write_crs('EPSG:3413').", XcalvingWarning,
                      stacklevel=4)
    tasks = []
    for name in names:
        layout = _layout(ds[name]) or Layout(None, None)  # every name is a raster
        storage = storage_of(ds[name])
        count = ds.sizes[layout.band] if layout.band else 1
        profile = cog_profile(storage, (count, ds.sizes["y"], ds.sizes["x"]), crs, transform)
        extras = _extras(ds, name, layout, storage)
        scenes = _scenes(ds, layout)
        files = [f"{name}/{stem}.tif" if stem else f"{name}.tif" for stem, _ in scenes]
        per_scene = [{**extras, "tags": extras["tags"] | tags} for _, tags in scenes]
        tasks.append((_scene_stack(ds[name], layout, (flip_y, flip_x)), files, profile,
                      per_scene))
    return tasks


def _write_block(block: np.ndarray, paths: list[str], profile: dict[str, Any],
                 extras: list[dict[str, Any]], block_info: Any = None) -> np.ndarray:
    """Write the scene ``block`` (1, bands, y, x) to its file; a Dask block function."""
    index = block_info[0]["chunk-location"][0]
    write_geotiff(block[0], paths[index], profile, extras[index])
    return np.ones((1, 1, 1, 1), np.uint8)


# --- where ---------------------------------------------------------------------------------------
def _check_out(out: Any, mode: str, inputs: list[str], names: Names) -> None:
    """Refuse an ``out`` this export may not write, before anything is computed."""
    if not isinstance(out, str | os.PathLike):
        raise InputTypeError(f"{names.out} must be a folder path; got {type(out).__name__}.")
    if mode not in ("w-", "w"):
        raise InputError(f"mode must be 'w-' (never overwrite) or 'w' (replace); got {mode!r}.")
    if is_url(out):
        raise InputError(f"{names.out}: {os.fspath(out)!r} is a URL; GeoTIFFs are exported to a "
                         "local folder (copy it to the cloud after).")
    check_target(out, mode=mode, inputs=inputs, what=names.out, flag=names.flag)
    if mode == "w" and os.path.lexists(out):
        _only_exports(Path(out), names)


def _only_exports(path: Path, names: Names) -> None:
    """Refuse to replace ``path`` unless an earlier export wrote it (and marked it)."""
    if marked_by(path) != WRITTEN_BY:
        raise UnsafeTargetError(f"{names.out}: {os.fspath(path)!r} is not a folder of GeoTIFFs "
                                f"that xcalving export wrote; {names.flag} replaces only such a "
                                "folder. Choose a new path.")


def _run(tasks: list[Task], out: Any, mode: str, names: Names) -> list[str]:
    """Compute and write every file into a folder beside ``out``, then move it there.

    One Dask computation writes every file, a scene a task: variables computed from the same
    blocks (a prediction's probabilities and zones) share them, so the network runs once.
    """
    import dask  # heavy: dask, loaded on first use


    with staged(out, mode=mode, what=names.out, flag=names.flag,
                check=lambda path: _only_exports(path, names)) as scratch:
        writes = []
        for scenes, files, profile, extras in tasks:
            (scratch / os.path.dirname(files[0])).mkdir(parents=True, exist_ok=True)
            paths = [os.fspath(scratch / f) for f in files]
            writes.append(scenes.map_blocks(_write_block, paths, profile, extras,
                                            chunks=((1,) * len(files), (1,), (1,), (1,)),
                                            dtype=np.uint8))
        dask.compute(*writes)
        mark_folder(scratch, WRITTEN_BY)
    return [os.path.join(os.fspath(out), f) for _, files, _, _ in tasks for f in files]
