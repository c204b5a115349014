"""The CaFFe Zarr patch store: plan the windows of every scene, cut them, write whole chunks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from xcalving.data.caffe.catalog import (
    _FRONT_ATTRS,
    _SAR_ATTRS,
    _ZONES_ATTRS,
    CATALOG_COLUMNS,
    _row_spacing,
    load_scene,
    open_caffe,
)
from xcalving.data.caffe.png import _image_shape, _read_scene_arrays
from xcalving.data.caffe.scale import unsquashed_shape
from xcalving.errors import InputError
from xcalving.model.context import grey_series_context
from xcalving.safety import check_target, staged
from xcalving.windows import window_starts

__all__ = ["caffe_to_zarr"]

#: The temporal context of each patch (``context=True``), 8-bit grey like ``sar``.
_CONTEXT_ATTRS = {
    "ctx_median": {"long_name": "median of the nearest other dates (xcalving.model.context)",
                   "units": "1", "comment": "0 = no valid neighbour"},
    "ctx_spread": {"long_name": "standard deviation of the nearest other dates, grey levels",
                   "units": "1"},
}


def _check_patch_args(window: int, stride: int, chunk_samples: int, mode: str) -> None:
    for name, value in (("window", window), ("stride", stride), ("chunk_samples", chunk_samples)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise InputError(f"{name} must be a whole number >= 1; got {value!r}.")
    if mode not in ("w-", "w"):
        raise InputError(f"mode must be 'w-' (never overwrite) or 'w' (replace); got {mode!r}.")


def _as_catalog(root_or_catalog: Any,
                pixel_spacing: Literal["name", "caffe256"] | None) -> pd.DataFrame:
    if not isinstance(root_or_catalog, pd.DataFrame):
        return open_caffe(root_or_catalog, pixel_spacing=pixel_spacing)
    missing = [c for c in CATALOG_COLUMNS if c not in root_or_catalog.columns]
    if missing:
        raise InputError(f"root_or_catalog is a DataFrame without the catalog columns {missing};"
                         " pass open_caffe(root) (filtered rows are fine) or the root folder.")
    if root_or_catalog.empty:
        raise InputError("root_or_catalog is an empty catalog: there are no scenes to write.")
    return root_or_catalog


def _scene_shape(row: Mapping[str, Any], spacing: float | None) -> tuple[int, int]:
    """(rows, cols) of a scene as it is cut: as stored, or resampled to ``spacing``."""
    shape = _image_shape(row["image_path"])
    return shape if spacing is None else unsquashed_shape(shape, _row_spacing(row), spacing)


def _plan_patches(catalog: pd.DataFrame, window: int, stride: int,
                  spacing: float | None = None) -> list[np.ndarray]:
    """Per scene, the (row, col) offsets of its windows in row-major order, shape (n, 2)."""
    plan = []
    for row in catalog.to_dict("records"):
        rows, cols = _scene_shape(row, spacing)
        r, c = np.meshgrid(window_starts(rows, window, stride),
                           window_starts(cols, window, stride), indexing="ij")
        plan.append(np.column_stack([r.ravel(), c.ravel()]))
    return plan


def _skeleton(catalog: pd.DataFrame, plan: list[np.ndarray], window: int,
              chunk_samples: int, spacing: float | None = None,
              context: bool = False) -> xr.Dataset:
    """The store's layout: lazy zeros for the patches, the per-sample coordinates filled in."""
    import dask.array as da  # heavy: dask, loaded on first use

    scene = np.repeat(np.arange(len(plan)), [len(p) for p in plan])
    offsets = np.concatenate(plan)
    n = len(scene)
    chunks = (min(chunk_samples, n), window, window)
    dims = ("sample", "y", "x")
    variables = [("sar", _SAR_ATTRS), ("zones", _ZONES_ATTRS), ("front", _FRONT_ATTRS)]
    variables += list(_CONTEXT_ATTRS.items()) if context else []
    data = {name: (dims, da.zeros((n, window, window), dtype=np.uint8, chunks=chunks), attrs)
            for name, attrs in variables}
    # object strings: zarr writes them as its stable variable-length string type
    coords: dict[str, Any] = {"sample": np.arange(n, dtype=np.int64)}
    for name in ("stem", "glacier", "satellite", "split"):
        coords[name] = ("sample", catalog[name].astype(str).to_numpy(dtype=object)[scene])
    coords["date"] = ("sample", pd.to_datetime(catalog["date"]).to_numpy()[scene])
    coords["row"] = ("sample", offsets[:, 0])
    coords["col"] = ("sample", offsets[:, 1])
    spacings = catalog["pixel_spacing"].to_numpy(dtype=np.float64)[scene] if spacing is None \
        else np.full(n, float(spacing))
    coords["pixel_spacing"] = ("sample", spacings, {"units": "m", "long_name": "pixel spacing"})
    ds = xr.Dataset(data, coords=coords)
    # Coordinates share the patches' chunks (xarray needs that to report chunk sizes) but live
    # in one shard, one file, each: cheap to read whole when a stream selects samples.
    shard = (-(-n // chunks[0]) * chunks[0],)
    for name in coords:
        ds[name].encoding.update(chunks=chunks[:1], shards=shard)
    return ds


class _ChunkWriter:
    """Collects patches and writes them to the store in whole, chunk-aligned blocks."""

    def __init__(self, group: Any, chunk_samples: int, names: tuple[str, ...]) -> None:
        self.group, self.chunk_samples = group, chunk_samples
        self.start = 0
        self.pending: dict[str, list[np.ndarray]] = {name: [] for name in names}

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


def _scene_arrays(row: Mapping[str, Any], spacing: float | None) -> dict[str, np.ndarray]:
    """SAR, zones and front of one scene, as stored or resampled to ``spacing``."""
    if spacing is None:
        sar, zones, front = _read_scene_arrays(row)
        return {"sar": sar, "zones": zones, "front": front}
    scene = load_scene(row, spacing=spacing)
    return {name: scene[name].to_numpy() for name in ("sar", "zones", "front")}


def _write_patches(catalog: pd.DataFrame, plan: list[np.ndarray], store: Any, window: int,
                   chunk_samples: int, progress: bool, spacing: float | None = None,
                   context: bool = False) -> None:
    import zarr  # heavy: zarr, loaded on first use

    from xcalving._progress import tqdm_class  # heavy: xcalving._progress loads dask

    tqdm = tqdm_class()
    names = ("sar", "zones", "front", *(_CONTEXT_ATTRS if context else ()))
    writer = _ChunkWriter(zarr.open_group(store, mode="r+"), chunk_samples, names)
    bar = tqdm(total=len(catalog), desc="caffe_to_zarr", unit="scene", disable=not progress)
    records = catalog.to_dict("records")
    # a glacier's scenes at a time: the temporal context of a scene needs its neighbours
    for group in _series_groups(catalog):
        arrays = [_scene_arrays(records[i], spacing) for i in group]
        if context:
            _add_context(arrays, [records[i] for i in group])
        for i, scene in zip(group, arrays, strict=True):
            writer.add(_cut_patches(scene, plan[i], window))
            bar.update(1)
    writer.close()
    bar.close()


def _series_groups(catalog: pd.DataFrame) -> list[list[int]]:
    """Positions of the catalog's rows, one run per glacier (the catalog is sorted by glacier)."""
    glaciers = catalog["glacier"].to_numpy()
    breaks = np.flatnonzero(glaciers[1:] != glaciers[:-1]) + 1
    return [run.tolist() for run in np.split(np.arange(len(catalog)), breaks)]


def _add_context(arrays: list[dict[str, np.ndarray]], rows: list[dict[str, Any]]) -> None:
    """Give each scene its temporal context as 8-bit grey (``ctx_median`` 0 = no data).

    Neighbours come from the same glacier, split and grid (scenes of one glacier share one grid
    when resampled to one spacing; scenes of another shape are another grid), so a test scene
    never enters a training scene's context.
    """
    by_shape: dict[tuple[Any, ...], list[int]] = {}
    for i, scene in enumerate(arrays):
        by_shape.setdefault((rows[i]["split"], *scene["sar"].shape), []).append(i)
    for members in by_shape.values():
        context = grey_series_context([arrays[i]["sar"] for i in members],
                                      [rows[i]["date"] for i in members])
        for i, one in zip(members, context, strict=True):
            arrays[i]["ctx_median"], arrays[i]["ctx_spread"] = one


def _input_files(catalog: pd.DataFrame) -> list[str]:
    """The scene files the store is cut from: the store may not be, hold or lie in one."""
    columns = [c for c in ("image_path", "zones_path", "front_path", "bbox_path")
               if c in catalog.columns]
    return [os.fspath(p) for c in columns for p in catalog[c] if isinstance(p, str | os.PathLike)]


def caffe_to_zarr(
    root_or_catalog: str | os.PathLike[str] | pd.DataFrame,
    store: str | os.PathLike[str],
    *,
    window: int = 256,
    stride: int | None = None,
    pixel_spacing: Literal["name", "caffe256"] | None = "name",
    spacing: float | None = None,
    mode: Literal["w-", "w"] = "w-",
    chunk_samples: int = 16,
    progress: bool = True,
    context: bool = False,
) -> str:
    """Cut CaFFe scenes into square patches and write them to a Zarr v3 store for training.

    Parameters
    ----------
    root_or_catalog
        A CaFFe ``data_raw`` folder (or its parent), or a catalog from :func:`open_caffe` —
        filter its rows to write a subset.
    store
        Path of the new store; written beside it and moved there when complete, so a failure
        leaves nothing behind (and an older store at ``mode="w"`` untouched).
    window
        Patch side in pixels.
    stride
        Step between windows (default ``window``: no overlap). The last window of every axis is
        snapped inside the scene, so no pixel is dropped; scenes smaller than ``window`` are
        padded with 0 (no data in ``sar``, class no data in ``zones``).
    pixel_spacing
        Used only when a folder is given; see :func:`open_caffe`.
    spacing
        ``None`` (default): scenes are cut as stored. A number of metres: every scene is first
        resampled to square pixels of that spacing (:func:`load_scene` with ``spacing``), so
        that all glaciers meet the network at one physical scale; the catalog must know the
        spacing (``pixel_spacing="name"`` or ``"caffe256"``).
    mode
        ``"w-"`` (default) refuses an existing path; ``"w"`` replaces an existing Zarr store
        (never another folder or file, see :mod:`xcalving.safety`).
    chunk_samples
        Samples per chunk: the unit a :class:`~xcalving.data.stream.PatchStream` reads.
    progress
        Show a progress bar over scenes.
    context
        Also write each patch's temporal context, ``ctx_median`` and ``ctx_spread`` (uint8
        grey): the median and standard deviation of the scene's nearest other dates of the
        same glacier and split (:mod:`xcalving.model.context`), for training weights with
        temporal context (``TrainConfig(context=True)``).

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
    >>> from xcalving.data.caffe import shipped_scenes
    >>> store = caffe_to_zarr(shipped_scenes(), tempfile.mkdtemp() + "/p.zarr", window=128,
    ...                       pixel_spacing=None, progress=False)
    >>> xcalving.open_cube(store).sar.shape
    (84, 128, 128)
    """
    stride = window if stride is None else stride
    _check_patch_args(window, stride, chunk_samples, mode)
    catalog = _as_catalog(root_or_catalog, pixel_spacing)
    catalog = catalog.sort_values(["glacier", "date", "stem"], kind="stable")
    if spacing is not None:
        for row in catalog.to_dict("records")[:1]:
            _row_spacing(row)  # an unknown spacing is refused before any work
    plan = _plan_patches(catalog, window, stride, spacing)
    check_target(store, mode=mode, inputs=_input_files(catalog), what="store")
    skeleton = _skeleton(catalog, plan, window, chunk_samples, spacing, context)
    skeleton.attrs.update(
        title="CaFFe training patches", source="CaFFe, doi:10.1594/PANGAEA.940950",
        license="CC-BY-4.0", window=int(window), stride=int(stride),
        pixel_spacing=float(spacing) if spacing is not None else
        "name" if catalog["pixel_spacing"].notna().all() else "unknown",
    )
    with staged(store, mode=mode, what="store") as scratch:
        skeleton.to_zarr(scratch, mode="w-", compute=False, consolidated=False, zarr_format=3)
        _write_patches(catalog, plan, scratch, window, chunk_samples, progress, spacing,
                       context)
    return os.fspath(store)
