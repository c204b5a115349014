"""The safe-write rules: a write never destroys what xcalving did not make, and a failed or
interrupted command leaves nothing in the way of its re-run (xcalving.safety,
xcalving.io.lineage)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import bad_inputs_writes
import numpy as np
import pytest
import test_bad_inputs as matrix
import xarray as xr

import xcalving
from xcalving import UnsafeTargetError
from xcalving.cli import main
from xcalving.errors import InputError
from xcalving.io import input_fingerprint, input_paths
from xcalving.safety import MARKER, check_replaceable, mark_folder


def _cube(seed: int = 3) -> xr.Dataset:
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(2, shape=(64, 64), seed=seed)
    return cube[["sar"]]


def _listing(folder: Path) -> list[str]:
    """Every entry of ``folder``, hidden ones (temporary siblings) included."""
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def store(tmp_path) -> Path:
    return Path(xcalving.write_cube(_cube(), tmp_path / "cube.zarr"))


@pytest.fixture
def weights(tmp_path) -> Path:
    import torch

    from xcalving.model import ASPPUNet, save_model

    torch.manual_seed(0)
    return Path(save_model(ASPPUNet(width=4), tmp_path / "net.safetensors"))


def _predict(store: Path, out: Path, weights: Path, *extra: str) -> int:
    return main(["predict", str(store), "--out", str(out), "--model", str(weights), "--tile",
                 "64", "--overlap", "16", *extra])


@pytest.fixture
def mute_address():
    """A local port that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []

    def accept():
        try:
            while True:
                held.append(server.accept()[0])
        except OSError:
            return

    threading.Thread(target=accept, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for conn in held:
        conn.close()


# --- input_paths and the input fingerprint ------------------------------------------------------
def test_input_paths_follow_the_lazy_data(store, tmp_path):
    real = os.path.realpath(store)
    lazy = xcalving.open_cube(store)
    assert input_paths(lazy) == [real]
    assert input_paths(lazy.sar) == [real]
    assert input_paths((lazy.sar * 2).chunk(y=32).isel(time=[1])) == [real]
    assert input_paths(lazy.sar.chunk(y=32, inline_array=True)) == [real]
    assert input_paths(xr.open_dataset(store, engine="zarr", consolidated=False)) == [real]
    other = xcalving.write_cube(_cube(seed=5), tmp_path / "other.zarr")
    both = xr.Dataset({"a": lazy.sar, "b": xcalving.open_cube(other).sar})
    assert sorted(input_paths(both)) == sorted([real, os.path.realpath(other)])
    assert input_paths(xcalving.open_cube(store).load()) == []  # loaded: reads nothing
    assert input_paths(_cube()) == []


def test_input_paths_of_a_prediction_and_a_geotiff(store, weights, tmp_path):
    pred = xcalving.open_cube(store).calving.predict(str(weights), tile=64, overlap=16)
    assert os.path.realpath(store) in input_paths(pred)
    tif = tmp_path / "scene.tif"
    _cube().sar.isel(time=0).rio.to_raster(tif)
    import rioxarray

    assert input_paths(rioxarray.open_rasterio(tif, chunks={})) == [os.path.realpath(tif)]


def test_fingerprint_follows_the_data_not_the_path(store, tmp_path):
    first = input_fingerprint(xcalving.open_cube(store))
    assert first.startswith("sha256:") and first == input_fingerprint(xcalving.open_cube(store))
    moved = shutil.copytree(store, tmp_path / "moved.zarr")
    assert input_fingerprint(xcalving.open_cube(moved)) == first
    xcalving.write_cube(_cube(seed=4), store, mode="w")  # regenerated: same path, same shape
    assert input_fingerprint(xcalving.open_cube(store)) != first
    edited = _cube()
    edited["sar"][1, 40:50, 40:50] += 1.0  # one small patch of one scene
    assert input_fingerprint(edited) != input_fingerprint(_cube())


# --- targets: never an input, replace only a store ----------------------------------------------
def test_predict_onto_its_own_input_is_refused_and_the_input_intact(store, weights, tmp_path,
                                                                     capsys):
    before = xcalving.open_cube(store).sar.values
    listing = _listing(tmp_path)
    assert _predict(store, store, weights, "--overwrite") == 1
    assert "is the input" in capsys.readouterr().err
    assert _predict(store, store / "pred.zarr", weights) == 1
    assert "lies inside the input" in capsys.readouterr().err
    assert _predict(store, tmp_path, weights, "--overwrite") == 1
    assert _listing(tmp_path) == listing
    np.testing.assert_array_equal(xcalving.open_cube(store).sar.values, before)


def test_write_cube_never_replaces_a_folder_of_files_a_file_or_the_current_folder(
        tmp_path, monkeypatch):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "thesis.tex").write_text("precious")
    with pytest.raises(UnsafeTargetError, match="neither a Zarr store") as info:
        xcalving.write_cube(_cube(), folder, mode="w")
    assert isinstance(info.value, FileExistsError)
    with pytest.raises(FileExistsError, match="a file, not a Zarr store"):
        xcalving.write_cube(_cube(), folder / "thesis.tex", mode="w")
    assert _listing(folder) == ["thesis.tex"] and _listing(tmp_path) == ["results"]
    # "." (or a folder holding it) is refused even when it is a Zarr store
    store = xcalving.write_cube(_cube(), tmp_path / "s.zarr")
    monkeypatch.chdir(store)
    for target in (".", "..", os.getcwd()):
        with pytest.raises(FileExistsError, match="current folder"):
            xcalving.write_cube(_cube(seed=4), target, mode="w")
    np.testing.assert_array_equal(xcalving.open_cube(store).sar.values, _cube().sar.values)


