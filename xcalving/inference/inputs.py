"""From the caller's DataArray to the network's input: checks, band choice, no data, scaling.

Everything here reads metadata only; the data stay lazy (numpy input becomes one dask chunk a
scene).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from xcalving.errors import InputError, did_you_mean

if TYPE_CHECKING:
    from xcalving.model.weights import ModelSpec

__all__ = ["CO_POLARISATIONS", "CROSS_POLARISATIONS", "choose_polarisation", "prepare_input"]

#: Sentinel-1 and other SAR polarisations: the co-polarised ones the network can use, HH first.
CO_POLARISATIONS = ("hh", "vv")
CROSS_POLARISATIONS = ("hv", "vh")

_SPATIAL_HINTS = {"lat": "y", "latitude": "y", "lon": "x", "longitude": "x", "row": "y",
                  "rows": "y", "col": "x", "cols": "x", "northing": "y", "easting": "x"}


def prepare_input(da: Any, band: Any) -> Any:
    """``da`` checked, reduced to one band and transposed to (..., y, x)."""
    import xarray as xr

    if isinstance(da, xr.Dataset):
        raise InputError("da is a Dataset; call ds.calving.predict(variable='sar', ...) or pass "
                         "one variable, e.g. predict(ds['sar'], ...).")
    if not isinstance(da, xr.DataArray):
        raise InputError(f"da must be an xarray.DataArray; got {type(da).__name__}.")
    _check_dims(da)
    da = _select_band(da, band)
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


def choose_polarisation(labels: Sequence[Any]) -> Any | None:
    """The label to use among ``labels`` when they name polarisations: HH, else VV.

    Returns None when the labels are not all polarisation names (then nothing is guessed).
    Raises when they are, but only cross-polarised ones (HV, VH) are there.

    Examples
    --------
    >>> choose_polarisation(["VH", "VV"]), choose_polarisation(["B04", "B08"])
    ('VV', None)
    """
    lowered = [str(label).lower() for label in labels]
    if not lowered or not set(lowered) <= {*CO_POLARISATIONS, *CROSS_POLARISATIONS}:
        return None
    for pol in CO_POLARISATIONS:
        if pol in lowered:
            return labels[lowered.index(pol)]
    raise InputError(
        f"only cross-polarised bands {list(labels)} are there; the network was trained on "
        "co-polarised (HH or VV) backscatter. Load HH or VV, or choose a band explicitly with "
        "band=... if you accept the mismatch."
    )


def _select_band(da: Any, band: Any) -> Any:
    if "band" not in da.dims:
        if band is not None:
            raise InputError(f"band={band!r} was given but da has no 'band' dim ({da.dims}).")
        return da
    labels = da["band"].values.tolist() if "band" in da.coords else list(range(da.sizes["band"]))
    if band is None:
        if da.sizes["band"] == 1:
            return da.isel(band=0, drop=True)
        band = choose_polarisation(labels)
        if band is None:
            raise InputError(
                f"da has {da.sizes['band']} bands {labels} and the network takes one: choose it "
                f"with band=..., e.g. band={labels[0]!r} (HH is preferred, VV accepted)."
            )
    if band not in labels:
        raise InputError(f"band={band!r} is not among da's bands {labels}."
                         + did_you_mean(str(band), [str(b) for b in labels]))
    selected = da.sel(band=band) if "band" in da.coords else da.isel(band=band)
    return selected.drop_vars("band", errors="ignore").assign_attrs(band=str(band))


def _nodata(da: Any) -> float | None:
    for source in (da.attrs, da.encoding):
        for key in ("_FillValue", "nodata", "missing_value"):
            if source.get(key) is not None:
                return float(source[key])
    return None


def dask_data(da: Any) -> Any:
    """``da``'s data as a dask array (numpy input: one chunk per scene)."""
    import dask.array as dsa

    if isinstance(da.data, dsa.Array):
        return da.data
    return dsa.from_array(np.asarray(da.data), chunks=(1,) * (da.ndim - 2) + (-1, -1))


def network_input(data: Any, da: Any, kind: str, spec: ModelSpec) -> Any:
    """Lazily convert ``data`` (``da``'s values, dask) to the network's scaling, NaN = no data.

    ``kind`` is what the values are (:func:`xcalving.scaling.input_kind`).
    """
    from xcalving.scaling import to_network_input

    return data.map_blocks(to_network_input, kind, spec.scaling, _nodata(da), dtype=np.float32)
