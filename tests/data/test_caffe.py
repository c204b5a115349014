import datetime as dt
import functools
import hashlib
import http.server
import os
import re
import threading
import warnings
import zipfile

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import xcalving
from xcalving.data.caffe import (
    CATALOG_COLUMNS,
    NAME_PATTERN,
    SceneName,
    caffe_to_zarr,
    download_caffe,
    load_scene,
    open_caffe,
    parse_name,
    read_label,
    shipped_scenes,
)
from xcalving.errors import InputError, UnsafeFileError
from xcalving.testing import write_fixture_tree
from xcalving.windows import window_starts


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_fixture_tree(tmp_path_factory.mktemp("caffe"), n_train=3, n_test=1)


@pytest.fixture(scope="module")
def catalog(tree):
    return open_caffe(tree)


def _png(path, grey, mode=None):
    image = Image.fromarray(np.asarray(grey, np.uint8))
    (image.convert(mode) if mode else image).save(path)
    return path


# --- names ------------------------------------------------------------------------------------
def test_parse_name_examples():
    name = parse_name("COL_2011-11-13_TDX_7_1_092.png")
    assert name == SceneName("COL", dt.date(2011, 11, 13), "TDX", 7.0, 1, "092")
    assert parse_name("/x/y/JAC_2015-12-23_TSX_6_1_005_front.png").orbit == "005"
    jorum = parse_name("Jorum_2010-11-05_TSX_7_1_110_zones")
    assert (jorum.glacier, jorum.quality) == ("Jorum", 1)
    assert str(jorum) == "Jorum_2010-11-05_TSX_7_1_110"


def test_every_shipped_file_name_parses():
    files = list(shipped_scenes().rglob("*.png"))
    assert len(files) == 63
    assert {parse_name(f).glacier for f in files} == {"DBE", "JAC", "Jorum", "SI"}


_glacier = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,9}", fullmatch=True)
_satellite = st.from_regex(r"[A-Z][A-Z0-9]{0,7}", fullmatch=True)
_resolution = st.builds(lambda i, d: f"{i}" if d is None else f"{i}.{d}",
                        st.integers(1, 999), st.none() | st.integers(1, 9))
_orbit = st.from_regex(r"[0-9]{1,5}", fullmatch=True)
_suffix = st.sampled_from(["", "_zones", "_front"])
_ext = st.sampled_from(["", ".png", ".PNG"])


@given(_glacier, st.dates(dt.date(1990, 1, 1), dt.date(2040, 12, 31)), _satellite, _resolution,
       st.integers(1, 6), _orbit, _suffix, _ext)
def test_valid_names_round_trip(glacier, date, satellite, resolution, quality, orbit, suffix,
                                ext):
    stem = f"{glacier}_{date.isoformat()}_{satellite}_{resolution}_{quality}_{orbit}"
    name = parse_name(f"some/dir/{stem}{suffix}{ext}")
    assert name.stem == stem
    assert (name.glacier, name.date, name.satellite) == (glacier, date, satellite)
    assert (name.resolution, name.quality, name.orbit) == (float(resolution), quality, orbit)
    assert parse_name(name.stem) == name


_GOOD = ["COL", "2011-11-13", "TDX", "7", "1", "092"]
_BAD_FIELDS = {0: ["", "C_L", "1COL", "CO L"], 1: ["2011-13-01", "2011-02-30", "11-11-13", "x"],
               2: ["", "T_X", "7"], 3: ["", "seven", "-7", "7m"], 4: ["0", "7", "", "a"],
               5: ["", "09a", "x"]}


@settings(max_examples=60)
@given(st.sampled_from(sorted(_BAD_FIELDS)).flatmap(
    lambda k: st.tuples(st.just(k), st.sampled_from(_BAD_FIELDS[k]))), _suffix)
def test_malformed_names_raise_naming_the_file(field, suffix):
    k, bad = field
    parts = list(_GOOD)
    parts[k] = bad
    file = "_".join(parts) + suffix + ".png"
    with pytest.raises(InputError, match=re.escape(file)) as err:
        parse_name(file)
    assert NAME_PATTERN in str(err.value)


@pytest.mark.parametrize("name", ["COL_2011-11-13_TDX_7_1", "COL_2011-11-13_TDX_7_1_092_extra",
                                  "readme.txt", "COL_2011-11-13_TDX_7_1_092_zones_front.png"])
def test_wrong_number_of_fields_raises(name):
    with pytest.raises(InputError, match=re.escape(name)):
        parse_name(name)


