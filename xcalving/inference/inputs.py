"""From the caller's DataArray to the network's input: checks, band choice, no data, scaling.

:func:`prepare_input` reads metadata only (dims, coordinate labels, attributes, CRS); the data
stay lazy (numpy input becomes one dask chunk a scene). The values are checked against what
they are declared to be (:func:`xcalving.scaling.check_values`, a strided sample) where reading
them costs nothing: numpy-backed input at the call (:func:`check_values_in_memory`), dask-backed
input block by block as the blocks are computed (:func:`network_input`) — predict itself never
computes anything.

The polarisation rule: a dim other than y and x is a *band dim* when it is named ``band`` (or
``pol``, ``polarisation``, ...) or when one of its labels names a polarisation (``HH``, ``hv``,
``sigma0_vv``, ...: :func:`polarisation_of`). ``band=`` picks an entry of it; without ``band=``
HH is taken, else VV, and a cube whose polarisations are all cross-polarised (HV, VH: any
number of them, one included) is refused, since the network was trained on co-polarised
backscatter. An array with no band dim whose metadata (a scalar ``band`` coordinate, a ``band``
attribute, its name) says it is cross-polarised is refused the same way; ``band=`` naming the
polarisation accepts it. The band used is recorded in the ``band`` attribute.

Any other dim besides y and x is run scene by scene, so it must say it holds scenes: a name
from :data:`SCENE_DIM_NAMES` (``time``, ``date``, ``scene``, ...) or dates as labels. Another
dim (``channel`` with two entries) is refused with the fix, never run as extra scenes; so are
y/x coordinates that repeat or turn back (rows or columns in a scrambled order).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from xcalving.bands import choose_polarisation, polarisation_of
from xcalving.errors import InputError, XcalvingWarning, did_you_mean
from xcalving.grid import check_monotonic
from xcalving.scaling import check_values, fill_value, stretch_bounds, to_domain, to_network_input

if TYPE_CHECKING:
    from xcalving.model.weights import ModelSpec

__all__ = ["BAND_DIM_NAMES", "SCENE_DIM_NAMES", "STRETCH_SAMPLE", "check_values_in_memory",
           "prepare_input", "scene_bounds"]

#: Robust per-scene scaling reads each scene's percentiles from a strided sample of at most
#: this many rows and columns, taken on the whole scene's grid (so it never depends on chunks).
STRETCH_SAMPLE = 512

#: Sentinel-1 and other SAR polarisations: the co-polarised ones the network can use, HH first.
#: Dim names (lower case) that hold bands or polarisations whatever their labels.
BAND_DIM_NAMES = ("band", "bands", "pol", "pols", "polarisation", "polarisations",
                  "polarization", "polarizations", "polarisation_mode", "polarization_mode")
_BAND_ATTRS = ("band", "polarisation", "polarization")
#: Dim names (lower case) that hold scenes, each run on its own; so does a dim labelled by dates.
SCENE_DIM_NAMES = ("time", "times", "date", "dates", "datetime", "scene", "scenes",
                   "acquisition", "acquisitions", "sample", "samples", "frame", "frames",
                   "image", "images")

_SPATIAL_HINTS = {"lat": "y", "latitude": "y", "lon": "x", "longitude": "x", "row": "y",
                  "rows": "y", "col": "x", "cols": "x", "northing": "y", "easting": "x"}


def prepare_input(da: Any, band: Any) -> Any:
    """``da`` checked, reduced to one band and transposed to (..., y, x)."""
    if isinstance(da, xr.Dataset):
        raise InputError("da is a Dataset; call ds.calving.predict(variable='sar', ...) or pass "
                         "one variable, e.g. predict(ds['sar'], ...).")
    if not isinstance(da, xr.DataArray):
        raise InputError(f"da must be an xarray.DataArray; got {type(da).__name__}.")

    _check_dims(da)
    for dim in ("y", "x"):  # scrambled rows would reach the network as they are
        check_monotonic(da, dim, what="predict")
    _check_crs(da)
    da = _select_band(da, band)
    _check_scene_dims(da)
    return da.transpose(*lead_dims(da), "y", "x")


def lead_dims(da: Any) -> list[Any]:
    """The dims of ``da`` other than y and x, in order."""
    return [d for d in da.dims if d not in ("y", "x")]


def _check_dims(da: Any) -> None:
    if "y" in da.dims and "x" in da.dims:
        return
    rename = {d: _SPATIAL_HINTS[str(d).lower()] for d in da.dims
              if str(d).lower() in _SPATIAL_HINTS}
    fix = f"da.rename({rename})" if rename else "da.rename({'<row dim>': 'y', '<col dim>': 'x'})"
    raise InputError(
        f"da must have spatial dims 'y' and 'x'; it has {tuple(da.dims)}. Rename them: {fix}."
    )


def _check_scene_dims(da: Any) -> None:
    """Refuse a dim (of more than one entry) that names neither scenes nor dates."""
    for dim in lead_dims(da):
        labelled = dim in da.coords and np.issubdtype(da[dim].dtype, np.datetime64)
        if da.sizes[dim] == 1 or labelled or str(dim).lower() in SCENE_DIM_NAMES:
            continue
        labels = da[dim].values.tolist()[:4] if dim in da.coords else None
        shown = f" {labels}" if labels is not None else ""
        raise InputError(
            f"da has a dim {dim!r} ({da.sizes[dim]} entries{shown}) that is neither a band dim "
            f"(band, pol, polarisation, ...) nor a scene dim (time, date, scene, ... or dates "
            f"as labels), and predict would run each entry as a scene of its own. If it holds "
            f"bands, choose one: da.sel({dim}=...) / da.isel({dim}=0), or name it "
            f"da.rename({{{dim!r}: 'band'}}) and pass band=...; if it holds scenes, name it "
            f"da.rename({{{dim!r}: 'time'}}) (several such dims: da.stack(scene=[...])).")


def _check_crs(da: Any) -> None:
    """Refuse a geographic (lon/lat) grid: its pixels are not square on the ground."""
    # heavy: rioxarray, loaded on first use
    import rioxarray  # noqa: F401  (registers .rio)

    crs = da.rio.crs
    if crs is None or not crs.is_geographic:
        return
    message = (
        f"predict needs a projected grid in metres; da's CRS {crs.to_string()!r} is geographic "
        "(degrees). The network was trained on square pixels of a few tens of metres, and a "
        "lon/lat pixel is not square on the ground (at 70° N a degree of longitude is a third "
        "of a degree of latitude), so glaciers look squashed and fronts come out in degrees. "
        "Reproject first, e.g. da.rio.reproject(da.rio.estimate_utm_crs()) or, near the poles, "
        "da.rio.reproject('EPSG:3413') (Arctic) / 'EPSG:3031' (Antarctic); or load the scenes "
        "projected, e.g. odc.stac.load(..., crs='EPSG:3413', resolution=20)."
    )
    raise InputError(message)


def _band_dims(da: Any) -> list[Any]:
    """Dims of ``da`` that hold bands: named like one, or labelled with a polarisation."""
    found = []
    for dim in lead_dims(da):
        labelled = dim in da.coords and da[dim].dtype.kind in "OSU"
        if str(dim).lower() in BAND_DIM_NAMES or (
                labelled and any(polarisation_of(v) for v in da[dim].values.tolist())):
            found.append(dim)
    return found


def _select_band(da: Any, band: Any) -> Any:
    dims = _band_dims(da)
    if len(dims) > 1:
        raise InputError(
            f"da has {len(dims)} band or polarisation dims {dims} and the network takes one "
            f"band: select all but one of them first, e.g. da.isel({dims[1]}=0)."
        )
    if not dims:
        return _single_band(da, band)
    dim = dims[0]
    labels = da[dim].values.tolist() if dim in da.coords else list(range(da.sizes[dim]))
    if band is None:
        band = choose_polarisation(labels)
    if band is None and da.sizes[dim] == 1:  # not a polarisation: nothing to choose or record
        return da.isel({dim: 0}, drop=True)
    if band is None:
        raise InputError(
            f"da has {da.sizes[dim]} bands {labels} along {dim!r} and the network takes one: "
            f"choose it with band=..., e.g. band={labels[0]!r} (HH is preferred, VV accepted)"
            + ("." if dim in da.coords else
               f", or label the polarisations: da.assign_coords({dim}=['HH', 'HV'])."))
    if band not in labels:
        raise InputError(f"band={band!r} is not among da's bands {labels} (dim {dim!r})."
                         + did_you_mean(str(band), [str(b) for b in labels]))
    selected = da.sel({dim: band}) if dim in da.coords else da.isel({dim: band})
    return selected.drop_vars(dim, errors="ignore").assign_attrs(band=str(band))


def _single_band(da: Any, band: Any) -> Any:
    """``da`` without a band dim: refused where its metadata says it is cross-polarised."""
    known = _named_polarisation(da)
    if band is not None:
        if known is None or polarisation_of(band) != polarisation_of(known):
            raise InputError(f"band={band!r} was given but da has no band or polarisation dim "
                             f"(dims {tuple(da.dims)})"
                             + (f" and is {known!r}." if known is not None else "."))
        return da.assign_attrs(band=str(known))
    if known is None:
        return da
    choose_polarisation([known])  # raises for HV or VH
    return da.assign_attrs(band=str(known))


def _named_polarisation(da: Any) -> Any | None:
    """The polarisation ``da``'s metadata names: a scalar band coordinate, an attribute, name."""
    candidates = [da.coords[name].values.item() for name in da.coords
                  if str(name).lower() in BAND_DIM_NAMES and da.coords[name].ndim == 0]
    candidates += [da.attrs[key] for key in _BAND_ATTRS if isinstance(da.attrs.get(key), str)]
    candidates.append(da.name)
    return next((c for c in candidates if polarisation_of(c) is not None), None)


