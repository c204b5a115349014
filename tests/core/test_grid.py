"""Grids come from coordinates: transforms, pixel spacing and fronts on any regular grid.

The true zones of a synthetic cube stand in for a prediction, so the fronts have a known
answer (the truth lines) whatever is done to the grid: flipped, decimated, coarsened,
reprojected. The old code read rioxarray's cached GeoTransform, which survives ``isel``,
``coarsen`` and ``sortby``: fronts landed kilometres away.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

import xcalving
from xcalving import grid
from xcalving.data.synthetic import glacier_cube
from xcalving.errors import InputError, XcalvingWarning
from xcalving.metrics import mean_distance_error

RESOLUTION = 25.0


@pytest.fixture(scope="module")
def synthetic():
    cube, truth = glacier_cube(2, shape=(192, 192), resolution=RESOLUTION, seed=7)
    prediction = cube[["zones"]].assign(front_probability=cube.front.astype(np.float32))
    return prediction, truth


def _on_pixel_centres(frame, ds) -> None:
    """Every vertex is the centre of a pixel of ``ds``: its coordinates are ds's coordinates."""
    for geometry in frame.geometry:
        xy = shapely.get_coordinates(geometry)
        for values, dim in ((xy[:, 0], "x"), (xy[:, 1], "y")):
            gap = np.abs(values[:, None] - ds[dim].values[None, :]).min(axis=1)
            assert gap.max() < 1e-6, f"vertices off the {dim} pixel centres by {gap.max()}"


VARIANTS = {
    "as-is": lambda ds: ds,
    "ascending-y": lambda ds: ds.sortby("y"),
    "descending-x": lambda ds: ds.sortby("x", ascending=False),
    "decimated": lambda ds: ds.isel(y=slice(None, None, 2), x=slice(None, None, 2)),
    "decimated-offset": lambda ds: ds.isel(y=slice(1, None, 2), x=slice(1, None, 2)),
    # max keeps zone classes (ocean wins); the one-pixel front stays thin
    "coarsened": lambda ds: ds.coarsen(y=2, x=2).max(),
}


@pytest.mark.parametrize("variant", VARIANTS, ids=list(VARIANTS))
def test_fronts_are_in_place_with_lengths_in_metres_on_any_regular_grid(synthetic, variant):
    prediction, truth = synthetic
    ds = VARIANTS[variant](prediction)
    spacing = grid.pixel_spacing(ds)
    assert spacing == pytest.approx(RESOLUTION * (2 if variant[:3] in ("dec", "coa") else 1))
    # decimating a one-pixel front raster breaks it into dots: there, zones only
    for method in ("zones",) if variant.startswith("decimated") else ("zones", "probability"):
        frame = xcalving.fronts(ds, method=method)
        result = mean_distance_error(frame, truth, resolution=spacing)
        assert result.n_scored == 2 and result.mde < spacing, (method, result)
        _on_pixel_centres(frame, ds)
        np.testing.assert_allclose(frame["length_m"], truth["length_m"], rtol=0.1)
        np.testing.assert_allclose(frame["length_m"], frame.geometry.length, rtol=1e-9)
        assert frame.attrs["min_length_px"] == pytest.approx(750.0 / spacing)


@pytest.mark.parametrize("crs", ["utm", "EPSG:3976"])
def test_reprojected_prediction_gives_fronts_in_the_new_crs(synthetic, crs):
    prediction, truth = synthetic
    target = prediction.rio.estimate_utm_crs() if crs == "utm" else crs
    ds = prediction[["zones"]].rio.reproject(target, nodata=0)  # nearest: classes stay classes
    spacing = grid.pixel_spacing(ds)
    assert spacing == pytest.approx(RESOLUTION, rel=0.05)
    frame = xcalving.fronts(ds)
    assert frame.crs == ds.rio.crs
    expected = truth.to_crs(frame.crs)
    result = mean_distance_error(frame, expected, resolution=spacing)
    assert result.n_scored == 2 and result.mde < 1.5 * spacing
    np.testing.assert_allclose(frame["length_m"], expected.geometry.length, rtol=0.1)


def test_a_stale_geotransform_is_never_read(synthetic):
    prediction, truth = synthetic
    wrong = Affine(20.0, 0.0, -2_400_000.0, 0.0, -20.0, 1_000_000.0)
    ds = prediction.rio.write_transform(wrong)
    assert ds.rio.transform().a == 20.0  # rioxarray mixes the stale cache in
    assert grid.transform(ds) == grid.transform(prediction) != wrong
    frame = xcalving.fronts(ds)
    assert mean_distance_error(frame, truth, resolution=RESOLUTION).mde < RESOLUTION