def test_scene_name_rejects_bad_fields():
    with pytest.raises(InputError, match="quality"):
        SceneName("COL", dt.date(2011, 1, 1), "TDX", 7.0, 9, "092")
    with pytest.raises(InputError):
        SceneName("C_L", dt.date(2011, 1, 1), "TDX", 7.0, 1, "092")


# --- labels -----------------------------------------------------------------------------------
def test_read_label_maps_grey_values(tmp_path):
    zones = _png(tmp_path / "z.png", [[0, 64], [127, 254]])
    np.testing.assert_array_equal(read_label(zones, "zones"), [[0, 1], [2, 3]])
    front = _png(tmp_path / "f.png", [[0, 255], [255, 0]])
    out = read_label(front, "front")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[0, 1], [1, 0]])


def test_illegal_grey_value_is_an_error_naming_file_values_and_counts(tmp_path):
    grey = np.full((4, 4), 127, np.uint8)
    grey[0, :3] = 100
    grey[3, 3] = 128
    path = _png(tmp_path / "X_zones.png", grey)
    with pytest.raises(InputError, match=re.escape(str(path))) as err:
        read_label(path, "zones")
    assert "100 (3 px)" in str(err.value) and "128 (1 px)" in str(err.value)
    assert "4 pixels" in str(err.value)
    with pytest.raises(InputError, match="64 ") as err:  # 64 is legal in zones, not in fronts
        read_label(_png(tmp_path / "f.png", [[0, 64]]), "front")


def test_read_label_rejects_unknown_kind(tmp_path):
    with pytest.raises(InputError, match="Did you mean 'zones'"):
        read_label(_png(tmp_path / "z.png", [[0]]), "zone")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "jpeg", "empty"])
def test_corrupted_png_is_an_error_naming_the_file(tmp_path, damage):
    path = tmp_path / "COL_2011-11-13_TDX_7_1_092_zones.png"
    grey = np.random.default_rng(0).choice(np.array([0, 64, 127, 254], np.uint8), (64, 64))
    if damage == "jpeg":
        Image.fromarray(grey).save(path, format="JPEG")
    else:
        _png(path, grey)
        data = path.read_bytes()
        path.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"not a png at all",
                          "empty": b""}[damage])
    with pytest.raises(InputError, match=re.escape(str(path))):
        read_label(path, "zones")


def test_grey_stored_as_colour_is_read_true_colour_and_missing_file_are_errors(tmp_path):
    grey_rgb = _png(tmp_path / "grey.png", [[0, 64], [127, 254]], mode="RGB")
    np.testing.assert_array_equal(read_label(grey_rgb, "zones"), [[0, 1], [2, 3]])
    colour = tmp_path / "colour.png"
    Image.fromarray(np.array([[[0, 0, 0], [64, 0, 9]]], np.uint8)).save(colour)
    with pytest.raises(InputError, match=re.escape(str(colour)) + ".*mode 'RGB'"):
        read_label(colour, "zones")
    sixteen = tmp_path / "sixteen.png"
    Image.fromarray(np.array([[0, 64]], np.uint16)).save(sixteen)
    with pytest.raises(InputError, match="8-bit grey"):
        read_label(sixteen, "zones")
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_label(tmp_path / "nope.png", "front")


# --- catalog ----------------------------------------------------------------------------------
def test_open_caffe_on_fixture_tree(tree, catalog):
    assert list(catalog.columns) == list(CATALOG_COLUMNS)
    assert catalog["split"].tolist() == ["train", "train", "train", "test"]
    assert catalog["glacier"].tolist() == ["DBE", "JAC", "Jorum", "COL"]
    assert catalog["date"].dtype == "datetime64[ns]"
    assert catalog["orbit"].tolist() == ["034", "005", "152", "092"]
    # CaFFe's rounded RESOLUTION labels read as the true spacing: "7" is 20 m / 3
    np.testing.assert_allclose(catalog["pixel_spacing"], [20 / 3, 6.0, 20.0, 20 / 3])
    np.testing.assert_array_equal(catalog["spacing_x"], catalog["pixel_spacing"])
    np.testing.assert_array_equal(catalog["spacing_y"], catalog["pixel_spacing"])
    assert catalog.attrs["pixel_spacing"] == "name"
    assert all(p and p.endswith("_bbox.txt") for p in catalog["bbox_path"])
    for column in ("image_path", "zones_path", "front_path"):
        assert all(os.path.isfile(p) for p in catalog[column])
    pd.testing.assert_frame_equal(open_caffe(tree.parent), catalog)  # parent of data_raw


