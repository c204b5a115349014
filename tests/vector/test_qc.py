"""Time-series QC: injected bad dates are flagged (never dropped), only within one grid."""

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy import ndimage

import xcalving
from xcalving.data.synthetic import glacier_cube
from xcalving.errors import InputError, XcalvingWarning
from xcalving.vector import (
    box_from_centreline,
    flag_outliers,
    read_fronts,
    terminus_change,
    write_fronts,
)
from xcalving.vector.files import FRONT_FORMATS
from xcalving.vector.qc import grid_id, sinuosity
from xcalving.zones import GLACIER, OCEAN, front_from_zones

BAD = 4  # the corrupted date


@pytest.fixture(scope="module")
def cube():
    cube, _ = glacier_cube(8, shape=(128, 128), seed=3)
    return cube[["zones"]]


def advanced(cube, date=BAD, pixels=25):
    """The zones with the glacier pushed ``pixels`` into the ocean on one date (a bad front)."""
    zones = cube.zones.values.copy()
    grow = ndimage.binary_dilation(zones[date] == GLACIER, iterations=pixels) & \
        (zones[date] == OCEAN)
    zones[date][grow] = GLACIER
    return cube.copy(data={"zones": zones})


def noisy(cube, date=BAD, share=0.35, seed=0):
    """The zones with glacier and ocean swapped at random near the front on one date."""
    zones = cube.zones.values.copy()
    near = ndimage.binary_dilation(front_from_zones(zones[date]), iterations=8)
    flip = near & (np.random.default_rng(seed).random(near.shape) < share) & \
        np.isin(zones[date], (GLACIER, OCEAN))
    zones[date][flip] = GLACIER + OCEAN - zones[date][flip]
    return cube.copy(data={"zones": zones})


def fronts(ds):
    return xcalving.fronts(ds, min_length_px=10)


def test_a_clean_series_has_no_flags(cube):
    frame = fronts(cube)
    assert not frame["outlier"].any() and (frame["qc_reason"] == "").all()
    assert frame["outlier"].dtype == bool and frame["grid_id"].nunique() == 1


def test_a_shifted_front_is_flagged_not_deleted(cube):
    frame = fronts(advanced(cube))
    assert len(frame) == 8 and not frame.geometry.iloc[BAD].is_empty  # kept
    assert list(frame["outlier"]) == [k == BAD for k in range(8)]
    assert frame["qc_reason"].iloc[BAD] == "distance"


def test_a_jagged_front_is_flagged_by_the_jaggedness_rule_when_asked(cube):
    frame = fronts(noisy(cube))
    assert frame["sinuosity"].iloc[BAD] > 1.2 * frame["sinuosity"].drop(frame.index[BAD]).max()
    flagged = flag_outliers(frame, jaggedness_k=2.0, length_sides="both")
    assert list(flagged["outlier"]) == [k == BAD for k in range(8)]
    assert set(flagged["qc_reason"].iloc[BAD].split(",")) == {"length", "jaggedness"}


def test_an_empty_front_is_flagged_empty(cube):
    ds = cube.copy(data={"zones": cube.zones.values.copy()})
    ds["zones"].values[2] = GLACIER  # no ocean: no front
    frame = fronts(ds)
    assert frame["qc_reason"].iloc[2] == "empty" and frame["outlier"].iloc[2]
    assert frame["confidence"].iloc[2] == 0.0


def test_thresholds_are_arguments_and_bad_ones_are_refused(cube):
    frame = fronts(advanced(cube))
    assert not flag_outliers(frame, distance_k=50.0)["outlier"].any()
    assert not flag_outliers(frame, min_dates=8)["outlier"].any()  # 7 neighbours at most
    for bad in ({"window": 0}, {"distance_k": -1}, {"length_sides": "longer"},
                {"jaggedness_k": float("nan")}):
        with pytest.raises(InputError):
            flag_outliers(frame, **bad)


def _line(y, wiggle=0.0):
    return shapely.LineString([(0, y), (400, y + wiggle), (800, y)])


