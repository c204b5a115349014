import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from xcalving.errors import InputError, XcalvingWarning
from xcalving.vector import box_from_centreline, orient_box, terminus_change, terminus_position

# a box 1000 m wide (x) and 5000 m long (y), upstream edge at y = 0
BOX = shapely.Polygon([(0, 0), (1000, 0), (1000, 5000), (0, 5000)])


def straight_front(y):
    return shapely.LineString([(-100, y), (1100, y)])


def test_straight_front_position_is_its_distance():
    assert terminus_position(straight_front(1234.0), BOX) == pytest.approx(1234.0)


def test_oblique_front_position_is_the_mean_distance():
    front = shapely.LineString([(-100, 900), (1100, 2100)])  # y = x + 1000 across the box
    assert terminus_position(front, BOX) == pytest.approx(1500.0)


def test_rotated_box_gives_the_same_answer():
    rotated = shapely.affinity.rotate(BOX, 37, origin=(0, 0))
    front = shapely.affinity.rotate(straight_front(2000.0), 37, origin=(0, 0))
    assert terminus_position(front, rotated) == pytest.approx(2000.0)


def test_time_series_change_and_rates():
    times = pd.DatetimeIndex(["2020-01-01", "2020-07-01", "2021-01-01"], name="time")
    frame = gpd.GeoDataFrame(geometry=[straight_front(3000), straight_front(2800),
                                       straight_front(2500)], index=times)
    result = terminus_change(frame, BOX)
    np.testing.assert_allclose(result["position_m"], [3000, 2800, 2500])
    np.testing.assert_allclose(result["change_m"], [0, -200, -500])
    years = np.diff((times - times[0]).days) / 365.25
    np.testing.assert_allclose(result["rate_m_per_yr"].iloc[1:], [-200 / years[0],
                                                                  -300 / years[1]])
    assert np.isnan(result["rate_m_per_yr"].iloc[0])


def test_front_not_crossing_the_box_is_nan_with_a_warning():
    times = pd.DatetimeIndex(["2020-01-01", "2020-02-01"], name="time")
    partial = shapely.LineString([(100, 2000), (500, 2000)])
    frame = gpd.GeoDataFrame(geometry=[straight_front(3000), partial], index=times)
    with pytest.warns(XcalvingWarning, match="1 front"):
        result = terminus_change(frame, BOX)
    assert np.isnan(result["position_m"].iloc[1])


def test_box_must_be_a_rectangle():
    with pytest.raises(InputError, match="rectangle"):
        terminus_position(straight_front(10), shapely.Polygon([(0, 0), (1, 0), (0, 1)]))


def test_box_as_geoseries_in_the_fronts_crs_gives_the_same_positions():
    import geopandas as gpd
    import pandas as pd
    import shapely

    from xcalving.vector import terminus_change

    box = shapely.Polygon([(0, -50), (0, 50), (200, 50), (200, -50)])
    fronts = gpd.GeoDataFrame(
        geometry=[shapely.LineString([(120, -80), (120, 80)]),
                  shapely.LineString([(100, -80), (100, 80)])],
        index=pd.DatetimeIndex(["2020-01-01", "2021-01-01"], name="time"), crs=32624)
    plain = terminus_change(fronts, box)
    framed = terminus_change(fronts, gpd.GeoSeries([box], crs=32624))
    pd.testing.assert_frame_equal(plain, framed)
    assert plain["change_m"].iloc[-1] == pytest.approx(-20.0)


# --- orientation ---------------------------------------------------------------------------------
WRONG_WAY = shapely.Polygon([(0, 5000), (1000, 5000), (1000, 0), (0, 0)])  # upstream edge at sea
OCEAN = shapely.Point(500, 6000)  # the ocean is beyond y = 5000


def _retreat():
    """A front that retreats 591 m, from y = 3000 to y = 2409 (the ocean is at large y)."""
    times = pd.DatetimeIndex(["2020-01-01", "2021-01-01"], name="time")
    return gpd.GeoDataFrame(geometry=[straight_front(3000), straight_front(2409)], index=times,
                            crs=32624)


def _zones(ocean_from_y=2700.0):
    """A zone raster on the box's grid: glacier below ``ocean_from_y``, ocean above."""
    import xarray as xr

    y = np.arange(5990, -1000, -20.0)
    x = np.arange(-490, 1500, 20.0)
    values = np.where(y[:, None] < ocean_from_y, 2, 3).astype(np.uint8) + 0 * x[None, :]
    return xr.DataArray(values.astype(np.uint8), dims=("y", "x"), coords={"y": y, "x": x})


