"""Front files: every format round-trips columns, times and empty fronts; writes are safe."""

import os

import numpy as np
import pandas as pd
import pytest

import xcalving
from xcalving.data.synthetic import glacier_cube
from xcalving.errors import InputError
from xcalving.vector import check_fronts_path, read_fronts, write_fronts
from xcalving.vector.files import FRONT_FORMATS


@pytest.fixture(scope="module")
def frame():
    cube, _ = glacier_cube(3, shape=(128, 128), resolution=30.0, seed=3)
    ds = cube[["zones"]].assign_coords(stem=("time", np.array(["a", "b", "c"], dtype=object)))
    ds["zones"][1] = 2  # all glacier: no front on the second date
    ds.attrs.update(model="demo", model_sha256="ab" * 32)
    return ds.calving.fronts(min_length_px=0)


@pytest.mark.parametrize("suffix", sorted(FRONT_FORMATS))
def test_every_format_keeps_columns_times_crs_and_empty_fronts(frame, tmp_path, suffix):
    path = write_fronts(frame, tmp_path / f"fronts{suffix}")
    assert os.listdir(tmp_path) == [f"fronts{suffix}"]  # nothing left beside it
    back = read_fronts(path)
    assert back.crs == frame.crs and back.index.name == "time"
    assert isinstance(back.index, pd.DatetimeIndex)
    if suffix == ".parquet":
        assert back.index.equals(frame.index)
    else:  # GeoPackage, GeoJSON and FlatGeobuf keep milliseconds
        assert (abs(back.index - frame.index) < pd.Timedelta(milliseconds=1)).all()
    assert set(back.columns) == set(frame.columns)
    assert back.geometry.iloc[1].is_empty and not back.geometry.iloc[0].is_empty
    assert back.geometry.geom_equals_exact(frame.geometry, tolerance=1e-6, align=False).all()
    for name in ("stem", "model", "model_sha256", "n_pixels"):
        assert list(back[name]) == list(frame[name]), name
    np.testing.assert_allclose(back["length_m"], frame["length_m"])


def test_another_index_name_comes_back(frame, tmp_path):
    dated = frame.rename_axis("date")
    back = read_fronts(write_fronts(dated, tmp_path / "fronts.gpkg"))
    assert back.index.name == "date"


def test_check_fronts_path_says_what_is_wrong_before_anything_is_computed(tmp_path):
    with pytest.raises(InputError, match=r"\.parquet \(GeoParquet\), \.gpkg .*\.fgb"):
        check_fronts_path(tmp_path / "fronts.tif")
    with pytest.raises(InputError, match=r"Shapefiles are not written: they cut field names.*"
                                         r"fronts\.gpkg"):
        check_fronts_path(tmp_path / "fronts.shp")
    with pytest.raises(InputError, match="has no extension"):
        check_fronts_path(tmp_path / "fronts")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_fronts_path(tmp_path / "missing" / "fronts.parquet")
    (tmp_path / "old.gpkg").write_bytes(b"not ours")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        check_fronts_path(tmp_path / "old.gpkg")
    (tmp_path / "folder.parquet").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        check_fronts_path(tmp_path / "folder.parquet", overwrite=True)
    assert check_fronts_path(tmp_path / "FRONTS.GeoJSON").endswith("FRONTS.GeoJSON")


@pytest.mark.parametrize("suffix", [".parquet", ".gpkg", ".geojson"])
def test_overwrite_replaces_front_files_only(frame, tmp_path, suffix):
    import geopandas as gpd
    import shapely

    theirs = tmp_path / f"roads{suffix}"
    roads = gpd.GeoDataFrame({"name": ["A1"]}, geometry=[shapely.LineString([(0, 0), (1, 1)])],
                             crs=frame.crs)
    if suffix == ".parquet":
        roads.to_parquet(theirs)
    else:
        roads.to_file(theirs, engine="pyogrio")
    before = theirs.read_bytes()
    for target in (theirs, tmp_path / f"text{suffix}"):
        target.write_bytes(before) if target == theirs else target.write_text("notes")
        with pytest.raises(FileExistsError, match="not a front file written by xcalving"):
            write_fronts(frame, target, overwrite=True)
    assert theirs.read_bytes() == before
    ours = write_fronts(frame, tmp_path / f"fronts{suffix}")
    assert check_fronts_path(ours, overwrite=True) == ours
    write_fronts(frame.iloc[:1], ours, overwrite=True)
    assert len(read_fronts(ours)) == 1


def test_a_failed_write_leaves_the_old_file_and_nothing_beside_it(frame, tmp_path,
                                                                  monkeypatch):
    from xcalving.vector import files as fronts_io

    path = write_fronts(frame, tmp_path / "fronts.parquet")
    before = (tmp_path / "fronts.parquet").read_bytes()
    with pytest.raises(FileExistsError):
        write_fronts(frame, path)

    def broken(out, target, driver):  # a write that fails halfway
        with open(target, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(fronts_io, "_write", broken)
    with pytest.raises(OSError, match="disk full"):
        write_fronts(frame.iloc[:1], path, overwrite=True)
    assert (tmp_path / "fronts.parquet").read_bytes() == before
    assert os.listdir(tmp_path) == ["fronts.parquet"]


def test_write_fronts_refuses_what_is_not_a_geodataframe(tmp_path):
    with pytest.raises(TypeError, match="GeoDataFrame"):
        write_fronts(pd.DataFrame({"a": [1]}), tmp_path / "f.parquet")


def test_read_fronts_index_column(frame, tmp_path):
    path = write_fronts(frame, tmp_path / "fronts.fgb")
    back = read_fronts(path, index="stem")
    assert list(back.index) == ["a", "b", "c"]
    with pytest.raises(InputError, match="not a column"):
        read_fronts(path, index="nope")
    with pytest.raises(FileNotFoundError):
        read_fronts(tmp_path / "nope.parquet")


def test_frames_of_any_index_round_trip(tmp_path):
    cube, _ = glacier_cube(2, shape=(128, 128), resolution=30.0, seed=3)
    numbered = cube[["zones"]].rename(time="scene").drop_vars("scene")
    frame = xcalving.fronts(numbered, min_length_px=0)
    back = read_fronts(write_fronts(frame, tmp_path / "fronts.geojson"))
    assert back.index.name == "scene" and list(back.index) == [0, 1]
