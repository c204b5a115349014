"""The ``.calving`` accessors.

Validation and dispatch only, no state: xarray makes a new accessor for every object.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import xarray as xr

from xcalving.errors import InputError, did_you_mean
from xcalving.inference.options import PredictOptions as _D  # predict's defaults: one home


@xr.register_dataarray_accessor("calving")
class CalvingDataArrayAccessor:
    """``da.calving.predict(...)``: the same call as :func:`xcalving.predict`."""

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    def predict(self, model: Any = None, *, tile: int = _D.tile, overlap: int = _D.overlap,
                batch_size: int = _D.batch_size, device: str = _D.device,
                precision: str = _D.precision, band: Any = _D.band, scaling: str = _D.scaling,
                resolution: float | str | None = _D.resolution, dtype: str = _D.dtype,
                outputs: str | Sequence[str] = _D.outputs,
                max_pixels: float | None = _D.max_pixels) -> xr.Dataset:
        """Lazy front probability and zones; see :func:`xcalving.predict`."""
        from xcalving.inference.api import predict

        return predict(self._obj, model, tile=tile, overlap=overlap, batch_size=batch_size,
                       device=device, precision=precision, band=band, scaling=scaling,
                       resolution=resolution, dtype=dtype, outputs=outputs,
                       max_pixels=max_pixels)


@xr.register_dataset_accessor("calving")
class CalvingDatasetAccessor:
    """``ds.calving.predict(variable="sar", ...)``."""

    def __init__(self, obj: xr.Dataset) -> None:
        self._obj = obj

    def predict(self, model: Any = None, *, variable: str | None = None, tile: int = _D.tile,
                overlap: int = _D.overlap, batch_size: int = _D.batch_size,
                device: str = _D.device, precision: str = _D.precision, band: Any = _D.band,
                scaling: str = _D.scaling, resolution: float | str | None = _D.resolution,
                dtype: str = _D.dtype, outputs: str | Sequence[str] = _D.outputs,
                max_pixels: float | None = _D.max_pixels) -> xr.Dataset:
        """Predict on one variable of the Dataset; see :func:`xcalving.predict`.

        ``variable=None`` takes ``"sar"`` where there is one; else, where some variables
        name polarisations (as ``odc.stac.load`` names the bands of a Sentinel-1 item: ``hh``,
        ``hv``, ``vv``, ``vh``), HH, else VV; else the only variable.
        """
        from xcalving.bands import choose_polarisation, polarisation_of
        from xcalving.inference.api import predict

        names = [str(v) for v in self._obj.data_vars]
        if variable is None:
            if "sar" in names:
                variable = "sar"
            elif (pol := choose_polarisation(names)) is not None:
                variable = pol
            elif len(names) == 1:
                variable = names[0]
            else:
                raise InputError(f"the Dataset has variables {names}; choose one with "
                                 f"variable=..., e.g. variable={names[0]!r}." if names else
                                 "the Dataset has no data variables to predict on.")
        if variable not in names:
            raise InputError(f"variable={variable!r} is not in the Dataset; it has {names}."
                             + did_you_mean(variable, names))
        da = self._obj[variable]
        if "band" not in da.attrs and polarisation_of(variable):
            da = da.assign_attrs(band=variable)
        return predict(da, model, tile=tile, overlap=overlap, batch_size=batch_size,
                       device=device, precision=precision, band=band, scaling=scaling,
                       resolution=resolution, dtype=dtype, outputs=outputs,
                       max_pixels=max_pixels)

    def fronts(self, **options: Any) -> Any:
        """Time-indexed front lines of a prediction Dataset: :func:`xcalving.fronts` on it.

        ``options`` are those of :func:`xcalving.fronts` (``method``, ``region``, ``ocean``,
        ``min_length``, ``min_length_px``, ``threshold``), with the same defaults: one home.
        """
        from xcalving.vector.api import fronts

        return fronts(self._obj, **options)
