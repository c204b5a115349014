"""Where lazy data come from, and a fingerprint of what they hold.

:func:`input_paths` finds the files and stores a lazy Dataset reads (so a writer can refuse to
write onto its own input); :func:`input_fingerprint` identifies the input *data*, not their path,
by every byte of every input file (so ``xcalving predict --resume`` refuses an input regenerated
or edited at the same path, wherever the edit lies).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import types
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from xcalving.atomic import file_digest
from xcalving.errors import InputTypeError

__all__ = ["input_fingerprint", "input_paths"]

_ATOMS = (bytes, int, float, complex, bool, type(None), np.ndarray, np.generic, type,
          types.ModuleType, types.BuiltinFunctionType)
_BUDGET = 1_000_000  # objects visited at most: a graph is walked whole, but never forever
#: Attributes that say where data are, not what they are: left out of the fingerprint.
_LOCATION_ATTRS = ("source_files",)


def _variables(obj: xr.Dataset | xr.DataArray) -> tuple[list[xr.Variable], Mapping[str, Any]]:
    if isinstance(obj, xr.DataArray):
        return [obj.variable, *(c.variable for c in obj.coords.values())], obj.encoding
    if isinstance(obj, xr.Dataset):
        return list(obj.variables.values()), obj.encoding

    raise InputTypeError(f"expected an xarray Dataset or DataArray; got {type(obj).__name__}.")


def input_paths(obj: xr.Dataset | xr.DataArray) -> list[str]:
    """The local paths and URLs that the lazy variables of ``obj`` read their data from.

    Looks at each variable not yet in memory: its ``encoding["source"]``, and the objects of its
    Dask graph (or lazy backend array) — Zarr stores (the store root), files behind xarray's
    and rioxarray's file managers, and ``os.PathLike`` objects. Plain strings in a graph are
    not taken for paths (a key or a separator is a string too).
    Variables already loaded read nothing and add nothing.

    Parameters
    ----------
    obj
        Dataset or DataArray, e.g. from :func:`xcalving.open_cube` or ``rioxarray.open_rasterio``.

    Returns
    -------
    list of str
        Paths (made absolute, links resolved) and URLs, each once, in the order found.

    Examples
    --------
    >>> import tempfile, xcalving
    >>> from xcalving.data.synthetic import glacier_cube
    >>> cube, _ = glacier_cube(1, shape=(64, 64), seed=0)
    >>> store = xcalving.write_cube(cube, tempfile.mkdtemp() + "/c.zarr")
    >>> lazy = xcalving.open_cube(store)
    >>> [p.endswith("c.zarr") for p in input_paths(lazy.sar * 2)]
    [True]
    >>> input_paths(lazy.sar.load())
    []
    """
    variables, encoding = _variables(obj)
    lazy = [v for v in variables if not getattr(v, "_in_memory", True)]
    walker = _Walker()
    for source in [encoding.get("source") if lazy else None,
                   *(v.encoding.get("source") for v in lazy)]:
        if isinstance(source, str | os.PathLike):
            walker.add(source)
    for variable in lazy:
        walker.walk(variable._data)
    return list(walker.found)


class _Walker:
    """Visits every object reachable from a Dask graph or lazy array, collecting input locations."""

    def __init__(self) -> None:
        self.found: dict[str, None] = {}
        self.seen: set[int] = set()
        self.keep: list[Any] = []  # transient objects stay alive, so their ids stay unique

    def add(self, location: Any) -> None:
        text = os.fspath(location) if isinstance(location, os.PathLike) else str(location)
        if not (("://" in text) and not text.startswith("file://")):
            text = os.path.realpath(text.removeprefix("file://"))
            if text == os.path.abspath(os.sep):  # never "everything is an input"
                return
        self.found.setdefault(text, None)

    def walk(self, root: Any) -> None:
        stack = [root]
        while stack and len(self.seen) < _BUDGET:
            obj = stack.pop()
            if isinstance(obj, _ATOMS) or id(obj) in self.seen:
                continue
            self.seen.add(id(obj))
            self.keep.append(obj)
            location = _location(obj)
            if location is not None:
                if location:
                    self.add(location)
                continue
            stack.extend(_children(obj))


def _location(obj: Any) -> str | None:
    """The input location ``obj`` stands for; ``""`` for a thing with none (stop there); None."""
    if isinstance(obj, str):
        return ""  # a string may be anything (a key, a separator): only known slots are paths
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    cls = type(obj)
    if cls.__name__.endswith(("FileManager", "URIManager")):
        args = getattr(obj, "_args", ())
        first = args[0] if isinstance(args, tuple) and args else None
        return os.fspath(first) if isinstance(first, str | os.PathLike) else None
    if cls.__module__.startswith("zarr") and cls.__name__.endswith("Store"):
        return _zarr_store_location(obj)
    return None


def _zarr_store_location(store: Any) -> str | None:
    name = type(store).__name__
    if name == "LocalStore":
        return os.fspath(store.root)
    if name == "ZipStore":
        return os.fspath(store.path)
    if name == "FsspecStore":
        return str(store.fs.unstrip_protocol(store.path))
    if name in ("MemoryStore", "GpuMemoryStore"):
        return ""
    return None  # wrappers: walk on to the store they wrap


def _children(obj: Any) -> Iterable[Any]:
    """What ``obj`` refers to: graph layers and tasks, container items, attributes."""
    from dask.highlevelgraph import HighLevelGraph  # heavy: dask, loaded on first use

    if callable(getattr(type(obj), "__dask_graph__", None)):  # a class attribute: no __getattr__
        graph = obj.__dask_graph__()
        if graph is not None:  # else a lazy xarray Variable: its backend array, below
            return [graph]
    if isinstance(obj, HighLevelGraph):
        return list(obj.layers.values())
    if isinstance(obj, Mapping):
        return list(obj.values())
    if isinstance(obj, list | tuple | set | frozenset):
        return list(obj)
    if isinstance(obj, functools.partial):
        return [obj.func, obj.args, obj.keywords]
    if isinstance(obj, types.MethodType):
        return [obj.__self__]
    if isinstance(obj, types.FunctionType):
        return [_cell(c) for c in obj.__closure__ or ()]
    return _attributes(obj)


def _cell(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return None


def _attributes(obj: Any) -> list[Any]:
    values = list(vars(obj).values()) if hasattr(obj, "__dict__") else []
    for cls in type(obj).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if isinstance(slot, str) and slot not in ("__dict__", "__weakref__"):
                values.append(getattr(obj, slot, None))
    return values


# --- fingerprint --------------------------------------------------------------------------------
def input_fingerprint(obj: xr.Dataset | xr.DataArray, *, samples: int = 8) -> str:
    """The identity of the data in ``obj``, independent of where they are stored.

    It hashes (1) every variable's name, dims, shape, dtype, Dask chunks and attrs, the values of
    the index coordinates and of every variable in memory, and the Dataset's attrs; (2)
    ``samples`` small windows of every data variable, at places fixed by its shape; (3) for each
    local input (:func:`input_paths`), the relative path, size and sha256 of every file in it:
    every byte, so a file edited in place anywhere gets a new fingerprint (a sample alone would
    miss an edit outside its windows). Modification times are left out, so a copied or moved
    cube keeps its fingerprint. Reading every input costs about a second per GB, once per run.

    Parameters
    ----------
    obj
        Dataset or DataArray (lazy or in memory); sampled windows are computed.
    samples
        Windows per data variable.

    Returns
    -------
    str
        ``"sha256:<hex>"`` where every byte the data come from was hashed: local files, or
        values in memory; ``"sampled-sha256:<hex>"`` where some were not (a remote store, lazy
        data computed from no file), which ``--resume`` refuses to trust.

    Examples
    --------
    >>> from xcalving.data.synthetic import glacier_cube
    >>> a, _ = glacier_cube(2, shape=(64, 64), seed=0)
    >>> b, _ = glacier_cube(2, shape=(64, 64), seed=1)
    >>> input_fingerprint(a) == input_fingerprint(a.copy(deep=True))
    True
    >>> input_fingerprint(a) == input_fingerprint(b)
    False
    """
    ds = obj.to_dataset(name=obj.name or "data") if isinstance(obj, xr.DataArray) else obj
    digest = hashlib.sha256()
    _hash_layout(digest, ds)
    _hash_samples(digest, ds, samples)
    paths = input_paths(ds)
    for listing in sorted(_file_listing(path) for path in paths):
        digest.update(listing.encode())
    lazy = any(not getattr(v, "_in_memory", True) for v in ds.variables.values())
    whole = not any("://" in p for p in paths) and (bool(paths) or not lazy)
    return f"{'' if whole else 'sampled-'}sha256:{digest.hexdigest()}"


def _hash_layout(digest: Any, ds: xr.Dataset) -> None:
    digest.update(json.dumps(dict(ds.attrs), sort_keys=True, default=str).encode())
    for name in sorted(ds.variables, key=str):
        var = ds.variables[name]
        attrs = {k: v for k, v in var.attrs.items() if k not in _LOCATION_ATTRS}
        header = [str(name), [str(d) for d in var.dims], list(var.shape), str(var.dtype),
                  var.chunks, attrs]
        digest.update(json.dumps(header, sort_keys=True, default=str).encode())
        if name in ds.indexes or getattr(var, "_in_memory", False):
            digest.update(_value_bytes(var.values))


def _value_bytes(values: np.ndarray) -> bytes:
    """Bytes that stand for ``values``: text by its characters, anything else by its memory.

    Object arrays of str hold pointers, which differ from run to run.
    """
    if values.dtype.kind in "OUS":
        return json.dumps([str(v) for v in values.ravel()]).encode()
    return np.ascontiguousarray(values).tobytes()


def _windows(shape: tuple[int, ...], samples: int) -> list[tuple[slice, ...]]:
    """``samples`` windows (16 pixels along the last two dims, one index along others)."""
    rng = np.random.default_rng([*shape, len(shape)])
    windows = []
    for k in range(samples):
        where = []
        for axis, size in enumerate(shape):
            width = min(size, 16) if axis >= len(shape) - 2 else min(size, 1)
            last = size - width
            start = 0 if k == 0 else last if k == 1 else int(rng.integers(0, last + 1))
            where.append(slice(start, start + width))
        windows.append(tuple(where))
    return windows


def _hash_samples(digest: Any, ds: xr.Dataset, samples: int) -> None:
    import dask  # heavy: dask, loaded on first use

    pieces = []
    for name in sorted(ds.data_vars, key=str):
        var = ds[name].variable
        if var.size:
            pieces += [var[window].data for window in _windows(var.shape, samples)]
    for values in dask.compute(*pieces):
        array = np.ascontiguousarray(np.asarray(values))
        digest.update(repr((array.shape, str(array.dtype))).encode() + array.tobytes())


def _file_listing(location: str) -> str:
    """Relative path, size and sha256 of every file under ``location`` (a local file or folder)."""
    if "://" in location or not os.path.exists(location):
        return ""
    if os.path.isfile(location):
        return "{}\0{}\n".format(*file_digest(location))
    rows = []
    for folder, _, files in os.walk(location):
        for name in files:
            path = os.path.join(folder, name)
            size, sha = file_digest(path)
            rows.append(f"{os.path.relpath(path, location)}\0{size}\0{sha}")
    return "\n".join(sorted(rows))
