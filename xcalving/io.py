"""Opening and writing SAR cubes as Zarr, with their CRS and transform."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import xarray as xr

from xcalving.errors import InputError, InputTypeError, did_you_mean

__all__ = ["CAFFE_SCALING", "DB_RANGE", "Scaling", "input_kind", "open_cube", "to_network_input",
           "write_cube"]

#: Chunks for writing a numpy-backed cube: one scene a chunk along time, tiles of 1024 pixels.
DEFAULT_WRITE_CHUNKS = {"time": 1, "band": 1, "y": 1024, "x": 1024}
_CONSOLIDATED_FALLBACK = "Failed to open Zarr store with consolidated metadata"


def open_cube(
    path: str | os.PathLike[str],
    *,
    chunks: Mapping[str, int] | Literal["auto"] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Open a Zarr cube lazily, keeping its CRS and transform.

    ``xarray.open_zarr`` alone leaves ``spatial_ref`` as a data variable and the CRS is lost
    (``decode_coords="all"`` is needed); this does it for you and reads consolidated metadata
    when the store has it, plain metadata (silently) when it has not.

    Parameters
    ----------
    path
        Local path or fsspec URL of the store.
    chunks
        Dask chunks; ``None`` (default) keeps the chunks stored on disk.
    storage_options
        Passed to fsspec for remote stores.

    Returns
    -------
    xarray.Dataset
        Dask-backed: nothing is read until you compute.

    Examples
    --------
    >>> import tempfile, xcalving
    >>> from xcalving.data.synthetic import glacier_cube
    >>> cube, _ = glacier_cube(2, shape=(96, 96), seed=0)
    >>> path = xcalving.write_cube(cube, tempfile.mkdtemp() + "/cube.zarr")
    >>> xcalving.open_cube(path).rio.crs.to_epsg()
    3031
    """
    if not isinstance(path, str | os.PathLike):
        raise InputTypeError(f"path must be a path or URL string; got {type(path).__name__}.")
    if isinstance(path, os.PathLike) or "://" not in str(path):
        if not os.path.exists(path):
            raise FileNotFoundError(f"path: no Zarr store at {os.fspath(path)!r}.")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_CONSOLIDATED_FALLBACK, category=RuntimeWarning)
        ds = xr.open_zarr(path, chunks={} if chunks is None else chunks,  # type: ignore[arg-type]
                          decode_coords="all", consolidated=None,
                          storage_options=storage_options)
    return ds


def write_cube(
    ds: xr.Dataset | xr.DataArray,
    path: str | os.PathLike[str],
    *,
    mode: Literal["w-", "w"] = "w-",
    compute: bool = True,
) -> str:
    """Write a cube to a Zarr v3 store, keeping its CRS, and return the path.

    Numpy-backed variables are chunked by :data:`DEFAULT_WRITE_CHUNKS`; dask-backed ones keep their
    chunks. Metadata is not consolidated (Zarr v3 has no standard for it yet, and zarr warns).

    Parameters
    ----------
    ds
        Dataset (or DataArray, written as a one-variable Dataset).
    path
        Where to write.
    mode
        ``"w-"`` (default) refuses to touch an existing store; ``"w"`` replaces it.
    compute
        ``False`` returns after writing metadata; see :meth:`xarray.Dataset.to_zarr`.
    """
    if mode not in ("w-", "w"):
        raise InputError(f"mode must be 'w-' (never overwrite) or 'w' (replace); got {mode!r}.")
    if isinstance(ds, xr.DataArray):
        ds = ds.to_dataset(name=ds.name or "sar")
    if mode == "w-" and os.path.exists(path):
        raise FileExistsError(
            f"path: {os.fspath(path)!r} already exists and mode='w-' never overwrites. "
            "Choose a new path, or pass mode='w' to replace it."
        )
    if all(v.chunks is None for v in ds.data_vars.values()):
        # data variables only: small coordinates (e.g. scene names) stay in memory
        ds = ds.assign({
            name: var.chunk({d: n for d, n in DEFAULT_WRITE_CHUNKS.items() if d in var.dims})
            for name, var in ds.data_vars.items()
        })
    ds = ds.copy(deep=False)
    for var in ds.variables.values():  # chunk encodings of a store it was read from would clash
        var.encoding = {k: v for k, v in var.encoding.items()
                        if k not in ("chunks", "preferred_chunks", "shards")}
    ds.to_zarr(path, mode=mode, consolidated=False, zarr_format=3,  # type: ignore[call-overload]
               compute=compute)
    return os.fspath(path)


# --- backscatter scaling -------------------------------------------------------------------------
#: dB range that the documented dB <-> 8-bit rule maps onto grey values 1..255 (0 is no data).
DB_RANGE = (-25.0, 5.0)
INPUT_KINDS = ("db", "linear", "uint8")
_UNIT_KINDS = {"db": "db", "decibel": "db", "decibels": "db", "1": "linear", "linear": "linear",
               "m2/m2": "linear", "m2 m-2": "linear", "power": "linear"}


