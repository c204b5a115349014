"""open_scenes: per-date GeoTIFFs → one lazy (time, y, x) cube on one grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyproj
import pytest
from bad_inputs_scenes import cases, write_scene

import xcalving
from xcalving.errors import InputError
from xcalving.grid import pixel_spacing, transform
from xcalving.io.scenes import is_scene_path, open_scenes

ORIGIN = (500_000.0, 7_000_000.0)


def _db(n: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(-12.0, 4.0, (n, n)).astype(np.float32)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """A 64 px scene at 20 m and a 32 px scene at 40 m, offset by 320 m east and south."""
    fine, coarse = _db(64, 1), _db(32, 2)
    paths = [write_scene(tmp_path / "S1_2020-01-17.tif", coarse, spacing=40.0,
                         origin=(ORIGIN[0] + 320, ORIGIN[1] - 320), tags={"units": "dB"}),
             write_scene(tmp_path / "S1_2020-01-05.tif", fine, tags={"units": "dB"})]
    return paths, fine, coarse


# --- the grid ------------------------------------------------------------------------------------
def test_union_grid_finest_spacing_and_values(pair) -> None:
    paths, fine, coarse = pair
    da = open_scenes(paths)
    assert da.dims == ("time", "y", "x") and da.dtype == np.float32
    assert pixel_spacing(da) == 20.0 and da.rio.crs.to_epsg() == 32624
    # union: from the fine scene's corner to the coarse scene's far corner (320 + 1280 m)
    assert tuple(transform(da))[:6] == (20.0, 0.0, ORIGIN[0], 0.0, -20.0, ORIGIN[1])
    assert da.shape == (2, 80, 80)
    assert da.time.dt.day.values.tolist() == [5, 17]  # sorted by date, not by the list
    assert da.source.values.tolist() == ["S1_2020-01-05.tif", "S1_2020-01-17.tif"]
    values = da.values
    np.testing.assert_array_equal(values[0, :64, :64], fine)  # same grid: copied unchanged
    assert np.isnan(values[0, 64:, :]).all() and np.isnan(values[0, :, 64:]).all()
    up = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)  # nearest: each 40 m pixel 2 × 2
    np.testing.assert_array_equal(values[1, 16:, 16:], up)
    assert np.isnan(values[1, :16, :]).all() and np.isnan(values[1, :, :16]).all()


def test_overrides_resolution_bounds_crs(pair) -> None:
    paths, _, coarse = pair
    da = open_scenes(paths, resolution=40.0, bounds=(ORIGIN[0] + 330, ORIGIN[1] - 1000,
                                                     ORIGIN[0] + 1000, ORIGIN[1] - 330))
    assert pixel_spacing(da) == 40.0
    # snapped outwards onto the fine scene's pixel corners
    assert tuple(transform(da))[2::3][:2] == (ORIGIN[0] + 320, ORIGIN[1] - 320)
    assert da.shape == (2, 17, 17)
    np.testing.assert_array_equal(da.values[1], coarse[:17, :17])
    moved = open_scenes(paths, crs="EPSG:32625")
    assert moved.rio.crs.to_epsg() == 32625 and pixel_spacing(moved) == 20.0
    assert np.isfinite(moved.values).mean() > 0.3


def test_scene_in_another_utm_zone(tmp_path: Path) -> None:
    write_scene(tmp_path / "a_2020-01-05.tif", _db(64, 1), tags={"units": "dB"})
    to_25 = pyproj.Transformer.from_crs(32624, 32625, always_xy=True)
    x, y = (round(v / 20) * 20 for v in to_25.transform(*ORIGIN))
    write_scene(tmp_path / "b_2020-01-17.tif", _db(64, 2), crs="EPSG:32625", origin=(x, y),
                tags={"units": "dB"})
    da = open_scenes(str(tmp_path / "*.tif"))
    assert da.rio.crs.to_epsg() == 32624 and pixel_spacing(da) == 20.0
    # zone 25's grid is rotated against zone 24's: the union is larger than 64 × 64
    assert min(da.shape[1:]) > 64
    valid = np.isfinite(da.values).mean(axis=(1, 2))
    assert (valid > 0.5).all() and (valid < 1).all()


def test_nodata_is_nan(tmp_path: Path) -> None:
    values = _db()
    values[:4, :4] = -9999.0
    da = open_scenes(write_scene(tmp_path / "s_2020-01-05.tif", values, nodata=-9999.0))
    assert np.isnan(da.values[0, :4, :4]).all() and np.isfinite(da.values[0, 4:, 4:]).all()


# --- laziness ------------------------------------------------------------------------------------
def test_opening_reads_no_pixels(pair, monkeypatch) -> None:
    import dask
    import rasterio

    reads: list[int] = []
    read = rasterio.io.DatasetReader.read
    monkeypatch.setattr(rasterio.io.DatasetReader, "read",
                        lambda self, *a, **k: reads.append(1) or read(self, *a, **k))
    computes: list[int] = []

    def counting(dsk, keys, **kwargs):
        computes.append(1)
        return dask.get(dsk, keys, **kwargs)

    with dask.config.set(scheduler=counting):
        da = open_scenes(pair[0], duplicates="mean", resampling="bilinear")
        assert reads == [] and computes == []
        assert da.chunks is not None
        values = da.values
    assert reads and computes == [1] and np.isfinite(values).any()


def test_chunks(pair) -> None:
    da = open_scenes(pair[0], chunks={"y": 32, "x": 48})
    assert da.chunks == ((1, 1), (32, 32, 16), (48, 32))
    with pytest.raises(InputError, match="chunks may set 'y' and 'x'"):
        open_scenes(pair[0], chunks={"time": 2})


# --- dates ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "expected"), [
    ("S1_2020-01-05.tif", "2020-01-05T00:00:00"),
    ("S1_2020_01_05_HH.tif", "2020-01-05T00:00:00"),
    ("S1A_IW_GRDH_1SDH_20200105T081234_20200105T081259_030674.tif", "2020-01-05T08:12:34"),
    ("orbit_12345678_20200105.tif", "2020-01-05T00:00:00"),  # 8 digits that are no date
])
def test_date_from_name(tmp_path: Path, name: str, expected: str) -> None:
    da = open_scenes(write_scene(tmp_path / name))
    assert str(da.time.values[0])[:19] == expected


def test_date_from_tag_and_times(tmp_path: Path) -> None:
    tagged = write_scene(tmp_path / "scene_a.tif", tags={"TIFFTAG_DATETIME": "2021:03:04 05:06:07"})
    assert str(open_scenes(tagged).time.values[0])[:19] == "2021-03-04T05:06:07"
    named = write_scene(tmp_path / "scene_b_2020-01-05.tif")
    da = open_scenes([tagged, named], times=["2022-01-02", "2022-01-01"])
    assert da.source.values.tolist() == ["scene_b_2020-01-05.tif", "scene_a.tif"]
    with pytest.raises(InputError, match="2 dates for 1 files"):
        open_scenes(named, times=["2020-01-01", "2020-01-02"])


def test_duplicates(tmp_path: Path) -> None:
    left, right = np.full((64, 64), -10.0), np.full((64, 64), -20.0)
    left[:, 40:] = np.nan
    paths = [write_scene(tmp_path / "a_20200105.tif", left),
             write_scene(tmp_path / "b_2020-01-05.tif", right)]
    with pytest.raises(InputError, match="same date"):
        open_scenes(paths)
    first = open_scenes(paths, duplicates="first")
    assert first.sizes["time"] == 1 and first.source.values.tolist() == ["a_20200105.tif"]
    assert first.attrs["source_files"] == [str(paths[0])]
    mean = open_scenes(paths, duplicates="mean")
    assert mean.source.values.tolist() == ["a_20200105.tif+b_2020-01-05.tif"]
    np.testing.assert_array_equal(mean.values[0, :, 0], -15.0)
    np.testing.assert_array_equal(mean.values[0, :, 50], -20.0)  # a mosaic where one has data


# --- units and bands -----------------------------------------------------------------------------
def test_units_from_tags_and_descriptions(tmp_path: Path) -> None:
    tagged = write_scene(tmp_path / "a_2020-01-05.tif", tags={"units": "decibel"})
    assert open_scenes(tagged).attrs["units"] == "dB"
    described = write_scene(tmp_path / "b_2020-01-05.tif", descriptions=("gamma0 linear",))
    assert open_scenes(described).attrs["units"] == "linear"
    assert "units" not in open_scenes(write_scene(tmp_path / "c_2020-01-05.tif")).attrs
    with pytest.raises(InputError, match="different units"):
        open_scenes([tagged, write_scene(tmp_path / "d_2020-01-17.tif")])


def test_multiband_keeps_polarisation_labels(tmp_path: Path) -> None:
    import torch

    from xcalving.model import ASPPUNet

    stack = np.stack([_db(64, 1), _db(64, 2) - 8])
    paths = [write_scene(tmp_path / "a_2020-01-05.tif", stack, descriptions=("VV", "VH")),
             write_scene(tmp_path / "b_2020-01-17.tif", stack[::-1],
                         descriptions=("sigma0_vh", "sigma0_vv"))]
    da = open_scenes(paths)
    assert da.dims == ("time", "band", "y", "x") and da.band.values.tolist() == ["VV", "VH"]
    np.testing.assert_array_equal(da.sel(band="VV").values, stack[[0, 0]])
    torch.manual_seed(0)
    net = ASPPUNet(width=4).eval()
    ds = xcalving.predict(da, model=net, tile=64, overlap=16, scaling="db")
    assert ds.attrs["band"] == "VV"
    one = open_scenes(write_scene(tmp_path / "c_2020-01-05.tif", descriptions=("HH",)))
    assert one.dims == ("time", "y", "x") and one.attrs["band"] == "HH"
    with pytest.raises(InputError, match="different polarisations"):
        open_scenes([tmp_path / "c_2020-01-05.tif",
                     write_scene(tmp_path / "d_2020-01-17.tif", descriptions=("HV",))])


def test_is_scene_path() -> None:
    assert is_scene_path("s1/*.tif") and is_scene_path(Path("a.TIFF"))
    assert not is_scene_path("cube.zarr")


# --- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", cases(lambda *row: row), ids=lambda row: row[0])
def test_bad_inputs(case, tmp_path: Path) -> None:
    import builtins

    import xcalving.errors as errors

    _, _, _, error, builtin, match, run = case
    expected = getattr(errors, error, None) or getattr(builtins, error)
    with pytest.raises(expected, match=match) as info:
        run(tmp_path)
    assert isinstance(info.value, getattr(builtins, builtin))
    assert error == builtin or isinstance(info.value, errors.XcalvingError)


# --- end to end ----------------------------------------------------------------------------------
def test_open_scenes_then_predict(tmp_path: Path) -> None:
    import torch

    from xcalving.data.synthetic import glacier_cube
    from xcalving.model import ASPPUNet

    cube, _ = glacier_cube(3, shape=(96, 96), resolution=20.0, seed=1)
    for scene in cube.sar:
        scene.rio.to_raster(tmp_path / f"S1_{str(scene.time.values)[:10]}.tif")
    da = xcalving.open_scenes(str(tmp_path / "S1_*.tif"), chunks={"y": 64, "x": 64})
    np.testing.assert_array_equal(da.values, cube.sar.values)
    torch.manual_seed(0)
    ds = xcalving.predict(da, model=ASPPUNet(width=4).eval(), tile=64, overlap=16).compute()
    assert ds.front_probability.shape == (3, 96, 96)
    assert ds.rio.crs.to_epsg() == 3031
    valid = np.isfinite(cube.sar.values)
    assert np.isfinite(ds.front_probability.values[valid]).all()
