import dask.array as da
import numpy as np
import pytest

import xcalving


def test_write_then_open_is_lazy_and_keeps_crs_transform_and_values(small_cube, tmp_path):
    cube, _ = small_cube
    path = xcalving.write_cube(cube, tmp_path / "cube.zarr")
    back = xcalving.open_cube(path)
    assert isinstance(back.sar.data, da.Array)
    assert back.sar.chunksizes["time"] == (1, 1, 1)
    assert back.rio.crs.to_epsg() == 3031
    assert back.rio.transform() == cube.rio.transform()
    assert "spatial_ref" in back.coords
    np.testing.assert_array_equal(back.sar.values, cube.sar.values)
    np.testing.assert_array_equal(back.zones.values, cube.zones.values)
    np.testing.assert_array_equal(back.time.values, cube.time.values)


def test_write_warns_nothing(small_cube, tmp_path, recwarn):
    cube, _ = small_cube
    assert xcalving.open_cube(xcalving.write_cube(cube, tmp_path / "c.zarr")).sar.values.size
    assert [str(w.message) for w in recwarn if "onsolidated" in str(w.message)] == []


def test_write_never_overwrites_unless_asked(small_cube, tmp_path):
    cube, _ = small_cube
    path = xcalving.write_cube(cube, tmp_path / "c.zarr")
    with pytest.raises(FileExistsError, match="mode='w'"):
        xcalving.write_cube(cube.isel(time=[0]), path)
    assert xcalving.open_cube(path).sizes["time"] == 3
    xcalving.write_cube(cube.isel(time=[0]), path, mode="w")
    assert xcalving.open_cube(path).sizes["time"] == 1


def test_rechunked_cube_from_a_store_writes_again(small_cube, tmp_path):
    cube, _ = small_cube
    first = xcalving.open_cube(xcalving.write_cube(cube, tmp_path / "a.zarr"))
    second = xcalving.write_cube(first.chunk({"time": 3, "y": 48}), tmp_path / "b.zarr")
    assert xcalving.open_cube(second).sar.chunksizes["y"] == (48, 48)


def test_open_missing_store_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.zarr"):
        xcalving.open_cube(tmp_path / "nowhere.zarr")


def test_import_is_light():
    import subprocess
    import sys

    code = ("import sys, xcalving; heavy = [m for m in ('matplotlib', 'geopandas', 'xcalving.cli')"
            " if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- pixel spacing: the one rule --------------------------------------------------------------
def test_pixel_spacing_comes_from_the_coordinates(small_cube):
    from xcalving.io import pixel_spacing

    cube, _ = small_cube
    assert pixel_spacing(cube) == 25.0 and pixel_spacing(cube.sar) == 25.0
    assert pixel_spacing(cube.isel(x=slice(None, None, 2), y=slice(None, None, 2))) == 50.0


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda c: c.rio.write_crs("EPSG:4326"), r"projected grid in metres.*reproject"),
        (lambda c: c.rio.write_crs("EPSG:2263"), r"projected grid in metres"),  # US feet
        (lambda c: c.drop_vars("spatial_ref"), r"no CRS"),
        (lambda c: c.isel(x=[0, 1, 3, 4]), r"'x' coordinates are not evenly spaced"),
        (lambda c: c.isel(x=slice(None, None, 2)), r"not square"),
        (lambda c: c.isel(y=[0]), r"single 'y' coordinate"),
    ],
)
def test_pixel_spacing_says_why_it_is_unknown(small_cube, change, match):
    from xcalving.errors import InputError
    from xcalving.io import pixel_spacing

    cube, _ = small_cube
    with pytest.raises(InputError, match=match):
        pixel_spacing(change(cube.sar))


def _lazy_pair(store, zarr_format=3):
    """A dask-backed Dataset of two variables (one with an extra leading dim) and its store."""
    import xarray as xr

    front = da.random.random((3, 8, 6), chunks=(1, 4, 6)).astype(np.float32)
    zone = da.stack([front, 1 - front]).rechunk({0: 2})  # one block along zone
    ds = xr.Dataset({"front": (("time", "y", "x"), front),
                     "zone_probability": (("zone", "time", "y", "x"), zone)})
    # stored chunks half a block high: a block is whole only when both of its chunks are
    encoding = {name: {"chunks": (1,) * (var.ndim - 2) + (2, 6)} for name, var in ds.items()}
    ds.to_zarr(store, zarr_format=zarr_format, consolidated=False, encoding=encoding,
               write_empty_chunks=True)
    return ds


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_missing_blocks_finds_the_blocks_with_a_chunk_missing(tmp_path, zarr_format):
    import zarr

    from xcalving.io import missing_blocks

    store = tmp_path / "pred.zarr"
    ds = _lazy_pair(store, zarr_format)
    assert missing_blocks(store, ds) == []
    # remove one chunk of each variable, by the store's own key encoding ("c/2/3/0" or "2.3.0")
    for name, coords in (("front", (2, 3, 0)), ("zone_probability", (1, 0, 0, 0))):
        key = zarr.open_array(store / name, mode="r").metadata.encode_chunk_key(coords)
        (store / name / key).unlink()
    assert missing_blocks(str(store), ds) == [
        {"time": slice(0, 1), "y": slice(0, 4), "x": slice(0, 6), "zone": slice(0, 2)},
        {"time": slice(2, 3), "y": slice(4, 8), "x": slice(0, 6), "zone": slice(0, 2)},
    ]


def test_missing_blocks_of_metadata_only_and_of_another_store(tmp_path):
    import xarray as xr

    from xcalving.io import missing_blocks

    ds = xr.Dataset({"v": (("y", "x"), da.zeros((4, 4), chunks=2))})
    store = xcalving.write_cube(ds, tmp_path / "v.zarr", compute=False)
    assert len(missing_blocks(store, ds)) == 4
    with pytest.raises(xcalving.InputError, match="no variable 'w'"):
        missing_blocks(store, ds.rename(v="w"))
    with pytest.raises(xcalving.InputError, match="shape"):
        missing_blocks(store, ds.isel(y=slice(0, 2)))


def test_default_write_chunks_are_what_predict_wants_with_its_defaults():
    from xcalving.inference.execute import spatial_chunks
    from xcalving.inference.options import PredictOptions
    from xcalving.io import DEFAULT_WRITE_CHUNKS

    d = PredictOptions()
    for n in (3000, 4096, 10_000):
        step = DEFAULT_WRITE_CHUNKS["y"]
        chunks = (step,) * (n // step) + ((n % step,) if n % step else ())
        kept = spatial_chunks(chunks, n, d.tile, d.overlap)
        # predict keeps the written chunks (a short last chunk may join its neighbour)
        assert kept[: n // step - 1] == chunks[: n // step - 1]
