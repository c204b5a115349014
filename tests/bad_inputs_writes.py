"""Bad inputs of the safe-write rules: targets that are inputs, folders that are not stores.

Rows of the bad-input matrix (``tests/whole/test_bad_inputs.py`` runs and renders them; the rows are
also run by ``tests/core/test_safety.py``). ``cases(Case)`` builds them with the matrix's own row
type.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import xarray as xr


# --- inputs ---------------------------------------------------------------------------------------
def _cube(seed: int = 3) -> xr.Dataset:
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(2, shape=(64, 64), resolution=20.0, seed=seed)
    return cube[["sar"]]


def _store(tmp: Path, name: str = "cube.zarr", seed: int = 3) -> Path:
    import xcalving

    return Path(xcalving.write_cube(_cube(seed), tmp / name))


def _write(ds, path, **kwargs):
    import xcalving

    return xcalving.write_cube(ds, path, **kwargs)


def _folder_of_files(tmp: Path) -> Path:
    folder = tmp / "results"
    folder.mkdir()
    (folder / "thesis.tex").write_text("precious")
    return folder


@contextlib.contextmanager
def _inside(folder: Path) -> Iterator[None]:
    """Run with ``folder`` as the current folder ("." is then a throw-away test folder)."""
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _cwd_replace(tmp: Path) -> None:
    with _inside(tmp):
        _write(_cube(), ".", mode="w")


def _predict_out_dot(tmp: Path) -> None:
    store = _store(tmp)
    with _inside(tmp):
        _cli(["predict", str(store), "--out", ".", "--overwrite"], tmp)


def _onto_own_input(tmp: Path) -> None:
    import xcalving

    store = _store(tmp)
    lazy = xcalving.open_cube(store)
    _write(lazy.assign(sar2=lazy.sar * 2), store, mode="w")


def _holding_input(tmp: Path) -> None:
    import xcalving

    data = tmp / "data"
    lazy = xcalving.open_cube(_store(data))
    _write(lazy, data, mode="w")


def _cli(argv: list[str], tmp: Path) -> None:
    """Run the CLI; raise SystemExit(code) so the case can check code and stderr."""
    from xcalving.cli import main

    raise SystemExit(main([a.replace("TMP", str(tmp)) for a in argv]))


def _quiet_cli(argv: list[str], tmp: Path) -> int:
    """Run the CLI as a set-up step: its progress bars must not reach the checked stderr."""
    from xcalving.cli import main

    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        return main([a.replace("TMP", str(tmp)) for a in argv])


def _net(tmp: Path) -> str:
    import torch

    from xcalving.model import ASPPUNet, save_model

    torch.manual_seed(0)
    return str(save_model(ASPPUNet(width=4), tmp / "net.safetensors"))


def _resume_regenerated(tmp: Path) -> None:
    import xcalving

    store = _store(tmp)
    common = ["--model", _net(tmp), "--tile", "64", "--overlap", "16"]
    assert _quiet_cli(["predict", str(store), "--out", "TMP/pred.zarr", *common], tmp) == 0
    xcalving.write_cube(_cube(seed=4), store, mode="w")  # new data, same path, same shape
    _cli(["predict", str(store), "--out", "TMP/pred.zarr", *common, "--resume"], tmp)


def _mute_scheduler(tmp: Path) -> None:
    """A port that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        _cli(["predict", str(_store(tmp)), "--out", "TMP/p.zarr", "--scheduler",
              f"tcp://127.0.0.1:{server.getsockname()[1]}", "--scheduler-timeout", "1"], tmp)
    finally:
        server.close()
        for conn in held:
            conn.close()


def _demo_into_empty_folder(tmp: Path) -> None:
    (tmp / "mine").mkdir()
    _cli(["demo", "--out", "TMP/mine", "--n-times", "1", "--size", "64", "--synthetic-only"],
         tmp)


def _caffe_into_folder(tmp: Path) -> None:
    _folder_of_files(tmp)
    _cli(["caffe", "TMP/data_raw", "--out", "TMP/results", "--overwrite"], tmp)


def _caffe_api_into_folder(tmp: Path) -> None:
    from xcalving.data.caffe import caffe_to_zarr, open_caffe
    from xcalving.testing import write_fixture_tree

    root = write_fixture_tree(tmp / "caffe", n_train=1, n_test=0)
    caffe_to_zarr(open_caffe(root), _folder_of_files(tmp), window=64, mode="w", progress=False)


def _fronts_map_onto_store(tmp: Path) -> None:
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(2, shape=(64, 64), resolution=20.0, seed=3)
    store = _write(xr.Dataset({"zones": cube.zones}).rio.write_crs(cube.rio.crs),
                   tmp / "pred.zarr")
    _cli(["fronts", store, "--map", store, "--overwrite", "--min-length", "0"], tmp)


