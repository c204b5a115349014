"""What predict returns and stores: packed probabilities, chosen outputs, dims, CF attributes."""

import json
from collections import namedtuple
from pathlib import Path

import bad_inputs_outputs
import dask
import dask.array as dsa
import numpy as np
import pytest
import xarray as xr

import xcalving
import xcalving.errors as errors
from xcalving.inference.execute import PACKED_FILL, probability_encoding

PROBABILITIES = ("front_probability", "zone_probability")
OPTS = {"tile": 64, "overlap": 16}


@pytest.fixture(scope="module")
def sar():
    """(2, 128, 128) dB with a hole of no data, one chunk a scene."""
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(2, shape=(128, 128), seed=3)
    sar = cube.sar.copy()
    sar[0, 10:20, 30:45] = np.nan
    return sar.chunk({"time": 1})


@pytest.fixture(scope="module")
def both(net, sar):
    """The prediction with every output in memory, and packed to a store and read back."""
    return xcalving.predict(sar, net, outputs="all", **OPTS)


def store_bytes(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def write_and_open(ds, path):
    ds.to_zarr(path, zarr_format=3, consolidated=False)
    return xr.open_zarr(path, decode_coords="all", consolidated=False)


# --- the packing ---------------------------------------------------------------------------------
def test_packing_keeps_zero_one_and_no_data(tmp_path):
    values = np.array([0.0, 1.0, 0.5, 1 / 3, np.nan, 0.002, 0.998], np.float32)
    da = xr.DataArray(values, dims="x", name="p")
    da.encoding = probability_encoding("uint8")
    da.to_dataset().to_zarr(tmp_path / "p.zarr", zarr_format=3, consolidated=False)
    raw = xr.open_zarr(tmp_path / "p.zarr", mask_and_scale=False, consolidated=False).p.values
    assert raw.dtype == np.uint8 and raw[4] == PACKED_FILL and raw[1] == 254 and raw[0] == 0
    back = xr.open_zarr(tmp_path / "p.zarr", consolidated=False).p.values
    assert back[0] == 0 and back[1] == 1 and np.isnan(back[4])
    assert np.nanmax(np.abs(back - values)) <= 1 / 508 + 1e-7


def test_default_store_round_trips_within_1_250(both, tmp_path):
    memory = both.compute()
    stored = write_and_open(both, tmp_path / "pred.zarr")
    for var in PROBABILITIES:
        assert stored[var].encoding["dtype"] == np.uint8
        assert stored[var].encoding["_FillValue"] == PACKED_FILL
        got, want = stored[var].values, memory[var].values
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        assert np.isnan(want).any()  # the hole of no data is there, and kept
        assert np.nanmax(np.abs(got - want)) <= 1 / 250
    np.testing.assert_array_equal(stored.zones.values, memory.zones.values)
    assert stored.zones.dtype == np.uint8
    assert stored.rio.crs == both.rio.crs
    assert list(stored.zone.values) == ["no_data", "rock", "glacier", "ocean"]


def test_chunks_never_written_read_as_no_data(both, tmp_path):
    path = tmp_path / "pred.zarr"
    both.to_zarr(path, zarr_format=3, consolidated=False, compute=False)  # metadata only
    stored = xr.open_zarr(path, consolidated=False)
    assert np.isnan(stored.front_probability.values).all()


def test_float32_on_request_is_stored_exactly(net, sar, tmp_path):
    pred = xcalving.predict(sar, net, dtype="float32", outputs="all", **OPTS)
    stored = write_and_open(pred, tmp_path / "pred.zarr")
    raw = xr.open_zarr(tmp_path / "pred.zarr", mask_and_scale=False, consolidated=False)
    memory = pred.compute()
    for var in PROBABILITIES:
        assert raw[var].dtype == np.float32 and "scale_factor" not in raw[var].attrs
        np.testing.assert_array_equal(stored[var].values, memory[var].values)


def test_default_store_is_at_most_0_6_of_a_float32_input(net, sar, tmp_path):
    pred = xcalving.predict(sar, net, **OPTS)
    chunks = {dim: sizes[0] for dim, sizes in pred.chunksizes.items()}
    sar.chunk(chunks).to_dataset(name="sar").to_zarr(tmp_path / "in.zarr", zarr_format=3,
                                                     consolidated=False)
    pred.to_zarr(tmp_path / "pred.zarr", zarr_format=3, consolidated=False)
    ratio = store_bytes(tmp_path / "pred.zarr") / store_bytes(tmp_path / "in.zarr")
    assert ratio <= 0.6, ratio
    everything = xcalving.predict(sar, net, dtype="float32", outputs="all", **OPTS)
    everything.to_zarr(tmp_path / "all.zarr", zarr_format=3, consolidated=False)
    assert store_bytes(tmp_path / "all.zarr") > 3 * store_bytes(tmp_path / "pred.zarr")


# --- which outputs, in which layout -------------------------------------------------------------
def test_outputs_select_the_variables(net, sar):
    default = xcalving.predict(sar, net, **OPTS)
    assert list(default.data_vars) == ["front_probability", "zones"] and "zone" not in default.dims
    only = xcalving.predict(sar, net, outputs="zones", **OPTS)
    assert list(only.data_vars) == ["zones"]
    chosen = xcalving.predict(sar, net, outputs=["zone_probability", "front_probability"], **OPTS)
    assert list(chosen.data_vars) == ["front_probability", "zone_probability"]
    # zones come from the blended zone probabilities, requested or not
    probs = chosen.zone_probability.fillna(-1).values  # no data: zone 0
    np.testing.assert_array_equal(only.zones.values, probs.argmax(axis=1))
    accessor = sar.to_dataset(name="sar").calving.predict(net, outputs="all", dtype="float32",
                                                          **OPTS)
    assert list(accessor.data_vars) == ["front_probability", "zone_probability", "zones"]
    assert accessor.front_probability.encoding["dtype"] == "float32"


def test_dims_are_lead_dims_then_zone_then_y_x(both, net, sar):
    assert both.front_probability.dims == ("time", "y", "x")
    assert both.zones.dims == ("time", "y", "x")
    assert both.zone_probability.dims == ("time", "zone", "y", "x")
    assert both.zone_probability.dtype == np.float32 and both.front_probability.dtype == np.float32
    one = xcalving.predict(sar.isel(time=0), net, outputs="all", **OPTS)
    assert one.zone_probability.dims == ("zone", "y", "x")
    sums = both.zone_probability.sum("zone", skipna=False).values
    np.testing.assert_allclose(sums[np.isfinite(sums)], 1, atol=1e-5)


# --- attributes ----------------------------------------------------------------------------------
def _plain(value):
    return isinstance(value, str | int | float) and not isinstance(value, bool) or (
        isinstance(value, list) and all(_plain(v) for v in value))


def test_attrs_are_strings_and_numbers_never_reprs(both, tmp_path):
    variables = [both.attrs, *(both[v].attrs for v in both.variables)]
    for attrs in variables:
        for key, value in attrs.items():
            assert _plain(value), (key, value)
            if isinstance(value, str):
                assert "Scaling(" not in value and "{'" not in value and "np." not in value
    assert json.loads(both.attrs["network_scaling"])["domain"] == "uint8"
    stored = write_and_open(both, tmp_path / "pred.zarr")
    assert stored.attrs == both.attrs  # survive a store unchanged, types included


def test_cf_globals_and_a_history_of_the_resolved_call(both, net, sar):
    assert both.attrs["Conventions"].startswith("CF-")
    assert both.attrs["title"] and xcalving.__version__ in both.attrs["source"]
    assert both.attrs["model_sha256"] in both.attrs["source"]
    history = both.attrs["history"]
    assert f"xcalving {xcalving.__version__} predict(" in history
    for part in ('tile=64', 'overlap=16', 'device="cpu"', 'precision="fp32"', 'scaling="db"',
                 'dtype="uint8"', 'outputs=["front_probability", "zone_probability", "zones"]'):
        assert part in history, part
    assert history[:4].isdigit() and history.count("\n") == 0
    # an input's history is carried, the new line appended
    older = sar.assign_attrs(history="2020-01-01T00:00:00Z: made by hand")
    lines = xcalving.predict(older, net, **OPTS).attrs["history"].splitlines()
    assert lines[0] == "2020-01-01T00:00:00Z: made by hand" and "predict(" in lines[1]


def test_resampled_prediction_records_plain_spacings(net, sar):
    pred = xcalving.predict(sar, net, resolution=80.0, **OPTS)
    assert pred.attrs["resolution"] == 80.0 and isinstance(pred.attrs["input_resolution"], float)
    assert "resolution=80.0" in pred.attrs["history"]


# --- laziness and the bad-input rows -------------------------------------------------------------
def test_predict_with_any_output_options_computes_nothing(net, sar):
    def refuse(dsk, keys, **kwargs):
        raise AssertionError("something was computed")

    with dask.config.set(scheduler=refuse):
        for kwargs in ({}, {"dtype": "float32", "outputs": "all"}, {"outputs": "zones"}):
            pred = xcalving.predict(sar, net, **kwargs, **OPTS)
            assert all(isinstance(pred[v].data, dsa.Array) for v in pred.data_vars)


Case = namedtuple("Case", "id area what error builtin match run")
CASES = bad_inputs_outputs.cases(Case)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_output_options(case, tmp_path):
    import builtins

    with pytest.raises(getattr(errors, case.error), match=case.match) as info:
        case.run(tmp_path)
    assert isinstance(info.value, getattr(builtins, case.builtin))