def test_a_box_drawn_the_wrong_way_round_reads_a_retreat_as_an_advance_unless_told():
    unchecked = terminus_change(_retreat(), WRONG_WAY)
    assert unchecked["change_m"].iloc[-1] == pytest.approx(591.0)  # the trap
    assert unchecked.attrs["orientation"].startswith("unchecked")
    with pytest.raises(InputError, match="wrong way round.*orient_box"):
        terminus_change(_retreat(), WRONG_WAY, ocean=OCEAN)
    with pytest.raises(InputError, match="wrong way round"):
        terminus_change(_retreat(), WRONG_WAY, zones=_zones())
    turned = orient_box(WRONG_WAY, ocean=OCEAN)
    result = terminus_change(_retreat(), turned, ocean=OCEAN, zones=_zones())
    assert result["change_m"].iloc[-1] == pytest.approx(-591.0)
    assert result.attrs["orientation"] == "checked"
    assert orient_box(BOX, ocean=OCEAN) is BOX
    assert orient_box(WRONG_WAY, zones=_zones()).equals_exact(turned, 0)


def test_an_ocean_polygon_or_a_lazy_zone_stack_orients_the_box_too():
    sea = shapely.box(-5000, 4000, 6000, 20000)  # overlaps the downstream end of the box
    assert orient_box(WRONG_WAY, ocean=sea).exterior.coords[0] == (1000.0, 0.0)
    stack = _zones().expand_dims(time=3).chunk({"time": 1})
    assert terminus_change(_retreat(), BOX, zones=stack)["change_m"].iloc[-1] == \
        pytest.approx(-591.0)


def test_hints_that_do_not_decide_are_refused():
    everywhere = shapely.box(-5000, -5000, 6000, 20000)  # covers the whole box
    with pytest.raises(InputError, match="cannot tell which end.*ocean= does not decide"):
        terminus_change(_retreat(), BOX, ocean=everywhere)
    with pytest.raises(InputError, match="zones= does not decide"):
        terminus_change(_retreat(), BOX, zones=_zones() * 0 + 1)  # all rock
    with pytest.raises(InputError, match="disagree"):
        terminus_change(_retreat(), BOX, ocean=shapely.Point(500, -1000), zones=_zones())
    with pytest.raises(InputError, match="needs ocean= .* or zones="):
        orient_box(BOX)
    with pytest.raises(InputError, match="ocean must be a shapely geometry"):
        orient_box(BOX, ocean=(500, 6000))
    with pytest.raises(InputError, match="zones must be the prediction's zones"):
        orient_box(BOX, zones=np.zeros((4, 4)))


def test_zones_in_another_crs_are_refused():
    zones = _zones().rio.write_crs(3413)
    with pytest.raises(InputError, match="zones are in .* fronts are in"):
        terminus_change(_retreat(), BOX, zones=zones)


def test_box_from_centreline_is_oriented_and_measures_along_the_line():
    line = shapely.LineString([(0, 0), (1200, 300), (3000, 4000)])  # only the ends count
    box = box_from_centreline(line, 800)
    corners = np.asarray(box.exterior.coords[:4])
    np.testing.assert_allclose((corners[0] + corners[1]) / 2, [0, 0], atol=1e-9)
    np.testing.assert_allclose((corners[2] + corners[3]) / 2, [3000, 4000], atol=1e-9)
    assert box.area == pytest.approx(800 * 5000)
    assert orient_box(box, ocean=shapely.Point(3500, 4500)).equals_exact(box, 0)
    across = shapely.affinity.rotate(straight_front(0), np.degrees(np.arctan2(4000, 3000)) - 90,
                                     origin=(500, 0))  # a front across the line
    front = shapely.affinity.translate(across, -500 + 0.6 * 1500, 0.8 * 1500)
    assert terminus_position(front, box) == pytest.approx(1500.0)


@pytest.mark.parametrize("line, width, match", [
    (shapely.LineString([(5, 5), (0, 0), (5, 5)]), 100, "first and last points must differ"),
    (shapely.Point(0, 0), 100, "LineString of 2 or more points"),
    (shapely.LineString(), 100, "LineString of 2 or more points"),
    (shapely.LineString([(0, 0), (0, 10)]), 0, "width must be"),
    (shapely.LineString([(0, 0), (0, 10)]), float("nan"), "width must be"),
])
def test_box_from_a_degenerate_centreline_is_refused(line, width, match):
    with pytest.raises(InputError, match=match):
        box_from_centreline(line, width)


def test_rates_need_dates():
    frame = gpd.GeoDataFrame(geometry=[straight_front(3000), straight_front(2500)],
                             index=pd.Index(["a", "b"], name="stem"))
    result = terminus_change(frame, BOX)
    assert list(result["change_m"]) == [0, -500] and result["rate_m_per_yr"].isna().all()


def test_terminus_plot_marks_dates_without_a_position(tmp_path):
    from xcalving.plot import terminus_plot

    times = pd.DatetimeIndex(["2020-01-01", "2020-04-01", "2020-07-01", "2021-01-01"],
                             name="time")
    partial = shapely.LineString([(100, 2000), (500, 2000)])
    frame = gpd.GeoDataFrame(geometry=[straight_front(3000), partial, straight_front(2800),
                                       straight_front(2500)], index=times, crs=32624)
    with pytest.warns(XcalvingWarning):
        change = terminus_change(frame, BOX, ocean=OCEAN)
    fig = terminus_plot(change)
    ax = fig.axes[0]
    position, missing = ax.lines
    assert len(position.get_xdata()) == 3 and len(missing.get_xdata()) == 1
    assert "3 of 4 dates" in ax.get_title()
    assert terminus_plot(change, column="change_m").axes[0].get_ylabel().startswith("change")
    fig.savefig(tmp_path / "terminus.png")
    assert (tmp_path / "terminus.png").stat().st_size > 5_000
    with pytest.raises(InputError, match="position_m"):
        terminus_plot(change, column="position")


