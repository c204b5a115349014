"""Running the window plan over a dask array, and the output Dataset.

The blocks of the cube are mapped with a halo of ``tile - 1`` pixels: each output block
computes every window of the global plan that touches it, whole, from the haloed input, and
keeps its own part (:mod:`xcalving.inference.blend`). Which windows touch a pixel, and their
weights, do not depend on the chunking, so neither does the result.
"""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from xcalving.errors import PerformanceWarning
from xcalving.grid import refresh_transform
from xcalving.inference.blend import predict_block, predict_block_on_device
from xcalving.inference.inputs import dask_data, lead_dims, model_input
from xcalving.inference.runner import N_CHANNELS, get_runner
from xcalving.runtime import VERSION, resolve_device, resolve_precision
from xcalving.scaling import fill_value
from xcalving.windows import WindowPlan, plan_windows
from xcalving.zones import ZONE_NAMES, zone_attrs

if TYPE_CHECKING:
    from xcalving.inference.options import PredictOptions
    from xcalving.model.weights import ModelSpec

__all__ = [
    "probability_encoding", "run_blocks", "run_on_input_grid", "spatial_chunks", "to_dataset",
    "warn_rechunk", "zone_argmax",
]


# --- chunks --------------------------------------------------------------------------------------
def spatial_chunks(chunks: tuple[int, ...], n: int, tile: int, overlap: int) -> tuple[int, ...]:
    """Chunks along one spatial axis that hold several windows a block and none below a tile.

    A block should span at least four window steps (``4 * (tile - overlap) + overlap``), so that
    few windows straddle two blocks; chunks below that are merged, and a chunk smaller than a
    tile is merged with its neighbour (the halo of ``tile - 1`` needs it).

    Examples
    --------
    >>> spatial_chunks((100,) * 10, 1000, tile=64, overlap=16)
    (250, 250, 250, 250)
    """
    from dask.array.overlap import ensure_minimum_chunksize  # heavy: dask, loaded on first use

    target = min(n, 4 * (tile - overlap) + overlap)
    if max(chunks) < target:
        count = max(1, n // target)
        base, extra = divmod(n, count)
        chunks = tuple(base + (i < extra) for i in range(count))
    if n > tile:
        chunks = ensure_minimum_chunksize(tile, chunks)
    return tuple(chunks)


def warn_rechunk(dim: str, before: tuple[int, ...], after: tuple[int, ...], tile: int,
                 stacklevel: int = 1) -> None:
    """Warn when the caller's chunks had to grow because a window did not fit in them.

    ``stacklevel`` is the frame the warning names, counted from the caller of this function (1);
    each function between it and the user's call passes its own level plus one.
    """
    if min(before[:-1] or before) < tile and before != after:
        warnings.warn(
            f"chunks along {dim!r} ({before[0]} px) are smaller than one window ({tile} px); "
            f"rechunked to {after[0]} px, which reads neighbouring chunks together and costs "
            "memory. Open the cube with larger chunks (e.g. chunks={'"
            f"{dim}': {after[0]}}}) to avoid it.",
            PerformanceWarning, stacklevel=stacklevel + 1,
        )


def rechunk_for_windows(data: Any, tile: int, overlap: int, stacklevel: int = 1) -> Any:
    """``data`` (dask, (..., y, x)) with chunks that suit the window grid; warns where they grow.

    ``stacklevel`` as for :func:`warn_rechunk`.
    """
    new = list(data.chunks)
    for axis, dim in ((-2, "y"), (-1, "x")):
        new[axis] = spatial_chunks(data.chunks[axis], data.shape[axis], tile, overlap)
        warn_rechunk(dim, data.chunks[axis], new[axis], tile, stacklevel + 1)
    return data.rechunk(tuple(new)) if tuple(new) != data.chunks else data


# --- the blocks ----------------------------------------------------------------------------------
def run_on_input_grid(da: Any, spec: ModelSpec, options: PredictOptions,
                      stacklevel: int = 1) -> Any:
    """Predict on ``da``'s own grid: (..., y, x) → (..., 5, y, x) float32, lazily.

    ``options.scaling`` says what ``da``'s values are; ``stacklevel`` as for :func:`warn_rechunk`.
    """
    data = rechunk_for_windows(dask_data(da), options.tile, options.overlap, stacklevel + 1)
    plan = plan_windows(data.shape[-2:], options.tile, options.overlap, spec.stride)
    return run_blocks(model_input(data, da, options.scaling, spec), plan, spec, options)


def run_blocks(data: Any, plan: WindowPlan, spec: ModelSpec, options: PredictOptions) -> Any:
    """Map the block blending over a dask array (..., y, x) → (..., 5, y, x) float32.

    For a network of several input channels (``spec.in_channels``, temporal context) ``data``
    is (..., C, y, x), its channel axis in one chunk, and becomes (..., 5, y, x).

    ``spec`` enters the graph once, as one key (a large in-memory network is then sent to each
    worker once rather than copied into every task); each task resolves ``options.device``
    and ``options.precision`` where it runs and takes its network from the process's cache.
    """
    import dask  # heavy: dask, loaded on first use
    import dask.array as dsa  # heavy: dask, loaded on first use
    from dask.base import tokenize  # heavy: dask, loaded on first use

    lead = data.ndim - 2
    # a halo only along axes with neighbouring blocks: one chunk along an axis needs none, and
    # the overlap would copy every block for nothing
    depth = {lead + k: plan.extent[k] - 1 if len(data.chunks[lead + k]) > 1 else 0
             for k in (0, 1)}
    haloed = (dsa.overlap.overlap(data, depth=depth, boundary="none") if any(depth.values())
              else data)
    edges = [np.cumsum([0, *c]) for c in data.chunks[-2:]]
    spec_key = dask.delayed(spec, name=f"xcalving-model-{spec.sha256[:16]}", traverse=False)

    def block_fn(block: np.ndarray, spec: ModelSpec, block_id: tuple[int, ...] = ()) -> np.ndarray:
        iy, ix = block_id[-2], block_id[-1]
        core = (int(edges[0][iy]), int(edges[0][iy + 1]), int(edges[1][ix]), int(edges[1][ix + 1]))
        origin = (max(core[0] - depth[lead], 0), max(core[2] - depth[lead + 1], 0))
        return _run_block(block, origin, core, plan, spec, options)

    channels = spec.in_channels > 1  # the input has a channel axis: it becomes the output's
    chunks = (*data.chunks[:lead - channels], (N_CHANNELS,), *data.chunks[-2:])
    # the name must differ between predictions: two in one graph under one name would share keys
    token = tokenize(haloed.name, spec.sha256, options, plan.shape, plan.extent, plan.size)
    return dsa.map_blocks(block_fn, haloed, spec_key, chunks=chunks,
                          new_axis=[] if channels else [lead], dtype=np.float32,
                          name=f"xcalving-predict-{token}")


def _run_block(block: np.ndarray, origin: tuple[int, int], core: tuple[int, int, int, int],
               plan: WindowPlan, spec: ModelSpec, options: PredictOptions) -> np.ndarray:
    """One haloed block (..., [C,] rows, cols) → its core's (..., 5, rows, cols), on this process.

    The channel axis C is there for networks of several input channels (``spec.in_channels``).
    """
    device = resolve_device(options.device)
    runner = get_runner(spec, device, resolve_precision(options.precision, device))
    pixel_dims = 2 if spec.in_channels == 1 else 3
    flat = block.reshape(-1, *block.shape[-pixel_dims:])
    blend = predict_block_on_device if device.startswith("cuda") else predict_block
    out = blend(flat, origin, core, plan, runner, fill_value(spec.scaling), options.batch_size)
    return out.reshape(*block.shape[:-pixel_dims], N_CHANNELS, *out.shape[-2:])


# --- the output ----------------------------------------------------------------------------------
def zone_argmax(probs: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Arg-max zone (uint8) over the first axis of ``probs`` (a plane a zone); 0 at ``missing``.

    Plane by plane (contiguous), which is several times faster than ``np.argmax`` over a middle
    axis; ties go to the first zone, as ``argmax`` does.

    Examples
    --------
    >>> p = np.array([[0.1, 0.7], [0.6, 0.2], [0.3, 0.1]])[:, :, None]  # 3 zones, 2 pixels
    >>> zone_argmax(p, np.array([[False], [True]])).ravel().tolist()
    [1, 0]
    """
    best = probs[0].copy()
    zones = np.zeros(best.shape, np.uint8)
    where = np.empty(best.shape, bool)  # one mask, reused: no temporaries
    for k in range(1, len(probs)):
        np.greater(probs[k], best, out=where)
        np.copyto(zones, np.uint8(k), where=where)
        if k < len(probs) - 1:
            np.maximum(best, probs[k], out=best)
    np.copyto(zones, np.uint8(0), where=missing)
    return zones


def _zones_of_block(block: np.ndarray, axis: int) -> np.ndarray:
    """Arg-max zone (uint8) of a (..., 5, y, x) block of predict's output; 0 where it is NaN."""
    probs = np.moveaxis(block, axis, 0)
    return zone_argmax(probs[1:], np.isnan(probs[0]))


def _zones_keeping_axis(block: np.ndarray, axis: int) -> np.ndarray:
    """:func:`_zones_of_block` with the channel axis kept, of length 1."""
    return np.expand_dims(_zones_of_block(block, axis), axis)


#: Probabilities packed to uint8: ``round(p * 254)`` in 0..254, so that 0 and 1 are exact and
#: no value is off by more than 1/508; 255 marks no data (NaN), on disk and in unwritten chunks.
PACKED_SCALE = 1 / 254
PACKED_FILL = 255


def probability_encoding(dtype: str) -> dict[str, Any]:
    """The ``encoding`` that stores a probability variable as ``dtype`` (``"uint8"``/``"float32"``).

    ``to_zarr`` and ``to_netcdf`` apply it on writing and readers decode it (CF ``scale_factor``
    and ``_FillValue``): uint8 reads back as floats within 1/508, NaN where there was none.
    ``fill_value`` is Zarr's value for chunks never written, so that they read as NaN too.

    Examples
    --------
    >>> probability_encoding("uint8")["scale_factor"] * 254, probability_encoding("float32")
    (1.0, {'dtype': 'float32'})
    """
    if dtype == "float32":
        return {"dtype": "float32"}
    return {"dtype": "uint8", "scale_factor": PACKED_SCALE, "_FillValue": PACKED_FILL,
            "fill_value": PACKED_FILL}


def to_dataset(da: Any, out: Any, spec: ModelSpec, options: PredictOptions,
               runtime: tuple[str, str], spacings: tuple[float, float] | None = None) -> Any:
    """The output Dataset: ``out`` (..., 5, y, x) split into variables, on ``da``'s coordinates.

    Holds the variables ``options.outputs`` names, probabilities float32 in memory and
    encoded for storage as ``options.dtype`` (:func:`probability_encoding`); dims are the
    input's lead dims, then ``zone``, then ``y``, ``x``. ``runtime`` is the (device, precision)
    the blocks ran at and ``spacings`` the (network, input) pixel spacings where the input was
    resampled, for the attributes: CF globals and provenance, every value a string or a number.
    """
    lead = lead_dims(da)
    front, zone_prob, zones = _split_channels(out, len(lead))
    dims = (*lead, "y", "x")
    encoding = probability_encoding(options.dtype)
    variables = {
        "front_probability": xr.Variable(dims, front, {"long_name": "calving front probability",
                                                       "units": "1"}, encoding=dict(encoding)),
        "zone_probability": xr.Variable((*lead, "zone", "y", "x"), zone_prob,
                                        {"long_name": "zone probability", "units": "1"},
                                        encoding=dict(encoding)),
        "zones": xr.Variable(dims, zones, zone_attrs("zone")),
    }
    coords = dict(da.coords)
    if "zone_probability" in options.outputs:
        # object dtype: Zarr v3 stores variable-length strings without an "unstable dtype" warning
        coords["zone"] = np.array(ZONE_NAMES, dtype=object)
    ds = xr.Dataset({name: variables[name] for name in options.outputs}, coords=coords)
    ds.attrs.update(_provenance(da, spec, options, runtime, spacings))
    return _georeference(ds, da)


def _split_channels(out: Any, n: int) -> tuple[Any, Any, Any]:
    """Front probability, zone probabilities (..., zone, y, x) and arg-max zones of ``out``."""
    front = out[(slice(None),) * n + (0,)]
    zone_prob = out[(slice(None),) * n + (slice(1, None),)]
    # one cheap task per block (the zone axis is one chunk), not dask's argmax reduction tree;
    # the channel axis is kept (length 1) and indexed away after: map_blocks(drop_axis=) would
    # concatenate, i.e. copy, every block of ``out`` before the arg-max reads it
    keep = (*out.chunks[:n], (1,), *out.chunks[n + 1:])
    zones = out.map_blocks(_zones_keeping_axis, n, chunks=keep, dtype=np.uint8)
    zones = zones[(slice(None),) * n + (0,)]
    return front, zone_prob, zones


def _provenance(da: Any, spec: ModelSpec, options: PredictOptions, runtime: tuple[str, str],
                spacings: tuple[float, float] | None) -> dict[str, Any]:
    """CF global attributes and the resolved options, as strings and numbers (JSON within)."""
    version = VERSION
    band = str(da.attrs["band"]) if "band" in da.attrs else None
    resolved: dict[str, Any] = {
        "model": spec.name, "tile": options.tile, "overlap": options.overlap,
        "batch_size": options.batch_size, "device": runtime[0], "precision": runtime[1],
        "band": band, "scaling": options.scaling,
        "resolution": float(spacings[0]) if spacings else None,
        "dtype": options.dtype, "outputs": list(options.outputs),
    }
    call = ", ".join(f"{k}={json.dumps(v)}" for k, v in resolved.items() if v is not None)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    history = f"{stamp}: xcalving {version} predict({call})"
    before = da.attrs.get("history")
    attrs: dict[str, Any] = {
        "Conventions": "CF-1.10",
        "title": "Calving-front probability and glacier zones",
        "source": f"xcalving {version} predict, model {spec.name} (sha256 {spec.sha256})",
        "history": f"{before}\n{history}" if isinstance(before, str) and before else history,
        "model": spec.name, "model_sha256": spec.sha256, "tile": options.tile,
        "overlap": options.overlap, "batch_size": options.batch_size, "device": runtime[0],
        "precision": runtime[1], "input_scaling": options.scaling,
        "network_scaling": json.dumps(spec.scaling.to_dict()), "xcalving_version": version,
    }
    if spec.front_method is not None:  # fronts() reads the front the way the folds chose
        attrs["front_method"] = spec.front_method
    if band is not None:
        attrs["band"] = band
    if spacings is not None:
        attrs["resolution"], attrs["input_resolution"] = float(spacings[0]), float(spacings[1])
    return attrs


def _georeference(ds: Any, da: Any) -> Any:
    """``ds`` with ``da``'s CRS, or an attribute saying there is none."""
    # heavy: rioxarray, loaded on first use
    import rioxarray  # noqa: F401  (registers .rio)


    crs = da.rio.crs
    if crs is not None:  # the transform from the coordinates, never one cached in da's attrs
        return refresh_transform(ds.rio.write_crs(crs))
    ds.attrs["georeference"] = "none: the input had no CRS, x and y are pixel coordinates"
    return ds