def test_a_failed_replace_leaves_the_old_store_intact(store, tmp_path):
    uneven = _cube(seed=4).chunk({"time": 1, "y": (10, 30, 24)})
    with pytest.raises(ValueError, match="uniform chunk sizes"):
        xcalving.write_cube(uneven, store, mode="w")
    np.testing.assert_array_equal(xcalving.open_cube(store).sar.values, _cube().sar.values)
    assert _listing(tmp_path) == ["cube.zarr"]  # no temporary sibling left
    xcalving.write_cube(_cube(seed=4), store, mode="w")  # a good one replaces it
    np.testing.assert_array_equal(xcalving.open_cube(store).sar.values, _cube(4).sar.values)
    assert _listing(tmp_path) == ["cube.zarr"]


def test_updating_a_store_in_place_is_refused_and_loading_first_works(store):
    lazy = xcalving.open_cube(store)
    with pytest.raises(InputError, match=r"is the input .*ds\.load\(\)"):
        xcalving.write_cube(lazy.assign(double=lazy.sar * 2), store, mode="w")
    np.testing.assert_array_equal(xcalving.open_cube(store).sar.values, _cube().sar.values)
    loaded = xcalving.open_cube(store).load()
    xcalving.write_cube(loaded.assign(double=loaded.sar * 2), store, mode="w")
    back = xcalving.open_cube(store)
    np.testing.assert_array_equal(back.sar.values, _cube().sar.values)
    np.testing.assert_array_equal(back.double.values, 2 * _cube().sar.values)


def test_replacing_a_linked_store_replaces_the_link_only(store, tmp_path):
    link = tmp_path / "link.zarr"
    link.symlink_to(store, target_is_directory=True)
    xcalving.write_cube(_cube(seed=4), link, mode="w")
    assert not link.is_symlink()
    np.testing.assert_array_equal(xcalving.open_cube(link).sar.values, _cube(4).sar.values)
    np.testing.assert_array_equal(xcalving.open_cube(store).sar.values, _cube().sar.values)


def test_a_marked_folder_is_replaceable_until_someone_adds_to_it(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"png")
    mark_folder(folder, "a test")
    assert (folder / MARKER).is_file()
    check_replaceable(folder)
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(UnsafeTargetError, match="notes.txt"):
        check_replaceable(folder)


# --- the demo ------------------------------------------------------------------------------------
_DEMO = ["--n-times", "1", "--size", "64", "--synthetic-only"]


def test_demo_never_adopts_a_folder_it_did_not_create(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()  # empty, but the user's
    assert main(["demo", "--out", str(mine), *_DEMO]) == 1
    assert "not created by `xcalving demo`" in capsys.readouterr().err
    assert _listing(mine) == []
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *_DEMO]) == 0
    assert (out / MARKER).is_file() and (out / "cube.zarr").is_dir()
    assert main(["demo", "--out", str(out), *_DEMO, "--seed", "9"]) == 0  # its own: replaced
    (out / "notes.txt").write_text("mine now")
    assert main(["demo", "--out", str(out), *_DEMO]) == 1
    assert (out / "notes.txt").read_text() == "mine now"
    assert _listing(tmp_path) == ["demo", "mine"]


