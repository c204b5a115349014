"""Ensembles and test-time flips: members on the input's grid, averaged, and their disagreement."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from torch import nn

import xcalving
from xcalving.errors import InputError, InputTypeError
from xcalving.inference.members import MEMBER_VARIABLE, MEMBER_ZONES, combine, flip

LINE = 120  # grey value of the one-pixel front line; glacier 200 on its left, ocean 40 right


class LineFinder(nn.Module):
    """Front where a pixel has the line's grey value, read ``shift`` columns to the left.

    ``shift=0`` is pointwise, so exactly flip-equivariant; ``shift>0`` puts the front
    ``shift`` pixels right of the line (the whole cube is one window, so nothing wraps in).
    """

    def __init__(self, shift=0):
        super().__init__()
        self.shift = shift
        # networks are cached by their weights: the shift is one, so that two differ
        self.register_buffer("shift_buffer", torch.tensor(float(shift)))

    def forward(self, x):
        seen = torch.roll(x, self.shift, dims=-1) if self.shift else x
        line = (LINE / 255 - 0.3047) / 0.3219
        front = 8 - 40 * (seen - line).abs()
        zones = torch.cat([-10 + 0 * x, -10 + 0 * x, 5 * x, -5 * x], dim=1)
        return {"front": front, "zones": zones}


@pytest.fixture(scope="module")
def cube():
    grey = np.full((2, 48, 64), 200, np.uint8)
    grey[:, :, 33:] = 40
    grey[0, :, 32] = LINE
    grey[1, :, 30] = LINE
    grey[1, :, 31:] = 40
    return xr.DataArray(grey, dims=("time", "y", "x"), name="sar", coords={
        "time": pd.date_range("2020-01-01", periods=2), "y": 1000.0 - 75.0 * np.arange(48),
        "x": 500.0 + 75.0 * np.arange(64)})


def _predict(cube, model, **kw):
    return xcalving.predict(cube, model, tile=64, overlap=0, scaling="uint8", **kw)


def test_flip_twice_is_identity_coordinates_included(cube):
    assert flip(flip(cube, ["y", "x"]), ["y", "x"]).identical(cube)
    assert flip(cube, ["x"]).x.values[0] == cube.x.values[-1]


def test_tta_members_lie_on_the_input_grid_and_average(cube):
    plain = _predict(cube, LineFinder().eval(), outputs="all")
    tta = _predict(cube, LineFinder().eval(), tta=True, outputs="all")
    members = tta[MEMBER_VARIABLE]
    assert members.dims == ("member", "time", "y", "x")
    assert [m.split(":")[1] for m in members.member.values] == ["none", "x", "y", "xy"]
    for name in ("x", "y"):
        xr.testing.assert_equal(tta[name], cube[name])
    # a pointwise network is flip-equivariant: every member is the plain prediction
    for member in members.member.values:
        np.testing.assert_allclose(members.sel(member=member).values,
                                   plain.front_probability.values, atol=1e-6)
    np.testing.assert_allclose(tta.front_probability.values, members.mean("member").values,
                               atol=1e-6)
    np.testing.assert_array_equal(tta.zones.values, plain.zones.values)
    assert tta.attrs["members"].count(":") == 4


def test_tta_is_lazy_and_chunk_invariant(cube):
    lazy = cube.chunk({"time": 1, "y": 48, "x": 64})
    a = _predict(lazy, LineFinder(2).eval(), tta=True)
    assert a.front_probability.chunks is not None
    b = _predict(cube.chunk({"time": 2, "y": 48, "x": 64}), LineFinder(2).eval(), tta=True)
    np.testing.assert_array_equal(a.front_probability.values, b.front_probability.values)
    np.testing.assert_array_equal(a[MEMBER_VARIABLE].values, b[MEMBER_VARIABLE].values)


def test_ensemble_of_weights_keeps_outputs_and_names(cube):
    pred = _predict(cube, [LineFinder(0).eval(), LineFinder(3).eval()])
    assert list(pred.data_vars) == ["front_probability", MEMBER_VARIABLE, "zones", MEMBER_ZONES]
    assert pred.attrs["members"] == "model-0,model-1"
    assert pred[MEMBER_VARIABLE].member.values.tolist() == ["model-0", "model-1"]
    first, second = (pred[MEMBER_VARIABLE].isel(member=i, time=0).values for i in (0, 1))
    assert np.argmax(first[10]) == 32 and np.argmax(second[10]) == 35
    np.testing.assert_allclose(pred.front_probability.values,
                               pred[MEMBER_VARIABLE].mean("member").values, atol=1e-6)


def test_fronts_measure_member_disagreement(cube):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same = xcalving.fronts(_predict(cube, [LineFinder(0).eval(), LineFinder(0).eval()]),
                               method="probability")
        apart = xcalving.fronts(_predict(cube, [LineFinder(0).eval(), LineFinder(3).eval()]),
                                method="probability", threshold=0.3)
        flips = xcalving.fronts(_predict(cube, LineFinder(0).eval(), tta=True),
                                method="probability")
        single = xcalving.fronts(_predict(cube, LineFinder(0).eval()), method="probability")
    assert (same["member_distance_px"] == 0).all() and (flips["member_distance_px"] == 0).all()
    # two lines 3 px apart traced from the mean; each member's own line is one of them
    assert (apart["member_distance_px"] > 0.5).all() and (apart["member_distance_px"] < 3).all()
    assert single["member_distance_px"].isna().all()
    assert (same.length_px > 40).all()


def test_combine_refuses_members_on_other_grids(cube):
    a = _predict(cube, LineFinder().eval())
    b = a.assign_coords(x=a.x + 10.0)
    with pytest.raises(InputError, match="not on one grid"):
        combine([a, b])
    with pytest.raises(InputError, match="front_probability"):
        combine({"a": a, "b": a[["zones"]]})
    with pytest.raises(InputTypeError, match="list or dict"):
        combine(a)
    with pytest.raises(InputError, match="empty list"):
        _predict(cube, [])
    with pytest.raises(InputTypeError, match="tta"):
        _predict(cube, LineFinder().eval(), tta="yes")


def test_combine_takes_zones_from_the_mean_zone_probability(cube):
    a = _predict(cube, LineFinder().eval(), outputs="all")
    b = a.copy()
    b["zone_probability"] = a.zone_probability[:, ::-1].assign_coords(zone=a.zone.values)
    both = combine({"a": a, "b": b, "c": b})  # b twice: its arg-max wins
    np.testing.assert_array_equal(both.zones.values,
                                  b.zone_probability.argmax("zone").values.astype(np.uint8))
    assert both.attrs["members"] == "a,b,c"
