import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from xcalving.errors import InputError
from xcalving.metrics import bbox_accuracy, dice, mean_distance_error, zone_iou


def caffe_mde_direct(preds, trues, resolution):
    """CaFFe's definition written out with brute-force pairwise distances."""
    pooled = []
    for p, t in zip(preds, trues, strict=True):
        pp, tp = np.argwhere(p), np.argwhere(t)
        if len(tp) == 0 or len(pp) == 0:
            continue
        d = np.sqrt(((pp[:, None, :] - tp[None, :, :]) ** 2).sum(-1))
        pooled.extend(d.min(axis=1))  # predicted -> nearest true
        pooled.extend(d.min(axis=0))  # true -> nearest predicted
    return float(np.mean(pooled)) * resolution


def test_parallel_lines_known_answer():
    true = np.zeros((3, 10, 10), bool)
    pred = np.zeros((3, 10, 10), bool)
    true[:, :, 2] = True
    pred[0, :, 2] = True  # 0 px
    pred[1, :, 5] = True  # 3 px
    result = mean_distance_error(pred, true, resolution=10.0)  # scene 2 has no prediction
    assert result == (15.0, 2, 1)  # pooled: 20 distances of 0 and 20 of 3 px -> 1.5 px
    assert mean_distance_error(pred, true).mde == 1.5


def test_pooled_not_mean_of_means():
    true = np.zeros((2, 20, 20), bool)
    pred = np.zeros((2, 20, 20), bool)
    true[0, 5, 5] = pred[0, 5, 6] = True  # 2 distances of 1
    true[1, :, 3] = pred[1, :, 3] = True  # 40 distances of 0
    assert mean_distance_error(pred, true).mde == pytest.approx(2 / 42)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 4))
def test_mde_agrees_with_caffe_definition_on_random_fronts(seed, n):
    rng = np.random.default_rng(seed)
    preds = rng.random((n, 24, 30)) < 0.03
    trues = rng.random((n, 24, 30)) < 0.03
    expected = caffe_mde_direct(preds, trues, 7.0)
    got = mean_distance_error(preds, trues, resolution=7.0)
    if np.isnan(expected):
        assert got.n_scored == 0
    else:
        assert got.mde == pytest.approx(expected)


def test_vector_mde_matches_raster_mde_within_half_a_pixel():
    import geopandas as gpd
    import pandas as pd
    import shapely

    res = 20.0
    true = np.zeros((40, 40), bool)
    pred = np.zeros((40, 40), bool)
    true[5:35, 10] = True
    pred[5:35, 14] = True
    raster = mean_distance_error(pred, true, resolution=res).mde

    def line(col):
        return shapely.LineString([((col + 0.5) * res, -(5 + 0.5) * res),
                                   ((col + 0.5) * res, -(34 + 0.5) * res)])

    index = pd.DatetimeIndex(["2020-01-01"], name="time")
    vector = mean_distance_error(gpd.GeoDataFrame(geometry=[line(14)], index=index),
                                 gpd.GeoDataFrame(geometry=[line(10)], index=index),
                                 resolution=res).mde
    assert abs(vector - raster) <= res / 2
    with pytest.raises(InputError, match="resolution"):
        mean_distance_error(gpd.GeoDataFrame(geometry=[line(14)], index=index),
                            gpd.GeoDataFrame(geometry=[line(10)], index=index))


def test_zone_iou_known_answer():
    true = np.array([[0, 1, 2, 3], [0, 1, 2, 3]])
    pred = np.array([[0, 1, 2, 2], [0, 2, 2, 3]])
    result = zone_iou(pred, true)
    assert result.per_class == {"no_data": 1.0, "rock": 0.5, "glacier": 0.5, "ocean": 0.5}
    assert result.mean == pytest.approx(0.625)
    absent = zone_iou(np.array([[1, 1]]), np.array([[1, 1]]))
    assert np.isnan(absent.per_class["ocean"]) and absent.mean == 1.0


def test_dice_known_answer():
    a = np.array([[1, 1, 0, 0]])
    b = np.array([[1, 0, 1, 0]])
    assert dice(a, b) == 0.5 and dice(a, a) == 1.0 and dice(0 * a, 0 * a) == 1.0


def test_bbox_accuracy_known_answer():
    true = np.zeros((20, 20), bool)
    true[10, 5:15] = True
    perfect = np.zeros((20, 20))
    perfect[9:12, 5:15] = 1.0  # the thickened label (dilation 1) inside the box
    assert bbox_accuracy(perfect, true, dilation=1) == 1.0
    # the box is the single row 10, columns 5..14: all predicted front there -> 100 %
    assert bbox_accuracy(np.ones((20, 20)), true, dilation=0) == 1.0
    # nothing predicted: thick label has 10 front pixels of the 10 in the box -> 0 %
    assert bbox_accuracy(np.zeros((20, 20)), true, dilation=0) == 0.0
    # margin 1 grows the box to 3 x 12 = 36 pixels, 10 of them front
    assert bbox_accuracy(np.zeros((20, 20)), true, dilation=0, margin=1) == pytest.approx(26 / 36)


def test_shape_mismatch_is_an_input_error():
    with pytest.raises(InputError, match="same shape"):
        mean_distance_error(np.zeros((4, 4)), np.zeros((5, 4)))
    with pytest.raises(InputError, match="scene"):
        zone_iou(np.zeros(4), np.zeros(4))


def test_front_masks_treat_nan_as_background_and_compare_by_coordinates():
    true = np.zeros((8, 8))
    true[:, 3] = 1
    pred = np.full((8, 8), np.nan)  # NaN: no data, not front
    pred[:, 4] = 1
    assert mean_distance_error(pred, true).mde == pytest.approx(1.0)
    coords = {"y": np.arange(8.0), "x": np.arange(8.0)}
    a = xr.DataArray(true, dims=("y", "x"), coords=coords)
    assert mean_distance_error(a, a.copy()).mde == 0.0
    with pytest.raises(ValueError, match="same grid"):  # same shape, shifted: refused
        mean_distance_error(a, a.assign_coords(x=a.x + 1))
