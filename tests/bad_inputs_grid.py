"""Bad inputs of the "grids come from coordinates" rule: transforms and pixel spacings.

Rows of the bad-input matrix (``tests/whole/test_bad_inputs.py`` runs and renders them); kept apart
like ``bad_inputs_trust.py``. ``cases(Case)`` builds them with the matrix's own row type.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr


# --- inputs ---------------------------------------------------------------------------------------
def _prediction(n: int = 16, crs: str | None = "EPSG:32624") -> xr.Dataset:
    """A one-date prediction: glacier on the left, ocean on the right, 20 m pixels."""
    zones = np.full((1, n, n), 2, np.uint8)
    zones[..., n // 2:] = 3
    coords = {"time": pd.to_datetime(["2020-01-01"]),
              "y": 8_000_000.0 - 20.0 * (np.arange(n) + 0.5),
              "x": 500_000.0 + 20.0 * (np.arange(n) + 0.5)}
    ds = xr.Dataset({"zones": (("time", "y", "x"), zones)}, coords=coords)
    return ds.rio.write_crs(crs) if crs else ds


def _fronts(ds: xr.Dataset):
    from xcalving.vector.api import fronts

    return fronts(ds)


def _transform(ds: xr.Dataset):
    from xcalving.grid import transform

    return transform(ds)


def _spacing(ds: xr.Dataset):
    from xcalving.grid import pixel_spacing

    return pixel_spacing(ds)


def _curvilinear() -> xr.Dataset:
    ds = _prediction()
    x2d = np.broadcast_to(ds.x.values, (ds.sizes["y"], ds.sizes["x"]))
    return ds.assign_coords(x=(("y", "x"), x2d))


def _nan_x() -> xr.Dataset:
    ds = _prediction()
    return ds.assign_coords(x=ds.x.where(ds.x != ds.x[3]))


def cases(Case) -> list:  # noqa: N803  (the row class of the matrix)
    """The rows, built with ``Case(id, area, what, error, builtin, match, run)``."""
    rest = list(range(3, 16))
    return [
        Case("fronts-non-monotonic-y", "grids",
             "``fronts`` of a prediction whose y coordinates go back and forth "
             "(``isel(y=[0, 2, 1, ...])``)", "InputError", "ValueError",
             r"'y' coordinates are not monotonic.*da.sortby\('y'\)",
             lambda t: _fronts(_prediction().isel(y=[0, 2, 1, *rest]))),
        Case("fronts-irregular-x", "grids",
             "``fronts`` of a prediction with unevenly spaced x coordinates (a column left out)",
             "InputError", "ValueError",
             r"'x' coordinates are not evenly spaced.*rio.reproject",
             lambda t: _fronts(_prediction().isel(x=[0, 1, *rest]))),
        Case("fronts-duplicate-y", "grids", "``fronts`` of a prediction with a repeated y row",
             "InputError", "ValueError", r"'y' coordinates repeat.*drop_duplicates\('y'\)",
             lambda t: _fronts(_prediction().isel(y=[0, 0, *range(1, 16)]))),
        Case("fronts-single-row", "grids", "``fronts`` of a prediction one pixel high",
             "InputError", "ValueError", r"single 'y' coordinate.*at least two pixels",
             lambda t: _fronts(_prediction().isel(y=[0]))),
        Case("fronts-nan-x", "grids", "``fronts`` of a prediction with a NaN x coordinate",
             "InputError", "ValueError", r"'x' coordinates contain NaN",
             lambda t: _fronts(_nan_x())),
        Case("fronts-no-x", "grids", "``fronts`` of a prediction with a CRS but no x coordinate",
             "InputError", "ValueError", r"no 'x' coordinate.*assign_coords",
             lambda t: _fronts(_prediction().drop_vars("x"))),
        Case("transform-curvilinear", "grids", "``transform`` of 2-D (curvilinear) x coordinates",
             "InputError", "ValueError", r"'x' coordinate is 2-D.*rio.reproject",
             lambda t: _transform(_curvilinear())),
        Case("spacing-not-square", "grids",
             "``pixel_spacing`` of 20 m × 40 m pixels (``isel(x=slice(None, None, 2))``)",
             "InputError", "ValueError", r"pixels are not square.*resample to square pixels",
             lambda t: _spacing(_prediction().isel(x=slice(None, None, 2)))),
        Case("spacing-geographic", "grids", "``pixel_spacing`` of a lon/lat grid",
             "InputError", "ValueError",
             r"projected grid in metres.*geographic.*rio.estimate_utm_crs\(\)",
             lambda t: _spacing(_prediction(crs="EPSG:4326"))),
        Case("spacing-feet", "grids", "``pixel_spacing`` of a grid in US survey feet",
             "InputError", "ValueError", r"projected grid in metres.*foot",
             lambda t: _spacing(_prediction(crs="EPSG:2263"))),
    ]
