import warnings

import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr
from counting import CountingNet, network_calls

import xcalving
from xcalving.data.synthetic import glacier_cube
from xcalving.errors import InputError, XcalvingWarning
from xcalving.metrics import mean_distance_error
from xcalving.vector.tracing import front_from_probability, trace_lines
from xcalving.zones import front_from_zones


@pytest.fixture(scope="module")
def synthetic():
    return glacier_cube(5, shape=(200, 240), resolution=30.0, seed=21, freq="30D")


def test_caffe_post_processing_recovers_the_true_front_raster(synthetic):
    cube, _ = synthetic
    for k in range(cube.sizes["time"]):
        np.testing.assert_array_equal(front_from_zones(cube.zones[k].values),
                                      cube.front[k].values.astype(bool))


def test_post_processing_fills_gaps_and_drops_detached_ocean_and_short_pieces():
    zones = np.full((40, 40), 2, np.uint8)  # glacier
    zones[:, 20:] = 3  # ocean on the right: the front is column 20
    zones[10:13, 30:33] = 2  # an iceberg labelled glacier: a gap in the ocean, filled
    zones[5:8, 5:8] = 3  # a puddle of 'ocean' in the glacier: detached, becomes glacier
    front = front_from_zones(zones)
    assert front[:, 20].all() and front.sum() == 40
    shorter = front_from_zones(zones, min_pixels=40)  # the only piece has 40 pixels: dropped
    assert not shorter.any()
    assert front_from_zones(zones, min_pixels=39).sum() == 40


def test_trace_lines_orders_pixels_along_the_front():
    front = np.zeros((30, 30), bool)
    rows = np.arange(5, 25)
    cols = (10 + 3 * np.sin(rows / 4)).astype(int)
    front[rows, cols] = True
    front = front_from_probability(front.astype(float))  # skeleton of an 8-connected line
    (line,) = trace_lines(front)
    assert len(line) == front.sum()
    steps = np.abs(np.diff(line, axis=0)).max(axis=1)
    assert (steps == 1).all()  # consecutive vertices are 8-neighbours


def test_true_zones_to_fronts_to_mde_below_one_pixel(synthetic):
    cube, truth = synthetic
    frame = cube.calving.fronts()
    assert isinstance(frame.index, pd.DatetimeIndex) and frame.index.name == "time"
    assert "time" not in frame.columns and frame.crs.to_epsg() == 3031
    result = mean_distance_error(frame, truth, resolution=30.0)
    assert result.n_scored == 5 and result.n_no_front == 0
    assert result.mde < 30.0  # metres: below one pixel
    assert (frame["n_segments"] >= 1).all()
    np.testing.assert_allclose(frame["length_m"], frame.geometry.length, rtol=0.02)


def test_vertices_are_pixel_centres_in_map_coordinates(synthetic):
    cube, _ = synthetic
    frame = xcalving.fronts(cube.isel(time=[0]))
    coords = shapely.get_coordinates(frame.geometry.iloc[0])
    transform = cube.rio.transform()
    cols, rows = ~transform * (coords[:, 0], coords[:, 1])
    np.testing.assert_allclose(np.asarray(cols) % 1, 0.5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(rows) % 1, 0.5, atol=1e-6)
    front = cube.front[0].values.astype(bool)
    assert front[np.floor(rows).astype(int), np.floor(cols).astype(int)].all()


def test_probability_method_and_empty_scenes(synthetic):
    cube, truth = synthetic
    probability = cube.front.astype(np.float32).copy()
    probability[2] = 0.0  # no front on the third date
    pred = xr.Dataset({"front_probability": probability}).rio.write_crs(cube.rio.crs)
    pred = pred.rio.write_transform(cube.rio.transform())
    frame = pred.calving.fronts(method="probability")
    assert frame.geometry.iloc[2].is_empty and len(frame) == 5  # kept and counted, not dropped
    assert frame["n_segments"].iloc[2] == 0 and np.isnan(frame["mean_probability"].iloc[2])
    assert (frame["mean_probability"].drop(frame.index[2]) == 1.0).all()
    result = mean_distance_error(frame, truth, resolution=30.0)
    assert result.n_no_front == 1 and result.n_scored == 4 and result.mde < 30.0


