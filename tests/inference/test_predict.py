"""predict(): the oracle, chunk invariance, laziness, inputs, schedulers and bad input."""

import warnings

import dask
import dask.array as dsa
import numpy as np
import pytest
import torch
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import xcalving
from xcalving.errors import (
    DeviceError,
    InputError,
    PerformanceWarning,
    UnsafeFileError,
    WeightsNotFoundError,
)
from xcalving.model import ASPPUNet, save_model
from xcalving.windows import plan_windows, redundancy


class Pointwise(nn.Module):
    """A 'network' whose output at a pixel depends on that pixel only: tiling must not show."""

    def forward(self, x):
        return {"front": x, "zones": torch.cat([x, -x, 2 * x, 0 * x], dim=1)}


def untiled(x):
    t = torch.from_numpy(np.asarray(x, np.float32))[None, None]
    out = Pointwise()(t)
    return (torch.sigmoid(out["front"])[0, 0].numpy(), torch.softmax(out["zones"], 1)[0].numpy())


class ComputeCounter:
    """A scheduler that counts (and refuses) computes: laziness means zero."""

    def __init__(self):
        self.count = 0

    def __call__(self, dsk, keys, **kwargs):
        self.count += 1
        raise AssertionError("something was computed")


def as_da(values, dims=("y", "x")):
    return xr.DataArray(values, dims=dims)


# --- the plan ------------------------------------------------------------------------------------
@given(n=st.integers(1, 400), tile=st.integers(1, 64), frac=st.floats(0, 0.9))
def test_plan_covers_every_pixel_with_windows_inside(n, tile, frac):
    overlap = min(int(tile * frac), tile - 1)
    plan = plan_windows((n, 7), tile, overlap)
    covered = np.zeros(n, bool)
    for s in plan.starts_y:
        assert 0 <= s and s + plan.extent[0] <= n
        covered[s:s + plan.extent[0]] = True
    assert covered.all()
    assert (np.diff(plan.starts_y) <= tile - overlap).all()


def test_redundancy_is_one_for_one_chunk_and_grows_with_small_chunks():
    assert redundancy((2048, 2048), ((2048,), (2048,)), 512, 128) == 1.0
    small = redundancy((2048, 2048), ((512,) * 4, (512,) * 4), 512, 128)
    large = redundancy((2048, 2048), ((1024,) * 2, (1024,) * 2), 512, 128)
    assert small > large > 1.0


