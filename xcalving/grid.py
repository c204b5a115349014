"""Grid facts of a cube, all derived from its 1-D ``y``/``x`` coordinates.

- :func:`transform` — the affine transform (pixel corner origin) of a regular grid;
- :func:`pixel_spacing` — metres per pixel of a regular, square grid in a metric CRS;
- :func:`same_grid` / :func:`check_same_grid` — two rasters compared by coordinates and CRS.

The coordinates are the only source: a cached GeoTransform (rioxarray's
``spatial_ref.attrs["GeoTransform"]``, which ``ds.rio.transform()`` may read) survives
``isel``, ``coarsen`` and ``sortby`` unchanged and is then wrong. Coordinates must be
monotonic and evenly spaced; anything else gets an :class:`~xcalving.errors.InputError`
that says how to fix it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from xcalving.errors import InputError

if TYPE_CHECKING:
    import xarray as xr
    from affine import Affine

__all__ = ["Axis", "attrs_spacing", "axis", "check_monotonic", "check_same_grid", "metric_crs",
           "pixel_spacing", "refresh_transform", "same_grid", "transform"]

#: Steps may differ from the mean step by this share of it (plus the coordinates' rounding).
STEP_RTOL = 1e-5


class Axis(NamedTuple):
    """One regular axis: the centre of its first pixel, the signed step, the pixel count."""

    first: float
    step: float
    size: int


def axis(da: xr.DataArray | xr.Dataset, dim: str, *, what: str = "axis(da, dim)") -> Axis:
    """The regular axis ``dim`` of ``da``, checked: 1-D, numeric, monotonic, evenly spaced.

    The step is signed (negative for the usual north-up ``y``), fitted over the whole axis.

    Parameters
    ----------
    da
        DataArray or Dataset with a 1-D coordinate ``dim``.
    dim
        ``"y"`` or ``"x"`` (any 1-D dimension coordinate works).
    what
        What needs the axis, named in the error messages (e.g. ``"fronts"``).

    Raises
    ------
    InputError
        No such coordinate, a single value, NaN, repeated values, values that go back and
        forth (not monotonic) or uneven steps; the message names the fix.

    Examples
    --------
    >>> from xcalving.data.synthetic import glacier_cube
    >>> cube, _ = glacier_cube(1, shape=(64, 96), resolution=20.0, seed=0)
    >>> axis(cube, "y")
    Axis(first=1299990.0, step=-20.0, size=64)
    >>> axis(cube.sortby("y"), "y").step
    20.0
    """
    values = _coordinate_values(da, dim, what)
    if values.size < 2:
        raise InputError(f"{what}: da has a single {dim!r} coordinate; its spacing is unknown. "
                         f"A grid needs at least two pixels along {dim!r}: select a slice, e.g. "
                         f"da.isel({dim}=slice(0, 2)), not a single index.")
    diffs = np.diff(values)
    _check_monotonic(values, diffs, dim, what)
    step = float((values[-1] - values[0]) / (values.size - 1))
    # coordinates stored as float32 (or large float64) are rounded: allow a few of their ulps
    rounding = 4 * float(np.spacing(np.abs(values).max()))
    tolerance = STEP_RTOL * abs(step) + rounding
    if np.abs(diffs - step).max() > tolerance:
        raise InputError(
            f"{what}: da's {dim!r} coordinates are not evenly spaced (steps from "
            f"{float(diffs.min()):.8g} to {float(diffs.max()):.8g}), so no transform fits them. "
            f"Resample onto a regular grid first, e.g. da.rio.reproject(da.rio.crs, "
            f"resolution=...) or da.interp({dim}=np.linspace(first, last, n)); a selection of "
            "evenly spaced pixels (da.isel(...=slice(None, None, 2))) stays regular."
        )
    return Axis(float(values[0]), step, int(values.size))


def _coordinate_values(da: Any, dim: str, what: str) -> np.ndarray:
    if dim not in getattr(da, "coords", {}):
        raise InputError(
            f"{what}: da has no {dim!r} coordinate (dims {dict(da.sizes)}); the grid comes from "
            f"the pixel-centre map coordinates: assign them, e.g. da.assign_coords({dim}=...)."
        )
    coord = da[dim]
    if coord.ndim != 1:
        raise InputError(
            f"{what}: da's {dim!r} coordinate is {coord.ndim}-D {coord.dims} (a curvilinear "
            "grid); reproject it onto a regular grid first, e.g. with da.rio.reproject(crs)."
        )
    if not np.issubdtype(coord.dtype, np.number):
        raise InputError(f"{what}: da's {dim!r} coordinates must be numbers (map units); got "
                         f"dtype {coord.dtype}.")
    values = np.asarray(coord.values, dtype=np.float64)
    if not np.isfinite(values).all():
        raise InputError(f"{what}: da's {dim!r} coordinates contain NaN or inf; every pixel "
                         "needs its map coordinate.")
    return values


def check_monotonic(da: Any, dim: str, *, what: str) -> None:
    """Refuse ``dim`` coordinates that repeat or turn back: pixels in a scrambled order.

    Numeric 1-D coordinates only; an array without them (pixel positions) passes. Unlike
    :func:`axis`, uneven steps pass too.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros((3, 2)), dims=("y", "x"), coords={"y": [0.0, 20.0, 10.0]})
    >>> check_monotonic(da, "y", what="predict")
    Traceback (most recent call last):
    ...
    xcalving.errors.InputError: predict: da's 'y' coordinates are not monotonic (they turn \
back after position 1: 20, 10); sort them first, e.g. da.sortby('y') (ascending or descending \
are both fine).
    """
    coord = getattr(da, "coords", {}).get(dim)
    if coord is None or coord.ndim != 1 or coord.size < 2 \
            or not np.issubdtype(coord.dtype, np.number):
        return
    values = np.asarray(coord.values, dtype=np.float64)
    _check_monotonic(values, np.diff(values), dim, what)


def _check_monotonic(values: np.ndarray, diffs: np.ndarray, dim: str, what: str) -> None:
    if (diffs == 0).any():
        k = int(np.argmax(diffs == 0))
        raise InputError(
            f"{what}: da's {dim!r} coordinates repeat ({values[k]:.12g} at positions {k} and "
            f"{k + 1}); a grid has one pixel per coordinate: drop the repeats, e.g. "
            f"da.drop_duplicates({dim!r}), then sort with da.sortby({dim!r})."
        )
    if not ((diffs > 0).all() or (diffs < 0).all()):
        k = int(np.argmax(np.sign(diffs) != np.sign(diffs[0])))
        raise InputError(
            f"{what}: da's {dim!r} coordinates are not monotonic (they turn back after "
            f"position {k}: {values[k]:.12g}, {values[k + 1]:.12g}); sort them first, e.g. "
            f"da.sortby({dim!r}) (ascending or descending are both fine)."
        )


def transform(da: xr.DataArray | xr.Dataset, *, what: str = "transform(da)") -> Affine:
    """The affine transform of ``da``'s grid, from its ``y``/``x`` coordinates.

    Coordinates are pixel centres; the transform's origin is the corner of the first pixel,
    so ``transform(da) * (col + 0.5, row + 0.5)`` is ``(x[col], y[row])``. Ascending or
    descending axes both work (the signs of the steps follow them). A cached GeoTransform is
    never read: it survives ``isel``, ``coarsen`` and ``sortby`` and is then wrong.

    Parameters
    ----------
    da
        DataArray or Dataset with 1-D, monotonic, evenly spaced ``y`` and ``x`` coordinates.
    what
        What needs the transform, named in the error messages.

    Returns
    -------
    affine.Affine

    Raises
    ------
    InputError
        As :func:`axis`, for ``y`` or ``x``.

    Examples
    --------
    >>> from xcalving.data.synthetic import glacier_cube
    >>> cube, _ = glacier_cube(1, shape=(64, 96), resolution=20.0, seed=0)
    >>> transform(cube) == cube.rio.transform()
    True
    >>> half = cube.isel(y=slice(None, None, 2), x=slice(None, None, 2))
    >>> tuple(transform(half))[:6]  # the first pixel's centre stays, its size doubles
    (40.0, 0.0, -2430010.0, 0.0, -40.0, 1300010.0)
    >>> tuple(transform(cube.sortby("y")))[4:6]
    (20.0, 1298720.0)
    """
    from affine import Affine  # heavy: affine, loaded on first use

    y = axis(da, "y", what=what)
    x = axis(da, "x", what=what)
    return Affine(x.step, 0.0, x.first - x.step / 2, 0.0, y.step, y.first - y.step / 2)


def metric_crs(crs: Any) -> bool:
    """Whether a CRS measures both axes in metres: projected, or a local engineering grid."""
    import pyproj  # heavy: pyproj, loaded on first use

    crs = pyproj.CRS.from_user_input(crs)
    if not (crs.is_projected or crs.is_engineering) or not crs.axis_info:
        return False
    return all(a.unit_name in ("metre", "meter") and a.unit_conversion_factor == 1.0
               for a in crs.axis_info)


def pixel_spacing(da: xr.DataArray | xr.Dataset, *, what: str = "pixel_spacing(da)") -> float:
    """Metres per pixel of ``da``'s regular, square grid, from its ``y``/``x`` coordinates.

    The one rule for a cube's pixel spacing: the coordinate step, which must be even along each
    axis and the same along both, in a projected CRS whose unit is the metre.

    Parameters
    ----------
    da
        DataArray or Dataset with ``y``/``x`` coordinates and a CRS (``spatial_ref``).
    what
        What needs the spacing, named in the error messages (e.g. ``"resolution="``).

    Raises
    ------
    InputError
        Where the spacing in metres cannot be known: no CRS or no ``y``/``x`` coordinates, a
        geographic CRS or one in other units, a single or uneven coordinate, non-square pixels.

    Examples
    --------
    >>> from xcalving.data.synthetic import glacier_cube
    >>> cube, _ = glacier_cube(1, shape=(64, 96), resolution=20.0, seed=0)
    >>> pixel_spacing(cube)
    20.0
    >>> pixel_spacing(cube.coarsen(y=2, x=2).mean())
    40.0
    """
    # heavy: rioxarray, loaded on first use
    import rioxarray  # noqa: F401  (registers .rio; a fresh process may not have imported it)

    crs = da.rio.crs
    if crs is not None and not metric_crs(crs):
        kind = "geographic, in degrees" if crs.is_geographic else \
            f"unit: {crs.linear_units_factor[0] if crs.is_projected else 'unknown'}"
        raise InputError(
            f"{what} needs a projected grid in metres; da's CRS is {crs.to_string()!r} ({kind}). "
            "Reproject first, e.g. da.rio.reproject(da.rio.estimate_utm_crs()) (nearest "
            "resampling, the default, keeps zone classes) or a polar stereographic CRS such as "
            "'EPSG:3413' (Arctic) or 'EPSG:3031' (Antarctic)."
        )
    if crs is None or "y" not in da.coords or "x" not in da.coords:
        raise InputError(
            f"{what} needs da's pixel spacing in metres, but da has no CRS with y/x "
            "coordinates: write them (da.rio.write_crs(...), coordinates in metres)."
        )
    steps = [abs(axis(da, dim, what=what).step) for dim in ("y", "x")]
    if not np.isclose(steps[0], steps[1], rtol=1e-3):
        raise InputError(f"{what}: da's pixels are not square (y {steps[0]:g} m, x {steps[1]:g} "
                         "m); resample to square pixels first, e.g. "
                         "da.rio.reproject(da.rio.crs, resolution=...).")
    return steps[1]


# --- comparing grids -----------------------------------------------------------------------------
def attrs_spacing(obj: Any) -> float | None:
    """The spacing of a cube without a CRS: its ``pixel_spacing`` attribute in metres, or None.

    The one fallback where coordinates are pixels (CaFFe scenes, synthetic cubes): fronts,
    fine-tuning and their lengths use it; a cube with a CRS uses :func:`pixel_spacing`.

    Examples
    --------
    >>> import xarray as xr
    >>> attrs_spacing(xr.Dataset(attrs={"pixel_spacing": 6})), attrs_spacing(xr.Dataset())
    (6.0, None)
    """
    spacing = obj.attrs.get("pixel_spacing")
    return float(spacing) if isinstance(spacing, int | float) else None


def _grid_of(a: Any) -> tuple[np.ndarray, np.ndarray, str | None] | None:
    """(y, x, CRS WKT) of an xarray object with y/x coordinates; None for plain arrays."""
    coords = getattr(a, "coords", None)
    if coords is None or "x" not in coords or "y" not in coords:
        return None
    attrs = coords["spatial_ref"].attrs if "spatial_ref" in coords else {}
    wkt = attrs.get("crs_wkt") or attrs.get("spatial_ref")
    return np.asarray(coords["y"].values), np.asarray(coords["x"].values), wkt


def _same_crs(a: str | None, b: str | None) -> bool:
    """Equal CRS, or one unknown; WKT spellings of one CRS count as equal."""
    if a is None or b is None or a == b:
        return True
    import pyproj  # heavy: pyproj, loaded on first use

    return bool(pyproj.CRS.from_user_input(a) == pyproj.CRS.from_user_input(b))


def _grid_difference(a: Any, b: Any, names: tuple[str, str]) -> str | None:
    """Why ``a`` and ``b`` are not on one grid, as an error message; None if they are."""
    ga, gb = _grid_of(a), _grid_of(b)
    if ga is None or gb is None:
        return None
    first, second = names
    if not _same_crs(ga[2], gb[2]):
        return (f"{first} and {second} are in different CRS; reproject one onto the other's "
                f"grid first, e.g. {first}.rio.reproject_match({second}).")
    for dim, u, v in (("y", ga[0], gb[0]), ("x", ga[1], gb[1])):
        scale = max(1.0, float(np.abs(v).max(initial=0.0)))
        if u.shape != v.shape or not np.allclose(u, v, rtol=0, atol=1e-6 * scale):
            return (f"{first} and {second} are not on the same grid: their {dim} coordinates "
                    f"differ ({u[:1].tolist()}… vs {v[:1].tolist()}…). Compare rasters on one "
                    f"grid: select the common area with .sel() or use "
                    f"{first}.rio.reproject_match({second}).")
    return None


def same_grid(a: Any, b: Any) -> bool:
    """Whether two rasters share one grid: equal ``y``/``x`` coordinates and CRS.

    Compared by coordinates, never by array position or a cached transform. Plain arrays
    (without ``y``/``x`` coordinates) and a missing CRS on either side are not held against
    them.

    Examples
    --------
    >>> from xcalving.data.synthetic import glacier_cube
    >>> cube, _ = glacier_cube(1, shape=(64, 64), seed=0)
    >>> same_grid(cube.sar, cube.zones)
    True
    >>> same_grid(cube.sar, cube.sar.sortby("y"))
    False
    """
    return _grid_difference(a, b, ("a", "b")) is None


def check_same_grid(a: Any, b: Any, *, names: tuple[str, str] = ("a", "b")) -> None:
    """Raise :class:`~xcalving.errors.InputError` unless :func:`same_grid` holds.

    ``names`` are the arguments' names, for the message (e.g. ``("pred", "true")``).

    Examples
    --------
    >>> from xcalving.data.synthetic import glacier_cube
    >>> cube, _ = glacier_cube(1, shape=(64, 64), seed=0)
    >>> check_same_grid(cube.sar, cube.sar.isel(x=slice(1, None)),
    ...                 names=("pred", "true"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    xcalving.errors.InputError: pred and true are not on the same grid: their x coordinates ...
    """
    message = _grid_difference(a, b, names)
    if message is not None:
        raise InputError(message)


def refresh_transform(obj: Any) -> Any:
    """``obj`` with its ``spatial_ref`` GeoTransform derived again from its coordinates.

    A cached GeoTransform survives ``isel``, ``coarsen`` and ``sortby`` unchanged, and GDAL or
    QGIS reading a store written with it would place the data wrong. Where the coordinates are
    not a regular grid the cached one is dropped; without ``spatial_ref`` ``obj`` is returned.

    Examples
    --------
    >>> from xcalving.data.synthetic import glacier_cube
    >>> cube, _ = glacier_cube(1, shape=(64, 64), resolution=20.0, seed=0)
    >>> coarse = cube.sar.coarsen(y=2, x=2).mean()
    >>> coarse.spatial_ref.attrs["GeoTransform"].split()[1]  # stale: still 20 m
    '20.0'
    >>> refresh_transform(coarse).spatial_ref.attrs["GeoTransform"].split()[1]
    '40.0'
    """
    if "spatial_ref" not in getattr(obj, "coords", {}):
        return obj
    ref = obj["spatial_ref"].variable.copy(deep=False)
    attrs = {k: v for k, v in ref.attrs.items() if k != "GeoTransform"}
    try:
        attrs["GeoTransform"] = " ".join(str(v) for v in transform(obj).to_gdal())
    except InputError:  # no regular grid: no transform is right
        pass
    ref.attrs = attrs
    return obj.assign_coords(spatial_ref=ref)