def test_open_caffe_on_shipped_real_scenes_without_pixel_spacing():
    catalog = open_caffe(shipped_scenes(), pixel_spacing=None)
    assert len(catalog) == 21
    assert catalog.groupby("glacier").size().to_dict() == {"DBE": 9, "JAC": 2, "Jorum": 8, "SI": 2}
    assert (catalog.query("glacier == 'Jorum'")["satellite"] == "TSX").all()
    assert catalog["pixel_spacing"].isna().all() and catalog.attrs["pixel_spacing"] is None
    assert catalog["bbox_path"].isna().all()


def test_open_caffe_without_bounding_boxes(tmp_path):
    data_raw = write_fixture_tree(tmp_path, n_train=1, bounding_boxes=False)
    assert open_caffe(data_raw)["bbox_path"].tolist() == [None]


def test_open_caffe_missing_label_names_the_scene(tmp_path):
    data_raw = write_fixture_tree(tmp_path, n_train=2)
    stem = open_caffe(data_raw)["stem"][1]
    (data_raw / "fronts" / "train" / f"{stem}_front.png").unlink()
    with pytest.raises(InputError, match=re.escape(stem)):
        open_caffe(data_raw)


def test_open_caffe_bad_roots(tmp_path):
    with pytest.raises(FileNotFoundError, match="no folder"):
        open_caffe(tmp_path / "missing")
    with pytest.raises(InputError, match="sar_images"):
        open_caffe(tmp_path)
    (tmp_path / "data_raw" / "sar_images" / "train").mkdir(parents=True)
    with pytest.raises(InputError, match="no scenes"):
        open_caffe(tmp_path)
    with pytest.raises(InputError, match="pixel_spacing"):
        open_caffe(tmp_path, pixel_spacing="file")


def test_open_caffe_malformed_image_name_names_the_file(tmp_path):
    data_raw = write_fixture_tree(tmp_path, n_train=1)
    bad = _png(data_raw / "sar_images" / "train" / "holiday_photo.png", [[1]])
    with pytest.raises(InputError, match=re.escape(str(bad))):
        open_caffe(data_raw)


# --- scenes -----------------------------------------------------------------------------------
def test_load_scene(catalog):
    row = catalog.iloc[1]
    scene = load_scene(row)
    assert scene.sar.dims == ("y", "x") and scene.sizes == {"y": 64, "x": 80}
    np.testing.assert_array_equal(scene.x, np.arange(80.0))
    assert all(scene[v].dtype == np.uint8 for v in ("sar", "zones", "front"))
    assert scene.sar.attrs["nodata"] == 0 and "_FillValue" not in scene.sar.attrs
    assert "_FillValue" not in scene.sar.encoding
    assert set(np.unique(scene.zones)) <= {0, 1, 2, 3} and set(np.unique(scene.front)) == {0, 1}
    assert (scene.zones.values[scene.front.values == 1] == 3).all()  # fronts on the ocean side
    assert (scene.sar.values[scene.zones.values == 0] == 0).sum() > 0  # swath gap is no data
    np.testing.assert_array_equal(scene.zones, read_label(row["zones_path"], "zones"))
    assert scene.attrs == {"stem": row["stem"], "split": "train", "glacier": "JAC",
                           "date": row["date"].date().isoformat(), "satellite": "TSX",
                           "resolution": 6.0, "quality": 2, "orbit": "005", "pixel_spacing": 6.0}
    assert load_scene(row["stem"] + "_zones.png", catalog).identical(scene)


def test_load_scene_stem_needs_catalog_and_must_exist(catalog):
    with pytest.raises(InputError, match="catalog"):
        load_scene(catalog["stem"][0])
    with pytest.raises(InputError, match="not in the catalog"):
        load_scene("DBE_1999-01-01_TSX_7_1_034", catalog)


def test_load_shipped_scene_has_unknown_pixel_spacing():
    scene = load_scene(open_caffe(shipped_scenes(), pixel_spacing=None).iloc[5])
    assert scene.attrs["pixel_spacing"] == "unknown" and scene.sizes == {"y": 256, "x": 256}


# --- patch store ------------------------------------------------------------------------------
def test_window_starts_snap_the_last_window_inside():
    assert window_starts(80, 32, 32).tolist() == [0, 32, 48]
    assert window_starts(64, 32, 32).tolist() == [0, 32]
    assert window_starts(64, 32, 24).tolist() == [0, 24, 32]
    assert window_starts(10, 32, 8).tolist() == [0]


