"""``resolution=``: run the network at another pixel spacing than the input's.

The input, converted to the network's scaling, is resampled to the target spacing over the same
extent (block mean then bilinear when coarsening, bilinear when refining); the probabilities are
interpolated back onto the input grid, so the output has the input's coordinates either way.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from xcalving.errors import InputError, PerformanceWarning, XcalvingWarning
from xcalving.grid import pixel_spacing
from xcalving.inference.execute import rechunk_for_windows, run_blocks
from xcalving.inference.inputs import dask_data, network_input, scene_times, with_context
from xcalving.scaling import fill_value
from xcalving.windows import plan_windows

if TYPE_CHECKING:
    from xcalving.inference.options import PredictOptions
    from xcalving.model.weights import ModelSpec

__all__ = ["resolution_spacings", "run_resampled"]


def resolution_spacings(resolution: float | str | None, spec: ModelSpec,
                        da: Any) -> tuple[float, float] | None:
    """(spacing to run at, input spacing) in metres, or None to run on the input grid.

    None also when the two already match (within 1 %). ``resolution`` was checked with the
    other options (:class:`~xcalving.inference.options.PredictOptions`).
    """
    if resolution is None:
        _warn_spacing_mismatch(spec, da)
        return None
    target = _target_spacing(resolution, spec)
    spacing = pixel_spacing(da, what="resolution=")
    if abs(spacing / target - 1) < 0.01:
        return None
    return target, spacing


#: Spacing ratio beyond which running weights on the input grid gets a warning.
SPACING_TOLERANCE = 1.5
_WARNED: set[tuple[str, float]] = set()


def _metric_spacing(da: Any) -> float | None:
    """The cube's pixel spacing in metres, or None where it has none (no CRS, pixels, degrees)."""
    try:
        return pixel_spacing(da, what="predict")
    except InputError:  # no projected grid in metres: nothing to compare with
        return None


def _spacing_advice(spec: ModelSpec, spacing: float) -> str | None:
    """What to say about a cube of ``spacing`` m meeting ``spec``, from its measured record."""
    trained = spec.pixel_spacing
    if spec.spacing_range is not None:
        lo, hi = spec.spacing_range
        if lo * 0.99 <= spacing <= hi * 1.01:
            return None
        where = (f"the weights {spec.name!r} were measured to hold on cubes of {lo:g}-{hi:g} m "
                 f"(trained at {trained:g} m); this cube is {spacing:g} m")
        if spec.resolution_model == "helps":
            return f"{where}: pass resolution='model', measured to help them."
        if spec.resolution_model == "hurts":
            return (f"{where}, and resolution='model' was measured to make them worse: resample "
                    f"the cube into that range yourself (e.g. da.coarsen(...).mean()) or "
                    "fine-tune on a few of your scenes (xcalving.finetune).")
        return (f"{where}; resolution='model' is unmeasured for them: compare both on a "
                "labelled date.")
    if trained is None:
        return (f"the weights {spec.name!r} state no pixel spacing (trained on resized scenes) "
                f"but the cube is on a {spacing:g} m grid, so the fjord may not look the size the "
                "network learned; use weights trained at a known spacing (see `xcalving "
                "weights`) or pass resolution=<metres> and check the fronts on a labelled date.")
    ratio = max(spacing / trained, trained / spacing)
    if ratio <= SPACING_TOLERANCE:
        return None
    return (f"the cube's pixel spacing ({spacing:g} m) differs from the {trained:g} m the weights "
            f"{spec.name!r} were trained at by {ratio:.1f}x, and how they do there is unmeasured; "
            "compare resolution='model' (run at their spacing) with the cube's own grid on a "
            "labelled date.")


def _warn_spacing_mismatch(spec: ModelSpec, da: Any) -> None:
    """Warn once per weights and spacing when the weights meet a grid they were not made for."""
    spacing = _metric_spacing(da)
    if spacing is None or (spec.sha256, round(spacing, 3)) in _WARNED:
        return
    if spec.pixel_spacing is None and spec.path is None:  # a module: its author knows its data
        return
    message = _spacing_advice(spec, spacing)
    if message is None:
        return
    _WARNED.add((spec.sha256, round(spacing, 3)))
    warnings.warn(message, XcalvingWarning, stacklevel=4)