# --- the oracle ----------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.tuples(st.integers(5, 90), st.integers(5, 90)),
    tile=st.sampled_from([8, 16, 24, 32, 48]),
    frac=st.floats(0, 0.75),
    chunk=st.tuples(st.integers(3, 90), st.integers(3, 90)),
    seed=st.integers(0, 2**16),
)
def test_pointwise_model_equals_untiled_result(shape, tile, frac, chunk, seed):
    values = np.random.default_rng(seed).normal(0, 3, shape).astype(np.float32)
    overlap = int(tile * frac)
    data = as_da(dsa.from_array(values, chunks=chunk))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PerformanceWarning)  # small random chunks are the point
        pred = xcalving.predict(data, Pointwise(), tile=tile, overlap=overlap, scaling="none",
                                outputs="all")
    front, zones = untiled(values)
    np.testing.assert_allclose(pred.front_probability.values, front, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pred.zone_probability.values, zones, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(pred.zones.values, zones.argmax(0))


def test_nan_and_nodata_stay_local(net):
    values = np.random.default_rng(1).normal(-10, 3, (2, 70, 90)).astype(np.float32)
    values[0, 30:35, 40:47] = np.nan
    values[1, 5, 5] = -9999.0
    data = xr.DataArray(values, dims=("time", "y", "x"), attrs={"units": "dB",
                                                                "_FillValue": -9999.0})
    pred = xcalving.predict(data, Pointwise(), tile=32, overlap=8, scaling="none").compute()
    invalid = np.isnan(values) | (values == -9999.0)
    assert np.isnan(pred.front_probability.values[invalid]).all()
    assert np.isfinite(pred.front_probability.values[~invalid]).all()
    assert (pred.zones.values[invalid] == 0).all()
    front, _ = untiled(np.where(invalid, 0, values)[0])
    np.testing.assert_allclose(pred.front_probability.values[0][~invalid[0]], front[~invalid[0]],
                               rtol=1e-5)
    # a real network sees the fill value there, so no NaN spreads through its convolutions
    real = xcalving.predict(data, net, tile=32, overlap=8).compute()
    assert np.isfinite(real.front_probability.values[~invalid]).all()


# --- chunk invariance with the real network ------------------------------------------------------
def test_chunk_invariance_with_the_real_network(net):
    values = np.random.default_rng(2).normal(-12, 4, (1100, 1300)).astype(np.float32)
    data = as_da(values).assign_attrs(units="dB")
    results = []
    for chunk in (256, 512, 1024, -1):
        pred = xcalving.predict(data.chunk({"y": chunk, "x": chunk}), net, tile=64, overlap=16,
                                batch_size=16, outputs="all")
        results.append(pred.compute())
    reference = results[-1]
    for other in results[:-1]:
        for var in ("front_probability", "zone_probability"):
            assert float(abs(other[var] - reference[var]).max()) < 1e-5
    numpy_backed = xcalving.predict(data, net, tile=64, overlap=16, batch_size=16).compute()
    assert float(abs(numpy_backed.front_probability - reference.front_probability).max()) < 1e-5


def test_tiled_equals_whole_scene_in_the_interior_when_windows_are_large(net):
    # with overlap the blend hides tile edges; far from them a window sees what the scene sees
    values = np.random.default_rng(3).normal(-12, 4, (96, 96)).astype(np.float32)
    data = as_da(values).assign_attrs(units="dB")
    whole = xcalving.predict(data, net, tile=96, overlap=0).front_probability.values
    tiled = xcalving.predict(data, net, tile=64, overlap=32).front_probability.values
    assert np.abs(whole - tiled).mean() < 0.05 * whole.std() + 1e-3


# --- laziness ------------------------------------------------------------------------------------
def test_building_the_result_computes_nothing(net, small_cube, tmp_path):
    cube, _ = small_cube
    lazy = xcalving.open_cube(xcalving.write_cube(cube, tmp_path / "c.zarr"))
    counter = ComputeCounter()
    with dask.config.set(scheduler=counter):
        pred = lazy.calving.predict(net, tile=32, overlap=8)
        numpy_pred = cube.sar.calving.predict(net, tile=32, overlap=8)
        assert pred.rio.crs.to_epsg() == 3031
    assert counter.count == 0
    for var in pred.data_vars:
        assert isinstance(pred[var].data, dsa.Array)
        assert isinstance(numpy_pred[var].data, dsa.Array)


# --- inputs --------------------------------------------------------------------------------------
def test_output_layout_coordinates_crs_and_provenance(net, small_cube):
    cube, _ = small_cube
    pred = cube.calving.predict(net, tile=32, overlap=8, outputs="all")
    assert pred.front_probability.dims == ("time", "y", "x")
    assert pred.zone_probability.dims == ("time", "zone", "y", "x")
    assert list(pred.zone.values) == ["no_data", "rock", "glacier", "ocean"]
    assert pred.zones.dtype == np.uint8 and pred.front_probability.dtype == np.float32
    for c in ("time", "y", "x"):
        np.testing.assert_array_equal(pred[c].values, cube[c].values)
    assert pred.rio.crs == cube.rio.crs and pred.rio.transform() == cube.rio.transform()
    assert pred.attrs["tile"] == 32 and pred.attrs["overlap"] == 8
    assert len(pred.attrs["model_sha256"]) == 64 and pred.attrs["model"] == "ASPPUNet"
    assert pred.attrs["xcalving_version"] == xcalving.__version__
    values = pred.compute()
    p = values.front_probability.values
    assert np.nanmin(p) >= 0 and np.nanmax(p) <= 1
    np.testing.assert_allclose(values.zone_probability.sum("zone").values[np.isfinite(p)], 1,
                               atol=1e-5)


def test_inputs_of_every_layout_agree(net, small_cube):
    cube, _ = small_cube
    sar = cube.sar
    reference = sar.calving.predict(net, tile=32, overlap=8).front_probability.values
    single = sar.isel(time=1).calving.predict(net, tile=32, overlap=8).front_probability.values
    np.testing.assert_allclose(single, reference[1], atol=1e-6)
    banded = xr.concat([sar, sar - 3], dim="band").assign_coords(band=["HH", "HV"])
    banded = banded.transpose("time", "band", "y", "x")
    hh = banded.calving.predict(net, tile=32, overlap=8, band="HH").front_probability.values
    np.testing.assert_allclose(hh, reference, atol=1e-6)
    one_band = sar.expand_dims(band=["HH"], axis=1)
    np.testing.assert_allclose(
        one_band.calving.predict(net, tile=32, overlap=8).front_probability.values, reference,
        atol=1e-6)
    swapped = sar.transpose("y", "x", "time").calving.predict(net, tile=32, overlap=8)
    assert swapped.front_probability.dims == ("time", "y", "x")
    np.testing.assert_allclose(swapped.front_probability.values, reference, atol=1e-6)


def test_linear_power_and_8bit_inputs_are_converted(net):
    db = np.random.default_rng(4).uniform(-24, 4, (40, 52)).astype(np.float32)
    from_db = xcalving.predict(as_da(db).assign_attrs(units="dB"), net, tile=32, overlap=8)
    linear = as_da(10 ** (db / 10)).assign_attrs(units="linear")
    from_linear = xcalving.predict(linear, net, tile=32, overlap=8)
    np.testing.assert_allclose(from_linear.front_probability.values,
                               from_db.front_probability.values, atol=1e-4)
    grey = np.round(1 + 254 * (db + 25) / 30).astype(np.uint8)  # the documented dB -> 8-bit rule
    from_grey = xcalving.predict(as_da(grey), net, tile=32, overlap=8)
    assert from_grey.attrs["input_scaling"] == "uint8"
    assert np.abs(from_grey.front_probability.values - from_db.front_probability.values).max() \
        < 0.05
    grey[0, :3] = 0  # 8-bit zero is no data, as in CaFFe
    assert np.isnan(xcalving.predict(as_da(grey), net, tile=32, overlap=8)
                    .front_probability.values[0, :3]).all()


def test_small_and_non_square_scenes(net):
    for shape in ((20, 27), (33, 200), (1, 1)):
        data = as_da(np.full(shape, -10, np.float32)).assign_attrs(units="dB")
        pred = xcalving.predict(data, net, tile=64, overlap=16).compute()
        assert pred.front_probability.shape == shape
        assert np.isfinite(pred.front_probability.values).all()


def test_chunks_smaller_than_a_window_are_rechunked_with_a_warning(net):
    data = as_da(dsa.zeros((200, 200), chunks=20, dtype=np.float32)).assign_attrs(units="dB")
    with pytest.warns(PerformanceWarning, match="smaller than one window"):
        pred = xcalving.predict(data, net, tile=64, overlap=16)
    assert min(pred.front_probability.data.chunks[0]) >= 64


def test_input_without_crs_says_so(net):
    pred = xcalving.predict(as_da(np.zeros((40, 40), np.float32)).assign_attrs(units="dB"), net,
                            tile=32, overlap=8)
    assert "pixel" in pred.attrs["georeference"] and pred.rio.crs is None


def test_callers_module_keeps_its_mode(small_cube):
    cube, _ = small_cube
    train_net = ASPPUNet(width=4).train()
    xcalving.predict(cube.sar, train_net, tile=32, overlap=8).compute()
    assert train_net.training
    assert all(m.training for m in train_net.modules())


def test_checkpoint_path_is_hashed_and_recorded(net, tmp_path, small_cube):
    from xcalving.model.files import sha256_file

    cube, _ = small_cube
    path = save_model(net, tmp_path / "net.safetensors")
    by_path = cube.sar.calving.predict(str(path), tile=32, overlap=8)
    assert by_path.attrs["model_sha256"] == sha256_file(path)
    in_memory = cube.sar.calving.predict(net, tile=32, overlap=8)
    np.testing.assert_allclose(by_path.front_probability.values,
                               in_memory.front_probability.values, atol=1e-6)


def test_registered_name_needs_a_matching_sha256(net, tmp_path, monkeypatch, small_cube):
    from xcalving.model import registry
    from xcalving.model.files import sha256_file
    from xcalving.scaling import CAFFE_SCALING

    cube, _ = small_cube
    path = save_model(net, tmp_path / "toy.safetensors")
    record = registry.WeightsRecord("toy", path.name, sha256_file(path), "test", CAFFE_SCALING)
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setitem(registry.REGISTRY, "toy", record)
    pred = cube.sar.calving.predict("toy", tile=32, overlap=8)
    assert pred.attrs["model"] == "toy"
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(UnsafeFileError, match="sha256"):
        cube.sar.calving.predict("toy", tile=32, overlap=8)


def test_to_zarr_round_trip_keeps_crs_and_coordinates(net, small_cube, tmp_path):
    cube, _ = small_cube
    pred = cube.calving.predict(net, tile=32, overlap=8)
    pred.to_zarr(tmp_path / "pred.zarr", consolidated=False, zarr_format=3)
    back = xcalving.open_cube(tmp_path / "pred.zarr")
    assert back.rio.crs.to_epsg() == 3031
    assert back.rio.transform() == cube.rio.transform()
    np.testing.assert_array_equal(back.time.values, cube.time.values)
    # packed to uint8 on disk (tests/io/test_outputs.py): within half a step of 1/254
    np.testing.assert_allclose(back.front_probability.values, pred.front_probability.values,
                               atol=1 / 500)


# --- schedulers ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_same_numbers_on_a_local_cluster_of_two_processes(net, small_cube, tmp_path):
    from distributed import Client, LocalCluster

    from xcalving.inference import model_cache_info

    cube, _ = small_cube
    store = xcalving.write_cube(cube, tmp_path / "c.zarr")
    threaded = xcalving.open_cube(store).calving.predict(net, tile=32, overlap=8,
                                                         outputs="all").compute()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        lazy = xcalving.open_cube(store).chunk({"time": 1}).calving.predict(
            net, tile=32, overlap=8, outputs="all")
        distributed = lazy.compute()
        infos = client.run(model_cache_info)
    for var in ("front_probability", "zone_probability", "zones"):
        np.testing.assert_allclose(distributed[var].values, threaded[var].values, atol=1e-6)
    sha = threaded.attrs["model_sha256"]
    assert all(info["loaded"].get(sha, 0) <= 1 for info in infos.values())
    assert sum(info["loaded"].get(sha, 0) for info in infos.values()) >= 1


def test_threads_follow_the_rule():
    from dask.system import CPU_COUNT

    from xcalving.runtime import torch_threads_for_process

    with dask.config.set(scheduler="threads", num_workers=2):
        assert torch_threads_for_process() == max(1, CPU_COUNT // 2)
    with dask.config.set(scheduler="sync"):
        assert torch_threads_for_process() == CPU_COUNT


def test_thread_override_and_the_workers_omp_cap(monkeypatch):
    """XCALVING_TORCH_THREADS overrides; a distributed worker keeps to its OMP_NUM_THREADS."""
    from distributed import Client, LocalCluster

    from xcalving.runtime import torch_threads_for_process

    monkeypatch.setenv("XCALVING_TORCH_THREADS", "3")
    assert torch_threads_for_process() == 3
    monkeypatch.setenv("XCALVING_TORCH_THREADS", "many")
    with pytest.raises(InputError, match="XCALVING_TORCH_THREADS"):
        torch_threads_for_process()
    monkeypatch.delenv("XCALVING_TORCH_THREADS")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert client.submit(torch_threads_for_process, pure=False).result() == 1


def test_progress_bar_counts_tasks(net, small_cube, capsys):
    cube, _ = small_cube
    pred = cube.sar.calving.predict(net, tile=32, overlap=8)
    with xcalving.progress(desc="predict"):
        pred.compute()
    assert "predict" in capsys.readouterr().err


# --- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: as_da(np.zeros((8, 8), np.float32), dims=("lat", "lon")), InputError,
         r"rename\(\{'lat': 'y', 'lon': 'x'\}\)"),
        (lambda: as_da(np.zeros((8, 8), np.complex64)), InputError, "amplitude"),
        (lambda: as_da(np.zeros((8, 8), np.float32)), InputError, "scaling='db'"),
    ],
)
def test_bad_arrays(net, build, error, match):
    with pytest.raises(error, match=match):
        xcalving.predict(build(), net, tile=32, overlap=8)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"tile": 32, "overlap": 32}, InputError, "overlap=32 must be"),
        ({"tile": 40, "overlap": 8}, InputError, "Use tile=32|Use tile=48"),
        ({"model": "caffe999"}, WeightsNotFoundError, "Registered names"),
        ({"device": "cuda"}, DeviceError, "device='auto'"),
        ({"scaling": "decibel"}, InputError, "scaling must be"),
        ({"batch_size": 0}, InputError, "batch_size"),
    ],
)
def test_bad_arguments(net, kwargs, error, match):
    if kwargs.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    data = as_da(np.zeros((64, 64), np.float32)).assign_attrs(units="dB")
    call = {"model": net, "tile": 32, "overlap": 8, **kwargs}
    with pytest.raises(error, match=match):
        xcalving.predict(data, call.pop("model"), **call)