# --- values --------------------------------------------------------------------------------------
def _nodata(da: Any) -> float | None:
    for source in (da.attrs, da.encoding):
        for key in ("_FillValue", "nodata", "missing_value"):
            if source.get(key) is not None:
                return float(source[key])
    return None


def check_values_in_memory(da: Any, kind: str) -> None:
    """Check a sample of ``da``'s values against ``kind`` now, where they are already in memory.

    Dask-backed values are left alone here (that would compute): :func:`network_input` checks
    each block as it is computed.
    """
    if da.chunks is None:
        check_values(np.asarray(da.data), kind, _nodata(da))


def dask_data(da: Any) -> Any:
    """``da``'s data as a dask array (numpy input: one chunk per scene)."""
    import dask.array as dsa  # heavy: dask, loaded on first use

    if isinstance(da.data, dsa.Array):
        return da.data
    return dsa.from_array(np.asarray(da.data), chunks=(1,) * (da.ndim - 2) + (-1, -1))


def network_input(data: Any, da: Any, kind: str, spec: ModelSpec) -> Any:
    """Lazily convert ``data`` (``da``'s values, dask) to the network's scaling, NaN = no data.

    ``kind`` is what the values are (:func:`xcalving.scaling.input_kind`). Each block's values
    are checked against it (:func:`xcalving.scaling.check_values`) when the block is computed;
    the error names the block. Weights with robust per-scene scaling (a ``stretch``) get every
    block stretched by its whole scene's percentiles (:func:`scene_bounds`).
    """
    import dask.array as dsa  # heavy: dask, loaded on first use

    args = (kind, spec.scaling, _nodata(da), tuple(str(d) for d in da.dims))
    if spec.scaling.stretch is None:
        return data.map_blocks(_checked_network_input, *args, dtype=np.float32)
    low, high = scene_bounds(data, kind, spec.scaling, args[2])
    return dsa.map_blocks(_checked_stretched, data, low, high, *args, dtype=np.float32)


