"""Bad inputs of the trustworthy-outputs rules: grids, CRS, masks, values, writes, models.

Rows of the bad-input matrix (``tests/whole/test_bad_inputs.py`` runs and renders them); kept apart
because they are many. ``cases(Case)`` builds them with the matrix's own row type.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr


# --- inputs ---------------------------------------------------------------------------------------
def _front(offset: float = 0.0, crs: int | None = 32624) -> xr.DataArray:
    values = np.zeros((16, 16), bool)
    values[:, 8] = True
    coords = {"y": 1000.0 - 20.0 * np.arange(16), "x": offset + 20.0 * np.arange(16)}
    da = xr.DataArray(values, dims=("y", "x"), coords=coords)
    if crs is not None:
        import pyproj

        da = da.assign_coords(spatial_ref=xr.DataArray(
            0, attrs={"crs_wkt": pyproj.CRS.from_epsg(crs).to_wkt()}))
    return da


def _lines(crs: str | int, n: int = 1):
    import geopandas as gpd
    import pandas as pd
    import shapely

    index = pd.date_range("2020-01-01", periods=n, name="time")
    return gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (100, 0)])] * n, index=index,
                            crs=crs)


def _box(crs: str | int | None = 32624, n: int = 1):
    import geopandas as gpd
    import shapely

    return gpd.GeoSeries([shapely.box(0, -50, 200, 50)] * n, crs=crs)


def _mde(pred, true, **kwargs):
    from xcalving.metrics import mean_distance_error

    return mean_distance_error(pred, true, **kwargs)


def _dice(pred, true):
    from xcalving.metrics import dice

    return dice(pred, true)


def _iou(pred, true):
    from xcalving.metrics import zone_iou

    return zone_iou(pred, true)


def _change(fronts, box):
    from xcalving.vector import terminus_change

    return terminus_change(fronts, box)


def _probability(_tmp: Path) -> np.ndarray:
    return np.linspace(0.0, 0.9, 256).reshape(16, 16)


def cases(Case) -> list:  # noqa: N803  (the row class of the matrix)
    """The rows, built with ``Case(id, area, what, error, builtin, match, run)``."""
    mask = _front().values
    return [
        Case("mde-probability", "metrics", "a probability map passed as a front mask",
             "InputError", "ValueError", r"probability map.*threshold it",
             lambda t: _mde(_probability(t), mask)),
        Case("mde-grey-255", "metrics", "a CaFFe front PNG's 0/255 values as a mask",
             "InputError", "ValueError", r"front mask \(bool or 0/1\).*== 255",
             lambda t: _mde(mask * 255, mask)),
        Case("mde-negative-resolution", "metrics", "``resolution=-20``", "InputError",
             "ValueError", r"resolution must be the pixel spacing, a number > 0",
             lambda t: _mde(mask, mask, resolution=-20.0)),
        Case("mde-nan-resolution", "metrics", "``resolution=nan``", "InputError",
             "ValueError", r"resolution must be the pixel spacing",
             lambda t: _mde(mask, mask, resolution=float("nan"))),
        Case("mde-offset-grid", "metrics", "prediction and truth on grids offset by one pixel",
             "InputError", "ValueError", r"not on the same grid: their x coordinates differ",
             lambda t: _mde(_front(offset=20.0), _front())),
        Case("mde-raster-crs", "metrics", "prediction and truth rasters in different CRS",
             "InputError", "ValueError", r"different CRS.*reproject_match",
             lambda t: _mde(_front(crs=32623), _front())),
        Case("mde-vector-crs", "metrics", "front lines in two different CRS", "InputError",
             "ValueError", r"different CRS.*to_crs",
             lambda t: _mde(_lines(32624), _lines(3413), resolution=20.0)),
        Case("mde-vector-geographic", "metrics", "front lines in lon/lat", "InputError",
             "ValueError", r"geographic CRS.*metric CRS",
             lambda t: _mde(_lines(4326), _lines(4326), resolution=20.0)),
        Case("mde-vector-zero-resolution", "metrics", "vector MDE with ``resolution=0``",
             "InputError", "ValueError", r"resolution must be the pixel spacing",
             lambda t: _mde(_lines(32624), _lines(32624), resolution=0)),
        Case("mde-mixed", "metrics", "one GeoDataFrame and one raster", "InputError",
             "ValueError", r"both be GeoDataFrames of front lines, or both rasters",
             lambda t: _mde(_lines(32624), mask, resolution=20.0)),
        Case("dice-probability", "metrics", "``dice`` of a probability map", "InputError",
             "ValueError", r"probability map", lambda t: _dice(_probability(t), mask)),
        Case("iou-offset-grid", "metrics", "``zone_iou`` of zone rasters on offset grids",
             "InputError", "ValueError", r"not on the same grid",
             lambda t: _iou(_front(offset=20.0).astype(np.uint8),
                            _front().astype(np.uint8))),
        Case("change-geographic", "change", "``terminus_change`` of fronts in lon/lat",
             "InputError", "ValueError", r"geographic CRS.*Reproject",
             lambda t: _change(_lines(4326), _box(4326))),
        Case("change-box-crs", "change", "a box in another CRS than the fronts", "InputError",
             "ValueError", r"box is in .* reproject the box",
             lambda t: _change(_lines(32624), _box(3413))),
        Case("change-two-boxes", "change", "a GeoSeries of two boxes", "InputError",
             "ValueError", r"exactly one polygon",
             lambda t: _change(_lines(32624), _box(32624, n=2))),
    ]