def _expected_patches(catalog, window, stride):
    out = {"sar": [], "zones": [], "front": [], "row": [], "col": [], "stem": []}
    for _, row in catalog.sort_values(["glacier", "date"]).iterrows():
        scene = load_scene(row)
        for r in window_starts(scene.sizes["y"], window, stride):
            for c in window_starts(scene.sizes["x"], window, stride):
                for name in ("sar", "zones", "front"):
                    out[name].append(scene[name].values[r:r + window, c:c + window])
                out["row"].append(r), out["col"].append(c), out["stem"].append(row["stem"])
    return out


@pytest.mark.parametrize("stride", [None, 24])
def test_caffe_to_zarr_windows_and_values(tree, catalog, tmp_path, stride):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. zarr's unstable-dtype warning for strings
        store = caffe_to_zarr(tree, tmp_path / "p.zarr", window=32, stride=stride,
                              chunk_samples=4, progress=False)
    ds = xcalving.open_cube(store)
    expected = _expected_patches(catalog, 32, stride or 32)
    assert ds.sizes["sample"] == len(expected["sar"]) == 4 * (6 if stride is None else 9)
    assert isinstance(ds.sar.data, da.Array) and ds.sar.dtype == np.uint8
    assert ds.chunksizes["sample"] == (4,) * (ds.sizes["sample"] // 4)
    assert ds.sar.chunksizes["y"] == (32,) and ds.stem.chunksizes["sample"][0] == 4
    assert "_FillValue" not in ds.sar.attrs and ds.sar.attrs["nodata"] == 0
    for name in ("sar", "zones", "front"):
        np.testing.assert_array_equal(ds[name].values, np.stack(expected[name]))
    assert ds.row.values.tolist() == expected["row"] and ds.col.values.tolist() == expected["col"]
    assert ds.stem.values.tolist() == expected["stem"]
    assert ds.glacier.values.tolist() == sorted(ds.glacier.values.tolist())  # grouped by glacier
    assert ds.col.values.max() == 48  # 80 columns: the last window is snapped, not dropped
    assert set(ds.split.values.tolist()) == {"train", "test"}
    assert ds.date.dtype == "datetime64[ns]" and ds.pixel_spacing.values[0] == pytest.approx(20 / 3)
    assert ds.attrs["window"] == 32 and ds.attrs["pixel_spacing"] == "name"


def test_caffe_to_zarr_pads_scenes_smaller_than_the_window(tree, catalog, tmp_path):
    store = caffe_to_zarr(catalog.iloc[:2], tmp_path / "p.zarr", window=96, progress=False)
    ds = xcalving.open_cube(store)
    assert ds.sizes == {"sample": 2, "y": 96, "x": 96}
    scene = load_scene(catalog.iloc[0])
    np.testing.assert_array_equal(ds.sar.values[0, :64, :80], scene.sar.values)
    np.testing.assert_array_equal(ds.zones.values[0, :64, :80], scene.zones.values)
    for name in ("sar", "zones", "front"):
        assert not ds[name].values[:, 64:].any() and not ds[name].values[:, :, 80:].any()


def test_caffe_to_zarr_refuses_to_overwrite(tree, catalog, tmp_path):
    store = caffe_to_zarr(catalog.iloc[:1], tmp_path / "p.zarr", window=64, progress=False)
    with pytest.raises(FileExistsError, match="mode='w'"):
        caffe_to_zarr(tree, store, window=64, progress=False)
    assert xcalving.open_cube(store).sizes["sample"] == 2
    caffe_to_zarr(tree, store, window=64, mode="w", progress=False)
    assert xcalving.open_cube(store).sizes["sample"] == 8


def test_caffe_to_zarr_shipped_scenes_and_progress_bar(tmp_path, capsys):
    store = caffe_to_zarr(shipped_scenes(), tmp_path / "p.zarr", pixel_spacing=None)
    ds = xcalving.open_cube(store)
    assert ds.sizes == {"sample": 21, "y": 256, "x": 256}
    assert np.isnan(ds.pixel_spacing.values).all() and ds.attrs["pixel_spacing"] == "unknown"
    assert "caffe_to_zarr" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs", [{"window": 0}, {"stride": -1}, {"chunk_samples": 0},
                                    {"mode": "a"}, {"window": 2.5}])
def test_caffe_to_zarr_bad_arguments(tree, tmp_path, kwargs):
    with pytest.raises(InputError):
        caffe_to_zarr(tree, tmp_path / "p.zarr", progress=False, **kwargs)
    assert not (tmp_path / "p.zarr").exists()