def test_dims_in_any_order_give_the_same_fronts(synthetic):
    prediction, _ = synthetic
    frame = xcalving.fronts(prediction)
    swapped = xcalving.fronts(prediction.transpose("x", "time", "y"))
    assert swapped.geometry.geom_equals(frame.geometry).all()


# --- the min-length rule in pixels of the actual spacing -----------------------------------------
def _straight_front(n: int, spacing: float) -> xr.Dataset:
    """Glacier on the left, ocean on the right: a straight front of ``n`` pixels."""
    zones = np.full((1, n, n), 2, np.uint8)
    zones[..., n // 2:] = 3
    coords = {"time": pd.to_datetime(["2020-01-01"]),
              "y": 8_000_000.0 - spacing * (np.arange(n) + 0.5),
              "x": 500_000.0 + spacing * (np.arange(n) + 0.5)}
    ds = xr.Dataset({"zones": (("time", "y", "x"), zones)}, coords=coords)
    return ds.rio.write_crs("EPSG:32624")


@pytest.mark.parametrize(
    ("spacing", "step", "kept"),
    [(10.0, 1, True), (9.0, 1, False), (10.0, 2, True), (9.0, 2, False)],
)
def test_the_750_m_rule_counts_pixels_of_the_actual_spacing(spacing, step, kept):
    ds = _straight_front(80, spacing).isel(y=slice(None, None, step), x=slice(None, None, step))
    frame = xcalving.fronts(ds)  # 80 pixels of 10 m (800 m) stay; of 9 m (720 m) go
    assert frame.attrs["min_length_px"] == pytest.approx(750.0 / (spacing * step))
    assert frame.geometry.iloc[0].is_empty is not kept
    if kept:
        assert frame["length_m"].iloc[0] == pytest.approx((80 // step - 1) * spacing * step)


def test_coarsened_front_keeps_its_length_in_metres():
    ds = _straight_front(80, 10.0)
    coarse = ds.coarsen(y=2, x=2).max()
    fine, rough = xcalving.fronts(ds), xcalving.fronts(coarse)
    assert rough["length_m"].iloc[0] == pytest.approx(fine["length_m"].iloc[0], rel=0.03)
    fine_x = shapely.get_coordinates(fine.geometry.iloc[0])[:, 0]
    rough_x = shapely.get_coordinates(rough.geometry.iloc[0])[:, 0]
    assert abs(rough_x.mean() - fine_x.mean()) <= 10.0  # within one fine pixel


# --- bad grids get a clear error ----------------------------------------------------------------
BAD_GRIDS = {
    "non-monotonic": (lambda ds: ds.isel(y=[0, 2, 1, *range(3, ds.sizes["y"])]),
                      r"'y' coordinates are not monotonic.*sortby\('y'\)"),
    "irregular": (lambda ds: ds.isel(x=[0, 1, 3, *range(4, ds.sizes["x"])]),
                  r"'x' coordinates are not evenly spaced.*reproject.*interp"),
    "duplicates": (lambda ds: ds.isel(y=[0, 0, *range(1, ds.sizes["y"])]),
                   r"'y' coordinates repeat.*drop_duplicates\('y'\)"),
    "single-row": (lambda ds: ds.isel(y=[0]), r"single 'y' coordinate.*at least two pixels"),
    "nan": (lambda ds: ds.assign_coords(x=ds.x.where(ds.x != ds.x[5])), r"'x'.*NaN"),
    "no-coordinates": (lambda ds: ds.drop_vars("x"), r"no 'x' coordinate.*assign_coords"),
}


@pytest.mark.parametrize("bad", BAD_GRIDS, ids=list(BAD_GRIDS))
def test_fronts_of_a_bad_grid_say_what_to_do(synthetic, bad):
    prediction, _ = synthetic
    change, match = BAD_GRIDS[bad]
    with pytest.raises(InputError, match=match) as info:
        xcalving.fronts(change(prediction))
    assert isinstance(info.value, ValueError) and str(info.value).startswith("fronts")


def test_curvilinear_coordinates_are_refused(synthetic):
    prediction, _ = synthetic
    ds = prediction.isel(time=0)
    ds = ds.assign_coords(x=(("y", "x"), np.broadcast_to(ds.x.values, (ds.sizes["y"],
                                                                      ds.sizes["x"]))))
    with pytest.raises(InputError, match=r"'x' coordinate is 2-D.*reproject"):
        grid.transform(ds)


def test_lon_lat_fronts_warn_with_the_reprojection_to_use():
    zones = np.full((1, 30, 30), 2, np.uint8)
    zones[..., 15:] = 3
    ds = xr.Dataset({"zones": (("time", "y", "x"), zones)},
                    coords={"time": pd.to_datetime(["2020-01-01"]),
                            "y": 70.0 - 0.01 * np.arange(30), "x": -50.0 + 0.01 * np.arange(30)})
    ds = ds.rio.write_crs("EPSG:4326")
    with pytest.warns(XcalvingWarning, match=r"geographic.*estimate_utm_crs\(\)"):
        frame = xcalving.fronts(ds)
    np.testing.assert_allclose(shapely.get_coordinates(frame.geometry.iloc[0])[:, 0], -49.85)
    with pytest.warns(XcalvingWarning, match=r"length_m is NaN.*reproject"):
        frame = xcalving.fronts(ds, min_length_px=3)
    assert np.isnan(frame["length_m"].iloc[0])


# --- transform, pixel spacing, same grid ---------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 40),
    first=st.floats(-3e6, 3e6, allow_nan=False),
    step=st.sampled_from([-30.0, -20.0, -0.5, 0.25, 10.0, 40.0]),
    start=st.integers(0, 5),
    stride=st.integers(1, 4),
)
def test_transform_maps_pixel_centres_to_the_coordinates(n, first, step, start, stride):
    coords = first + step * np.arange(n + start + stride * n)
    da = xr.DataArray(np.zeros((coords.size, 3)), dims=("y", "x"),
                      coords={"y": coords, "x": [0.0, 1.0, 2.0]})
    da = da.isel(y=slice(start, None, stride))
    t = grid.transform(da)
    _, ys = t * (np.full(da.sizes["y"], 0.5), np.arange(da.sizes["y"]) + 0.5)
    np.testing.assert_allclose(ys, da.y.values, rtol=0, atol=1e-6 * max(1.0, abs(first)))
    assert t.e == pytest.approx(step * stride)


def test_float32_coordinates_are_regular_despite_rounding():
    y = (1_300_000.0 - 20.0 * (np.arange(512) + 0.5)).astype(np.float32)
    da = xr.DataArray(np.zeros((512, 2)), dims=("y", "x"), coords={"y": y, "x": [0.5, 20.5]})
    assert grid.axis(da, "y").step == pytest.approx(-20.0, rel=1e-5)


def test_pixel_spacing_lives_in_grid_and_io_reexports_it(synthetic):
    from xcalving.grid import pixel_spacing

    prediction, _ = synthetic
    assert pixel_spacing is grid.pixel_spacing
    assert pixel_spacing(prediction.coarsen(y=4, x=4).mean()) == 4 * RESOLUTION
    with pytest.raises(InputError, match=r"not square.*reproject"):
        pixel_spacing(prediction.isel(x=slice(None, None, 2)))
    with pytest.raises(InputError, match=r"geographic.*estimate_utm_crs"):
        pixel_spacing(prediction.rio.write_crs("EPSG:4326"))


def test_same_grid_compares_coordinates_and_crs(synthetic):
    import pyproj

    prediction, _ = synthetic
    zones = prediction.zones
    assert grid.same_grid(zones, prediction.front_probability)
    assert not grid.same_grid(zones, zones.sortby("y"))
    assert not grid.same_grid(zones, zones.rio.write_crs("EPSG:3976"))
    # one CRS spelt in another WKT dialect is the same CRS
    wkt1 = pyproj.CRS.from_epsg(3031).to_wkt(version="WKT1_GDAL")
    respelt = zones.assign_coords(spatial_ref=zones.spatial_ref.assign_attrs(crs_wkt=wkt1))
    assert grid.same_grid(zones, respelt)
    with pytest.raises(InputError, match=r"pred and true are in different CRS.*reproject_match"):
        grid.check_same_grid(zones, zones.rio.write_crs("EPSG:3976"), names=("pred", "true"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert grid.same_grid(zones.values, zones)  # plain arrays carry no grid