@dataclass(frozen=True)
class Scaling:
    """The input a network was trained on: its domain and normalisation.

    Parameters
    ----------
    domain
        ``"uint8"``: CaFFe-style 8-bit grey values (0 = no data), divided by 255 before
        normalising; ``"db"``: backscatter in dB.
    mean, std
        The network sees ``(value - mean) / std`` (value after the division by 255 for uint8).
    fill
        The value, in the domain, that no-data pixels get before they reach the network (the
        output is NaN there whatever the network says).
    """

    domain: Literal["uint8", "db"] = "uint8"
    mean: float = 0.3047
    std: float = 0.3219
    fill: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (weights metadata)."""
        return {"domain": self.domain, "mean": self.mean, "std": self.std, "fill": self.fill}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Scaling:
        """Inverse of :meth:`to_dict`."""
        return cls(domain=d["domain"], mean=float(d["mean"]), std=float(d["std"]),
                   fill=float(d["fill"]))


#: CaFFe's reference normalisation: 8-bit images scaled to [0, 1], mean 0.3047, std 0.3219.
CAFFE_SCALING = Scaling("uint8", 0.3047, 0.3219, 0.0)


def input_kind(da: xr.DataArray, scaling: str = "auto") -> str:
    """Decide what the values of ``da`` are: ``"db"``, ``"linear"``, ``"uint8"`` or ``"none"``.

    The rule (``scaling="auto"``), from metadata only — values are never read:

    1. dtype uint8 → ``"uint8"`` (CaFFe-style grey values, 0 = no data);
    2. a ``units`` attribute of ``dB``/``decibel`` → ``"db"``; ``1``, ``linear``, ``m2/m2``,
       ``power`` → ``"linear"`` (power, converted with 10·log10);
    3. float values whose STAC metadata says ``sar:product_type`` is ``"RTC"`` (a coordinate,
       as ``stackstac.stack`` makes from item properties, or an attribute) → ``"linear"``:
       Sentinel-1 RTC collections (Planetary Computer's ``sentinel-1-rtc``, ASF's RTC products
       by default) serve linear gamma0 power;
    4. anything else is ambiguous and raises: pass ``scaling="db"``, ``"linear"`` or ``"uint8"``
       (or ``"none"`` to feed the values to the network unchanged).
    """
    if scaling != "auto":
        if scaling not in (*INPUT_KINDS, "none"):
            raise InputError(
                f"scaling must be 'auto', 'db', 'linear', 'uint8' or 'none'; got {scaling!r}."
                + did_you_mean(str(scaling), (*INPUT_KINDS, "none", "auto"))
            )
        return scaling
    if np.issubdtype(da.dtype, np.complexfloating):
        raise InputError(
            f"da has complex dtype {da.dtype}: xcalving needs backscatter, not complex SAR. "
            "Take the amplitude or power first, e.g. abs(da) ** 2 with scaling='linear'."
        )
    if da.dtype == np.uint8:
        return "uint8"
    units = str(da.attrs.get("units", "")).strip().lower()
    if units in _UNIT_KINDS:
        return _UNIT_KINDS[units]
    if np.issubdtype(da.dtype, np.floating) and _stac_product_types(da) == {"RTC"}:
        return "linear"
    raise InputError(
        f"scaling='auto' cannot tell whether da ({da.dtype}, units={da.attrs.get('units')!r}) "
        "holds dB, linear power or 8-bit grey values. Pass scaling='db', 'linear' or 'uint8', "
        "or set da.attrs['units'] = 'dB' (or 'linear'). Sentinel-1 RTC gamma0 from a STAC "
        "catalogue is linear power: scaling='linear'."
    )


def _stac_product_types(da: xr.DataArray) -> set[str]:
    """The ``sar:product_type`` values STAC metadata gives ``da`` (empty when none)."""
    key = "sar:product_type"
    if key in da.coords:
        return {str(v).upper() for v in np.unique(np.asarray(da.coords[key].values))}
    if key in da.attrs:
        return {str(da.attrs[key]).upper()}
    return set()


def to_network_input(values: np.ndarray, kind: str, scaling: Scaling,
                     nodata: float | None = None) -> np.ndarray:
    """Convert backscatter of ``kind`` to what a network trained with ``scaling`` expects.

    Pixels that are NaN, equal to ``nodata``, ``<= 0`` in linear power, or 0 in 8-bit input come
    out as NaN: the caller fills them (with ``scaling.fill``) and masks the output there.

    The dB <-> 8-bit rule maps :data:`DB_RANGE` linearly onto grey values 1..255, clipping
    outside it; linear power becomes dB by ``10·log10``.
    """
    x: np.ndarray = np.asarray(values, dtype=np.float32)
    invalid = np.isnan(x)
    if nodata is not None and not np.isnan(nodata):
        invalid |= x == np.float32(nodata)
    if kind == "none":
        return np.where(invalid, np.float32(np.nan), x)
    if kind == "uint8":
        invalid |= x == 0
    if kind == "linear":
        invalid |= x <= 0
        x = 10.0 * np.log10(np.where(invalid, 1.0, x), dtype=np.float32)
        kind = "db"
    lo, hi = DB_RANGE
    if kind == "db" and scaling.domain == "uint8":
        x = 1.0 + 254.0 * np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    elif kind == "uint8" and scaling.domain == "db":
        x = lo + (x - 1.0) * (hi - lo) / 254.0
    if scaling.domain == "uint8":
        x = x / 255.0
    x = (x - scaling.mean) / scaling.std
    return np.where(invalid, np.float32(np.nan), x).astype(np.float32)


def fill_value(scaling: Scaling) -> float:
    """The normalised value no-data pixels get before they reach the network."""
    fill = scaling.fill / 255.0 if scaling.domain == "uint8" else scaling.fill
    return float((fill - scaling.mean) / scaling.std)
