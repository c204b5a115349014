"""Robust per-scene scaling (``Scaling.stretch``): the rule, predict's scene-wide stretch, refusals.

A network trained with a stretch sees every scene mapped from its own 1st..99th percentile onto
0..1, so a sensor's gain and offset must not change its answer; the percentiles come from the
whole scene, never from a chunk, so the chunks must not change it either.
"""

import copy

import numpy as np
import pytest
import xarray as xr

import xcalving
from xcalving.errors import InputError
from xcalving.scaling import (
    CAFFE_SCALING,
    ROBUST_SCALING,
    Scaling,
    fill_value,
    stretch_bounds,
    to_network_input,
)

OPTS = {"tile": 64, "overlap": 16}


@pytest.fixture(scope="module")
def db():
    """Three synthetic scenes in dB (128 × 128) with a no-data swath edge, inside DB_RANGE."""
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(3, shape=(128, 128), seed=5)
    return cube.sar.clip(-24.0, 4.0).assign_attrs(units="dB")


@pytest.fixture(scope="module")
def robust_net(net):
    stretched = copy.deepcopy(net)
    object.__setattr__(stretched, "xcalving_scaling", ROBUST_SCALING)
    return stretched


# --- the rule ------------------------------------------------------------------------------------
def test_a_stretch_cancels_gain_and_offset_and_keeps_no_data():
    rng = np.random.default_rng(1)
    grey = rng.integers(1, 120, (2, 40, 50)).astype(np.float32)
    grey[0, :5] = 0  # no data
    brighter = np.where(grey > 0, 1.7 * grey + 30, 0)
    a = to_network_input(grey, "uint8", ROBUST_SCALING)
    b = to_network_input(brighter, "uint8", ROBUST_SCALING)
    assert np.isnan(a[0, :5]).all() and np.isnan(b[0, :5]).all()
    np.testing.assert_allclose(a, b, atol=1e-5)
    # without the stretch the same two inputs differ
    assert np.nanmax(abs(to_network_input(grey, "uint8", CAFFE_SCALING)
                         - to_network_input(brighter, "uint8", CAFFE_SCALING))) > 0.5


def test_the_stretch_maps_the_percentiles_to_0_and_1_clipped():
    values = np.arange(1, 101, dtype=np.float32).reshape(1, 10, 10)
    bounds = stretch_bounds(values, ROBUST_SCALING)
    np.testing.assert_allclose(bounds[0], np.percentile(values, [1, 99]), rtol=1e-6)
    unit = Scaling("uint8", 0.0, 1.0, 0.0, stretch=(1, 99))
    out = to_network_input(values, "uint8", unit)
    assert out.min() == 0.0 and out.max() == 1.0
    # the interpolated percentiles are 1.99 and 99.01: only 1 and 100 lie beyond, clipped
    assert (out == 0.0).sum() == 1 and (out == 1.0).sum() == 1
    np.testing.assert_allclose(out[0, 4, 9], (50 - 1.99) / (99.01 - 1.99), rtol=1e-5)


def test_given_bounds_win_over_the_values_own():
    values = np.full((1, 4, 4), 50.0, np.float32)
    unit = Scaling("uint8", 0.0, 1.0, 0.0, stretch=(1, 99))
    out = to_network_input(values, "uint8", unit, bounds=np.array([[0.0, 100.0]]))
    np.testing.assert_allclose(out, 0.5)
    # a constant scene on its own gets (v, v + 1): 0, not a division by zero
    np.testing.assert_allclose(to_network_input(values, "uint8", unit), 0.0)


def test_no_data_gets_the_stretched_zero():
    assert fill_value(ROBUST_SCALING) == pytest.approx(-0.3262 / 0.2704)
    assert fill_value(CAFFE_SCALING) == pytest.approx(-0.3047 / 0.3219)


def test_the_stretch_is_recorded_and_old_records_have_none():
    assert Scaling.from_dict(ROBUST_SCALING.to_dict()) == ROBUST_SCALING
    assert "stretch" not in CAFFE_SCALING.to_dict()  # weights of earlier versions read the same
    assert Scaling.from_dict(CAFFE_SCALING.to_dict()).stretch is None


