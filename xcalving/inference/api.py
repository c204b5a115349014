""":func:`predict`, the top of the flow: options → input → (resampling) → blocks → Dataset."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any

from xcalving.inference.execute import run_on_input_grid, to_dataset
from xcalving.inference.inputs import check_values_in_memory, prepare_input
from xcalving.inference.members import run_members
from xcalving.inference.options import PredictOptions, check_tile, check_work
from xcalving.inference.resample import resolution_spacings, run_resampled
from xcalving.runtime import planned_runtime
from xcalving.scaling import input_kind

__all__ = ["predict"]

_D = PredictOptions  # the defaults below are its fields': one home for them


def predict(
    da: Any,
    model: Any = None,
    *,
    tile: int = _D.tile,
    overlap: int = _D.overlap,
    batch_size: int = _D.batch_size,
    device: str = _D.device,
    precision: str = _D.precision,
    band: Any = _D.band,
    scaling: str = _D.scaling,
    resolution: float | str | None = _D.resolution,
    dtype: str = _D.dtype,
    outputs: str | Sequence[str] = _D.outputs,
    max_pixels: float | None = _D.max_pixels,
    tta: bool = _D.tta,
) -> Any:
    """Predict calving-front probability and zones over a SAR cube, lazily.

    Parameters
    ----------
    da : xarray.DataArray
        Backscatter with dims ``y`` and ``x`` (monotonic coordinates, if any) and any others
        that hold bands (``band``, ...) or scenes (``time``, ``date``, ``scene``, ... or dates
        as labels; another dim is refused rather than run as scenes), numpy- or dask-backed.
        NaN or nodata pixels come out as NaN (zone 0).
    model
        A registered weights name, a path to a ``.safetensors`` checkpoint (hashed; the hash is
        recorded), an ``nn.Module`` returning ``{"zones", "front"}`` logits, or ``None`` for the
        package's default weights. A list of these is an ensemble: every member predicts, the
        probabilities are averaged (:func:`xcalving.inference.members.combine`) and each
        member's front probability is kept as ``member_front_probability`` (``member``, ...,
        y, x), from which :func:`xcalving.fronts` measures the members' disagreement.
    tile, overlap
        Window size and overlap in pixels. ``tile`` must be a multiple of the network stride.
    batch_size
        Windows per forward pass.
    device
        ``"auto"``: each worker's GPU where it has one, else CPU; or ``"cpu"``, ``"cuda"``.
    precision
        ``"auto"``: bf16 (fp16 without bf16) on CUDA, fp32 on CPU; or ``"fp32"``, ``"bf16"``,
        ``"fp16"``.
    band
        Band to use when ``da`` has a band dim: one named ``band`` (or ``pol``,
        ``polarisation``, ...) or one whose labels name polarisations (``hh``, ``hv``, ``vv``,
        ``vh``, any case, alone or in a name such as ``sigma0_vv``). With ``band=None`` HH is
        taken, else VV; the network has one input channel, so a second polarisation is not
        used. Cross-polarised scenes (HV, VH; one band or several, or an array whose name or
        ``band`` attribute says so) are refused unless ``band=`` names them. The band used is
        recorded in the output's ``band`` attribute.
    scaling
        What the values are: ``"auto"`` (uint8 → 8-bit; else the ``units`` attribute), ``"db"``,
        ``"linear"``, ``"uint8"``, or ``"none"`` to feed values unchanged. They are converted to
        the scaling the weights were trained on (see :func:`xcalving.scaling.to_network_input`).
        A sample of the values is checked against it (:func:`xcalving.scaling.check_values`:
        linear power labelled dB, dB passed as linear, 16-bit numbers as 8-bit are refused):
        here for numpy-backed input, as each block is computed for dask-backed input, so
        that predict itself computes nothing. Boolean, complex and non-numeric arrays, and
        arrays on a geographic (lon/lat) grid, are refused.
    resolution
        Pixel spacing in metres to run the network at: ``None`` (default) runs it on the input
        grid; ``"model"`` takes the spacing the weights were trained at (their metadata); a
        number gives it. The input (converted to the network's scaling) is resampled to that
        spacing over the same extent — block mean then bilinear when coarsening, bilinear when
        refining — and the probabilities are interpolated back onto the input grid, so the
        output has the input's coordinates either way. Needs a projected grid in metres
        (:func:`xcalving.grid.pixel_spacing`).
    dtype
        How the probabilities are stored when the Dataset is written (``to_zarr``,
        ``to_netcdf``): ``"uint8"`` (default) packs them CF-style (``scale_factor`` 1/254,
        ``_FillValue`` 255 for NaN; readers decode them to floats within 1/508, NaN kept);
        ``"float32"`` stores them unpacked. In memory they are float32 either way.
    outputs
        The variables to return: any of ``"front_probability"``, ``"zone_probability"``,
        ``"zones"``, or ``"all"``. The default leaves out ``zone_probability`` (four values a
        pixel); ``zones`` is computed from the zone probabilities whether or not they are
        returned.
    max_pixels
        The work budget (:mod:`xcalving.budget`): the pixels the windows may feed the network,
        overlaps and ``resolution=`` counted, estimated before anything is built; more is
        refused (:class:`~xcalving.errors.WorkBudgetError`), as is ``resolution=`` more than
        8x finer than the input. Default ``2**34`` (about 1.7e10); ``None``: no budget.
    tta
        Test-time flips: each weights also runs on the cube flipped left-right, up-down and
        both, the flips undone on the output, and the four are combined as an ensemble is
        (four times the work; ``member_front_probability`` holds each flip).

    Returns
    -------
    xarray.Dataset
        Lazy, with the input's coordinates and CRS: ``front_probability`` (..., y, x) float32,
        ``zones`` (..., y, x) uint8 and, when requested, ``zone_probability``
        (..., zone, y, x) float32, the input's lead dims (e.g. ``time``) first. Its
        attributes are CF globals (``Conventions``, ``title``, ``source``, a ``history`` line
        with the call as resolved) and the provenance: the model and its sha256, the options,
        and the device and precision the blocks ran at (resolved: ``"cpu"``, ``"fp32"``,
        ...), as strings and numbers (``network_scaling`` is JSON).

    Examples
    --------
    >>> import torch, xcalving
    >>> from xcalving.data.synthetic import glacier_cube
    >>> from xcalving.model import ASPPUNet
    >>> cube, _ = glacier_cube(2, shape=(64, 64), seed=0)
    >>> _ = torch.manual_seed(0)
    >>> pred = xcalving.predict(cube.sar, ASPPUNet(width=4).eval(), tile=64, overlap=16)
    >>> list(pred.data_vars), pred.front_probability.encoding["dtype"]
    (['front_probability', 'zones'], 'uint8')
    >>> xcalving.predict(cube.sar, ASPPUNet(width=4).eval(), tile=64, overlap=16,
    ...                  outputs="all").zone_probability.dims
    ('time', 'zone', 'y', 'x')
    """
    # heavy: xcalving.model.weights loads torch, safetensors, tqdm
    from xcalving.model.weights import model_spec

    options = PredictOptions(tile=tile, overlap=overlap, batch_size=batch_size, device=device,
                             precision=precision, band=band, scaling=scaling,
                             resolution=resolution, dtype=dtype, outputs=outputs,
                             max_pixels=max_pixels, tta=tta)
    if options.tta or isinstance(model, list | tuple):
        return _ensemble(da, model, options)
    da = prepare_input(da, options.band)
    options = replace(options, scaling=input_kind(da, options.scaling))
    check_values_in_memory(da, options.scaling)  # dask input: checked block by block, when run
    spec = model_spec(model)
    check_tile(options.tile, options.overlap, spec.stride, options.batch_size)
    runtime = planned_runtime(options.device, options.precision)
    spacings = resolution_spacings(options.resolution, spec, da)
    check_work(da.sizes, spacings, options)  # from metadata: before any graph is built
    if spacings is None:
        out = run_on_input_grid(da, spec, options, stacklevel=2)  # warnings name the caller
    else:
        out = run_resampled(da, spacings, spec, options)
    return to_dataset(da, out, spec, options, runtime, spacings)


def _ensemble(da: Any, model: Any, options: PredictOptions) -> Any:
    """Every member (weights, and flips with ``tta``) predicted as one call, then combined."""
    models = list(model) if isinstance(model, list | tuple) else [model]
    inner = {f.name: getattr(options, f.name) for f in fields(options)}
    inner.update(tta=False, outputs=("front_probability", "zone_probability", "zones"))
    out = run_members(da, models, options.tta, lambda cube, m: predict(cube, m, **inner))
    return out.drop_vars([name for name in ("zone_probability", "zones")
                          if name not in options.outputs])
