"""The ``.calving`` accessors.

Validation and dispatch only, no state: xarray makes a new accessor for every object.
"""

from __future__ import annotations

from typing import Any

import xarray as xr

from xcalving.errors import InputError, did_you_mean


@xr.register_dataarray_accessor("calving")
class CalvingDataArrayAccessor:
    """``da.calving.predict(...)``: the same call as :func:`xcalving.predict`."""

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    def predict(self, model: Any = None, *, tile: int = 512, overlap: int = 128,
                batch_size: int = 8, device: str = "auto", precision: str = "auto",
                band: Any = None, scaling: str = "auto") -> xr.Dataset:
        """Lazy front probability and zones; see :func:`xcalving.predict`."""
        from xcalving.inference import predict

        return predict(self._obj, model, tile=tile, overlap=overlap, batch_size=batch_size,
                       device=device, precision=precision, band=band, scaling=scaling)


@xr.register_dataset_accessor("calving")
class CalvingDatasetAccessor:
    """``ds.calving.predict(variable="sar", ...)``."""

    def __init__(self, obj: xr.Dataset) -> None:
        self._obj = obj

    def predict(self, model: Any = None, *, variable: str = "sar", tile: int = 512,
                overlap: int = 128, batch_size: int = 8, device: str = "auto",
                precision: str = "auto", band: Any = None, scaling: str = "auto") -> xr.Dataset:
        """Predict on ``ds[variable]``; see :func:`xcalving.predict`."""
        from xcalving.inference import predict

        if variable not in self._obj.data_vars:
            names = [str(v) for v in self._obj.data_vars]
            raise InputError(f"variable={variable!r} is not in the Dataset; it has {names}."
                             + did_you_mean(variable, names))
        return predict(self._obj[variable], model, tile=tile, overlap=overlap,
                       batch_size=batch_size, device=device, precision=precision, band=band,
                       scaling=scaling)

    def fronts(self, *, method: str = "zones", min_length: float = 750.0,
               min_length_px: float | None = None, threshold: float = 0.5) -> Any:
        """Time-indexed front lines of a prediction Dataset; see :func:`xcalving.fronts`."""
        from xcalving.vector import fronts

        return fronts(self._obj, method=method,  # type: ignore[arg-type]
                      min_length=min_length, min_length_px=min_length_px, threshold=threshold)