@pytest.mark.parametrize("stretch", [(99, 1), (-1, 50), (5, 101), (10, 10)])
def test_bad_percentiles_are_refused(stretch):
    with pytest.raises(InputError, match="Scaling.stretch must be percentiles"):
        Scaling(stretch=stretch)


# --- predict --------------------------------------------------------------------------------------
def test_predict_stretches_every_scene_so_gain_and_offset_do_not_matter(db, robust_net, net):
    plain = xcalving.predict(db, robust_net, **OPTS).front_probability.values
    shifted = (db * 1.0 + 3.0).assign_attrs(units="dB")  # an offset in dB: a grey offset
    again = xcalving.predict(shifted, robust_net, **OPTS).front_probability.values
    np.testing.assert_allclose(plain, again, atol=2e-3)
    # the same offset moves a network without the stretch
    base = xcalving.predict(db, net, **OPTS).front_probability.values
    moved = xcalving.predict(shifted, net, **OPTS).front_probability.values
    assert np.nanmax(abs(base - moved)) > 10 * np.nanmax(abs(plain - again))


def test_the_scene_stretch_does_not_depend_on_the_chunks(db, robust_net):
    whole = xcalving.predict(db.chunk({"time": -1, "y": -1, "x": -1}), robust_net, **OPTS)
    small = xcalving.predict(db.chunk({"time": 1, "y": 64, "x": 64}), robust_net, **OPTS)
    # float rounding of other batch shapes only (a per-chunk stretch would move it by far more)
    np.testing.assert_allclose(whole.front_probability.values, small.front_probability.values,
                               atol=1e-5)


def test_each_scene_gets_its_own_stretch(db, robust_net):
    """Brightening one date changes nothing, on that date or on the others."""
    brighter = db.copy(data=db.values.copy())
    brighter[1] = brighter[1] + 1.0  # still inside DB_RANGE: nothing is clipped
    a = xcalving.predict(db, robust_net, **OPTS).front_probability.values
    b = xcalving.predict(brighter, robust_net, **OPTS).front_probability.values
    np.testing.assert_allclose(a[[0, 2]], b[[0, 2]], atol=1e-6)
    np.testing.assert_allclose(a[1], b[1], atol=2e-3)


def test_predict_records_the_stretch(db, robust_net):
    out = xcalving.predict(db, robust_net, **OPTS)
    assert '"stretch": [1.0, 99.0]' in out.attrs["network_scaling"]


def test_saved_weights_keep_the_stretch(tmp_path, robust_net):
    from xcalving.model import load_model, save_model

    path = tmp_path / "robust.safetensors"
    save_model(robust_net, path, scaling=ROBUST_SCALING)
    assert load_model(path).xcalving_scaling == ROBUST_SCALING


def test_temporal_context_with_a_stretch_is_refused(db):
    from xcalving.model import ASPPUNet
    from xcalving.train import TrainConfig

    net3 = ASPPUNet(width=4, in_channels=3).eval()
    object.__setattr__(net3, "xcalving_scaling", ROBUST_SCALING)
    with pytest.raises(InputError, match="temporal context with robust per-scene scaling"):
        xcalving.predict(db, net3, **OPTS)
    with pytest.raises(InputError, match="context=True and a scaling with a stretch"):
        TrainConfig(store="s", out="o", context=True, scaling=ROBUST_SCALING.to_dict())
    with pytest.raises(InputError, match="scaling must be a Scaling's to_dict"):
        TrainConfig(store="s", out="o", scaling={"domain": "uint8"})


def test_a_two_d_scene_is_stretched_like_a_cube_of_one(db, robust_net):
    one = xcalving.predict(db.isel(time=0), robust_net, **OPTS).front_probability.values
    cube = xcalving.predict(db, robust_net, **OPTS).front_probability.values[0]
    np.testing.assert_allclose(one, cube, atol=1e-6)
    assert isinstance(db.isel(time=0), xr.DataArray)
