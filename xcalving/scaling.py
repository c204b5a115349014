"""Backscatter scaling: what a cube's values are, and what a network was trained on.

Input comes as dB, linear power or CaFFe-style 8-bit grey values (:func:`input_kind` decides
which, from metadata only); a network was trained on one :class:`Scaling` (a domain and a
normalisation, recorded in its weights). :func:`to_network_input` converts the one to the other
with the documented dB <-> 8-bit rule (:func:`db_to_grey`, :func:`grey_to_db`), and
:func:`check_values` refuses values that cannot be what they are declared to be (linear power
labelled dB, dB passed as linear, 16-bit numbers as 8-bit grey values), judging from a small
strided sample of the array it is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from xcalving.errors import InputError, UnknownScalingError, did_you_mean

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["CAFFE_SCALING", "DB_RANGE", "INPUT_KINDS", "MIN_SAMPLE", "ROBUST_SCALING", "Scaling",
           "check_values", "db_to_grey", "fill_value", "grey_to_db", "input_kind", "normalise",
           "stretch_bounds", "to_domain", "to_network_input", "value_sample"]

#: dB range that the documented dB <-> 8-bit rule maps onto grey values 1..255 (0 is no data).
DB_RANGE = (-25.0, 5.0)
#: What the values of a cube can be (besides ``"none"``: feed them to the network unchanged).
INPUT_KINDS = ("db", "linear", "uint8")
#: Fewest valid values a sample needs before its distribution is judged (the 8-bit rule, whole
#: numbers in 0..255, holds for any number of values).
MIN_SAMPLE = 64
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
    stretch
        ``None`` (a fixed normalisation), or percentiles ``(low, high)`` such as ``(1, 99)``:
        robust per-scene scaling. Each scene's values (in the domain) are first mapped from the
        scene's own ``low``..``high`` percentile of valid pixels onto 0..1, clipped, and then
        normalised with ``mean`` and ``std``; a sensor's or a scene's gain and offset cancel.
        No-data pixels get the stretched 0 (:func:`fill_value`).
    """

    domain: Literal["uint8", "db"] = "uint8"
    mean: float = 0.3047
    std: float = 0.3219
    fill: float = 0.0
    stretch: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        """Check the stretch's percentiles; a list (as JSON gives it) becomes a float tuple."""
        if self.stretch is None:
            return
        low, high = (float(p) for p in self.stretch)
        if not 0.0 <= low < high <= 100.0:
            raise InputError(f"Scaling.stretch must be percentiles (low, high) with "
                             f"0 <= low < high <= 100, such as (1, 99); got {self.stretch!r}.")
        object.__setattr__(self, "stretch", (low, high))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (weights metadata)."""
        out = {"domain": self.domain, "mean": self.mean, "std": self.std, "fill": self.fill}
        return out if self.stretch is None else {**out, "stretch": list(self.stretch)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Scaling:
        """Inverse of :meth:`to_dict` (weights saved before ``stretch`` existed have none)."""
        return cls(domain=d["domain"], mean=float(d["mean"]), std=float(d["std"]),
                   fill=float(d["fill"]), stretch=d.get("stretch"))


#: CaFFe's reference normalisation: 8-bit images scaled to [0, 1], mean 0.3047, std 0.3219.
CAFFE_SCALING = Scaling("uint8", 0.3047, 0.3219, 0.0)
#: Robust per-scene scaling: 8-bit grey values stretched from each scene's 1st..99th percentile
#: of valid pixels onto 0..1; mean and std of the stretched values measured on the CaFFe 75 m
#: patch store (a third of its patches).
ROBUST_SCALING = Scaling("uint8", 0.3262, 0.2704, 0.0, stretch=(1.0, 99.0))


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

    Whatever ``scaling`` says, boolean (a mask), complex (SLC) and non-numeric dtypes are
    refused. Whether the values fit the kind is :func:`check_values`' job.
    """
    _check_dtype(da.dtype)
    if scaling != "auto":
        if scaling not in (*INPUT_KINDS, "none"):
            raise InputError(
                f"scaling must be 'auto', 'db', 'linear', 'uint8' or 'none'; got {scaling!r}."
                + did_you_mean(str(scaling), (*INPUT_KINDS, "none", "auto"))
            )
        return scaling
    if da.dtype == np.uint8:
        return "uint8"
    units = str(da.attrs.get("units", "")).strip().lower()
    if units in _UNIT_KINDS:
        return _UNIT_KINDS[units]
    if np.issubdtype(da.dtype, np.floating) and _stac_product_types(da) == {"RTC"}:
        return "linear"
    raise UnknownScalingError(
        f"scaling='auto' cannot tell whether da ({da.dtype}, units={da.attrs.get('units')!r}) "
        "holds dB, linear power or 8-bit grey values. Pass scaling='db', 'linear' or 'uint8', "
        "or set da.attrs['units'] = 'dB' (or 'linear'). Sentinel-1 RTC gamma0 from a STAC "
        "catalogue is linear power: scaling='linear'."
    )