def test_without_crs_coordinates_are_pixels_and_it_says_so():
    zones = np.full((1, 30, 30), 2, np.uint8)
    zones[:, :, 15:] = 3
    ds = xr.Dataset({"zones": (("time", "y", "x"), zones)},
                    coords={"time": pd.to_datetime(["2020-01-01"])})
    with pytest.warns(XcalvingWarning):
        frame = xcalving.fronts(ds)
    assert frame.crs is None and "pixel" in frame.attrs["georeference"]
    xs = shapely.get_coordinates(frame.geometry.iloc[0])[:, 0]
    np.testing.assert_allclose(xs, 15.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", XcalvingWarning)
        with pytest.raises(XcalvingWarning):
            xcalving.fronts(ds, min_length_px=3)  # only the CRS warning is left


def test_bad_input_names_the_problem(synthetic):
    cube, _ = synthetic
    with pytest.raises(InputError, match="front_probability"):
        cube.calving.fronts(method="probability")
    with pytest.raises(InputError, match="method"):
        cube.calving.fronts(method="edges")
    with pytest.raises(InputError, match="Dataset"):
        xcalving.fronts(cube.zones)


def test_front_map_draws_dates_and_a_scale_bar(synthetic, tmp_path):
    from xcalving.plot import front_map

    cube, _ = synthetic
    frame = cube.calving.fronts()
    ax = front_map(frame, cube.sar.isel(time=-1))
    assert len(ax.lines) >= len(frame)  # one line per front (+ the scale bar)
    assert any("km" in t.get_text() or " m" in t.get_text() for t in ax.texts)
    assert ax.get_xlabel() == "x [metre]"
    ax.figure.savefig(tmp_path / "map.png")
    assert (tmp_path / "map.png").stat().st_size > 10_000


def test_a_lon_lat_grid_gives_lines_but_no_lengths_in_degrees():
    """The spacing is the package's one rule (metres on a projected grid), not the transform's."""
    zones = np.full((1, 30, 30), 2, np.uint8)
    zones[:, :, 15:] = 3
    ds = xr.Dataset({"zones": (("time", "y", "x"), zones)},
                    coords={"time": pd.to_datetime(["2020-01-01"]),
                            "y": 70.0 - 0.01 * np.arange(30), "x": -50.0 + 0.01 * np.arange(30)})
    ds = ds.rio.write_crs("EPSG:4326")
    with pytest.warns(XcalvingWarning, match="projected grid in metres"):
        frame = xcalving.fronts(ds)
    assert not frame.geometry.iloc[0].is_empty and np.isnan(frame["length_m"].iloc[0])


# --- one pass ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lazy_prediction():
    cube, _ = glacier_cube(2, shape=(128, 128), seed=3)
    sar = cube.sar.chunk({"time": 1, "y": 64, "x": 64})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # chunks below a tile are merged: a PerformanceWarning
        return xcalving.predict(sar, CountingNet(), tile=64, overlap=16)


def test_fronts_runs_the_network_no_more_than_compute(lazy_prediction, tmp_path):
    pred = lazy_prediction
    computed = network_calls(pred.compute)
    assert computed > 0
    assert network_calls(lambda: xcalving.fronts(pred, min_length_px=0)) <= computed
    assert network_calls(lambda: xcalving.fronts(pred, method="probability", min_length_px=0)) \
        <= computed
    path = xcalving.write_cube(pred, tmp_path / "pred.zarr")
    stored = xcalving.open_cube(path)
    # read from the store, not recomputed
    assert network_calls(lambda: xcalving.fronts(stored, min_length_px=0)) == 0


def test_one_pass_gives_the_rows_of_the_computed_prediction(lazy_prediction):
    pred = lazy_prediction
    lazy = xcalving.fronts(pred, min_length_px=0)
    eager = xcalving.fronts(pred.compute(), min_length_px=0)
    pd.testing.assert_frame_equal(lazy.drop(columns="geometry"), eager.drop(columns="geometry"))
    assert lazy.geometry.geom_equals_exact(eager.geometry, tolerance=0).all()
    assert (lazy["model"] == pred.attrs["model"]).all()
    assert (lazy["model_sha256"] == pred.attrs["model_sha256"]).all()


# --- scene dims and columns ----------------------------------------------------------------------
def test_scene_dim_of_any_name_and_a_single_scene(synthetic):
    cube, _ = synthetic
    frame = cube.calving.fronts()
    dated = cube[["zones"]].rename(time="date").calving.fronts()
    assert dated.index.name == "date" and dated.index.equals(frame.index.rename("date"))
    assert dated.geometry.geom_equals(frame.geometry).all()
    one = cube.isel(time=2).calving.fronts()  # (y, x): the scalar time is the index
    assert one.index.name == "time" and one.index[0] == frame.index[2]
    assert one.geometry.iloc[0].equals(frame.geometry.iloc[2])
    bare = cube.isel(time=2).drop_vars("time").calving.fronts()
    assert bare.index.name == "time" and bare.index.isna().all()
    numbered = cube[["zones"]].rename(time="scene").drop_vars("scene").calving.fronts()
    assert list(numbered.index) == list(range(5)) and numbered.index.name == "scene"
    transposed = cube[["zones"]].transpose("x", "time", "y").calving.fronts()
    assert transposed.geometry.geom_equals(frame.geometry).all()


def _lists(n):
    values = np.empty(n, object)
    for k in range(n):
        values[k] = [0, k]
    return values


def test_scene_and_model_columns(synthetic):
    cube, _ = synthetic
    stems = np.array([f"scene_{k}" for k in range(5)], dtype=object)
    ds = cube[["zones"]].assign_coords(stem=("time", stems),
                                       satellite=("time", ["S1", "S1", "TSX", "S1", "ERS"]),
                                       orbit=("time", np.arange(5)), platform="sentinel-1a",
                                       bbox=("time", _lists(5)))  # lists: no column
    ds.attrs.update(model="demo", model_sha256="0" * 64, glacier="Synthetic", tile=512)
    frame = ds.calving.fronts()
    assert list(frame.columns) == ["geometry", "length_m", "length_px", "mean_probability",
                                   "n_segments", "n_pixels", "longest_share", "head_distance_px",
                                   "side_margin", "member_distance_px", "sinuosity",
                                   "neighbour_distance_px",
                                   "grid_id", "confidence", "outlier", "qc_reason", "stem",
                                   "satellite", "orbit", "platform", "glacier", "model",
                                   "model_sha256"]
    assert (frame["platform"] == "sentinel-1a").all()
    assert list(frame["stem"]) == list(stems) and frame["satellite"].iloc[2] == "TSX"
    assert (frame["model"] == "demo").all() and (frame["glacier"] == "Synthetic").all()
    one = ds.isel(time=1).calving.fronts()  # a single scene: its scalar coordinates
    assert one["stem"].iloc[0] == "scene_1" and one["orbit"].iloc[0] == 1
    assert "spatial_ref" not in one.columns


def test_dims_that_are_not_a_scene_stack_are_refused(synthetic):
    cube, _ = synthetic
    with pytest.raises(InputError, match=r"y, x: .*rename\(\{'lat': 'y', 'lon': 'x'\}\)"):
        cube[["zones"]].rename(y="lat", x="lon").calving.fronts()
    with pytest.raises(InputError, match=r"one scene dim of any name.*isel\(band=0\)"):
        cube[["zones"]].expand_dims(band=2).calving.fronts()


def test_an_empty_scene_stack_gives_an_empty_frame(synthetic):
    cube, _ = synthetic
    frame = cube.isel(time=[]).calving.fronts()
    assert len(frame) == 0 and frame.index.name == "time" and frame.crs == cube.rio.crs
