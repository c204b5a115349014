"""Every example that ``xcalving --help`` and ``xcalving COMMAND --help`` print runs as written.

Each example line is taken from the help text itself, run by ``xcalving.cli.main`` in a fresh
folder that holds tiny stand-ins for the files it reads, under their names in the example
(``cube.zarr``, ``'s1/*.tif'``, ...), and must exit 0 and write what its ``--out`` names. Only
budgets are cut, by options appended to the line (:data:`BUDGETS`: fewer epochs, steps, scenes),
so that all of them run in about a minute; every option of the example is kept. An example
that reads a file no stand-in is made for fails, naming it.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from xcalving.cli import _parser, main

#: Options appended to an example of a command: smaller budgets, the same command line.
BUDGETS = {
    "demo": ["--n-times", "2", "--size", "64", "--synthetic-only"],
    "synth": ["--train-seeds", "1", "--test-seeds", "1", "--n-times", "1", "--size", "64"],
    "train": ["--epochs", "1", "--width", "4", "--batch-size", "2"],
    "tune": ["--n-trials", "1", "--epochs", "1", "--width", "4", "--batch-range", "2", "2"],
    "finetune": ["--max-steps", "1", "--batch-size", "1", "--window", "64", "--no-score"],
}
#: Options whose value is written, not read: no stand-in is made for it.
OUTPUTS = ("--out", "--map", "--gpkg")
_PATHLIKE = re.compile(r"[/*]|\.(zarr|tiff?|gpkg|parquet|safetensors|png|json|geojson|fgb)$")


def help_texts() -> dict[str, str]:
    """The help of ``xcalving`` and of each subcommand, as printed."""
    parser = _parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"xcalving": parser.format_help(),
            **{name: p.format_help() for name, p in sub.choices.items()}}


def examples(text: str) -> list[list[str]]:
    """The example command lines of a help text, as argument lists (``xcalving`` dropped).

    The lines after the ``example:``/``examples:`` heading that start with ``xcalving``;
    a trailing backslash joins the next line, ``#`` starts a comment.
    """
    lines = text.splitlines()
    heads = [i for i, line in enumerate(lines) if line.strip().lower() in ("example:",
                                                                           "examples:")]
    assert heads, f"no examples in:\n{text}"
    joined, pending = [], ""
    for line in lines[heads[-1] + 1:]:
        pending += line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        if pending.startswith("xcalving "):
            joined.append(shlex.split(pending, comments=True)[1:])
        pending = ""
    return joined


CASES = [(f"{command}-{k}", argv) for command, text in help_texts().items()
         for k, argv in enumerate(examples(text))]


# --- stand-ins for the files the examples read, keyed by the argument as written ----------------
def _cube(root: Path) -> None:
    import xcalving
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(2, shape=(64, 64), resolution=20.0, seed=3)
    xcalving.write_cube(cube[["sar", "zones"]].chunk({"time": 1}), root / "cube.zarr")


def _rtc_scenes(root: Path) -> None:
    """Sentinel-1 RTC-like GeoTIFFs: linear gamma0 power, no units tag (as such files come)."""
    from bad_inputs_scenes import write_scene

    (root / "s1").mkdir()
    rng = np.random.default_rng(0)
    for day in ("2020-01-05", "2020-01-17"):
        power = 10 ** (rng.normal(-12, 4, (64, 64)) / 10)
        write_scene(root / "s1" / f"S1_{day}.tif", power)


def _prediction(root: Path) -> None:
    import xcalving

    _cube(root / "in")
    sar = xcalving.open_cube(root / "in" / "cube.zarr").sar
    pred = sar.calving.predict("demo", tile=64, overlap=16, outputs="all")
    xcalving.write_cube(pred, root / "pred.zarr")


def _labelled_scenes(root: Path) -> None:
    """GeoTIFF scenes (dB) and a GeoPackage of their dated front lines."""
    from xcalving.data.synthetic import glacier_cube

    data, fronts = glacier_cube(3, shape=(96, 96), seed=1)
    (root / "scenes").mkdir()
    for k in range(data.sizes["time"]):
        day = str(data.time.values[k])[:10]
        data.sar.isel(time=k).rio.to_raster(root / "scenes" / f"S1_{day}.tif")
    lines = fronts.reset_index().rename(columns={"time": "date"})
    lines["date"] = lines["date"].dt.strftime("%Y-%m-%d")
    lines.to_file(root / "labels.gpkg")


def _caffe_tree(name: str, **kwargs):
    def make(root: Path) -> None:
        from xcalving.testing import write_fixture_tree

        write_fixture_tree(root / name, **kwargs)
    return make


def _one_glacier_tree(root: Path) -> None:
    """A CaFFe tree of one glacier (one sensor, one spacing): what a user labels."""
    from xcalving.testing import write_synthetic_tree

    write_synthetic_tree(root / "my_caffe_tree", train_seeds=[0], test_seeds=[], n_times=3,
                         shape=(96, 96))


def _shipped_caffe256(root: Path) -> None:
    import shutil

    from xcalving.data.caffe import shipped_scenes

    shutil.copytree(shipped_scenes(), root / "caffe256" / "data_raw")


def _labelled_cube(root: Path) -> None:
    import xcalving
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(2, shape=(96, 96), resolution=20.0, seed=2)
    xcalving.write_cube(cube[["sar", "zones"]], root / "labelled.zarr")


def _finetuned(root: Path) -> None:
    from xcalving.adapt import finetune

    _labelled_cube(root / "in")
    finetune("demo", str(root / "in" / "labelled.zarr"), out=root / "mine.safetensors",
             max_steps=1, batch_size=1, window=64, score=False, progress=False)


def _patches(root: Path) -> None:
    from xcalving.data.caffe import caffe_to_zarr
    from xcalving.testing import write_fixture_tree

    tree = write_fixture_tree(root / "tree", n_train=3, n_test=1)
    caffe_to_zarr(tree, root / "patches.zarr", window=64, progress=False)


def _weights_run(root: Path) -> None:
    import torch

    from xcalving.model import ASPPUNet, save_model
    from xcalving.scaling import CAFFE_SCALING

    (root / "run").mkdir()
    torch.manual_seed(0)
    save_model(ASPPUNet(width=4), root / "run" / "best.safetensors", scaling=CAFFE_SCALING)


STAND_INS = {
    "cube.zarr": _cube,
    "s1/*.tif": _rtc_scenes,
    "pred.zarr": _prediction,
    "scenes/*.tif": _labelled_scenes,
    "labels.gpkg": _labelled_scenes,
    "my_caffe_tree": _one_glacier_tree,
    "labelled.zarr": _labelled_cube,
    "mine.safetensors": _finetuned,
    "CaFFe/data_raw": _caffe_tree("CaFFe", n_train=3, n_test=1, shape=(256, 256)),
    "caffe256/data_raw": _shipped_caffe256,
    "synthetic/data_raw": _caffe_tree("synthetic", n_train=2, n_test=1, shape=(256, 256)),
    "patches.zarr": _patches,
    "run/best.safetensors": _weights_run,
}


def _inputs(argv: list[str]) -> list[str]:
    """The arguments of ``argv`` that name files it reads (not the values of output options)."""
    written = {argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg in OUTPUTS}
    return [arg for arg in argv if arg not in written and not arg.startswith("-")
            and (arg in STAND_INS or _PATHLIKE.search(arg))]


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory) -> dict[str, Path]:
    """Each stand-in made once, in a folder of its own: ``{argument: folder}``."""
    made: dict[object, Path] = {}
    folders = {}
    for argument, make in STAND_INS.items():
        if make not in made:
            made[make] = tmp_path_factory.mktemp("stand-in")
            make(made[make])
        folders[argument] = made[make]
    return folders


@pytest.mark.parametrize("argv", [argv for _, argv in CASES], ids=[i for i, _ in CASES])
def test_help_example_runs(argv, stand_ins, tmp_path, monkeypatch, capsys):
    for argument in _inputs(argv):
        assert argument in STAND_INS, (f"the example `xcalving {shlex.join(argv)}` reads "
                                       f"{argument!r}: add a stand-in for it to STAND_INS")
        top = Path(argument).parts[0]
        if not (tmp_path / top).exists():
            (tmp_path / top).symlink_to(stand_ins[argument] / top)
    monkeypatch.chdir(tmp_path)
    code = main([*argv, *BUDGETS.get(argv[0], [])])
    err = capsys.readouterr().err
    assert code == 0, f"`xcalving {shlex.join(argv)}` exited {code}:\n{err[-3000:]}"
    assert "Traceback" not in err
    if "--out" in argv:
        assert (tmp_path / argv[argv.index("--out") + 1]).exists()


def test_every_command_shows_an_example_and_each_runs_here():
    commands = {case.split("-")[0] for case, _ in CASES}
    assert commands == set(help_texts()), set(help_texts()) - commands
    assert len(CASES) >= 20