def test_only_fronts_on_the_same_grid_are_compared():
    times = pd.date_range("2020-01-01", periods=16, freq="6D", name="time")
    # two glaciers (grids) interleaved in time, 5 km apart: each series is steady
    ys = [1000 + 3 * k if k % 2 == 0 else 6000 - 2 * k for k in range(16)]
    frame = gpd.GeoDataFrame({"grid_id": ["a" if k % 2 == 0 else "b" for k in range(16)]},
                             geometry=[_line(y) for y in ys], index=times)
    assert not flag_outliers(frame)["outlier"].any()
    spiked = frame.copy()
    spiked.loc[times[6], "geometry"] = _line(1600)
    assert list(flag_outliers(spiked)["outlier"].to_numpy().nonzero()[0]) == [6]
    assert grid_id(None, None, (128, 128)) != grid_id("EPSG:3031", None, (128, 128))


def test_sinuosity_of_straight_and_bent_lines():
    assert sinuosity(_line(0)) == pytest.approx(1.0)
    assert sinuosity(_line(0, wiggle=300)) == pytest.approx(1000 / 800)
    assert np.isnan(sinuosity(shapely.LineString()))


def _series_with_a_spike():
    times = pd.date_range("2020-01-01", periods=12, freq="30D", name="time")
    ys = [3000 - 20 * k for k in range(12)]
    ys[7] = 1500  # a bad date: a 1.3 km jump and back
    return gpd.GeoDataFrame(geometry=[shapely.LineString([(-100, y), (1100, y)]) for y in ys],
                            index=times)


def test_terminus_change_leaves_flagged_fronts_out_and_reports_them():
    box = box_from_centreline(shapely.LineString([(500, 0), (500, 5000)]), 1000)
    frame = _series_with_a_spike()
    change = terminus_change(frame, box, ocean=shapely.Point(500, 6000))
    assert change["outlier"].tolist() == [k == 7 for k in range(12)]
    assert "position" in change["qc_reason"].iloc[7]
    assert np.isnan(change["change_m"].iloc[7]) and np.isnan(change["rate_m_per_yr"].iloc[7])
    assert change["position_m"].iloc[7] == pytest.approx(1500)  # measured, not used
    assert change["rate_m_per_yr"].iloc[8] == pytest.approx(-40 / (60 / 365.25), rel=1e-6)
    everything = terminus_change(frame, box, include_outliers=True,
                                 ocean=shapely.Point(500, 6000))
    assert everything["change_m"].iloc[7] == pytest.approx(-1500)
    flagged = flag_outliers(frame, box=box)  # the same rule, before terminus_change
    assert "position" in flagged["qc_reason"].iloc[7]


def test_the_map_draws_flagged_fronts_dashed_grey_and_the_plot_marks_them(cube):
    from xcalving.plot import front_map, terminus_plot

    frame = fronts(advanced(cube))
    ax = front_map(frame)
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert dashed and all(line.get_color() == "0.55" for line in dashed)
    assert "flagged (QC)" in [t.get_text() for t in ax.get_legend().get_texts()]
    box = box_from_centreline(shapely.LineString([(500, 0), (500, 5000)]), 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XcalvingWarning)
        change = terminus_change(_series_with_a_spike(), box)
    labels = [line.get_label() for line in terminus_plot(change).axes[0].lines]
    assert labels == ["position_m", "flagged (QC)"]
    fig = terminus_plot(change, column="change_m")
    marked = fig.axes[0].lines[1].get_ydata()
    assert marked[0] == pytest.approx(1500 - 3000)  # drawn at its change, off the line


@pytest.mark.parametrize("suffix", sorted(FRONT_FORMATS))
def test_confidence_and_flags_survive_every_format(cube, tmp_path, suffix):
    frame = fronts(advanced(cube))
    back = read_fronts(write_fronts(frame, tmp_path / f"fronts{suffix}"))
    assert back["outlier"].dtype == bool, back["outlier"].dtype
    assert back["outlier"].tolist() == frame["outlier"].tolist()
    assert back["qc_reason"].fillna("").tolist() == frame["qc_reason"].tolist()
    np.testing.assert_allclose(back["confidence"], frame["confidence"])
    assert back["grid_id"].tolist() == frame["grid_id"].tolist()


# --- the edges of a series -----------------------------------------------------------------------
BOX = box_from_centreline(shapely.LineString([(500, 0), (500, 5000)]), 1000)
ALL_RULES = {"box": BOX, "length_sides": "both", "jaggedness_k": 2.0}


