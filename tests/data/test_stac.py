"""Data in the wild: STAC cubes over local COGs, resolution=, lazy reads from fsspec stores."""

import numpy as np
import pytest
import xarray as xr

import xcalving
from xcalving.errors import InputError
from xcalving.metrics import mean_distance_error

stackstac = pytest.importorskip("stackstac")
odc_stac = pytest.importorskip("odc.stac")
pytest.importorskip("pystac")

from xcalving.data.stac import write_s1_rtc_items  # noqa: E402

RES = 40.0  # metres: twice the spacing the 'demo' weights were trained at


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """Three dates of a synthetic Sentinel-1 RTC catalogue (HH + HV COGs) at 40 m."""
    return write_s1_rtc_items(tmp_path_factory.mktemp("stac"), 3, shape=(128, 128),
                              resolution=RES, seed=1000)


@pytest.fixture(scope="module")
def truth_db(catalogue):
    """The same scenes in dB straight from the generator, for comparison."""
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(3, shape=(128, 128), resolution=RES, seed=1000)
    return cube.sar.assign_attrs(units="dB")


def test_stackstac_cube_predicts_straight_away(catalogue, truth_db):
    items, _ = catalogue
    da = stackstac.stack(items, assets=["hh", "hv"], xy_coords="center")
    assert da.dims == ("time", "band", "y", "x")
    out = da.calving.predict("demo", tile=64, overlap=16)
    # HH chosen by the polarisation rule; linear gamma0 recognised from sar:product_type = RTC
    assert out.attrs["band"] == "hh"
    assert out.attrs["input_scaling"] == "linear"
    assert out.rio.crs.to_epsg() == 3031
    assert out.front_probability.dims == ("time", "y", "x")
    np.testing.assert_array_equal(out.x.values, truth_db.x.values)
    np.testing.assert_array_equal(out.y.values, truth_db.y.values)
    ref = truth_db.calving.predict("demo", tile=64, overlap=16).front_probability.values
    # float32 COGs of 10**(dB/10) converted back to dB: the same up to rounding
    np.testing.assert_allclose(out.front_probability.values, ref, atol=1e-3, equal_nan=True)


def test_odc_stac_dataset_predicts_on_hh(catalogue):
    items, _ = catalogue
    ds = odc_stac.load(items, bands=["hh", "hv"], chunks={})
    with pytest.raises(InputError, match="scaling='linear'"):
        ds.calving.predict("demo", tile=64, overlap=16)  # odc-stac keeps no sar:product_type
    out = ds.calving.predict("demo", tile=64, overlap=16, scaling="linear")
    assert out.attrs["band"] == "hh"
    assert out.rio.crs.to_epsg() == 3031
    stacked = stackstac.stack(items, assets=["hh"], xy_coords="center")
    ref = stacked.calving.predict("demo", tile=64, overlap=16).front_probability
    np.testing.assert_allclose(out.front_probability.values, ref.values, atol=1e-6,
                               equal_nan=True)


@pytest.mark.parametrize(("bands", "expected"), [
    (["HH", "HV"], "HH"), (["vh", "vv"], "vv"), (["hh", "vv"], "hh"),
])
def test_polarisation_rule(bands, expected):
    da = xr.DataArray(np.ones((len(bands), 32, 32), np.float32), dims=("band", "y", "x"),
                      coords={"band": bands}, attrs={"units": "dB"})
    from xcalving.model import ASPPUNet

    out = da.calving.predict(ASPPUNet(width=4).eval(), tile=32, overlap=8)
    assert out.attrs["band"] == expected


def test_cross_polarised_only_is_refused_and_other_bands_are_ambiguous():
    from xcalving.model import ASPPUNet

    net = ASPPUNet(width=4).eval()
    cross = xr.DataArray(np.ones((2, 32, 32), np.float32), dims=("band", "y", "x"),
                         coords={"band": ["hv", "vh"]}, attrs={"units": "dB"})
    with pytest.raises(InputError, match="cross-polarised"):
        cross.calving.predict(net, tile=32, overlap=8)
    other = cross.assign_coords(band=["b1", "b2"])
    with pytest.raises(InputError, match="band="):
        other.calving.predict(net, tile=32, overlap=8)


