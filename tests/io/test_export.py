"""GeoTIFF export: each file reopened with rasterio must be the prediction, placed and decoded."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

import xcalving
from xcalving.cli import main
from xcalving.inference.execute import probability_encoding
from xcalving.io.export import scene_labels
from xcalving.zones import ZONE_NAMES


def _prediction(shape=(3, 300, 280), ascending_y=False) -> xr.Dataset:
    """A prediction with known values: probabilities packed as predict packs them, zones, NaN."""
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(shape[0], shape=shape[1:], resolution=20.0, seed=5)
    rng = np.random.default_rng(0)
    front = rng.random(shape, dtype=np.float32)
    front[:, :10, :10] = np.nan  # no data
    zone_prob = rng.random((shape[0], 4, *shape[1:]), dtype=np.float32)
    ds = xr.Dataset(
        {"front_probability": (("time", "y", "x"), front, {"units": "1"}),
         "zone_probability": (("time", "zone", "y", "x"), zone_prob),
         "zones": (("time", "y", "x"), cube.zones.values,
                   {"flag_values": [0, 1, 2, 3], "flag_meanings": " ".join(ZONE_NAMES)})},
        coords={**{k: cube[k] for k in ("time", "y", "x")},
                "zone": np.array(ZONE_NAMES, dtype=object)},
        attrs={"model": "demo", "model_sha256": "abc"},
    ).rio.write_crs(cube.rio.crs)
    for name in ("front_probability", "zone_probability"):
        ds[name].encoding = probability_encoding("uint8")
    return ds.sortby("y") if ascending_y else ds


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    pred = _prediction()
    store = xcalving.write_cube(pred, folder / "pred.zarr")
    files = xcalving.export_geotiffs(store, folder / "tifs")
    return pred, xcalving.open_cube(store), files, folder / "tifs"


def _file(files, name, k):
    """The file of scene ``k`` of variable ``name``."""
    return [f for f in files if f"/{name}/" in f][k]


def test_one_file_per_date_and_variable_named_by_date(exported):
    pred, _, files, out = exported
    days = [str(t)[:10] for t in pred.time.values]
    want = [f"{out}/{name}/{day}.tif" for name in pred.data_vars for day in days]
    assert sorted(files) == sorted(want) and all(rasterio.open(f).driver == "GTiff" for f in files)
    marker = json.loads((out / ".xcalving-output").read_text())
    assert marker["written_by"] == "xcalving export"
    assert sorted(p.name for p in out.parent.iterdir()) == ["pred.zarr", "tifs"]  # no leftovers


def test_files_are_cogs_on_the_cubes_grid_and_crs(exported):
    pred, _, files, _ = exported
    for path in files:
        with rasterio.open(path) as tif:
            assert tif.crs == pred.rio.crs and tif.crs.to_epsg() == 3031
            assert tif.transform == pred.rio.transform()
            assert (tif.width, tif.height) == (280, 300)
            assert tif.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert tif.profile["tiled"] and tif.block_shapes[0] == (256, 256)
            assert tif.overviews(1) == [2]  # a 300-px image gets one overview level
            assert tif.nodata is not None


def test_packed_probabilities_stay_packed_and_decode_to_the_values(exported):
    pred, stored, files, _ = exported
    with rasterio.open(_file(files, "front_probability", 1)) as tif:
        assert tif.dtypes == ("uint8",) and tif.nodata == 255
        assert tif.scales[0] == pytest.approx(1 / 254) and tif.offsets[0] == 0.0
        assert tif.descriptions == ("front_probability",)
        assert tif.tags()["time"] == str(pred.time.values[1])[:19]
        assert tif.tags()["model"] == "demo"
        raw = tif.read(1, masked=True)
        decoded = raw.astype(np.float64) * tif.scales[0] + tif.offsets[0]
    want = pred.front_probability.values[1]
    np.testing.assert_array_equal(raw.mask, np.isnan(want))
    assert np.abs(decoded - want).max() <= 1 / 508 + 1e-6
    np.testing.assert_allclose(decoded.filled(np.nan), stored.front_probability.values[1],
                               atol=1e-6)


def test_zone_probabilities_are_four_named_bands(exported):
    pred, _, files, _ = exported
    with rasterio.open(_file(files, "zone_probability", 0)) as tif:
        assert tif.count == 4
        assert tif.descriptions == tuple(f"zone_probability {n}" for n in ZONE_NAMES)
        decoded = tif.read().astype(np.float64) * tif.scales[0]
    assert np.abs(decoded - pred.zone_probability.values[0]).max() <= 1 / 508 + 1e-6


def test_zones_keep_their_codes_and_carry_a_colour_table(exported):
    from xcalving.zones import ZONE_COLOURS

    pred, _, files, _ = exported
    with rasterio.open(_file(files, "zones", 0)) as tif:
        assert tif.dtypes == ("uint8",) and tif.nodata == 0
        np.testing.assert_array_equal(tif.read(1), pred.zones.values[0])
        colours = tif.colormap(1)
        assert colours[0][3] == 0  # no data is transparent
        for code in (1, 2, 3):
            assert "#{:02x}{:02x}{:02x}".format(*colours[code][:3]) == ZONE_COLOURS[code]
        assert tif.tags()["flag_meanings"] == "no_data rock glacier ocean"


def test_rioxarray_reads_the_probabilities_back(exported):
    import rioxarray

    pred, _, files, _ = exported
    back = rioxarray.open_rasterio(_file(files, "front_probability", 0),
                                   mask_and_scale=True).squeeze("band")
    want = pred.front_probability.isel(time=0)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back.values, want.values, atol=1 / 508 + 1e-6)
    np.testing.assert_array_equal(back.y.values, want.y.values)


def test_an_ascending_grid_is_written_north_up(tmp_path):
    pred = _prediction((1, 64, 72), ascending_y=True)
    files = xcalving.export_geotiffs(pred, tmp_path / "tifs", variables=["zones"])
    with rasterio.open(files[0]) as tif:
        assert tif.transform.e < 0
        north_up = pred.sortby("y", ascending=False)
        assert tif.transform == north_up.rio.transform()
        np.testing.assert_array_equal(tif.read(1), north_up.zones.values[0])


def test_a_real_prediction_runs_the_network_once_for_all_its_files(tmp_path):
    from counting import CountingNet, network_calls

    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(2, shape=(64, 64), seed=0)
    pred = xcalving.predict(cube.sar.chunk({"time": 1}), CountingNet(), tile=64, overlap=16)
    once = network_calls(pred.compute)
    files = []
    assert network_calls(lambda: files.extend(
        xcalving.export_geotiffs(pred, tmp_path / "tifs"))) == once  # not once per file
    assert [f.split("tifs/")[1] for f in files] == [
        "front_probability/2019-01-01.tif", "front_probability/2019-01-13.tif",
        "zones/2019-01-01.tif", "zones/2019-01-13.tif"]
    with rasterio.open(files[2]) as tif:
        np.testing.assert_array_equal(tif.read(1), pred.zones.values[0])


def test_scene_labels_add_the_time_only_where_dates_clash():
    assert scene_labels(pd.to_datetime(["2020-01-05", "2020-02-05"])) == ["2020-01-05",
                                                                          "2020-02-05"]
    assert scene_labels(pd.to_datetime(["2020-01-05T06:01:02", "2020-01-06T00:00:00"])) == [
        "2020-01-05T060102", "2020-01-06T000000"]
    with pytest.raises(xcalving.InputError, match="two scenes have the time 2020-01-05"):
        scene_labels(pd.to_datetime(["2020-01-05", "2020-01-05"]))


def test_never_replaces_what_an_export_did_not_write(exported, tmp_path):
    pred, _, _, out = exported
    with pytest.raises(FileExistsError, match="already exists.*mode='w'"):
        xcalving.export_geotiffs(pred, out)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    with pytest.raises(xcalving.UnsafeTargetError):
        xcalving.export_geotiffs(pred, mine, mode="w")
    assert (mine / "thesis.tex").read_text() == "precious"
    again = xcalving.export_geotiffs(pred.isel(time=[0]), out, mode="w")
    assert len(again) == 3 and sorted(p.name for p in (out / "zones").iterdir()) == [
        f"{str(pred.time.values[0])[:10]}.tif"]


def test_cli_export_writes_the_store_and_refuses_a_target_inside_it(exported, tmp_path,
                                                                      capsys):
    _, stored, _, out = exported
    store = out.parent / "pred.zarr"
    assert main(["export", str(store), "--out", str(tmp_path / "tifs"),
                 "--variables", "zones"]) == 0
    printed = capsys.readouterr()
    assert "wrote 3 GeoTIFFs" in printed.out and "export" in printed.err  # one progress bar
    assert sorted(p.name for p in (tmp_path / "tifs").iterdir()) == [".xcalving-output",
                                                                     "zones"]
    assert main(["export", str(store), "--out", str(store / "tifs")]) == 1
    err = capsys.readouterr().err
    assert "--out:" in err and "lies inside the input" in err and len(err.splitlines()) == 1
    assert not (store / "tifs").exists()
