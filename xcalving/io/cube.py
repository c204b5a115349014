"""Opening SAR cubes and predictions stored as Zarr, with their CRS and transform.

And the blocks a store holds (:func:`missing_blocks`, for resuming).
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import xarray as xr

from xcalving.atomic import is_url
from xcalving.errors import (
    DamagedFileError,
    InputError,
    InputNotFoundError,
    InputTypeError,
    XcalvingError,
)
from xcalving.safety import is_zarr_store

__all__ = ["decoded_as_float32", "missing_blocks", "open_cube"]

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
        Dask-backed: nothing is read until you compute. A local store's blocks are read
        through a guard: a chunk that cannot be read raises
        :class:`~xcalving.errors.DamagedFileError` naming the store, variable and block.

    Raises
    ------
    FileNotFoundError
        Nothing is at ``path``.
    InputError
        ``path`` is not a Zarr store.
    DamagedFileError
        Its metadata cannot be read (an ``InputError`` and an ``OSError``).

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
            raise InputNotFoundError(f"path: no Zarr store at {os.fspath(path)!r}.")
    # heavy: rioxarray, loaded on first use
    import rioxarray  # noqa: F401  (registers .rio, for callers who never imported it)


    ds = _open_zarr(path, {} if chunks is None else chunks, storage_options)
    if not is_url(path):  # a remote read can fail for the network's sake: its error stands
        ds = _guarded(ds, _open_zarr(path, None, storage_options), os.fspath(path))
    return decoded_as_float32(ds)


def _open_zarr(path: Any, chunks: Any, storage_options: Any) -> xr.Dataset:
    """``xr.open_zarr`` with the CRS decoded; a store that cannot be opened is named, explained."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_CONSOLIDATED_FALLBACK,
                                    category=RuntimeWarning)
            return xr.open_zarr(path, chunks=chunks, decode_coords="all", consolidated=None,
                                storage_options=storage_options)
    except Exception as err:
        if is_url(path) or isinstance(err, XcalvingError):
            raise
        where = os.fspath(path)
        if not is_zarr_store(path):
            raise InputError(f"path: {where!r} is not a Zarr store (no zarr.json or .zgroup at "
                             "its root); give a folder written by xcalving.write_cube (GeoTIFF "
                             "scenes: xcalving.open_scenes).") from err
        raise DamagedFileError(f"path: the Zarr store {where!r} cannot be opened "
                               f"({type(err).__name__}: {err}); its metadata is damaged (an "
                               "interrupted copy?). Copy or write it again.") from err


def _guarded(ds: xr.Dataset, lazy: xr.Dataset, where: str) -> xr.Dataset:
    """``ds`` whose Dask blocks, when a read fails, raise DamagedFileError naming the store.

    Each block is read through ``lazy`` (the same store opened without Dask), in the chunks
    ``ds`` has: the same values, and zarr's or a codec's error becomes one that names the store
    and the variable.
    """
    import dask.array as dsa  # heavy: dask, loaded on first use

    swapped: dict[Any, xr.Variable] = {}
    for name, var in ds.variables.items():
        if var.chunks is None or name not in lazy.variables:
            continue
        blocks = _StoreBlocks(lazy.variables[name], where, str(name))
        data = dsa.from_array(blocks, chunks=var.chunks, name=f"xcalving-{var.data.name}",
                              asarray=False, meta=np.empty((0,) * var.ndim, var.dtype))
        swapped[name] = var.copy(deep=False, data=data)
    coords = {k: v for k, v in swapped.items() if k in ds.coords}
    data_vars = {k: v for k, v in swapped.items() if k not in ds.coords}
    return ds.assign(data_vars).assign_coords(coords)


class _StoreBlocks:
    """One variable of a store, read block by block; a failed read names store and variable."""

    def __init__(self, variable: xr.Variable, where: str, name: str) -> None:
        self.variable, self.where, self.name = variable, where, name
        self.shape, self.dtype, self.ndim = variable.shape, variable.dtype, variable.ndim

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            return np.asarray(self.variable[key].values)
        except MemoryError:
            raise
        except Exception as err:  # zarr's or a codec's own words: named and explained
            raise DamagedFileError(
                f"the Zarr store {self.where!r}: the block of {self.name!r} at "
                f"[{', '.join(f'{k.start}:{k.stop}' for k in key)}] cannot be "
                f"read ({type(err).__name__}: {err}); the store is damaged (an interrupted "
                "copy?). Copy or write it again.") from err


