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
    from xcalving.grid import pixel_spacing

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
    from xcalving.grid import pixel_spacing

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

    from xcalving.io.cube import missing_blocks

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

    from xcalving.io.cube import missing_blocks

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
    from xcalving.io.write import DEFAULT_WRITE_CHUNKS

    d = PredictOptions()
    for n in (3000, 4096, 10_000):
        step = DEFAULT_WRITE_CHUNKS["y"]
        chunks = (step,) * (n // step) + ((n % step,) if n % step else ())
        kept = spatial_chunks(chunks, n, d.tile, d.overlap)
        # predict keeps the written chunks (a short last chunk may join its neighbour)
        assert kept[: n // step - 1] == chunks[: n // step - 1]


# --- what open_cube returns ----------------------------------------------------------------------
def _packed_probability():
    import xarray as xr

    from xcalving.inference.execute import probability_encoding

    values = np.array([[0.0, 1.0, 0.5, np.nan], [1 / 3, 0.002, 0.998, 0.25]], np.float32)
    p = xr.DataArray(values, dims=("y", "x"), name="front_probability")
    p.encoding = probability_encoding("uint8")
    return p.to_dataset()


@pytest.mark.parametrize("writer", ["write_cube", "to_zarr v2 (older stores)"])
def test_packed_probabilities_decode_to_float32(tmp_path, writer):
    import xarray as xr

    ds = _packed_probability()
    path = tmp_path / "p.zarr"
    if writer == "write_cube":
        xcalving.write_cube(ds, path)
    else:
        ds.to_zarr(path, zarr_format=2, consolidated=True)
    plain = xr.open_zarr(path, consolidated=False)
    assert plain.front_probability.dtype == np.float64  # xarray alone: float64
    back = xcalving.open_cube(path)
    assert back.front_probability.dtype == np.float32
    assert isinstance(back.front_probability.data, da.Array)  # still lazy
    got, want = back.front_probability.values, ds.front_probability.values
    assert got[0, 0] == 0 and got[0, 1] == 1 and np.isnan(got[0, 3])
    assert np.nanmax(np.abs(got - want)) <= 1 / 508 + 1e-7
    if writer != "write_cube":
        return
    # written again, it is packed again
    again = xcalving.write_cube(back, tmp_path / "again.zarr")
    raw = xr.open_zarr(again, mask_and_scale=False, consolidated=False).front_probability
    assert raw.dtype == np.uint8 and raw.values[0, 3] == 255


def test_float_and_plain_variables_keep_their_dtype(small_cube, tmp_path):
    cube, _ = small_cube
    back = xcalving.open_cube(xcalving.write_cube(cube, tmp_path / "c.zarr"))
    assert back.sar.dtype == cube.sar.dtype and back.zones.dtype == np.uint8


def test_rio_works_on_what_open_cube_and_open_scenes_return_in_a_fresh_process(small_cube,
                                                                              tmp_path):
    import subprocess
    import sys

    cube, _ = small_cube
    store = xcalving.write_cube(cube, tmp_path / "c.zarr")
    cube.sar.isel(time=0).rio.to_raster(tmp_path / "S1_2020-01-05.tif")
    code = ("import xcalving\n"  # rioxarray never imported by the caller
            f"ds = xcalving.open_cube({str(store)!r})\n"
            "print(ds.rio.crs.to_epsg(), ds.sar.rio.transform().a)\n"
            f"sc = xcalving.open_scenes({str(tmp_path / 'S1_*.tif')!r})\n"
            "print(sc.rio.crs.to_epsg())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3031", "25.0", "3031"]


def test_dir_lists_the_whole_public_api():
    names = dir(xcalving)
    for name in ("predict", "fronts", "open_scenes", "finetune", "progress", "export_geotiffs",
                 "open_cube", "write_cube", "InputError", "__version__"):
        assert name in xcalving.__all__ and name in names, name
    assert set(xcalving.__all__) <= set(names)
    for name in xcalving.__all__:  # every listed name resolves
        assert getattr(xcalving, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'predcit'"):
        xcalving.predcit  # noqa: B018