def test_ambiguous_band_lists_the_bands(net):
    data = xr.DataArray(np.zeros((2, 16, 16), np.float32), dims=("band", "y", "x"),
                        coords={"band": ["B04", "B08"]}, attrs={"units": "dB"})
    with pytest.raises(InputError, match=r"\['B04', 'B08'\]"):
        data.calving.predict(net, tile=16, overlap=4)
    pols = data.assign_coords(band=["VV", "VH"])  # polarisations: VV by the documented rule
    assert pols.calving.predict(net, tile=16, overlap=4).attrs["band"] == "VV"
    with pytest.raises(InputError, match="HH"):
        pols.calving.predict(net, tile=16, overlap=4, band="HH")


def test_dataset_accessor_names_the_variable(net, small_cube):
    cube, _ = small_cube
    with pytest.raises(InputError, match="'sar'"):
        cube.calving.predict(net, variable="sr")
    with pytest.raises(InputError, match="variable="):
        xcalving.predict(cube, net)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.integers(20, 150), cols=st.integers(20, 150), tile_steps=st.integers(1, 4),
       frac=st.floats(0, 0.75), split=st.floats(0.2, 0.8), leads=st.integers(1, 2),
       batch=st.integers(1, 5), seed=st.integers(0, 99))
def test_blending_on_the_device_matches_the_numpy_path(rows, cols, tile_steps, frac, split, leads,
                                                       batch, seed):
    """The GPU path's arithmetic (windows cut and blended with torch), run here on the CPU.

    Random block geometry (a core that is part of the array, so windows straddle its edges),
    scenes shorter than a tile (edge padding), NaNs, batch sizes that split the lead dim.
    """
    from xcalving.inference.blend import predict_block, predict_block_on_device
    from xcalving.inference.runner import get_runner
    from xcalving.model.weights import model_spec

    torch.manual_seed(seed % 3)
    spec = model_spec(ASPPUNet(width=4, aspp_rates=(1, 2)).eval())
    runner = get_runner(spec, "cpu", "fp32")
    tile = 16 * tile_steps
    plan = plan_windows((rows, cols), tile, int(frac * tile) // 2 * 2, 16)
    rng = np.random.default_rng(seed)
    block = rng.uniform(0, 1, (leads, rows, cols)).astype(np.float32)
    block[:, rng.integers(0, rows, 5), rng.integers(0, cols, 5)] = np.nan
    cut_y, cut_x = int(rows * split), int(cols * split)
    for core in [(0, rows, 0, cols), (cut_y, rows, 0, cut_x)]:
        ref = predict_block(block, (0, 0), core, plan, runner, 0.0, batch)
        got = predict_block_on_device(block, (0, 0), core, plan, runner, 0.0, batch)
        assert got.shape == ref.shape == (leads, 5, core[1] - core[0], core[3] - core[2])
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        np.testing.assert_allclose(got, ref, atol=1e-6, equal_nan=True)


def test_zones_are_the_arg_max_with_ties_to_the_first_zone():
    from xcalving.inference.execute import _zones_of_block

    rng = np.random.default_rng(0)
    block = rng.integers(0, 3, (2, 5, 7, 9)).astype(np.float32) / 2  # many ties
    block[0, 0, 1, 1] = np.nan
    want = np.argmax(block[:, 1:], axis=1).astype(np.uint8)
    want[0, 1, 1] = 0
    np.testing.assert_array_equal(_zones_of_block(block, 1), want)
    np.testing.assert_array_equal(_zones_of_block(block[0], 0), want[0])


# --- the options, their record, and a fresh process ---------------------------------------------
def test_the_record_names_the_resolved_device_and_precision(net):
    data = as_da(np.zeros((40, 40), np.float32)).assign_attrs(units="dB")
    pred = xcalving.predict(data, net, tile=32, overlap=8)
    if torch.cuda.is_available():
        assert pred.attrs["device"] == "cuda" and pred.attrs["precision"] in ("bf16", "fp16")
    else:
        assert pred.attrs["device"] == "cpu" and pred.attrs["precision"] == "fp32"
    explicit = xcalving.predict(data, net, tile=32, overlap=8, device="cpu", precision="bf16")
    assert (explicit.attrs["device"], explicit.attrs["precision"]) == ("cpu", "bf16")


def test_predict_and_the_accessors_share_one_set_of_defaults():
    import dataclasses
    import inspect

    from xcalving.inference import PredictOptions

    defaults = {f.name: f.default for f in dataclasses.fields(PredictOptions)}
    for function in (xcalving.predict, xr.DataArray.calving.predict,
                     xr.Dataset.calving.predict):
        params = inspect.signature(function).parameters
        assert {name: params[name].default for name in defaults} == defaults, function


def test_the_rechunk_warning_names_the_callers_line(net):
    data = as_da(dsa.zeros((200, 200), chunks=20, dtype=np.float32)).assign_attrs(units="dB")
    with pytest.warns(PerformanceWarning) as record:
        xcalving.predict(data, net, tile=64, overlap=16)
    assert {w.filename for w in record if w.category is PerformanceWarning} == {__file__}


def test_importing_xcalving_loads_no_torch():
    import subprocess
    import sys

    code = "import sys, xcalving; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


_FRESH_PROCESS = """
import sys

import numpy as np
import xarray as xr

import xcalving

n, step = 64, 20.0
y = 1_300_000.0 - step * (np.arange(n) + 0.5)
x = -2_430_000.0 + step * (np.arange(n) + 0.5)
crs = xr.DataArray(0, attrs={"crs_wkt": sys.argv[1], "spatial_ref": sys.argv[1]})
values = np.random.default_rng(0).uniform(-20, 0, (1, n, n)).astype(np.float32)
da = xr.DataArray(values, dims=("time", "y", "x"), coords={"y": y, "x": x, "spatial_ref": crs},
                  attrs={"units": "dB"})
da.encoding["grid_mapping"] = "spatial_ref"
assert "rioxarray" not in sys.modules, "the point is a process that never imported rioxarray"
pred = xcalving.predict(da, "demo", tile=64, overlap=16, resolution=40.0).compute()
assert (pred.attrs["resolution"], pred.attrs["input_resolution"]) == (40.0, 20.0), pred.attrs
assert pred.front_probability.shape == (1, n, n)
assert np.isfinite(pred.front_probability.values).all()
assert pred.rio.crs.to_epsg() == 3031
print("ok")
"""


def test_resolution_works_in_a_fresh_process_that_never_imported_rioxarray():
    """The CRS was read through ``.rio``, unregistered there, and the error swallowed: 'no CRS'."""
    import subprocess
    import sys

    from pyproj import CRS

    wkt = CRS.from_epsg(3031).to_wkt()
    out = subprocess.run([sys.executable, "-c", _FRESH_PROCESS, wkt], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")
