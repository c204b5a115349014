import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from xcalving.change import terminus_change, terminus_position
from xcalving.errors import InputError, XcalvingWarning

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

    from xcalving.change import terminus_change

    box = shapely.Polygon([(0, -50), (0, 50), (200, 50), (200, -50)])
    fronts = gpd.GeoDataFrame(
        geometry=[shapely.LineString([(120, -80), (120, 80)]),
                  shapely.LineString([(100, -80), (100, 80)])],
        index=pd.DatetimeIndex(["2020-01-01", "2021-01-01"], name="time"), crs=32624)
    plain = terminus_change(fronts, box)
    framed = terminus_change(fronts, gpd.GeoSeries([box], crs=32624))
    pd.testing.assert_frame_equal(plain, framed)
    assert plain["change_m"].iloc[-1] == pytest.approx(-20.0)