def test_synthetic_glacier_box_from_its_zones_gives_the_true_retreat():
    from xcalving.data.synthetic import glacier_cube

    cube, truth = glacier_cube(4, shape=(200, 240), resolution=30.0, seed=21, freq="30D")
    zones = cube.zones.isel(time=0).values
    xs, ys = np.meshgrid(cube.x.values, cube.y.values)
    glacier, ocean = zones == 2, zones == 3
    centreline = shapely.LineString([(xs[glacier].mean(), ys[glacier].mean()),
                                     (xs[ocean].mean(), ys[ocean].mean())])
    box = box_from_centreline(centreline, 400.0)
    result = terminus_change(cube.calving.fronts(), box, zones=cube.zones)
    expected = terminus_change(truth, box)
    np.testing.assert_allclose(result["position_m"], expected["position_m"], atol=30.0)
    assert result["change_m"].iloc[-1] < -300  # the synthetic glacier retreats
    with pytest.raises(InputError, match="wrong way round"):
        terminus_change(truth, orient_box(box, ocean=centreline.boundary.geoms[0]),
                        zones=cube.zones)


# --- the edges of a series -----------------------------------------------------------------------
def _steady_with_a_spike(n=12):
    """A steady retreat of 20 m a month with one bad date (a 1.3 km jump and back)."""
    times = pd.date_range("2020-01-01", periods=n, freq="30D", name="time")
    ys = [3000 - 20.0 * k for k in range(n)]
    ys[7] = 1500
    return gpd.GeoDataFrame(geometry=[straight_front(y) for y in ys], index=times, crs=32624)


@pytest.mark.parametrize("include_outliers", [False, True])
def test_the_order_of_the_rows_does_not_matter(include_outliers):
    frame = _steady_with_a_spike()
    expected = terminus_change(frame, BOX, ocean=OCEAN, include_outliers=include_outliers)
    assert expected.index.is_monotonic_increasing
    for seed in range(3):
        shuffled = frame.iloc[np.random.default_rng(seed).permutation(len(frame))]
        result = terminus_change(shuffled, BOX, ocean=OCEAN, include_outliers=include_outliers)
        pd.testing.assert_frame_equal(result, expected, check_freq=False)
    assert expected["change_m"].iloc[0] == 0.0 and expected["outlier"].iloc[7]


def test_a_steady_retreat_flags_neither_its_first_nor_its_last_front():
    times = pd.date_range("2020-01-01", periods=10, freq="12D", name="time")
    frame = gpd.GeoDataFrame(geometry=[straight_front(3000 - 25.0 * k) for k in range(10)],
                             index=times)
    result = terminus_change(frame, BOX, ocean=OCEAN)
    assert not result["outlier"].any()
    np.testing.assert_allclose(result["change_m"], -25.0 * np.arange(10))


def test_two_fronts_on_one_date_are_refused_with_the_dates_and_the_fix():
    frame = _steady_with_a_spike()
    twice = pd.concat([frame, frame.iloc[[3, 5]]])
    with pytest.raises(InputError, match=r"2020-03-31.*2020-05-30.*one front per date.*"
                                         r"duplicated"):
        terminus_change(twice, BOX, ocean=OCEAN)
    kept = twice[~twice.index.duplicated(keep="first")]  # the fix the message names
    assert len(terminus_change(kept, BOX, ocean=OCEAN)) == len(frame)


def test_fronts_without_a_date_are_refused_with_the_fix():
    frame = _steady_with_a_spike()
    undated = frame.copy()
    undated.index = undated.index.where(np.arange(len(frame)) != 4)  # NaT
    with pytest.raises(InputError, match=r"1 of 12 .*no date.*notna\(\)"):
        terminus_change(undated, BOX, ocean=OCEAN)
    kept = undated[undated.index.notna()]
    assert len(terminus_change(kept, BOX, ocean=OCEAN)) == 11


def test_no_date_is_ever_dropped():
    frame = _steady_with_a_spike()
    frame.loc[frame.index[2], "geometry"] = shapely.LineString([(100, 2000), (500, 2000)])
    frame.loc[frame.index[9], "geometry"] = shapely.LineString()  # no front found that day
    with pytest.warns(XcalvingWarning, match="2 front"):
        result = terminus_change(frame.iloc[::-1], BOX, ocean=OCEAN)
    assert result.index.equals(frame.index)
    assert result["position_m"].isna().tolist() == [k in (2, 9) for k in range(12)]
    assert "length" in result["qc_reason"].iloc[2] and result["qc_reason"].iloc[9] == "empty"
    assert result["outlier"].tolist() == [k in (2, 7, 9) for k in range(12)]
