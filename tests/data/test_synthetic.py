import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.spatial import cKDTree

from xcalving.data.synthetic import glacier_cube
from xcalving.errors import InputError
from xcalving.zones import ZONE_NAMES


@pytest.fixture(scope="module")
def cube_and_fronts():
    return glacier_cube(4, shape=(192, 256), resolution=30.0, seed=7)


def test_same_seed_same_cube_other_seed_other_cube():
    a, fa = glacier_cube(2, shape=(96, 128), seed=11)
    b, fb = glacier_cube(2, shape=(96, 128), seed=11)
    c, _ = glacier_cube(2, shape=(96, 128), seed=12)
    np.testing.assert_array_equal(a.sar.values, b.sar.values)
    np.testing.assert_array_equal(a.zones.values, b.zones.values)
    assert fa.geometry.geom_equals_exact(fb.geometry, tolerance=0).all()
    assert not np.array_equal(a.zones.values, c.zones.values)


def test_longer_series_extends_shorter_one():
    short, fs = glacier_cube(2, shape=(96, 96), seed=5)
    long, fl = glacier_cube(4, shape=(96, 96), seed=5)
    np.testing.assert_array_equal(short.sar.values, long.sar.values[:2])
    assert fs.geometry.geom_equals_exact(fl.geometry.iloc[:2], tolerance=0).all()


def test_layout_dtypes_and_attrs(cube_and_fronts):
    cube, fronts = cube_and_fronts
    assert cube.sar.dims == ("time", "y", "x") and cube.sar.dtype == np.float32
    assert cube.zones.dtype == np.uint8 and cube.front.dtype == np.uint8
    assert cube.sar.attrs["units"] == "dB"
    assert cube.zones.attrs["flag_meanings"].split() == list(ZONE_NAMES)
    assert isinstance(cube.indexes["time"], pd.DatetimeIndex)
    assert cube.time[1] - cube.time[0] == np.timedelta64(12, "D")
    assert isinstance(fronts.index, pd.DatetimeIndex) and fronts.index.name == "time"
    assert (fronts.index == cube.indexes["time"]).all()


def test_all_classes_present_in_every_scene(cube_and_fronts):
    cube, _ = cube_and_fronts
    for k in range(cube.sizes["time"]):
        assert set(np.unique(cube.zones[k].values)) == {0, 1, 2, 3}
        assert cube.front[k].values.sum() > 20


def test_nan_exactly_outside_the_swath_and_values_plausible(cube_and_fronts):
    cube, _ = cube_and_fronts
    sar, zones = cube.sar.values, cube.zones.values
    assert np.isnan(sar).any(), "seed 7 has a swath edge"
    assert (zones[np.isnan(sar)] == 0).all()
    valid = sar[~np.isnan(sar)]
    assert -40 < valid.min() and valid.max() < 25
    # backscatter separates the classes on average: rock > glacier > ocean
    means = [np.nanmean(sar[zones == z]) for z in (1, 2, 3)]
    assert means[0] > means[1] > means[2]


def test_speckle_follows_gamma_with_l_looks():
    # intensity of a homogeneous region divided by its mean has variance 1/L
    for looks in (1.0, 4.0):
        cube, _ = glacier_cube(1, shape=(256, 256), seed=3, looks=looks)
        zones, sar = cube.zones.values[0], cube.sar.values[0]
        intensity = 10 ** (sar[zones == 2] / 10)  # glacier: texture small beside speckle
        ratio = intensity / intensity.mean()
        assert 0.7 / looks < ratio.var() < 2.0 / looks


def test_front_is_the_glacier_ocean_boundary(cube_and_fronts):
    cube, _ = cube_and_fronts
    for k in range(cube.sizes["time"]):
        zones, front = cube.zones[k].values, cube.front[k].values.astype(bool)
        glacier = np.pad(zones == 2, 1)
        touches = glacier[:-2, 1:-1] | glacier[2:, 1:-1] | glacier[1:-1, :-2] | glacier[1:-1, 2:]
        np.testing.assert_array_equal(front, (zones == 3) & touches)


def test_front_moves_through_time():
    cube, fronts = glacier_cube(6, shape=(128, 128), seed=2, freq="60D")
    assert len({tuple(np.flatnonzero(f)) for f in cube.front.values}) == 6
    assert fronts.geometry.centroid.distance(fronts.geometry.centroid.iloc[0]).max() > 60