def decoded_as_float32(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with variables packed in 8 or 16 bits (CF ``scale_factor``) as float32, lazily.

    xarray decodes packed integers to the type of their ``scale_factor``, and a Zarr store
    keeps attributes as JSON numbers, so a uint8 probability reads back as float64: eight
    bytes a pixel for a value known to 1/508. Float32 holds every value of 16 bits or fewer
    exactly enough; the encoding is kept, so writing the Dataset packs it again.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> p = xr.DataArray(np.array([0.0, 0.5]), dims="x")
    >>> p.encoding = {"dtype": "uint8", "scale_factor": 1 / 254}
    >>> decoded_as_float32(p.to_dataset(name="p")).p.dtype
    dtype('float32')
    """
    packed = {}
    for name, var in ds.data_vars.items():
        stored = var.encoding.get("dtype")
        scaled = "scale_factor" in var.encoding or "add_offset" in var.encoding
        if (scaled and stored is not None and np.dtype(stored).kind in "iu"
                and np.dtype(stored).itemsize <= 2 and var.dtype == np.float64):
            packed[name] = var.astype(np.float32)
            packed[name].encoding = dict(var.encoding)
    return ds.assign(packed) if packed else ds


def missing_blocks(
    store: str | os.PathLike[str],
    template: xr.Dataset,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> list[dict[str, slice]]:
    """The Dask blocks of ``template`` that ``store`` does not hold in full.

    A run writing ``template`` to ``store`` block by block (``to_zarr`` of a lazy Dataset) that
    was stopped leaves some chunks unwritten; Zarr writes each chunk file whole, so a block is
    done exactly when every stored chunk (or shard) it covers exists. The chunk keys come from
    the store's own metadata, so any Zarr format and chunk-key encoding works.

    Parameters
    ----------
    store
        Local path or fsspec URL of a Zarr store written from ``template`` (its metadata at
        least, e.g. by ``to_zarr(..., compute=False)``); the template's blocks are assumed to
        be made of whole stored chunks, as ``to_zarr`` requires of Dask data.
    template
        Dask-backed Dataset whose data variables the store should hold; its chunks define the
        blocks.
    storage_options
        Passed to fsspec (and zarr) for remote stores.

    Returns
    -------
    list of dict
        One region per block with a chunk missing, as ``{dim: slice}`` in the template's
        dimensions, ready for ``template.isel(region).to_zarr(store, region="auto")``; empty when
        the store is complete. Chunks that ``write_empty_chunks=False`` skipped count as missing.

    Examples
    --------
    >>> import tempfile, xcalving
    >>> from xcalving.data.synthetic import glacier_cube
    >>> cube, _ = glacier_cube(3, shape=(64, 64), seed=0)
    >>> lazy = cube[["sar"]].chunk({"time": 1})
    >>> path = xcalving.write_cube(lazy, tempfile.mkdtemp() + "/c.zarr", compute=False)
    >>> [region["time"] for region in missing_blocks(path, lazy)]
    [slice(0, 1, None), slice(1, 2, None), slice(2, 3, None)]
    >>> block = lazy.isel(missing_blocks(path, lazy)[1]).drop_vars("spatial_ref")
    >>> _ = block.to_zarr(path, region="auto", consolidated=False)
    >>> len(missing_blocks(path, lazy))
    2
    """
    import fsspec  # heavy: fsspec, loaded on first use
    import zarr  # heavy: zarr, loaded on first use

    if not isinstance(template, xr.Dataset):
        raise InputTypeError(f"template must be an xarray.Dataset; got {type(template).__name__}.")
    options = dict(storage_options or {})
    group = zarr.open_group(store, mode="r", storage_options=options or None)
    arrays = {str(name): _stored_array(group, str(name), var, store)
              for name, var in template.data_vars.items()}
    fs, root = fsspec.core.url_to_fs(os.fspath(store), **options)
    stored = {name: {path[len(root) + len(name) + 2:] for path in fs.find(f"{root}/{name}")}
              for name in arrays}
    edges = {str(dim): np.cumsum([0, *c]) for dim, c in template.chunksizes.items()}
    missing = []
    for index in itertools.product(*(range(len(e) - 1) for e in edges.values())):
        region = {dim: slice(int(e[i]), int(e[i + 1]))
                  for (dim, e), i in zip(edges.items(), index, strict=True)}
        if not all(_holds(arrays[name], stored[name], template[name].dims, region)
                   for name in arrays):
            missing.append(region)
    return missing


def _stored_array(group: Any, name: str, var: xr.DataArray, store: Any) -> Any:
    """The Zarr array of ``name`` in ``group``, checked against the template's variable."""
    if name not in group:
        raise InputError(f"store: {os.fspath(store)!r} has no variable {name!r}; it was not "
                         "written from this template.")
    array = group[name]
    if tuple(array.shape) != tuple(var.shape):
        raise InputError(f"store: {name!r} in {os.fspath(store)!r} has shape {array.shape}, the "
                         f"template {var.shape}; it was not written from this template.")
    return array


def _holds(array: Any, keys: set[str], dims: tuple[Any, ...], region: dict[str, slice]) -> bool:
    """Whether every stored chunk (or shard) of ``array`` that ``region`` touches exists."""
    unit = array.shards or array.chunks
    spans = []
    for dim, size, step in zip(dims, array.shape, unit, strict=True):
        where = region.get(str(dim), slice(0, size))
        spans.append(range(where.start // step, -(-where.stop // step)))
    return all(array.metadata.encode_chunk_key(coords) in keys
               for coords in itertools.product(*spans))