def test_caffe_to_zarr_bad_catalog(tmp_path, catalog):
    with pytest.raises(InputError, match="columns"):
        caffe_to_zarr(catalog[["stem"]], tmp_path / "p.zarr", progress=False)
    with pytest.raises(InputError, match="empty"):
        caffe_to_zarr(catalog.iloc[:0], tmp_path / "p.zarr", progress=False)


# --- download ---------------------------------------------------------------------------------
class _Quiet(http.server.SimpleHTTPRequestHandler):
    requests = 0

    def do_GET(self):  # noqa: N802
        type(self).requests += 1
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture()
def server(tmp_path, monkeypatch):
    """Serve ``tmp_path / "www"`` on 127.0.0.1 (never the internet)."""
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    www = tmp_path / "www"
    www.mkdir()
    handler = type("Handler", (_Quiet,), {"requests": 0})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


def _zip_tree(tree, archive, prefix="data_raw/", extra=()):
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(tree.rglob("*")):
            if path.is_file():
                zf.write(path, prefix + path.relative_to(tree).as_posix())
        for name, text in extra:
            zf.writestr(name, text)
    return hashlib.sha256(archive.read_bytes()).hexdigest()


@pytest.mark.parametrize("prefix", ["data_raw/", ""])
def test_download_caffe_verifies_and_extracts(server, tree, tmp_path, prefix):
    www, url, _ = server
    digest = _zip_tree(tree, www / "data_raw.zip", prefix)
    dest = tmp_path / "dest"
    data_raw = download_caffe(dest, url=f"{url}/data_raw.zip", sha256=digest, progress=False)
    assert data_raw == dest / "data_raw"
    pd.testing.assert_frame_equal(open_caffe(data_raw).drop(columns=_PATHS),
                                  open_caffe(tree).drop(columns=_PATHS))
    with pytest.raises(FileExistsError, match="never overwrites"):
        download_caffe(dest, url=f"{url}/data_raw.zip", sha256=digest, progress=False)


_PATHS = ["image_path", "zones_path", "front_path", "bbox_path"]


def test_download_caffe_wrong_hash_extracts_nothing(server, tree, tmp_path):
    www, url, _ = server
    _zip_tree(tree, www / "data_raw.zip")
    dest = tmp_path / "dest"
    with pytest.raises(UnsafeFileError, match="verification"):
        download_caffe(dest, url=f"{url}/data_raw.zip", sha256="0" * 64, progress=False)
    assert not (dest / "data_raw").exists() and not (dest / "data_raw.zip").exists()


def test_download_caffe_without_hash_prints_it_and_waits_for_confirmation(server, tree, tmp_path,
                                                                          capsys):
    www, url, handler = server
    digest = _zip_tree(tree, www / "data_raw.zip")
    dest = tmp_path / "dest"
    with pytest.raises(UnsafeFileError, match=f"sha256={digest!r}"):
        download_caffe(dest, url=f"{url}/data_raw.zip", sha256=None, progress=False)
    assert digest in capsys.readouterr().out and not (dest / "data_raw").exists()
    download_caffe(dest, url=f"{url}/data_raw.zip", sha256=digest.upper(), progress=False)
    assert handler.requests == 1 and len(open_caffe(dest)) == 4  # confirmed, not fetched again


@pytest.mark.parametrize("evil", ["../evil.txt", "data_raw/../../evil.txt",
                                  "/tmp/xcalving-evil.txt"])
def test_download_caffe_refuses_members_outside_dest(server, tree, tmp_path, evil):
    www, url, _ = server
    digest = _zip_tree(tree, www / "data_raw.zip", extra=[(evil, "boo")])
    dest = tmp_path / "a" / "dest"
    with pytest.raises(UnsafeFileError, match=re.escape(evil)):
        download_caffe(dest, url=f"{url}/data_raw.zip", sha256=digest, progress=False)
    assert not (dest / "data_raw").exists()
    assert not list(tmp_path.rglob("*evil.txt")) and not os.path.exists("/tmp/xcalving-evil.txt")


def test_download_caffe_bad_hash_format_and_existing_dest(tmp_path, tree):
    with pytest.raises(InputError, match="64 hexadecimal"):
        download_caffe(tmp_path, url="http://127.0.0.1:9/x.zip", sha256="abc")
    # an existing, non-empty data_raw is refused before any download is tried
    with pytest.raises(FileExistsError):
        download_caffe(tree.parent, url="http://127.0.0.1:9/x.zip", sha256="0" * 64)
