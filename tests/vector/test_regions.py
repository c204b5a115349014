"""Label zones give the labelled front back; where fronts are looked for; one ocean or all."""

import warnings

import numpy as np
import pytest
import shapely
import xarray as xr
from scipy import ndimage

import xcalving
from xcalving.data.caffe import load_scene, open_caffe, shipped_scenes
from xcalving.errors import InputError, InputTypeError
from xcalving.grid import transform
from xcalving.zones import GLACIER, OCEAN, ROCK, front_from_zones


def _raster(frame_row_geometry, scene) -> np.ndarray:
    """A front line's vertices (pixel centres) back on the scene's grid."""
    front = np.zeros((scene.sizes["y"], scene.sizes["x"]), bool)
    if frame_row_geometry.is_empty:
        return front
    xy = shapely.get_coordinates(frame_row_geometry)
    t = transform(scene)
    front[np.floor((xy[:, 1] - t.f) / t.e).astype(int),
          np.floor((xy[:, 0] - t.c) / t.a).astype(int)] = True
    return front


@pytest.mark.parametrize("spacing", [None, 75.0])
def test_label_zones_give_the_labelled_front_back_on_every_shipped_scene(spacing):
    """The floor: every shipped CaFFe scene's label zones → fronts() within 1.5 px (pooled)."""
    catalog = open_caffe(shipped_scenes(), pixel_spacing="caffe256")
    distances, missing = [], []
    for _, row in catalog.iterrows():
        scene = load_scene(row, spacing=spacing)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pixel coordinates without a CRS: said, expected
            frame = xcalving.fronts(scene[["zones", "label_region"]], region="label_region",
                                    min_length_px=0)
        predicted, true = _raster(frame.geometry.iloc[0], scene), scene.front.values == 1
        if not predicted.any():
            missing.append(row["stem"])
            continue
        distances += [ndimage.distance_transform_edt(~true)[predicted],
                      ndimage.distance_transform_edt(~predicted)[true]]
    assert not missing
    assert len(catalog) == 21 and np.concatenate(distances).mean() <= 1.5


def test_without_a_region_the_fjord_sides_are_traced_too():
    """Why the region exists: the whole glacier-ocean contact is longer than the labelled front."""
    catalog = open_caffe(shipped_scenes(), pixel_spacing="caffe256")
    scene = load_scene(catalog[catalog.glacier == "DBE"].iloc[3], spacing=75.0)
    whole = xcalving.fronts(scene[["zones", "front_region", "label_region"]])
    inside = xcalving.fronts(scene[["zones", "label_region"]], region="label_region")
    assert whole["length_m"].iloc[0] > 1.5 * inside["length_m"].iloc[0]
    # the copy has no box files: its front_region is the whole scene, read by default
    assert bool(scene.front_region.all()) and whole.attrs["region"]
    assert inside.attrs["region"]


@pytest.fixture
def two_fjords():
    """Two glaciers, each in its own fjord; the fjords' oceans do not meet."""
    zones = np.full((60, 80), ROCK, np.uint8)
    zones[5:55, 5:35] = GLACIER
    zones[5:55, 45:75] = GLACIER
    zones[5:55, 20:35] = OCEAN  # left fjord: 15 columns of ocean
    zones[30:55, 60:75] = OCEAN  # right fjord: smaller
    coords = {"y": np.arange(60) * -50.0 + 3000, "x": np.arange(80) * 50.0}
    ds = xr.Dataset({"zones": (("y", "x"), zones)}, coords=coords).rio.write_crs("EPSG:3413")
    return ds


def test_ocean_rule_largest_body_or_all(two_fjords):
    one = front_from_zones(two_fjords.zones.values)
    both = front_from_zones(two_fjords.zones.values, ocean="all")
    assert one[:, :40].any() and not one[:, 40:].any()  # CaFFe: the main ocean only
    assert both[:, :40].any() and both[:, 40:].any()
    frame = xcalving.fronts(two_fjords, ocean="all")
    assert frame.attrs["ocean"] == "all" and frame["n_segments"].iloc[0] == 2
    with pytest.raises(InputError, match="ocean must be one of"):
        xcalving.fronts(two_fjords, ocean="every")


def test_region_as_box_geometry_geodataframe_and_mask(two_fjords):
    import geopandas as gpd

    box = (2200.0, 0.0, 4000.0, 3100.0)  # the right fjord, in the cube's coordinates
    by_box = xcalving.fronts(two_fjords, ocean="all", region=box)
    right = by_box.geometry.iloc[0]
    assert shapely.get_coordinates(right)[:, 0].min() > 2200
    by_shape = xcalving.fronts(two_fjords, ocean="all", region=shapely.box(*box))
    assert by_shape.geometry.iloc[0].equals(right)
    # a GeoDataFrame in another CRS is reprojected first
    frame = gpd.GeoDataFrame(geometry=[shapely.box(*box)], crs="EPSG:3413").to_crs("EPSG:4326")
    by_frame = xcalving.fronts(two_fjords, ocean="all", region=frame)
    assert by_frame["length_m"].iloc[0] == pytest.approx(by_box["length_m"].iloc[0], rel=0.2)
    mask = (two_fjords.x > 2200).broadcast_like(two_fjords.zones)
    by_mask = xcalving.fronts(two_fjords, ocean="all", region=mask)
    assert by_mask.geometry.iloc[0].equals(right)
    # the Dataset's own front_region is used by default, and False turns it off
    with_var = two_fjords.assign(front_region=mask)
    assert xcalving.fronts(with_var, ocean="all").geometry.iloc[0].equals(right)
    assert xcalving.fronts(with_var, ocean="all", region=False)["n_segments"].iloc[0] == 2


def test_region_compared_by_coordinates_not_position(two_fjords):
    mask = (two_fjords.x > 2200).broadcast_like(two_fjords.zones)
    shifted = mask.assign_coords(x=mask.x + 50.0)
    with pytest.raises(InputError, match="region"):
        xcalving.fronts(two_fjords, region=shifted)


@pytest.mark.parametrize("region, error, match", [
    ((10.0, 5.0, 0.0, 50.0), InputError, "xmin < xmax"),
    ("nowhere", InputError, "names no variable"),
    (42, InputTypeError, "region must be"),
    ([], InputTypeError, "region must be"),
])
def test_bad_regions_are_refused_clearly(two_fjords, region, error, match):
    with pytest.raises(error, match=match):
        xcalving.fronts(two_fjords, region=region)
