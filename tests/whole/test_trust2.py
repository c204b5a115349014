"""The second trust round's mechanisms, each tested for real.

Writers never drop what they did not write and never swap in an unverified file; a target is
locked while a run writes it; resume fingerprints cover every input byte; work is budgeted
before it starts; the transform of a prediction comes from its coordinates. The rows of the
bad-input matrix for these areas are in ``bad_inputs_trust2.py``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import bad_inputs_trust2 as t2
import numpy as np
import pytest
import xarray as xr

import xcalving
from xcalving.atomic import lock_path, staged_file, staging_name, target_lock
from xcalving.cli import main
from xcalving.errors import TargetBusyError, WorkBudgetError, WriteVerificationError
from xcalving.io import input_fingerprint
from xcalving.vector import read_fronts, write_fronts


# --- front files: nothing lost ------------------------------------------------------------------
def test_rewriting_a_geopackage_keeps_the_layers_the_user_added(tmp_path):
    import geopandas as gpd
    import pyogrio
    import shapely

    path = write_fronts(t2.fronts_frame(), tmp_path / "fronts.gpkg")
    outline = gpd.GeoDataFrame({"name": ["fjord"]}, crs=3413,
                               geometry=[shapely.box(0, 0, 100, 10)])
    outline.to_file(path, layer="outline", engine="pyogrio")  # drawn in QGIS
    write_fronts(t2.fronts_frame().iloc[:2], path, overwrite=True)
    layers = {str(name) for name, _ in pyogrio.list_layers(path)}
    assert layers == {"fronts", "outline"}
    kept = gpd.read_file(path, layer="outline")
    assert kept["name"].tolist() == ["fjord"] and kept.geometry[0].equals(outline.geometry[0])
    assert len(read_fronts(path)) == 2  # the fronts layer, wherever it lies in the file
    assert sorted(os.listdir(tmp_path)) == ["fronts.gpkg"]


@pytest.mark.parametrize("suffix", [".parquet", ".gpkg", ".geojson", ".fgb"])
def test_a_write_that_stops_short_leaves_the_old_file(tmp_path, monkeypatch, suffix):
    from xcalving.vector import files as fronts_io

    path = write_fronts(t2.fronts_frame(), tmp_path / f"fronts{suffix}")
    before = Path(path).read_bytes()
    real = fronts_io._write

    def short(out, target, driver):  # the writer finishes, but half the bytes are lost
        real(out, target, driver)
        data = Path(target).read_bytes()
        Path(target).write_bytes(data[: len(data) // 2])

    monkeypatch.setattr(fronts_io, "_write", short)
    with pytest.raises(WriteVerificationError, match="is left as it was") as info:
        write_fronts(t2.fronts_frame().iloc[:1], path, overwrite=True)
    assert isinstance(info.value, OSError)
    assert Path(path).read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == [f"fronts{suffix}"]


def test_weights_are_checked_by_size_and_sha256_before_the_swap(tmp_path, monkeypatch):
    import xcalving.atomic as atomic
    from xcalving.model import load_model, save_model

    path = save_model(t2.net(), tmp_path / "w.safetensors")
    before = Path(path).read_bytes()
    real = atomic._put
    monkeypatch.setattr(atomic, "_put", lambda target, data: real(target, data[:-1]))
    with pytest.raises(WriteVerificationError, match=r"bytes .* were written"):
        save_model(t2.net(), path)
    assert Path(path).read_bytes() == before and load_model(path) is not None
    assert sorted(os.listdir(tmp_path)) == ["w.safetensors"]


# --- races: unique staging names and a lock on the target -------------------------------------
def test_staging_names_are_unique_to_each_run(tmp_path):
    a, b = staging_name(tmp_path / "p.zarr"), staging_name(tmp_path / "p.zarr")
    assert a != b and f"-{os.getpid()}-" in a.name and a.name.startswith(".p.zarr.xcalving-tmp")


def test_two_concurrent_staged_writes_the_second_is_refused(tmp_path):
    from xcalving.safety import staged

    out = tmp_path / "result"
    inside, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with staged(out) as work:
                work.mkdir()
                (work / "who").write_text("first")
                inside.set()
                release.wait(30)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    thread = threading.Thread(target=first)
    thread.start()
    assert inside.wait(30)
    with pytest.raises(TargetBusyError, match="another xcalving run is writing"):
        with staged(out, mode="w") as work:
            work.mkdir()
    with pytest.raises(TargetBusyError):
        with staged_file(tmp_path / "result"):
            pass
    release.set()
    thread.join(30)
    assert not errors and (out / "who").read_text() == "first"
    assert sorted(os.listdir(tmp_path)) == ["result"]  # no staging left, no lock file


def test_a_lock_held_by_another_process_refuses_and_dies_with_it(tmp_path):
    target = tmp_path / "p.zarr"
    script = ("import sys, time; from xcalving.atomic import target_lock\n"
              f"with target_lock({str(target)!r}):\n"
              "    print('held', flush=True); time.sleep(60)\n")
    other = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "held"
        with pytest.raises(TargetBusyError, match=rf"process {other.pid}, since"):
            with target_lock(target):
                pass
    finally:
        other.send_signal(signal.SIGKILL)  # killed: it cannot clean up
        other.wait(30)
    with target_lock(target):  # the kernel released the lock with the process: never stale
        assert lock_path(target).exists()
    assert not lock_path(target).exists()


def test_two_predict_overwrite_runs_on_one_out_the_second_is_refused(tmp_path, monkeypatch,
                                                                     capsys):
    import xcalving.cli.predict as cli_predict

    store = t2.store(tmp_path)
    args = ["predict", str(store), "--out", str(tmp_path / "p.zarr"), *t2.model_args(tmp_path)]
    computing, release = threading.Event(), threading.Event()
    real = cli_predict.compute_with_progress

    def slow(job, client, what):
        computing.set()
        release.wait(60)
        real(job, client, what)

    monkeypatch.setattr(cli_predict, "compute_with_progress", slow)
    codes: list[int] = []
    first = threading.Thread(target=lambda: codes.append(main(args)))
    first.start()
    assert computing.wait(60)
    assert main([*args, "--overwrite"]) == 1  # the second run: refused, touches nothing
    assert "another xcalving run is writing" in capsys.readouterr().err
    release.set()
    first.join(60)
    assert codes == [0]
    pred = xcalving.open_cube(tmp_path / "p.zarr")
    assert not xcalving.io.missing_blocks(tmp_path / "p.zarr", pred)
    assert sorted(os.listdir(tmp_path)) == ["cube.zarr", "net.safetensors", "p.zarr"]


# --- resume: every input byte ------------------------------------------------------------------
def test_an_edit_outside_the_sampled_windows_changes_the_fingerprint(tmp_path):
    from xcalving.io.lineage import _windows

    paths = []
    for scene in t2.sar():
        paths.append(tmp_path / f"S1_{str(scene.time.values)[:10]}.tif")
        scene.rio.to_raster(paths[-1])
    before = input_fingerprint(xcalving.open_scenes(paths))
    assert before.startswith("sha256:")
    sampled = np.zeros((2, 64, 64), bool)
    for window in _windows((2, 64, 64), 8):
        sampled[window] = True
    assert not sampled[1, 40, 23]  # a sample alone would never see the edit
    size = paths[1].stat().st_size
    t2._edit_pixel_in_place(paths[1], 40, 23)
    assert paths[1].stat().st_size == size
    assert input_fingerprint(xcalving.open_scenes(paths)) != before
    moved = shutil.copytree(tmp_path, tmp_path.parent / f"{tmp_path.name}-moved")
    assert input_fingerprint(xcalving.open_scenes(sorted(moved.glob("S1_*.tif")))) == \
        input_fingerprint(xcalving.open_scenes(paths))


def test_a_fingerprint_says_when_it_could_not_read_every_byte():
    import dask.array as dsa

    in_memory = t2.sar()
    generated = in_memory.copy(data=dsa.random.default_rng(0).random((2, 64, 64)))
    assert input_fingerprint(in_memory).startswith("sha256:")
    assert input_fingerprint(generated).startswith("sampled-sha256:")


# --- budgets -----------------------------------------------------------------------------------
def test_the_budget_is_checked_from_metadata_before_anything_is_built(tmp_path):
    started = time.perf_counter()
    with pytest.raises(WorkBudgetError, match=r"max_pixels=1\.72e\+10"):
        xcalving.open_scenes(t2.huge_sparse_tif(tmp_path / "S1_2020-01-01.tif"))
    assert time.perf_counter() - started < 20
    with pytest.raises(WorkBudgetError, match=r"\(2 scene\(s\) of 64 x 64 px, in windows"):
        t2.predict(t2.sar(), max_pixels=1000)
    lazy = t2.predict(t2.sar(), resolution=2.0, max_pixels=None)  # the owner's call: built
    assert lazy.front_probability.shape == (2, 64, 64)


def test_the_cli_passes_the_budget_on(tmp_path, capsys):
    store = t2.store(tmp_path)
    common = ["predict", str(store), *t2.model_args(tmp_path)]
    assert main([*common, "--out", str(tmp_path / "a.zarr"), "--max-pixels", "1e3"]) == 1
    assert "max_pixels=1e+03" in capsys.readouterr().err
    assert main([*common, "--out", str(tmp_path / "b.zarr"), "--max-pixels", "none",
                 "--resolution", "2"]) == 0


# --- the transform comes from the coordinates -------------------------------------------------
def test_a_coarsened_cube_is_predicted_and_written_with_its_own_transform(tmp_path):
    from xcalving.grid import transform

    coarse = t2.sar().coarsen(y=2, x=2).mean().assign_attrs(units="dB")
    assert coarse.spatial_ref.attrs["GeoTransform"].split()[1] == "20.0"  # stale, from the source
    pred = t2.predict(coarse)
    assert pred.spatial_ref.attrs["GeoTransform"] == " ".join(
        str(v) for v in transform(coarse).to_gdal())
    store = xcalving.write_cube(coarse.to_dataset(name="sar"), tmp_path / "coarse.zarr")
    back = xcalving.open_cube(store)
    assert back.rio.transform() == transform(back) and back.rio.transform().a == 40.0


# --- reading: damaged inputs named, brackets taken literally ------------------------------------
def test_guarded_stores_read_the_same_values_in_the_same_chunks(tmp_path):
    store = t2.store(tmp_path)
    plain = xr.open_zarr(store, decode_coords="all", consolidated=False)
    guarded = xcalving.open_cube(store)
    assert guarded.sar.chunks == plain.sar.chunks
    np.testing.assert_array_equal(guarded.sar.values, plain.sar.values)
    assert xcalving.open_cube(store, chunks={"time": 2}).sar.chunks[0] == (2,)


def test_a_folder_whose_name_has_brackets_is_taken_literally(tmp_path):
    paths = t2.tifs(tmp_path / "run[1]")
    da = xcalving.open_scenes(str(tmp_path / "run[1]" / "*.tif"))
    assert da.source.values.tolist() == [p.name for p in paths]


def test_scenes_read_through_the_guarded_reader_equal_the_files(tmp_path):
    paths = t2.tifs(tmp_path / "s1")
    da = xcalving.open_scenes(paths)
    np.testing.assert_array_equal(da.values, t2.sar().values.astype(np.float32))