def cases(Case) -> list:  # noqa: N803  (the row class of the matrix)
    """The rows, built with ``Case(id, area, what, error, builtin, match, run)``."""
    return [
        Case("write-replace-folder", "writes", "``write_cube(mode='w')`` onto a folder of "
             "unrelated files", "UnsafeTargetError", "FileExistsError",
             r"neither a Zarr store nor one xcalving created.*Choose a new path",
             lambda t: _write(_cube(), _folder_of_files(t), mode="w")),
        Case("write-replace-cwd", "writes", "``write_cube(ds, '.', mode='w')``",
             "UnsafeTargetError", "FileExistsError", r"the current folder",
             lambda t: _cwd_replace(t)),
        Case("write-replace-file", "writes", "``write_cube(mode='w')`` onto a file",
             "UnsafeTargetError", "FileExistsError", r"a file, not a Zarr store",
             lambda t: _write(_cube(), _folder_of_files(t) / "thesis.tex", mode="w")),
        Case("write-onto-input", "writes", "a store updated in place: ``write_cube(open_cube(p)"
             ".assign(...), p, mode='w')``", "InputError", "ValueError",
             r"is the input .*ds\.load\(\)", lambda t: _onto_own_input(t)),
        Case("write-inside-input", "writes", "a store written inside the store it reads",
             "InputError", "ValueError", r"lies inside the input",
             lambda t: _write(__import__("xcalving").open_cube(_store(t)),
                              t / "cube.zarr" / "copy.zarr")),
        Case("write-holds-input", "writes", "``mode='w'`` onto a folder that holds the input",
             "InputError", "ValueError", r"holds the input", lambda t: _holding_input(t)),
        Case("write-slash-name", "writes", "a variable named ``sigma0/VV``", "InputError",
             "ValueError", r"'sigma0/VV' cannot be stored in Zarr.*ds\.rename\(",
             lambda t: _write(_cube().rename(sar="sigma0/VV"), t / "c.zarr")),
        Case("write-space-name", "writes", "a variable named ``' sar'`` (leading space)",
             "InputError", "ValueError", r"whitespace.*ds\.rename\(\{' sar': 'sar'\}\)",
             lambda t: _write(_cube().rename(sar=" sar"), t / "c.zarr")),
        Case("caffe-replace-folder", "writes", "``caffe_to_zarr(mode='w')`` onto a folder of "
             "unrelated files", "UnsafeTargetError", "FileExistsError",
             r"store: .* neither a Zarr store", lambda t: _caffe_api_into_folder(t)),
        Case("cli-predict-onto-input", "CLI", "``xcalving predict cube.zarr --out cube.zarr "
             "--overwrite``", "exit 1", "-",
             r"--out: .* is the input .*--overwrite never replaces an input",
             lambda t: _cli(["predict", str(_store(t)), "--out", str(t / "cube.zarr"),
                             "--overwrite"], t)),
        Case("cli-predict-out-dot", "CLI", "``xcalving predict cube.zarr --out . --overwrite``",
             "exit 1", "-", r"--out: '\.' is the current folder",
             lambda t: _predict_out_dot(t)),
        Case("cli-resume-regenerated", "CLI", "``--resume`` after the input was regenerated at "
             "the same path", "exit 1", "-",
             r"--resume: the input cube holds other data.*--overwrite",
             lambda t: _resume_regenerated(t)),
        Case("cli-mute-scheduler", "CLI", "``--scheduler`` at a port that accepts and never "
             "answers", "exit 1", "-", r"nothing answered as a Dask scheduler within 1 s",
             lambda t: _mute_scheduler(t)),
        Case("cli-scheduler-timeout", "CLI", "``--scheduler-timeout 0``", "exit 1", "-",
             r"--scheduler-timeout .*must be seconds > 0",
             lambda t: _cli(["predict", str(_store(t)), "--out", "TMP/p.zarr", "--scheduler",
                             "tcp://127.0.0.1:1", "--scheduler-timeout", "0"], t)),
        Case("cli-demo-foreign-folder", "CLI", "``xcalving demo --out`` an existing (even empty) "
             "folder the demo did not create", "exit 1", "-",
             r"--out: .* not created by `xcalving demo`", lambda t: _demo_into_empty_folder(t)),
        Case("cli-caffe-replace-folder", "CLI", "``xcalving caffe --out FOLDER --overwrite`` onto "
             "a folder of unrelated files", "exit 1", "-",
             r"--out: .* neither a Zarr store.*--overwrite replaces only",
             lambda t: _caffe_into_folder(t)),
        Case("cli-fronts-map-onto-input", "CLI", "``xcalving fronts pred.zarr --map pred.zarr "
             "--overwrite``", "exit 1", "-", r"--map: .* is the input",
             lambda t: _fronts_map_onto_store(t)),
    ]
