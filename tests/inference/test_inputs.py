"""predict's input rules: values against their declared scaling, polarisations, CRS.

Each rule has its refusal and a positive control (good data of the same kind still predicts).
"""

import dask
import dask.array as dsa
import numpy as np
import pytest
import xarray as xr

import xcalving
from xcalving.bands import choose_polarisation, polarisation_of
from xcalving.errors import InputError
from xcalving.scaling import check_values, db_to_grey

OPTS = {"tile": 64, "overlap": 16}


@pytest.fixture(scope="module")
def db():
    """Two synthetic scenes in dB (64 × 64, EPSG:3031)."""
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(2, shape=(64, 64), seed=3)
    return cube.sar.assign_attrs(units="dB")


@pytest.fixture(scope="module")
def reference(db, net):
    return xcalving.predict(db, net, **OPTS).front_probability.values


def linear(db):
    return (10.0 ** (db / 10.0)).assign_attrs(units="linear")


def grey(db):
    values = np.where(np.isnan(db.values), 0, np.rint(db_to_grey(db.values)))  # 0 = no data
    return xr.DataArray(values.astype(np.uint8), coords=db.coords, dims=db.dims)


def valid(db):
    """Where the synthetic scenes have data (their swath edge has none)."""
    return np.isfinite(db.values)


class NoCompute:
    """A dask scheduler that refuses to run anything: predict must build its graph only."""

    def __call__(self, dsk, keys, **kwargs):
        raise AssertionError("predict computed something")


# --- values against the declared scaling ---------------------------------------------------------
def test_good_values_of_every_kind_predict(db, net, reference):
    from_linear = xcalving.predict(linear(db), net, **OPTS)
    assert from_linear.attrs["input_scaling"] == "linear"
    np.testing.assert_allclose(from_linear.front_probability.values, reference, atol=1e-4)
    from_grey = xcalving.predict(grey(db), net, **OPTS)
    assert from_grey.attrs["input_scaling"] == "uint8"
    np.testing.assert_array_equal(np.isfinite(from_grey.front_probability.values), valid(db))
    # 8-bit grey values in a wider integer type are still grey values
    wide = xcalving.predict(grey(db).astype(np.uint16), net, scaling="uint8", **OPTS)
    np.testing.assert_array_equal(wide.front_probability.values,
                                  from_grey.front_probability.values)


def test_linear_power_labelled_db_is_refused(db, net):
    with pytest.raises(InputError, match=r"read as dB.*linear power.*scaling='linear'"):
        xcalving.predict(linear(db).assign_attrs(units="dB"), net, **OPTS)


def test_db_passed_as_linear_is_refused(db, net):
    with pytest.raises(InputError, match=r"read as linear power.*look like dB.*scaling='db'"):
        xcalving.predict(db, net, scaling="linear", **OPTS)


def test_linear_power_with_noise_removal_negatives_is_accepted(db, net):
    noisy = linear(db).copy()
    noisy[:, ::7, ::5] = -0.002  # thermal noise removal leaves small negatives: no data
    out = xcalving.predict(noisy, net, **OPTS).front_probability.values
    assert np.isnan(out[:, ::7, ::5]).all()
    assert np.isfinite(out[:, 1::7, 1::5][valid(db)[:, 1::7, 1::5]]).all()


def test_grey_values_and_digital_numbers_declared_as_backscatter_are_refused(db, net):
    with pytest.raises(InputError, match=r"read as dB.*8-bit grey values.*scaling='uint8'"):
        xcalving.predict(grey(db).astype(np.float32).assign_attrs(units="dB"), net, **OPTS)
    digital = (linear(db) * 4000.0).fillna(0).astype(np.uint16)
    with pytest.raises(InputError, match=r"read as linear power.*digital numbers"):
        xcalving.predict(digital, net, scaling="linear", **OPTS)


@pytest.mark.parametrize(("values", "match"), [
    (lambda g: g.astype(np.uint16) * 16, r"values up to 4\d\d\d.*scaling='db' or 'linear'"),
    (lambda g: g.astype(np.int16) - 128, r"negative values.*scaling='db'"),
    (lambda g: g.astype(np.float32) / 255.0, r"fractions in 0\.\.1.*Multiply by 255"),
    (lambda g: np.minimum(g, 200).astype(np.float32) + 0.5, r"fractional values"),
])
def test_values_that_are_not_8_bit_grey_are_refused_for_uint8(db, net, values, match):
    with pytest.raises(InputError, match=r"8-bit grey values \(whole numbers 0\.\.255.*" + match):
        xcalving.predict(values(grey(db)), net, scaling="uint8", **OPTS)