def _target_spacing(resolution: float | str, spec: ModelSpec) -> float:
    if resolution != "model":
        return float(resolution)
    if spec.pixel_spacing is None:
        raise InputError(
            f"resolution='model': the weights {spec.name!r} do not state the pixel spacing "
            "they were trained at. Pass it in metres (resolution=20.0) or resolution=None to "
            "run on the input grid."
        )
    return float(spec.pixel_spacing)


def run_resampled(da: Any, spacings: tuple[float, float], spec: ModelSpec,
                  options: PredictOptions) -> Any:
    """Run the network at ``spacings = (target, input)`` m; return (..., 5, y, x) on da's grid."""
    import dask.array as dsa  # heavy: dask, loaded on first use

    target, spacing = spacings
    normalised = network_input(dask_data(da), da, options.scaling, spec)
    # no data takes the network's fill value before resampling (as on the input grid), so the
    # resampled grid has no NaN: the output is masked once, on the input grid, at the end
    filled = dsa.where(dsa.isnan(normalised), np.float32(fill_value(spec.scaling)), normalised)
    grid = _to_target_grid(filled, da, target, spacing)
    with warnings.catch_warnings():  # the resampled grid's chunks are ours, not the caller's
        warnings.simplefilter("ignore", PerformanceWarning)
        resampled = rechunk_for_windows(dask_data(grid.astype(np.float32)), options.tile,
                                        options.overlap)
        if spec.in_channels > 1:
            resampled = _context_on_target_grid(resampled, normalised, da, spacings, spec)
    plan = plan_windows(resampled.shape[-2:], options.tile, options.overlap, spec.stride)
    out = run_blocks(resampled, plan, spec, options)
    probs = _to_input_grid(out, grid, da)
    missing = dsa.isnan(normalised)
    missing = missing.rechunk(probs.chunks[:-3] + probs.chunks[-2:])
    return dsa.where(missing[..., None, :, :], np.float32(np.nan), probs).astype(np.float32)


def _context_on_target_grid(resampled: Any, normalised: Any, da: Any,
                            spacings: tuple[float, float], spec: ModelSpec) -> Any:
    """The resampled scenes with their temporal context, computed on the target grid.

    The context is summarised at the network's spacing, as in training (a spread computed on
    a finer grid and then averaged would be another quantity); pixels where less than half of
    the resampled value came from valid input count as no data there.
    """
    import dask.array as dsa  # heavy: dask, loaded on first use

    valid = dsa.where(dsa.isnan(normalised), np.float32(0.0), np.float32(1.0))
    share = _to_target_grid(valid, da, *spacings).data.astype(np.float32)
    share = share.rechunk(resampled.chunks)
    masked = dsa.where(share >= 0.5, resampled, np.float32(np.nan))
    return with_context(masked, scene_times(da), fill_value(spec.scaling), scene=resampled)


def _to_target_grid(filled: Any, da: Any, target: float, spacing: float) -> Any:
    """``filled`` (dask, on ``da``'s grid) resampled to pixels of ``target`` m, as a DataArray."""
    grid = xr.DataArray(filled, dims=da.dims, coords={"y": da["y"].values, "x": da["x"].values})
    factor = int(target // spacing)
    if factor >= 2:  # coarser: average blocks of pixels first (no aliasing of the speckle)
        grid = grid.coarsen(y=factor, x=factor, boundary="trim").mean()
    new_y = _resampled_coords(da["y"].values, target)
    new_x = _resampled_coords(da["x"].values, target)
    return grid.interp(y=new_y, x=new_x, method="linear", kwargs={"fill_value": "extrapolate"})


def _to_input_grid(out: Any, grid: Any, da: Any) -> Any:
    """Probabilities ``out`` (..., 5, y, x) on ``grid``'s pixels, interpolated onto ``da``'s."""
    lead = list(da.dims[:-2])
    back = xr.DataArray(out, dims=(*lead, "channel", "y", "x"),
                        coords={"y": grid["y"].values, "x": grid["x"].values})
    back = back.interp(y=da["y"].values, x=da["x"].values, method="linear",
                       kwargs={"fill_value": "extrapolate"}).clip(0.0, 1.0)
    return back.data.rechunk({back.ndim - 3: -1})


def _resampled_coords(values: np.ndarray, target: float) -> np.ndarray:
    """Pixel centres of spacing ``target`` over the extent of the centres ``values``."""
    step = float(values[1] - values[0])
    sign = 1.0 if step > 0 else -1.0
    edge = float(values[0]) - step / 2
    n = max(1, int(round(len(values) * abs(step) / target)))
    return edge + sign * (np.arange(n) + 0.5) * target
