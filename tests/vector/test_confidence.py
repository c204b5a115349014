"""Confidence: signals with known answers, clean before corrupted fronts, one pass."""

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from counting import CountingNet, network_calls
from scipy import ndimage

import xcalving
from xcalving.data.synthetic import glacier_cube
from xcalving.errors import InputError
from xcalving.vector import assess_fronts
from xcalving.vector.confidence import (
    CALIBRATION,
    HEAD_CAP_PX,
    SIGNALS,
    Calibration,
    confidence,
    fit_calibration,
    head_distance,
    scene_signals,
    side_margin,
)
from xcalving.zones import GLACIER, OCEAN, front_from_zones

BAD = 4


@pytest.fixture(scope="module")
def cube():
    cube, _ = glacier_cube(8, shape=(128, 128), seed=3)
    return cube[["zones"]]


def _corrupted(cube, pixels=25):
    zones = cube.zones.values.copy()
    grow = ndimage.binary_dilation(zones[BAD] == GLACIER, iterations=pixels) & \
        (zones[BAD] == OCEAN)
    zones[BAD][grow] = GLACIER
    return cube.copy(data={"zones": zones})


def _half(n=40, column=20):
    zones = np.full((n, n), GLACIER, np.uint8)
    zones[:, column:] = OCEAN
    return zones


# --- signals on hand-built scenes ----------------------------------------------------------------
def test_head_distance_is_the_mean_distance_capped():
    a, b = np.zeros((50, 100), bool), np.zeros((50, 100), bool)
    a[:, 10], b[:, 14] = True, True
    assert head_distance(a, b) == pytest.approx(4.0)
    b[:] = False
    b[:, 90] = True  # 80 px away: every distance capped
    assert head_distance(a, b) == pytest.approx(HEAD_CAP_PX)
    assert head_distance(a, np.zeros_like(a)) == HEAD_CAP_PX  # the other head found nothing
    assert np.isnan(head_distance(np.zeros_like(a), b))


def test_side_margin_reads_probabilities_or_the_purity_of_zones():
    zones = _half()
    front = front_from_zones(zones)
    to_front = ndimage.distance_transform_edt(~front)
    assert side_margin(to_front, zones) == 1.0
    margin = np.where(zones == OCEAN, 0.6, -0.2)  # P(ocean) - P(land) per pixel
    assert side_margin(to_front, zones, margin) == pytest.approx(
        np.mean(np.where(zones == OCEAN, 0.6, 0.2)[(to_front >= 1) & (to_front <= 5)]))
    speckled = zones.copy()
    speckled[::4, 14:19] = OCEAN  # ocean specks on the glacier side (cleaned away)
    assert side_margin(to_front, speckled) < 1.0


def test_scene_signals_of_a_clean_and_a_fragmented_front():
    zones = _half()
    front = front_from_zones(zones)
    probability = front.astype(np.float32)  # the front head agrees
    clean = scene_signals(front, [39.0], method="zones", zones=zones, probability=probability)
    assert np.isnan(clean.pop("member_distance_px"))  # no ensemble members
    assert clean == {"head_distance_px": 0.0, "side_margin": 1.0, "longest_share": 1.0}
    members = [front, np.roll(front, 4, axis=1)]  # one agrees, one lies 4 px away
    assert scene_signals(front, [39.0], method="zones", zones=zones,
                         member_fronts=members)["member_distance_px"] == pytest.approx(2.0)
    broken = scene_signals(front, [30.0, 10.0], method="zones", zones=zones)
    assert broken["longest_share"] == 0.75 and np.isnan(broken["head_distance_px"])
    assert all(np.isnan(v) for v in scene_signals(np.zeros_like(front), [], method="zones",
                                                  zones=zones).values())


# --- the model -----------------------------------------------------------------------------------
def test_confidence_orders_a_clean_and_a_corrupted_prediction_of_the_same_scene(cube):
    clean = xcalving.fronts(cube, min_length_px=10)
    bad = xcalving.fronts(_corrupted(cube), min_length_px=10)
    assert bad["confidence"].iloc[BAD] < clean["confidence"].iloc[BAD] - 0.2
    assert bad["confidence"].iloc[BAD] == bad["confidence"].min()
    assert ((clean["confidence"] > 0) & (clean["confidence"] < 1)).all()


