"""What the command line prints: warnings as one line, one progress bar, errors naming options."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import xcalving
from xcalving.cli import main


def visible_lines(stream: str) -> list[str]:
    """What a terminal shows of ``stream``: each line as its last carriage-return overwrite."""
    shown = []
    for line in stream.split("\n"):
        parts = [p for p in line.split("\r") if p.strip()]
        if parts:
            shown.append(parts[-1])
    return shown


@pytest.fixture
def cube_store(tmp_path):
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(2, shape=(96, 96), seed=0)
    return xcalving.write_cube(cube[["sar"]].chunk({"time": 1}), tmp_path / "cube.zarr")


def _warn_in_every_block(monkeypatch):
    """Make each predicted block warn, as the model checks do while the bar is drawn."""
    import xcalving.inference.execute as execute

    original = execute.predict_block

    def warning_block(*args, **kwargs):
        warnings.warn("a block looked odd", xcalving.XcalvingWarning, stacklevel=2)
        return original(*args, **kwargs)

    monkeypatch.setattr(execute, "predict_block", warning_block)


def test_a_warning_while_computing_is_one_line_above_one_progress_bar(cube_store, tmp_path,
                                                                      monkeypatch, capsys):
    _warn_in_every_block(monkeypatch)
    args = ["predict", cube_store, "--out", str(tmp_path / "p.zarr"), "--model", "demo",
            "--tile", "64", "--overlap", "16"]
    with warnings.catch_warnings():
        warnings.simplefilter("always", xcalving.XcalvingWarning)
        assert main(args) == 0
    shown = visible_lines(capsys.readouterr().err)
    bars = [line for line in shown if line.startswith("predict:")]
    warned = [line for line in shown if "a block looked odd" in line]
    assert len(bars) == 1 and "100%" in bars[0], shown  # one bar, finished
    assert warned and all(line == "xcalving: warning: a block looked odd" for line in warned)
    assert not any(".py:" in line or "warnings.warn" in line for line in shown), shown
    assert warnings.showwarning is not None and "xcalving" not in repr(warnings.showwarning)


def test_a_warning_before_computing_is_one_clean_line(tmp_path, monkeypatch, capsys):
    from bad_inputs_scenes import write_scene

    import xcalving.inference.resample as resample

    monkeypatch.setattr(resample, "_WARNED", set())  # warned once a process: here, again

    (tmp_path / "s1").mkdir()
    write_scene(tmp_path / "s1" / "S1_2020-01-05.tif", np.full((64, 64), -12.0),
                tags={"units": "dB"})
    with warnings.catch_warnings():
        warnings.simplefilter("always", xcalving.XcalvingWarning)  # caffe256 on 20 m warns
        assert main(["predict", str(tmp_path / "s1" / "*.tif"), "--out",
                     str(tmp_path / "p.zarr"), "--model", "caffe256", "--tile", "64",
                     "--overlap", "16"]) == 0
    shown = visible_lines(capsys.readouterr().err)
    warned = [line for line in shown if "warning" in line.lower()]
    assert len(warned) == 1 and warned[0].startswith("xcalving: warning: the weights"), shown
    assert not any("accessor.py" in line or "return predict(" in line for line in shown)


def test_geotiffs_without_units_get_the_scaling_option_named(tmp_path, capsys):
    from bad_inputs_scenes import write_scene

    (tmp_path / "s1").mkdir()
    write_scene(tmp_path / "s1" / "S1_2020-01-05.tif", np.full((64, 64), 0.05))  # no units
    args = ["predict", str(tmp_path / "s1" / "*.tif"), "--out", str(tmp_path / "p.zarr"),
            "--model", "demo", "--tile", "64", "--overlap", "16"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--scaling linear" in err and "RTC" in err, err
    assert "attrs[" not in err and "scaling='" not in err  # no Python in a shell message
    assert not (tmp_path / "p.zarr").exists()
    assert main([*args, "--scaling", "linear"]) == 0


@pytest.fixture
def truth_store(tmp_path):
    import xarray as xr

    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(2, shape=(96, 96), seed=1)
    pred = xr.Dataset({"zones": cube.zones}).rio.write_crs(cube.rio.crs)
    return xcalving.write_cube(pred, tmp_path / "pred.zarr")


@pytest.mark.parametrize("option", ["--out", "--gpkg"])
def test_shapefiles_are_refused_with_the_reason(truth_store, tmp_path, capsys, option):
    assert main(["fronts", truth_store, option, str(tmp_path / "fronts.shp")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"xcalving fronts: error: {option}: ") and len(err.splitlines()) == 1
    assert "10 characters" in err and "datetimes" in err and "fronts.gpkg" in err
    assert not list(tmp_path.glob("fronts.*"))


def test_gpkg_takes_only_a_geopackage(truth_store, tmp_path, capsys):
    assert main(["fronts", truth_store, "--gpkg", str(tmp_path / "fronts.parquet")]) == 1
    err = capsys.readouterr().err
    assert "--gpkg:" in err and "not a .gpkg path" in err and "fronts.gpkg" in err
    assert "--out" in err  # where the other formats go
    assert main(["fronts", truth_store, "--gpkg", str(tmp_path / "fronts.gpkg"),
                 "--min-length", "0"]) == 0
    assert (tmp_path / "fronts.gpkg").is_file()