def test_an_interrupted_demo_leaves_the_earlier_run(tmp_path, monkeypatch, capsys):
    import xcalving.cli.demo

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *_DEMO]) == 0
    before = _listing(out)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(xcalving.cli.demo, "synthetic_part", interrupt)
    assert main(["demo", "--out", str(out), *_DEMO]) == 130
    assert _listing(out) == before and _listing(tmp_path) == ["demo"]


# --- resume checks what the input holds -----------------------------------------------------------
def test_resume_refuses_a_regenerated_input_and_accepts_a_moved_one(store, weights, tmp_path,
                                                                    capsys):
    out = tmp_path / "pred.zarr"
    assert _predict(store, out, weights) == 0
    fingerprint = xcalving.open_cube(out).attrs["input_fingerprint"]
    moved = shutil.copytree(store, tmp_path / "moved.zarr")
    capsys.readouterr()
    assert _predict(moved, out, weights, "--resume") == 0  # same data elsewhere: nothing to do
    assert "wrote 0 of 2 blocks" in capsys.readouterr().out
    xcalving.write_cube(_cube(seed=4), store, mode="w")  # regenerated at the same path
    assert _predict(store, out, weights, "--resume") == 1
    err = capsys.readouterr().err
    assert "input cube holds other data" in err and "--overwrite" in err
    assert xcalving.open_cube(out).attrs["input_fingerprint"] == fingerprint


# --- the scheduler answers in time, before anything is written ----------------------------------
def test_a_mute_scheduler_fails_fast_before_any_output(store, weights, tmp_path, mute_address,
                                                       monkeypatch, capsys):
    listing = _listing(tmp_path)
    start = time.monotonic()
    assert _predict(store, tmp_path / "p.zarr", weights, "--scheduler", mute_address,
                    "--scheduler-timeout", "1") == 1
    assert time.monotonic() - start < 15
    err = capsys.readouterr().err
    assert "cannot connect to a Dask scheduler" in err and "within 1 s" in err
    monkeypatch.setenv("XCALVING_SCHEDULER_TIMEOUT", "0.5")  # the variable sets it too
    assert _predict(store, tmp_path / "p.zarr", weights, "--scheduler", mute_address) == 1
    assert "within 0.5 s" in capsys.readouterr().err
    assert _listing(tmp_path) == listing


def test_a_closed_port_or_a_worker_is_not_a_scheduler(store, weights, tmp_path, capsys):
    from distributed import LocalCluster

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    closed = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    probe.close()
    assert _predict(store, tmp_path / "p.zarr", weights, "--scheduler", closed,
                    "--scheduler-timeout", "1") == 1
    assert "cannot connect" in capsys.readouterr().err
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None,
                      processes=False) as cluster:
        worker = next(iter(cluster.scheduler.workers))
        assert _predict(store, tmp_path / "p.zarr", weights, "--scheduler", worker) == 1
        assert "a Dask Worker answered, not a scheduler" in capsys.readouterr().err
    assert not (tmp_path / "p.zarr").exists()


# --- failures and Ctrl-C --------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["xcalving.cli.predict", "xcalving.cli._dask"])
def test_a_failed_predict_leaves_nothing_in_the_way_of_its_rerun(store, weights, tmp_path,
                                                                 monkeypatch, capsys, where):
    import importlib

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    listing = _listing(tmp_path)
    monkeypatch.setattr(importlib.import_module(where), "compute_with_progress", fail)
    assert _predict(store, tmp_path / "p.zarr", weights) == 1
    assert "disk full" in capsys.readouterr().err
    assert _listing(tmp_path) == listing
    monkeypatch.undo()
    assert _predict(store, tmp_path / "p.zarr", weights) == 0


def test_a_failed_overwrite_keeps_the_old_prediction(store, weights, tmp_path, monkeypatch):
    import xcalving.cli.predict as cli_predict

    out = tmp_path / "p.zarr"
    assert _predict(store, out, weights) == 0
    before = xcalving.open_cube(out).front_probability.values

    def fail(*args, **kwargs):
        raise RuntimeError("worker lost")

    monkeypatch.setattr(cli_predict, "compute_with_progress", fail)
    assert _predict(store, out, weights, "--overwrite") == 1
    np.testing.assert_array_equal(xcalving.open_cube(out).front_probability.values, before)
    assert ".p.zarr.xcalving-partial" not in _listing(tmp_path)


