"""Opening and writing SAR cubes as Zarr, with their CRS and transform."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any, Literal

import xarray as xr

from xcalving.errors import InputError, InputTypeError

__all__ = ["open_cube", "write_cube"]

#: Chunks for writing a numpy-backed cube: one scene a chunk along time, tiles of 1024 pixels.
DEFAULT_WRITE_CHUNKS = {"time": 1, "band": 1, "y": 1024, "x": 1024}
_CONSOLIDATED_FALLBACK = "Failed to open Zarr store with consolidated metadata"


def open_cube(
    path: str | os.PathLike[str],
    *,
    chunks: Mapping[str, int] | Literal["auto"] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Open a Zarr cube lazily, keeping its CRS and transform.

    ``xarray.open_zarr`` alone leaves ``spatial_ref`` as a data variable and the CRS is lost
    (``decode_coords="all"`` is needed); this does it for you and reads consolidated metadata
    when the store has it, plain metadata (silently) when it has not.

    Parameters
    ----------
    path
        Local path or fsspec URL of the store.
    chunks
        Dask chunks; ``None`` (default) keeps the chunks stored on disk.
    storage_options
        Passed to fsspec for remote stores.

    Returns
    -------
    xarray.Dataset
        Dask-backed: nothing is read until you compute.

    Examples
    --------
    >>> import tempfile, xcalving
    >>> from xcalving.data.synthetic import glacier_cube
    >>> cube, _ = glacier_cube(2, shape=(96, 96), seed=0)
    >>> path = xcalving.write_cube(cube, tempfile.mkdtemp() + "/cube.zarr")
    >>> xcalving.open_cube(path).rio.crs.to_epsg()
    3031
    """
    if not isinstance(path, str | os.PathLike):
        raise InputTypeError(f"path must be a path or URL string; got {type(path).__name__}.")
    if isinstance(path, os.PathLike) or "://" not in str(path):
        if not os.path.exists(path):
            raise FileNotFoundError(f"path: no Zarr store at {os.fspath(path)!r}.")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_CONSOLIDATED_FALLBACK, category=RuntimeWarning)
        ds = xr.open_zarr(path, chunks={} if chunks is None else chunks,  # type: ignore[arg-type]
                          decode_coords="all", consolidated=None,
                          storage_options=storage_options)
    return ds


def write_cube(
    ds: xr.Dataset | xr.DataArray,
    path: str | os.PathLike[str],
    *,
    mode: Literal["w-", "w"] = "w-",
    compute: bool = True,
) -> str:
    """Write a cube to a Zarr v3 store, keeping its CRS, and return the path.

    Numpy-backed variables are chunked by :data:`DEFAULT_WRITE_CHUNKS`; dask-backed ones keep their
    chunks. Metadata is not consolidated (Zarr v3 has no standard for it yet, and zarr warns).

    Parameters
    ----------
    ds
        Dataset (or DataArray, written as a one-variable Dataset).
    path
        Where to write.
    mode
        ``"w-"`` (default) refuses to touch an existing store; ``"w"`` replaces it.
    compute
        ``False`` returns after writing metadata; see :meth:`xarray.Dataset.to_zarr`.
    """
    if mode not in ("w-", "w"):
        raise InputError(f"mode must be 'w-' (never overwrite) or 'w' (replace); got {mode!r}.")
    if isinstance(ds, xr.DataArray):
        ds = ds.to_dataset(name=ds.name or "sar")
    if mode == "w-" and os.path.exists(path):
        raise FileExistsError(
            f"path: {os.fspath(path)!r} already exists and mode='w-' never overwrites. "
            "Choose a new path, or pass mode='w' to replace it."
        )
    if all(v.chunks is None for v in ds.data_vars.values()):
        ds = ds.chunk({d: n for d, n in DEFAULT_WRITE_CHUNKS.items() if d in ds.dims})
    ds = ds.copy(deep=False)
    for var in ds.variables.values():  # chunk encodings of a store it was read from would clash
        var.encoding = {k: v for k, v in var.encoding.items()
                        if k not in ("chunks", "preferred_chunks", "shards")}
    ds.to_zarr(path, mode=mode, consolidated=False, zarr_format=3,  # type: ignore[call-overload]
               compute=compute)
    return os.fspath(path)
