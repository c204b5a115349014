"""The ``.calving`` accessors: one line per method over ``predict`` and ``fronts``.

No state and no policy of their own: xarray makes a new accessor for every object; predict's
defaults live in ``PredictOptions`` and the choice of a Dataset's variable in
:func:`xcalving.bands.dataset_variable`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import xarray as xr

from xcalving.bands import dataset_variable
from xcalving.inference.api import predict
from xcalving.inference.options import PredictOptions as _D  # predict's defaults: one home
from xcalving.vector.api import fronts


def _options(call: dict[str, Any]) -> dict[str, Any]:
    """A method's keyword options (its ``locals()``), to pass on unchanged."""
    return {k: v for k, v in call.items() if k not in ("self", "model", "variable")}


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
                max_pixels: float | None = _D.max_pixels, tta: bool = _D.tta) -> xr.Dataset:
        """Lazy front probability and zones; see :func:`xcalving.predict`."""
        return predict(self._obj, model, **_options(locals()))


@xr.register_dataset_accessor("calving")
class CalvingDatasetAccessor:
    """``ds.calving.predict(variable="sar", ...)`` and ``ds.calving.fronts(...)``."""

    def __init__(self, obj: xr.Dataset) -> None:
        self._obj = obj

    def predict(self, model: Any = None, *, variable: str | None = None, tile: int = _D.tile,
                overlap: int = _D.overlap, batch_size: int = _D.batch_size,
                device: str = _D.device, precision: str = _D.precision, band: Any = _D.band,
                scaling: str = _D.scaling, resolution: float | str | None = _D.resolution,
                dtype: str = _D.dtype, outputs: str | Sequence[str] = _D.outputs,
                max_pixels: float | None = _D.max_pixels, tta: bool = _D.tta) -> xr.Dataset:
        """Predict on one variable of the Dataset; see :func:`xcalving.predict`.

        ``variable=None`` chooses as :func:`xcalving.bands.dataset_variable` does: ``"sar"``
        where there is one; else, where some variables name polarisations, HH, else VV; else
        the only variable.
        """
        return predict(dataset_variable(self._obj, variable), model, **_options(locals()))

    def fronts(self, **options: Any) -> Any:
        """Time-indexed front lines of a prediction Dataset: :func:`xcalving.fronts` on it.

        ``options`` are those of :func:`xcalving.fronts` (``method``, ``region``, ``ocean``,
        ``min_length``, ``min_length_px``, ``threshold``), with the same defaults: one home.
        """
        return fronts(self._obj, **options)