@pytest.mark.parametrize("scaling", ["auto", "db", "uint8", "none"])
def test_bool_complex_and_text_are_refused_whatever_the_scaling(db, net, scaling):
    with pytest.raises(InputError, match=r"boolean.*mask"):
        xcalving.predict((db < -10).assign_attrs(units="dB"), net, scaling=scaling, **OPTS)
    with pytest.raises(InputError, match=r"complex dtype.*amplitude"):
        xcalving.predict(db.astype(np.complex64), net, scaling=scaling, **OPTS)
    with pytest.raises(InputError, match=r"dtype <U.*needs numbers"):
        xcalving.predict(db.astype(str), net, scaling=scaling, **OPTS)


def test_dask_values_are_checked_when_computed_and_predict_computes_nothing(db, net):
    bad = linear(db).assign_attrs(units="dB").chunk({"time": 1})
    with dask.config.set(scheduler=NoCompute()):
        lazy = xcalving.predict(bad, net, **OPTS)  # builds the graph, reads nothing
        good = xcalving.predict(db.chunk({"time": 1}), net, **OPTS)
    assert isinstance(lazy.front_probability.data, dsa.Array)
    with pytest.raises(InputError, match=r"chunk at time \d:\d, y 0:64, x 0:64 was read as dB"):
        lazy.compute()
    np.testing.assert_array_equal(np.isfinite(good.front_probability.values), valid(db))


def test_inf_is_no_data_like_nan(db, net):
    with_inf, with_nan = db.copy(), db.copy()
    with_inf[0, 10:20, 10:20] = -np.inf  # 10·log10(0)
    with_inf[1, 5, 5] = np.inf
    with_nan[0, 10:20, 10:20] = np.nan
    with_nan[1, 5, 5] = np.nan
    got = xcalving.predict(with_inf, net, **OPTS).compute()
    want = xcalving.predict(with_nan, net, **OPTS).compute()
    xr.testing.assert_identical(got.front_probability, want.front_probability)
    assert (got.zones.values[0, 10:20, 10:20] == 0).all()
    finite = valid(db)[1] & (with_inf[1].values != np.inf)
    assert np.isfinite(got.front_probability.values[1][finite]).all()


def test_empty_scenes_and_undeclared_zero_fill_are_not_judged(db, net):
    filled = db.copy()
    filled[0] = 0.0  # a scene outside the swath, filled with 0 dB instead of NaN
    filled[1, :, :40] = np.nan
    assert xcalving.predict(filled, net, **OPTS).sizes["time"] == 2
    check_values(np.full((6, 6), 0.5), "db")  # too few values to judge a distribution


def test_check_values_on_plain_arrays():
    rng = np.random.default_rng(1)
    power = rng.gamma(4.0, 0.05 / 4.0, (3, 200, 300))
    check_values(10 * np.log10(power), "db")
    check_values(power, "linear")
    check_values(power, "none")  # the caller vouches for them
    with pytest.raises(InputError, match="linear power"):
        check_values(power, "db")
    with pytest.raises(InputError, match="^chunk 3 was read as linear power"):
        check_values(10 * np.log10(power), "linear", where="chunk 3")
    with pytest.raises(InputError, match=r"far darker.*_FillValue"):
        check_values(np.where(rng.random((64, 64)) < 0.6, -9999.0, -12.0), "db")
    nodata = np.where(rng.random((64, 64)) < 0.5, -9999.0, 10 * np.log10(power[0, :64, :64]))
    check_values(nodata, "db", nodata=-9999.0)


# --- polarisations -------------------------------------------------------------------------------
def test_polarisation_names():
    assert [polarisation_of(s) for s in ("HH", "hv", "Sigma0_VV", "gamma0-vh-db")] == [
        "hh", "hv", "vv", "vh"]
    assert [polarisation_of(s) for s in ("vv_vh", "B04", "shh", 1, None)] == [None] * 5
    assert choose_polarisation(["vh", "vv", "hh"]) == "hh"
    assert choose_polarisation(["angle", "sigma0_vv"]) == "sigma0_vv"
    assert choose_polarisation(["B04", "B08"]) is None
    with pytest.raises(InputError, match="cross-polarised"):
        choose_polarisation(["hv"])


@pytest.mark.parametrize("dim", ["band", "pol", "polarisation", "channel", "variable"])
def test_a_polarisation_dim_of_any_name_takes_vv_and_equals_vv_alone(db, net, reference, dim):
    pols = xr.concat([db - 8.0, db], dim=dim).assign_coords({dim: ["VH", "VV"]})
    out = xcalving.predict(pols.transpose("time", dim, "y", "x"), net, **OPTS)
    assert out.attrs["band"] == "VV"
    assert out.front_probability.dims == ("time", "y", "x")
    np.testing.assert_array_equal(out.front_probability.values, reference)