def test_ctrl_c_exits_130_and_resume_finishes_the_run(store, weights, tmp_path, monkeypatch,
                                                      capsys):
    import xcalving.cli.predict as cli_predict

    out, partial = tmp_path / "p.zarr", tmp_path / ".p.zarr.xcalving-partial"

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_predict, "compute_with_progress", interrupt)
    assert _predict(store, out, weights) == 130
    err = capsys.readouterr().err
    assert "--resume" in err and "interrupted" in err
    assert not out.exists() and partial.is_dir()  # resumable: kept beside, never at --out
    monkeypatch.undo()
    assert _predict(store, out, weights) == 1
    assert "pass --resume to continue it or --overwrite" in capsys.readouterr().err
    xcalving.write_cube(_cube(seed=4), tmp_path / "new.zarr")
    assert _predict(tmp_path / "new.zarr", out, weights, "--resume") == 1  # another input
    assert _predict(store, out, weights, "--resume") == 0
    assert "wrote 2 of 2 blocks" in capsys.readouterr().out
    assert not partial.exists()
    assert _predict(store, tmp_path / "whole.zarr", weights) == 0
    np.testing.assert_array_equal(xcalving.open_cube(out).front_probability.values,
                                  xcalving.open_cube(tmp_path / "whole.zarr")
                                  .front_probability.values)


def test_an_interrupted_overwrite_resumes_only_when_asked_to_replace(store, weights, tmp_path,
                                                                     monkeypatch, capsys):
    import xcalving.cli.predict as cli_predict

    out = tmp_path / "p.zarr"
    assert _predict(store, out, weights) == 0

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_predict, "compute_with_progress", interrupt)
    assert _predict(store, out, weights, "--overwrite", "--tile", "32", "--overlap", "8") == 130
    monkeypatch.undo()
    assert xcalving.open_cube(out).attrs["tile"] == 64  # the old prediction is untouched
    retry = ("--tile", "32", "--overlap", "8", "--resume")
    assert _predict(store, out, weights, *retry) == 1
    assert "--resume --overwrite" in capsys.readouterr().err
    assert _predict(store, out, weights, *retry, "--overwrite") == 0
    assert xcalving.open_cube(out).attrs["tile"] == 32
    assert _listing(tmp_path) == ["cube.zarr", "net.safetensors", "p.zarr"]


def test_ctrl_c_in_write_cube_and_caffe_to_zarr_removes_the_temporary_store(tmp_path,
                                                                            monkeypatch):
    from xcalving.data.caffe import caffe_to_zarr, open_caffe, patches
    from xcalving.testing import write_fixture_tree

    catalog = open_caffe(write_fixture_tree(tmp_path / "caffe", n_train=1, n_test=0))
    original = xr.Dataset.to_zarr

    def write_then_interrupt(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.Dataset, "to_zarr", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        xcalving.write_cube(_cube(), tmp_path / "c.zarr")
    monkeypatch.undo()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(patches, "_write_patches", fail)
    with pytest.raises(OSError, match="disk full"):
        caffe_to_zarr(catalog, tmp_path / "p.zarr", window=64, progress=False)
    assert _listing(tmp_path) == ["caffe"]


# --- names Zarr cannot keep -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sigma0/VV", "a\\b", " sar", "sar ", "", "__sar", "..", 7])
def test_names_zarr_cannot_keep_are_refused_before_writing(name, tmp_path):
    with pytest.raises(InputError, match=r"cannot be stored in Zarr.*ds = ds\.rename\("):
        xcalving.write_cube(_cube().rename(sar=name), tmp_path / "c.zarr")
    assert _listing(tmp_path) == []


def test_unusual_but_storable_names_round_trip(tmp_path):
    ds = _cube().rename(sar="σ0 VV-dB")
    back = xcalving.open_cube(xcalving.write_cube(ds, tmp_path / "c.zarr"))
    assert list(back.data_vars) == ["σ0 VV-dB"]


# --- the bad-input rows of these rules, as the matrix's own rows ----------------------------------
ROWS = bad_inputs_writes.cases(matrix.Case)


def test_there_are_enough_rows():
    assert len(ROWS) >= 10 and len({row.id for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_bad_input_rows_of_the_write_rules(row, tmp_path, capsys):
    matrix.test_bad_input(row, tmp_path, capsys)
