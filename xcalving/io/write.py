"""Writing SAR cubes and predictions as Zarr, with their CRS and transform, safely or resumably."""

from __future__ import annotations

import os
from typing import Literal

import xarray as xr

from xcalving.errors import InputError, InputTypeError
from xcalving.grid import refresh_transform
from xcalving.io.lineage import input_paths
from xcalving.io.resume import write_resumable
from xcalving.safety import check_names, check_target, refuse_inputs, staged

__all__ = ["DEFAULT_WRITE_CHUNKS", "write_cube"]

#: Chunks for writing a numpy-backed cube: one scene a chunk along time, tiles of 2048 pixels,
#: what predict wants with its default tile and overlap (a block of at least four window steps,
#: 4 × 384 + 128 = 1664 px), so that reading the store back never merges chunks.
DEFAULT_WRITE_CHUNKS = {"time": 1, "band": 1, "y": 2048, "x": 2048}


def write_cube(
    ds: xr.Dataset | xr.DataArray,
    path: str | os.PathLike[str],
    *,
    mode: Literal["w-", "w"] = "w-",
    compute: bool = True,
    resume: bool = False,
) -> str:
    """Write a cube to a Zarr v3 store, keeping its CRS, and return the path.

    Numpy-backed variables are chunked by :data:`DEFAULT_WRITE_CHUNKS`; dask-backed ones keep their
    chunks. Metadata is not consolidated (Zarr v3 has no standard for it yet, and zarr warns).

    The store is written beside ``path`` (a hidden ``.NAME.xcalving-tmp-XXXX`` sibling) and moved
    there only when complete: a failure removes the sibling and leaves ``path`` as it was. See
    :mod:`xcalving.safety` for the rules.

    Parameters
    ----------
    ds
        Dataset (or DataArray, written as a one-variable Dataset).
    path
        Where to write. Never a path ``ds`` is read from: to update a store in place, load the
        data first (``ds.load()``), then write with ``mode="w"``.
    mode
        ``"w-"`` (default) refuses to touch an existing path; ``"w"`` replaces an existing Zarr
        store (or a folder xcalving created), never another folder, a file or ``"."``.
    compute
        ``False`` writes metadata only (and eager coordinates); the data are written later, e.g.
        region by region; see :meth:`xarray.Dataset.to_zarr`.
    resume
        Write resumably, as ``xcalving predict --resume`` does: into ``.NAME.xcalving-partial``
        beside ``path``, kept when interrupted and moved to ``path`` when complete; where such a
        partial store (or the store at ``path``) exists, write only the blocks it lacks, after
        checking it was started on the same input (``ds.attrs["input_fingerprint"]``, required)
        with the same settings. ``mode="w"`` lets the finished store replace ``path``.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``mode="w-"``.
    xcalving.safety.UnsafeTargetError
        ``mode="w"`` and ``path`` is not a Zarr store xcalving may replace (a FileExistsError).
    InputError
        ``path`` is, holds or lies inside an input of ``ds``; a variable name Zarr cannot store.

    Examples
    --------
    >>> import tempfile, xcalving
    >>> from xcalving.data.synthetic import glacier_cube
    >>> cube, _ = glacier_cube(2, shape=(64, 64), seed=0)
    >>> path = xcalving.write_cube(cube, tempfile.mkdtemp() + "/cube.zarr")
    >>> lazy = xcalving.open_cube(path)
    >>> try:
    ...     xcalving.write_cube(lazy.sar * 2, path, mode="w")  # it would delete what it reads
    ... except ValueError as err:
    ...     print("refused:", "is the input" in str(err))
    refused: True
    >>> _ = xcalving.write_cube((lazy.sar * 2).load(), path, mode="w")  # loaded first: fine
    """
    if mode not in ("w-", "w"):
        raise InputError(f"mode must be 'w-' (never overwrite) or 'w' (replace); got {mode!r}.")
    if not isinstance(ds, xr.Dataset | xr.DataArray):
        raise InputTypeError(f"ds must be an xarray Dataset or DataArray; got {type(ds).__name__}.")
    if isinstance(ds, xr.DataArray):
        ds = ds.to_dataset(name=ds.name or "sar")
    check_names(ds)
    if resume:
        refuse_inputs(path, input_paths(ds))
        return write_resumable(_write_ready(ds), path, mode=mode)
    check_target(path, mode=mode, inputs=input_paths(ds))
    ds = _write_ready(ds)
    with staged(path, mode=mode) as scratch:
        ds.to_zarr(scratch, mode="w-", consolidated=False,  # type: ignore[call-overload]
                   zarr_format=3, compute=compute)
    return os.fspath(path)


def _write_ready(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` chunked for writing, without chunk encodings from a store it was read from.

    Its GeoTransform is derived again from the coordinates (a coarsened or sliced cube keeps
    its source's otherwise).
    """
    ds = refresh_transform(ds)
    if all(v.chunks is None for v in ds.data_vars.values()):
        # data variables only: small coordinates (e.g. scene names) stay in memory
        ds = ds.assign({
            name: var.chunk({d: n for d, n in DEFAULT_WRITE_CHUNKS.items() if d in var.dims})
            for name, var in ds.data_vars.items()
        })
    ds = ds.copy(deep=False)
    for var in ds.variables.values():  # chunk encodings of a store it was read from would clash
        var.encoding = {k: v for k, v in var.encoding.items()
                        if k not in ("chunks", "preferred_chunks", "shards")}
    return ds