def _series(ys, *, tilt=0.0, freq="12D", **attrs):
    """Fronts at ``ys`` (m), 1200 m long, each tilted ``tilt`` m from end to end."""
    times = pd.date_range("2020-01-01", periods=len(ys), freq=freq, name="time")
    frame = gpd.GeoDataFrame(geometry=[shapely.LineString([(-100, y), (1100, y + tilt)])
                                       for y in ys], index=times)
    frame.attrs.update(attrs)
    return frame


@pytest.mark.parametrize("n", [5, 6, 8, 12, 20])
@pytest.mark.parametrize("speed", [3.0, 30.0, 300.0])
def test_a_steady_retreat_flags_nothing_not_even_its_first_and_last_fronts(n, speed):
    frame = _series([4000 - speed * k for k in range(n)], tilt=35.0)
    flagged = flag_outliers(frame, **ALL_RULES)
    assert flagged["qc_reason"].tolist() == [""] * n


def test_an_accelerating_retreat_with_uneven_dates_flags_nothing():
    times = pd.DatetimeIndex(["2020-01-01", "2020-01-13", "2020-02-18", "2020-03-01",
                              "2020-04-06", "2020-04-18", "2020-04-30", "2020-06-05",
                              "2020-06-17", "2020-07-11"], name="time")
    days = np.asarray((times - times[0]).days, float)
    frame = gpd.GeoDataFrame(geometry=[_line(4000 - 2 * d - 0.01 * d ** 2) for d in days],
                             index=times)
    assert flag_outliers(frame, box=BOX)["qc_reason"].tolist() == [""] * len(times)


@pytest.mark.parametrize("where", [0, 4, 11])
@pytest.mark.parametrize("pixel_size", [None, 1.0, 50.0])
def test_a_stationary_series_does_not_flag_a_front_one_metre_off(where, pixel_size):
    ys = [3000.0] * 12
    ys[where] += 1.0
    attrs = {} if pixel_size is None else {"pixel_size": pixel_size}
    for tilt in (0.0, 35.0):
        frame = _series(ys, tilt=tilt, **attrs)
        assert flag_outliers(frame, **ALL_RULES)["qc_reason"].tolist() == [""] * 12
    # a front that sits 1 m off the upstream edge of the box: the position rule has a floor too
    near_edge = _series([2.0 if k == where else 1.0 for k in range(12)], **attrs)
    assert not flag_outliers(near_edge, box=BOX)["outlier"].any()


@pytest.mark.parametrize("where", [0, 5, 11])
def test_a_spike_is_still_flagged_at_either_end_of_a_steady_retreat(where):
    ys = [3000 - 30.0 * k for k in range(12)]
    ys[where] += 1000.0  # beyond the position rule's floor too (a tenth of the position)
    flagged = flag_outliers(_series(ys, tilt=35.0), box=BOX)
    assert flagged["outlier"].to_numpy().nonzero()[0].tolist() == [where]
    assert set(flagged["qc_reason"].iloc[where].split(",")) == {"distance", "position"}


def test_a_stationary_series_flags_a_real_jump_even_with_a_pixel_floor():
    ys = [3000.0] * 12
    ys[6] += 400.0
    flagged = flag_outliers(_series(ys, pixel_size=50.0), box=BOX)
    assert flagged["outlier"].to_numpy().nonzero()[0].tolist() == [6]


def test_rows_without_a_date_are_not_compared_and_shuffled_rows_change_nothing():
    ys = [4000 - 30.0 * k for k in range(10)]
    ys[6] += 600.0
    frame = _series(ys)
    shuffled = frame.iloc[np.random.default_rng(0).permutation(10)]
    pd.testing.assert_frame_equal(flag_outliers(shuffled).sort_index(), flag_outliers(frame),
                                  check_freq=False)
    undated = frame.copy()
    undated.index = undated.index.where(np.arange(10) != 3)  # NaT
    flagged = flag_outliers(undated)
    assert flagged["outlier"].to_numpy().nonzero()[0].tolist() == [6]


def test_a_calving_event_is_no_outlier_on_either_side_of_it():
    ys = [3000 - 10.0 * k - (500.0 if k >= 7 else 0.0) for k in range(16)]
    assert flag_outliers(_series(ys, tilt=35.0), box=BOX)["qc_reason"].tolist() == [""] * 16