def scene_bounds(data: Any, kind: str, scaling: Any, nodata: float | None) -> tuple[Any, Any]:
    """Each scene's stretch (low, high) as two lazy arrays (..., 1, 1), in the domain.

    From every ``ceil(n / STRETCH_SAMPLE)``-th row and column of the scene: a fixed sample of
    the whole grid, the same whatever the chunks (:func:`xcalving.scaling.stretch_bounds`).
    """
    step = [max(1, -(-n // STRETCH_SAMPLE)) for n in data.shape[-2:]]
    sample = data[..., ::step[0], ::step[1]].rechunk({data.ndim - 2: -1, data.ndim - 1: -1})
    bounds = sample.map_blocks(_sample_bounds, kind, scaling, nodata, dtype=np.float32,
                               chunks=(*sample.chunks[:-2], (1,), (2,)))
    return bounds[..., 0:1], bounds[..., 1:2]


def _sample_bounds(block: np.ndarray, kind: str, scaling: Any,
                   nodata: float | None) -> np.ndarray:
    return stretch_bounds(to_domain(block, kind, scaling, nodata), scaling)[..., None, :]


def _checked_network_input(block: np.ndarray, kind: str, scaling: Any, nodata: float | None,
                           dims: tuple[str, ...], block_info: Any = None) -> np.ndarray:
    _check_block(block, kind, nodata, dims, block_info)
    return to_network_input(block, kind, scaling, nodata)


def _checked_stretched(block: np.ndarray, low: np.ndarray, high: np.ndarray, kind: str,
                       scaling: Any, nodata: float | None, dims: tuple[str, ...],
                       block_info: Any = None) -> np.ndarray:
    _check_block(block, kind, nodata, dims, block_info)
    bounds = np.stack([low[..., 0, 0], high[..., 0, 0]], axis=-1)
    return to_network_input(block, kind, scaling, nodata, bounds=bounds)


def _check_block(block: np.ndarray, kind: str, nodata: float | None, dims: tuple[str, ...],
                 block_info: Any) -> None:
    where = "da"
    if block_info and 0 in block_info:
        place = ", ".join(f"{dim} {start}:{stop}" for dim, (start, stop)
                          in zip(dims, block_info[0]["array-location"], strict=True))
        where = f"da's chunk at {place}"
    check_values(block, kind, nodata, where=where)


# --- temporal context ----------------------------------------------------------------------------
def model_input(data: Any, da: Any, kind: str, spec: ModelSpec) -> Any:
    """:func:`network_input`, with the temporal context channels the weights expect, if any.

    One-band weights get (..., y, x); weights with temporal context
    (:mod:`xcalving.model.context`) get (time, 3, y, x), or (3, y, x) for a 2-D scene.
    """
    x = network_input(data, da, kind, spec)
    if spec.in_channels == 1:
        return x
    if spec.scaling.stretch is not None:
        raise InputError("model: these weights combine temporal context with robust per-scene "
                         "scaling, which xcalving does not train or serve (the context channels "
                         "are summarised before any stretch). Use weights with one of the two.")
    return with_context(x, scene_times(da), fill_value(spec.scaling))


def scene_times(da: Any) -> np.ndarray:
    """The dates (or positions) that order ``da``'s scenes, for temporal context.

    Weights with temporal context need the scenes along one dim: a cube (time, y, x) or one
    scene (y, x). Dates label the dim where it has them; otherwise its labels if numeric, else
    the scenes' positions.
    """
    lead = lead_dims(da)
    if len(lead) > 1:
        raise InputError(
            f"da has dims {tuple(da.dims)}; weights with temporal context summarise each scene's "
            "neighbouring dates and need the scenes along one dim, (time, y, x). Stack them, "
            f"e.g. da.stack(time={lead}), or select one entry of the others.")
    if not lead:
        return np.zeros(1, "datetime64[s]")
    dim = lead[0]
    if dim in da.coords and (np.issubdtype(da[dim].dtype, np.datetime64)
                             or np.issubdtype(da[dim].dtype, np.number)):
        return np.asarray(da[dim].values)
    return np.arange(da.sizes[dim])


def with_context(x: Any, times: np.ndarray, fill: float, scene: Any = None) -> Any:
    """``x`` (time, y, x) or (y, x), dask, NaN = no data, with its context: (time, 3, y, x).

    The median and spread of each date's nearest other dates
    (:func:`xcalving.model.context.summarise`), computed one time chunk at a time from the
    scenes that chunk needs, so the values never depend on the chunks. ``scene`` replaces ``x``
    as channel 0 (the resampled path passes the filled scene there). A single scene gets the
    single-scene context, with a warning.
    """
    import dask.array as dsa  # heavy: dask, loaded on first use

    # heavy: xcalving.model.context loads torch, safetensors, tqdm
    from xcalving.model.context import single_scene_context

    scene = x if scene is None else scene
    if x.ndim == 2 or x.shape[0] == 1:
        _warn_single_scene()
        flat = x.reshape(1, *x.shape[-2:])
        context = flat.map_blocks(lambda b: single_scene_context(b[0], fill)[None],
                                  new_axis=1, chunks=((1,), (2,), *flat.chunks[-2:]),
                                  dtype=np.float32)
        out = dsa.concatenate([scene.reshape(1, 1, *x.shape[-2:]), context], axis=1)
        return out.rechunk({1: -1}).reshape(out.shape[1:]) if x.ndim == 2 else \
            out.rechunk({1: -1})
    context = dsa.concatenate(_context_parts(x, times, fill), axis=0)
    return dsa.concatenate([scene[:, None], context], axis=1).rechunk({1: -1})


def _context_parts(x: Any, times: np.ndarray, fill: float) -> list[Any]:
    """The context (n, 2, y, x) of each time chunk of ``x``, from the scenes it needs."""
    # heavy: xcalving.model.context loads torch, safetensors, tqdm
    from xcalving.model.context import neighbour_indices

    neighbours = neighbour_indices(times)
    edges = np.cumsum((0, *x.chunks[0]))
    parts = []
    for start, stop in zip(edges[:-1], edges[1:], strict=True):
        need = np.unique(np.concatenate([np.arange(start, stop), *neighbours[start:stop]]))
        where = {int(g): j for j, g in enumerate(need)}
        local = [[where[int(n)] for n in neighbours[i]] for i in range(start, stop)]
        sub = x[need].rechunk({0: -1})
        parts.append(sub.map_blocks(_context_block, local, fill, new_axis=1, dtype=np.float32,
                                    chunks=((stop - start,), (2,), *sub.chunks[-2:])))
    return parts


def _context_block(block: np.ndarray, local: list[list[int]], fill: float) -> np.ndarray:
    # heavy: xcalving.model.context loads torch, safetensors, tqdm
    from xcalving.model.context import fill_context, summarise

    return fill_context(summarise(block, [np.asarray(n, int) for n in local]), fill)


def _warn_single_scene() -> None:
    warnings.warn("these weights use temporal context (the median and spread of neighbouring "
                  "dates) and da holds one scene: the scene stands in for its neighbours, which "
                  "usually costs accuracy. Pass the time series, (time, y, x), for the context.",
                  XcalvingWarning, stacklevel=5)