def test_resolution_model_runs_at_the_model_spacing_and_returns_the_input_grid(catalogue):
    """On a 40 m cube, resolution='model' runs the 20 m 'demo' weights at 20 m, output on 40 m."""
    items, fronts = catalogue
    da = stackstac.stack(items, assets=["hh"], xy_coords="center")
    # tile 256 at 20 m covers what the weights saw in training: 5 km of fjord
    native = da.calving.predict("demo", tile=256, overlap=64).compute()
    resampled = da.calving.predict("demo", tile=256, overlap=64, resolution="model").compute()
    assert resampled.attrs["resolution"] == 20.0 and resampled.attrs["input_resolution"] == RES
    # the output is on the input grid either way
    assert resampled.front_probability.shape == native.front_probability.shape
    np.testing.assert_array_equal(resampled.x.values, da.x.values)
    assert float(resampled.front_probability.min()) >= 0
    assert float(resampled.front_probability.max()) <= 1
    # swath-edge no-data stays no-data, on the input grid
    nodata = np.isnan(da.isel(band=0).values)
    assert nodata.any()
    np.testing.assert_array_equal(np.isnan(resampled.front_probability.values), nodata)
    assert (resampled.zones.values[nodata] == 0).all()
    got = mean_distance_error(resampled.calving.fronts(), fronts, resolution=RES)
    base = mean_distance_error(native.calving.fronts(), fronts, resolution=RES)
    print(f"native: {base}, resolution='model': {got}")
    # the demo weights learnt fjords of many sizes in pixels: they hold on the native grid too
    # (measured: 103 m, 2.6 px; resampled to 20 m: 415 m with one date missed)
    assert base.n_no_front == 0 and base.mde < 3.0 * RES
    assert got.n_scored > 0


def test_resolution_is_lazy_and_numbers_do_not_depend_on_chunks(truth_db):
    import dask

    from tests.inference.test_predict import ComputeCounter

    counter = ComputeCounter()
    with dask.config.set(scheduler=counter):
        truth_db.chunk({"time": 1}).calving.predict("demo", tile=64, overlap=16,
                                                    resolution=20.0)
    assert counter.count == 0
    one = truth_db.chunk({"time": 1}).calving.predict("demo", tile=64, overlap=16,
                                                      resolution=20.0)
    many = truth_db.chunk({"time": 1, "y": 64, "x": 64}).calving.predict(
        "demo", tile=64, overlap=16, resolution=20.0)
    np.testing.assert_allclose(one.front_probability.values, many.front_probability.values,
                               atol=1e-5, equal_nan=True)


def test_resolution_equal_to_the_input_changes_nothing(truth_db):
    plain = truth_db.calving.predict("demo", tile=64, overlap=16)
    same = truth_db.calving.predict("demo", tile=64, overlap=16, resolution=RES)
    assert "resolution" not in same.attrs
    np.testing.assert_array_equal(plain.front_probability.values, same.front_probability.values)


@pytest.mark.parametrize(("change", "resolution", "match"), [
    (lambda da: da, "model-ish", "None, 'model' or a number"),
    (lambda da: da, -5.0, "positive"),
    (lambda da: da, "model", "do not state the pixel spacing"),  # a file without a spacing
    (lambda da: da.drop_vars("spatial_ref").assign_coords(y=np.arange(da.sizes["y"]),
                                                          x=np.arange(da.sizes["x"])),
     20.0, "no CRS"),
    (lambda da: da.rio.write_crs("EPSG:4326"), 20.0, "projected grid"),
])
def test_bad_resolution(truth_db, change, resolution, match, tmp_path):
    model = "demo"
    if resolution == "model":  # weights that state no spacing cannot run "at their spacing"
        import torch

        from xcalving.model import ASPPUNet, save_model

        torch.manual_seed(0)
        model = str(save_model(ASPPUNet(width=4).eval(), tmp_path / "unspaced.safetensors"))
    with pytest.raises(InputError, match=match):
        change(truth_db).calving.predict(model, tile=64, overlap=16, resolution=resolution)


def test_cloud_store_is_read_lazily(truth_db):
    """An fsspec store (memory://, as s3:// or gs:// behave): nothing is read before compute."""
    from fsspec.implementations.memory import MemoryFileSystem

    cube = truth_db.to_dataset(name="sar").chunk({"time": 1})
    url = xcalving.write_cube(cube, "memory://xcalving-test/cube.zarr")
    reads: list[str] = []
    original = MemoryFileSystem.cat_file

    def counting(self, path, *args, **kwargs):
        reads.append(str(path))
        return original(self, path, *args, **kwargs)

    try:
        MemoryFileSystem.cat_file = counting
        opened = xcalving.open_cube(url)
        assert opened.rio.crs.to_epsg() == 3031
        out = opened.sar.calving.predict("demo", tile=64, overlap=16)
        assert not [r for r in reads if "/sar/c/" in r]  # metadata and coordinates only
        values = out.front_probability.values
        chunk_reads = sorted(r for r in reads if "/sar/c/" in r)
        assert len(chunk_reads) == 3  # each of the three scene chunks, once
    finally:
        MemoryFileSystem.cat_file = original
        MemoryFileSystem.store.clear()
    ref = truth_db.calving.predict("demo", tile=64, overlap=16).front_probability.values
    np.testing.assert_allclose(values, ref, atol=1e-6, equal_nan=True)
