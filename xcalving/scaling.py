"""Backscatter scaling: what a cube's values are, and what a network was trained on.

Input comes as dB, linear power or CaFFe-style 8-bit grey values (:func:`input_kind` decides
which, from metadata only); a network was trained on one :class:`Scaling` (a domain and a
normalisation, recorded in its weights). :func:`to_network_input` converts the one to the other
with the documented dB <-> 8-bit rule (:func:`db_to_grey`, :func:`grey_to_db`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from xcalving.errors import InputError, did_you_mean

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["CAFFE_SCALING", "DB_RANGE", "INPUT_KINDS", "Scaling", "db_to_grey", "fill_value",
           "grey_to_db", "input_kind", "to_network_input"]

#: dB range that the documented dB <-> 8-bit rule maps onto grey values 1..255 (0 is no data).
DB_RANGE = (-25.0, 5.0)
#: What the values of a cube can be (besides ``"none"``: feed them to the network unchanged).
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


def db_to_grey(db: np.ndarray) -> np.ndarray:
    """The documented dB -> 8-bit rule: :data:`DB_RANGE` onto grey values 1..255, clipped.

    Not rounded (round with ``np.rint`` to write 8-bit images); 0 stays free for no data.

    Examples
    --------
    >>> db_to_grey(np.array([-30.0, -25.0, 5.0, 9.0])).tolist()
    [1.0, 1.0, 255.0, 255.0]
    """
    lo, hi = DB_RANGE
    return 1.0 + 254.0 * np.clip((db - lo) / (hi - lo), 0.0, 1.0)


def grey_to_db(grey: np.ndarray) -> np.ndarray:
    """Inverse of :func:`db_to_grey` on grey values 1..255."""
    lo, hi = DB_RANGE
    return lo + (grey - 1.0) * (hi - lo) / 254.0


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
    if kind == "db" and scaling.domain == "uint8":
        x = db_to_grey(x)
    elif kind == "uint8" and scaling.domain == "db":
        x = grey_to_db(x)
    if scaling.domain == "uint8":
        x = x / 255.0
    x = (x - scaling.mean) / scaling.std
    return np.where(invalid, np.float32(np.nan), x).astype(np.float32)


def fill_value(scaling: Scaling) -> float:
    """The normalised value no-data pixels get before they reach the network."""
    fill = scaling.fill / 255.0 if scaling.domain == "uint8" else scaling.fill
    return float((fill - scaling.mean) / scaling.std)