def test_confidence_is_zero_without_a_front_and_the_model_is_documented():
    frame = pd.DataFrame({name: [np.nan, 2.0] for name in SIGNALS})
    frame.loc[1, "longest_share"] = 1.0
    values = confidence(frame)
    assert values[0] == 0.0 and 0 < values[1] < 1
    assert set(CALIBRATION) == {"zones", "probability", "gated"}  # one model per front method
    assert CALIBRATION["gated"] is CALIBRATION["probability"]  # the same head, until fit apart
    assert all(c.source for c in CALIBRATION.values())
    with pytest.raises(InputError, match="method"):
        confidence(frame, method="edges")
    with pytest.raises(InputError, match="side_margin"):
        Calibration(0.0, {"side_margin": 1.0}, {"side_margin": 0.0},
                    {"side_margin": 1.0}).score(frame.drop(columns="side_margin"))


def test_fit_calibration_keeps_signals_with_the_expected_sign_in_every_group():
    rng = np.random.default_rng(1)
    n = 300
    error = rng.gamma(2.0, 10.0, n)
    frame = pd.DataFrame({
        "neighbour_distance_px": error * rng.uniform(0.5, 1.5, n),  # tracks the error
        "head_distance_px": rng.uniform(0, 30, n),  # noise
        "side_margin": rng.uniform(-1, 1, n),
        "longest_share": rng.uniform(0.2, 1, n)})
    model = fit_calibration(frame, error, groups=np.repeat(["a", "b", "c"], n // 3))
    assert "neighbour_distance_px" in model.weights
    assert model.weights["neighbour_distance_px"] < 0
    assert len(model.weights) < len(SIGNALS)  # noise does not keep one sign in every group
    scores = model.score(frame)
    assert np.corrcoef(scores, error)[0, 1] < -0.5
    again = assess_fronts(_frame_of(frame), method="zones", calibration=model)
    assert "confidence" in again.columns


def _frame_of(signals):
    import geopandas as gpd
    import shapely

    return gpd.GeoDataFrame(signals.iloc[:5].reset_index(drop=True),
                            geometry=[shapely.LineString([(0, k), (10, k)]) for k in range(5)])


# --- one pass ------------------------------------------------------------------------------------
def test_signals_from_zone_probabilities_cost_no_second_pass():
    cube, _ = glacier_cube(3, shape=(128, 128), seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = xcalving.predict(cube.sar.chunk({"time": 1, "y": 64, "x": 64}), CountingNet(),
                                tile=64, overlap=16, outputs="all")
    computed = network_calls(pred.compute)
    assert computed > 0
    assert network_calls(lambda: xcalving.fronts(pred, min_length_px=0)) <= computed
    eager = xcalving.fronts(pred.compute(), min_length_px=0)
    lazy = xcalving.fronts(pred, min_length_px=0)
    pd.testing.assert_series_equal(lazy["side_margin"], eager["side_margin"])
    assert lazy["side_margin"].between(-1, 1).any()


def test_a_single_scene_has_no_neighbours_but_a_confidence(cube):
    one = xcalving.fronts(cube.isel(time=0), min_length_px=10)
    assert np.isnan(one["neighbour_distance_px"].iloc[0])
    assert 0 < one["confidence"].iloc[0] < 1  # the missing signal counts as average
    assert not one["outlier"].iloc[0]


def test_probability_method_signals(cube):
    probability = xr.zeros_like(cube.zones, dtype=np.float32)
    probability.values[:] = np.stack([front_from_zones(z) for z in cube.zones.values])
    ds = cube.assign(front_probability=probability)
    frame = xcalving.fronts(ds, method="probability", min_length_px=10)
    assert (frame["head_distance_px"] < 2).all()  # the zone head's front is the same line
    assert frame["confidence"].nunique() == 1  # the shipped model has no signal for it