def test_orientation_varies_with_seed():
    angles = []
    for seed in range(6):
        _, fronts = glacier_cube(1, shape=(128, 128), seed=seed)
        (x0, y0), (x1, y1) = fronts.geometry.iloc[0].coords[0], fronts.geometry.iloc[0].coords[-1]
        angles.append(np.degrees(np.arctan2(y1 - y0, x1 - x0)) % 180)
    assert np.ptp(angles) > 60


def test_crs_transform_and_coordinates(cube_and_fronts):
    cube, fronts = cube_and_fronts
    assert cube.rio.crs.to_epsg() == 3031 and fronts.crs.to_epsg() == 3031
    t = cube.rio.transform()
    assert (t.a, t.e, t.c, t.f) == (30.0, -30.0, -2_430_000.0, 1_300_000.0)
    np.testing.assert_allclose(cube.x.values[:2], [-2_430_000 + 15, -2_430_000 + 45])
    np.testing.assert_allclose(cube.y.values[:2], [1_300_000 - 15, 1_300_000 - 45])
    assert cube.zones.attrs.get("grid_mapping") == "spatial_ref" or \
        cube.zones.encoding.get("grid_mapping") == "spatial_ref"


def test_true_lines_match_the_raster_front_within_half_a_pixel(cube_and_fronts):
    cube, fronts = cube_and_fronts
    res, transform = 30.0, cube.rio.transform()
    for k in range(cube.sizes["time"]):
        rows, cols = np.nonzero(cube.front[k].values)
        xs, ys = transform * (cols + 0.5, rows + 0.5)
        line = fronts.geometry.iloc[k]
        pixel_to_line = shapely.distance(shapely.points(xs, ys), line) / res
        assert pixel_to_line.max() <= 0.5
        # the other way round: the mean of both directions (CaFFe's MDE) is below half a pixel
        vertices = shapely.get_coordinates(line.segmentize(res / 4))
        line_to_pixel, _ = cKDTree(np.column_stack([xs, ys])).query(vertices)
        both = np.concatenate([pixel_to_line, line_to_pixel / res])
        assert both.mean() < 0.5
    np.testing.assert_allclose(fronts["length_m"], fronts.geometry.length)


def _wall_to_wall_m(line) -> float:
    """Distance between the ends of a true front: the fjord's width where the front meets it."""
    coords = shapely.get_coordinates(line)
    return float(np.hypot(*(coords[0] - coords[-1])))


def test_fjord_has_the_same_size_in_metres_at_every_scene_size_and_spacing():
    # the same seed at 256, 384 and 512 px (20 m) and at 512 px of 10 m (the 256-px extent):
    # the front - wall to wall - is the same line in metres, only the scene around it grows
    widths, lengths = [], []
    for size, spacing in ((256, 20.0), (384, 20.0), (512, 20.0), (512, 10.0)):
        _, fronts = glacier_cube(1, shape=(size, size), resolution=spacing, seed=4)
        widths.append(_wall_to_wall_m(fronts.geometry.iloc[0]))
        lengths.append(fronts.length_m.iloc[0])
    np.testing.assert_allclose(widths, widths[0], rtol=0.02)
    np.testing.assert_allclose(lengths, lengths[0], rtol=0.02)
    assert 1000 < widths[0] < 4000, "outlet-glacier fjords are a few km wide"


def test_bigger_scene_shows_more_terrain_not_a_bigger_fjord():
    small, _ = glacier_cube(1, shape=(256, 256), seed=9)
    big, _ = glacier_cube(1, shape=(768, 768), seed=9)
    area = {name: [(c.zones[0].values == code).sum() * 400 for c in (small, big)]
            for name, code in (("glacier", 2), ("ocean", 3))}
    # 9 times the scene: the fjord is the same, so ice field and open water take the new room
    assert area["glacier"][1] > 3 * area["glacier"][0]
    assert area["ocean"][1] > 3 * area["ocean"][0]
    front_px = [c.front[0].values.sum() for c in (small, big)]
    assert abs(front_px[1] - front_px[0]) <= 0.1 * front_px[0]


def test_scenes_smaller_than_the_fjord_keep_their_front_inside():
    for seed in range(4):
        cube, fronts = glacier_cube(3, shape=(64, 64), seed=seed, freq="90D")
        assert (cube.front.values.sum(axis=(1, 2)) > 10).all()
        scene = shapely.box(*cube.rio.bounds())
        assert all(scene.buffer(1e-6).contains(line) for line in fronts.geometry)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_times": 0}, "n_times"),
        ({"shape": (32, 400)}, "shape"),
        ({"shape": (100,)}, "shape"),
        ({"resolution": -5.0}, "resolution"),
        ({"looks": 0.0}, "looks"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, match):
    with pytest.raises(InputError, match=match):
        glacier_cube(**kwargs)