def _check_dtype(dtype: Any) -> None:
    """Refuse dtypes that cannot hold backscatter: bool (a mask), complex (SLC), non-numbers."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        message = ("da is boolean: that is a mask (of ice, fronts, no data?), not backscatter. "
                   "Pass the SAR image itself (dB, linear power or 8-bit grey values); a "
                   "no-data mask goes in as NaN: da.where(~mask).")
        raise InputError(message)
    if np.issubdtype(dtype, np.complexfloating):
        raise InputError(
            f"da has complex dtype {dtype}: xcalving needs backscatter, not complex SAR. "
            "Take the amplitude or power first, e.g. abs(da) ** 2 with scaling='linear'."
        )
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise InputError(f"da has dtype {dtype}; predict needs numbers (float dB or linear "
                         "power, or 8-bit grey values). Convert it, e.g. da.astype('float32').")


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
                     nodata: float | None = None, bounds: np.ndarray | None = None) -> np.ndarray:
    """Convert backscatter of ``kind`` to what a network trained with ``scaling`` expects.

    Pixels that are NaN or infinite, equal to ``nodata``, ``<= 0`` in linear power, or 0 in 8-bit
    input come out as NaN: the caller fills them (with ``scaling.fill``) and masks the output
    there. (``-inf`` is what ``10·log10`` makes of zero power: no data, like NaN.)

    The dB <-> 8-bit rule maps :data:`DB_RANGE` linearly onto grey values 1..255, clipping
    outside it; linear power becomes dB by ``10·log10``. A ``scaling`` with a ``stretch`` uses
    ``bounds`` (:func:`stretch_bounds`, from the whole scene) where given, else the stretch
    of ``values`` itself, one per entry of its leading axes.

    Examples
    --------
    >>> grey = np.array([[0, 10, 20], [30, 40, 50]], dtype=np.uint8)
    >>> stretched = Scaling("uint8", 0.0, 1.0, 0.0, stretch=(0, 100))
    >>> to_network_input(grey, "uint8", stretched).round(2).tolist()
    [[nan, 0.0, 0.25], [0.5, 0.75, 1.0]]
    >>> brighter = np.where(grey > 0, 2 * grey + 7, 0)  # another gain and offset: the same
    >>> to_network_input(brighter, "uint8", stretched).round(2).tolist()[1]
    [0.5, 0.75, 1.0]
    """
    x = to_domain(values, kind, scaling, nodata)
    return x if kind == "none" else normalise(x, scaling, bounds)


def to_domain(values: np.ndarray, kind: str, scaling: Scaling,
              nodata: float | None = None) -> np.ndarray:
    """Backscatter of ``kind`` in ``scaling``'s domain (grey values or dB), NaN = no data.

    ``kind="none"`` leaves the values as they are (the caller vouches for them).
    """
    x: np.ndarray = np.asarray(values, dtype=np.float32)
    invalid = ~np.isfinite(x)
    if nodata is not None and not np.isnan(nodata):
        invalid |= x == np.float32(nodata)
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
    return np.where(invalid, np.float32(np.nan), x).astype(np.float32)


def normalise(x: np.ndarray, scaling: Scaling, bounds: np.ndarray | None = None) -> np.ndarray:
    """Values in ``scaling``'s domain (NaN = no data) as the network sees them.

    ``bounds`` (..., 2) are the stretch's (low, high) for each entry of ``x``'s leading axes
    (:func:`stretch_bounds`; computed from ``x`` where not given). Without a stretch 8-bit
    values are divided by 255. Then ``(value - mean) / std``.
    """
    if scaling.stretch is None:
        y = x / np.float32(255.0) if scaling.domain == "uint8" else x
    else:
        b = stretch_bounds(x, scaling) if bounds is None else np.asarray(bounds, np.float32)
        low, high = b[..., 0, None, None], b[..., 1, None, None]
        y = np.clip((x - low) / np.maximum(high - low, np.float32(1e-6)), 0.0, 1.0)
    return ((y - scaling.mean) / scaling.std).astype(np.float32)


def stretch_bounds(x: np.ndarray, scaling: Scaling) -> np.ndarray:
    """The stretch's (low, high) percentiles of the valid values of each (y, x) slice of ``x``.

    ``x`` (..., y, x) is in the domain, NaN = no data; the result is (..., 2), float32. A slice
    with no valid value gets (0, 1); a constant one (v, v + 1), so nothing divides by zero.

    Examples
    --------
    >>> x = np.array([[[np.nan, 1.0], [3.0, 5.0]], [[np.nan] * 2] * 2])
    >>> stretch_bounds(x, Scaling(stretch=(0, 100))).tolist()
    [[1.0, 5.0], [0.0, 1.0]]
    """
    if scaling.stretch is None:
        raise InputError("stretch_bounds needs a Scaling with a stretch, such as ROBUST_SCALING.")
    flat = np.asarray(x, np.float32).reshape(*x.shape[:-2], -1)
    out = np.zeros((*flat.shape[:-1], 2), np.float32)
    out[..., 1] = 1.0
    for index in np.ndindex(*flat.shape[:-1]):
        valid = flat[index][np.isfinite(flat[index])]
        if valid.size:
            low, high = np.percentile(valid, scaling.stretch)
            out[index] = (low, high if high > low else low + 1.0)
    return out


def fill_value(scaling: Scaling) -> float:
    """The normalised value no-data pixels get before they reach the network.

    With a stretch, the stretched 0 (the bottom of every scene's range) whatever ``fill`` is.
    """
    if scaling.stretch is not None:
        return float((0.0 - scaling.mean) / scaling.std)
    fill = scaling.fill / 255.0 if scaling.domain == "uint8" else scaling.fill
    return float((fill - scaling.mean) / scaling.std)


# --- do the values fit what they are said to be? -------------------------------------------------
def value_sample(values: np.ndarray, nodata: float | None = None) -> np.ndarray:
    """A strided sample of ``values`` (..., y, x), valid values only, as a flat float64 array.

    At most 64 × 64 pixels from each of at most 4 entries of every leading axis, taken with
    basic strided slicing (a view: only the sample is copied). NaN, ±inf, ``nodata`` and 0
    (an undeclared fill in dB, no data in linear and 8-bit input) are left out.

    Examples
    --------
    >>> value_sample(np.full((10, 1024, 1024), 3.0, np.float32)).size
    16384
    >>> value_sample(np.array([[0.0, np.nan], [-np.inf, 2.0]]), nodata=2.0).size
    0
    """
    steps = [-(-n // 4) for n in values.shape[:-2]] + [-(-n // 64) for n in values.shape[-2:]]
    picked = values[tuple(slice(None, None, max(step, 1)) for step in steps)]
    sample = np.asarray(picked, dtype=np.float32).ravel()
    keep = np.isfinite(sample) & (sample != 0)
    if nodata is not None and np.isfinite(nodata):
        keep &= sample != np.float32(nodata)
    return sample[keep].astype(np.float64)


def check_values(values: np.ndarray, kind: str, nodata: float | None = None, *,
                 where: str = "da") -> None:
    """Refuse values that cannot be ``kind``, judging from a strided sample of them.

    Cheap whatever the size of ``values`` (:func:`value_sample`: at most 65 536 values). The
    rules, on the valid values of the sample (the first two when it has at least
    :data:`MIN_SAMPLE`; both cannot happen to real backscatter, whose speckle alone spreads it
    over several dB):

    - ``"db"``: 99 % or more above 0 with a median below 1 is linear power (or amplitude)
      labelled dB; a median above 30 dB is 8-bit grey values or uncalibrated digital numbers;
      one below -60 dB an undeclared no-data value or scaled dB;
    - ``"linear"``: a median below -1 is dB (power cannot be negative; noise removal leaves
      small negatives only); a median above 10 (+10 dB) is digital numbers or grey values;
    - ``"uint8"``: every value a whole number in 0..255 (uint8 dtype is not sampled);
    - ``"none"``: the caller vouches for the values; nothing is checked.

    ``where`` names the values in the message (``"da"``, or a chunk of it).

    Raises
    ------
    InputError
        Naming what the values look like and the ``scaling=`` to pass.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> power = rng.gamma(4.0, 0.05 / 4.0, (64, 64))
    >>> check_values(10 * np.log10(power), "db")
    >>> check_values(power, "linear")
    >>> check_values(power, "db")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    xcalving.errors.InputError: da was read as dB, but 100 % of its values ... linear power ...
    """
    if kind not in INPUT_KINDS or (kind == "uint8" and values.dtype == np.uint8):
        return
    sample = value_sample(values, nodata)
    problem = _grey_problem(sample) if kind == "uint8" else _backscatter_problem(sample, kind)
    if problem is not None:
        raise InputError(f"{where} {problem}")


def _backscatter_problem(v: np.ndarray, kind: str) -> str | None:
    """What is wrong with dB or linear-power sample ``v``, or None."""
    if v.size < MIN_SAMPLE:
        return None
    median = float(np.median(v))
    if kind == "db" and (v > 0).mean() >= 0.99 and median < 1:
        return (f"was read as dB, but {100 * (v > 0).mean():.0f} % of its values are above 0 and "
                f"their median is {median:.3g}: that is linear power (or amplitude), not dB. "
                "Pass scaling='linear' (or set da.attrs['units'] = 'linear').")
    if kind == "db" and median > 30:
        return (f"was read as dB, but its median is {median:.3g} dB, far brighter than any "
                "backscatter: these look like 8-bit grey values (pass scaling='uint8') or "
                "uncalibrated digital numbers (calibrate to sigma0 or gamma0 first).")
    if kind == "db" and median < -60:
        return (f"was read as dB, but its median is {median:.4g} dB, far darker than any "
                "backscatter (the noise floor is near -25 dB): an undeclared no-data value "
                "(declare it: da.attrs['_FillValue'] = ...) or dB scaled by 10 or 100 (divide "
                "it back)?")
    if kind == "linear" and median < -1:
        return (f"was read as linear power, but its median is {median:.3g}: power cannot be "
                "negative, these look like dB. Pass scaling='db' (or set da.attrs['units'] = "
                "'dB').")
    if kind == "linear" and median > 10:
        return (f"was read as linear power, but its median is {median:.3g} "
                f"({10 * np.log10(median):+.0f} dB), far brighter than any backscatter: these "
                "look like 8-bit grey values (pass scaling='uint8') or uncalibrated digital "
                "numbers (calibrate to sigma0 or gamma0 first).")
    return None


def _grey_problem(v: np.ndarray) -> str | None:
    """What keeps sample ``v`` from being 8-bit grey values (whole numbers 0..255), or None."""
    expected = "was read as 8-bit grey values (whole numbers 0..255, 0 = no data), but "
    if v.size and v.min() < 0:
        return (expected + f"has negative values (down to {v.min():.3g}): dB? Pass "
                "scaling='db'.")
    if v.size and v.max() > 255:
        return (expected + f"has values up to {v.max():.6g}: 16-bit or uncalibrated digital "
                "numbers are not grey values. Calibrate them to dB or linear power and pass "
                "scaling='db' or 'linear'.")
    fractional = v[v != np.round(v)]
    if fractional.size and v.max() <= 1:
        return (expected + f"has fractions in 0..1 (e.g. {fractional[0]:.3g}): grey values "
                "scaled to 0..1? Multiply by 255; linear power? Pass scaling='linear'.")
    if fractional.size:
        return (expected + f"has fractional values (e.g. {fractional[0]:.3g}): dB or linear "
                "power? Pass scaling='db' or 'linear'.")
    return None