def test_hh_is_preferred_and_prefixed_names_count(db, net, reference):
    pols = xr.concat([db - 8.0, db + 1.0, db], dim="pol").assign_coords(
        pol=["sigma0_hv", "sigma0_vv", "sigma0_hh"])
    out = xcalving.predict(pols, net, **OPTS)
    assert out.attrs["band"] == "sigma0_hh"
    np.testing.assert_array_equal(out.front_probability.values, reference)


@pytest.mark.parametrize("labels", [["HV", "VH"], ["HV"], ["vh"], ["sigma0_vh", "sigma0_hv"]])
@pytest.mark.parametrize("dim", ["band", "pol", "polarization"])
def test_cross_polarised_only_is_refused_for_any_number_of_bands(db, net, labels, dim):
    cross = xr.concat([db] * len(labels), dim=dim).assign_coords({dim: labels})
    with pytest.raises(InputError, match=r"cross-polarised.*HH or VV.*band="):
        xcalving.predict(cross, net, **OPTS)


def test_a_cross_polarised_band_named_explicitly_is_used(db, net, reference):
    both = xr.concat([db, db - 8.0], dim="band").assign_coords(band=["HH", "HV"])
    out = xcalving.predict(both, net, band="HV", **OPTS)
    assert out.attrs["band"] == "HV"
    alone = xcalving.predict((db - 8.0).expand_dims(pol=["hv"]), net, band="hv", **OPTS)
    np.testing.assert_array_equal(alone.front_probability.values,
                                  out.front_probability.values)


def test_one_cross_polarised_array_is_refused_by_its_metadata(db, net):
    named = (db - 8.0).rename("vh")
    selected = xr.concat([db, db], "band").assign_coords(band=["hh", "hv"]).sel(band="hv")
    attributed = db.assign_attrs(band="HV")
    for cross in (named, selected, attributed):
        with pytest.raises(InputError, match="cross-polarised"):
            xcalving.predict(cross, net, **OPTS)
    assert xcalving.predict(named, net, band="vh", **OPTS).attrs["band"] == "vh"
    co = db.rename("sigma0_vv")
    assert xcalving.predict(co, net, **OPTS).attrs["band"] == "sigma0_vv"


def test_other_dims_must_say_they_hold_scenes_and_unlabelled_band_dims_need_band(db, net,
                                                                                 reference):
    # a lead dim that names neither bands nor scenes is refused, never run as extra scenes
    orbits = xr.concat([db, db], dim="orbit").assign_coords(orbit=["asc", "desc"])
    with pytest.raises(InputError, match=r"dim 'orbit' \(2 entries \['asc', 'desc'\]\).*"
                                         r"da\.rename\(\{'orbit': 'time'\}\)"):
        xcalving.predict(orbits, net, **OPTS)
    out = xcalving.predict(orbits.rename(orbit="scene"), net, **OPTS)
    assert out.front_probability.dims == ("scene", "time", "y", "x")
    np.testing.assert_array_equal(out.front_probability.values[1], reference)
    unlabelled = xr.concat([db, db], dim="pol")
    with pytest.raises(InputError, match=r"2 bands \[0, 1\] along 'pol'.*band=0"):
        xcalving.predict(unlabelled, net, **OPTS)
    np.testing.assert_array_equal(
        xcalving.predict(unlabelled, net, band=1, **OPTS).front_probability.values, reference)


def test_two_band_dims_are_refused(db, net):
    both = xr.concat([db, db], "band").assign_coords(band=["hh", "hv"])
    both = xr.concat([both, both], "pol").assign_coords(pol=["hh", "vv"])
    with pytest.raises(InputError, match=r"2 band or polarisation dims.*isel"):
        xcalving.predict(both, net, **OPTS)


def test_dataset_variables_follow_the_same_rule(db, net, reference):
    ds = xr.Dataset({"vh": db - 8.0, "vv": db})
    out = ds.calving.predict(net, **OPTS)
    assert out.attrs["band"] == "vv"
    np.testing.assert_array_equal(out.front_probability.values, reference)
    with pytest.raises(InputError, match="cross-polarised"):
        xr.Dataset({"vh": db, "hv": db}).calving.predict(net, **OPTS)


# --- CRS -----------------------------------------------------------------------------------------
def test_a_geographic_grid_is_refused_with_the_reprojection(db, net):
    lonlat = db.assign_coords(y=np.linspace(70.0, 69.9, 64),
                              x=np.linspace(-50.0, -49.7, 64)).rio.write_crs("EPSG:4326")
    with pytest.raises(InputError, match=r"projected grid in metres.*estimate_utm_crs"):
        xcalving.predict(lonlat, net, **OPTS)


def test_projected_and_crs_less_grids_predict(db, net, reference):
    assert xcalving.predict(db, net, **OPTS).rio.crs.to_epsg() == 3031
    bare = xr.DataArray(db.values, dims=db.dims, attrs={"units": "dB"})
    np.testing.assert_array_equal(xcalving.predict(bare, net, **OPTS).front_probability.values,
                                  reference)
