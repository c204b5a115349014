import json

import numpy as np
import pytest

import xcalving
from xcalving.cli import main


def test_demo_runs_end_to_end_on_shipped_weights(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--n-times", "2", "--size", "128"]) == 0
    cube = xcalving.open_cube(out / "cube.zarr")
    assert cube.rio.crs.to_epsg() == 3031
    assert (cube.rio.transform().a, cube.rio.transform().e) == (20.0, -20.0)
    assert cube.sar.shape == (2, 128, 128) and cube.sar.chunks is not None
    pred = xcalving.open_cube(out / "prediction.zarr")
    assert pred.attrs["model"] == "demo" and pred.rio.crs.to_epsg() == 3031
    real = xcalving.open_cube(out / "dbe_prediction.zarr")
    assert real.attrs["model"] == "caffe256-nodbe" and real.sizes["time"] == 8
    for name in ("scene.png", "fronts_map.png", "dbe_fronts_map.png"):
        png = (out / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    from xcalving.vector import read_fronts

    assert len(read_fronts(out / "fronts.parquet")) == 2
    assert len(read_fronts(out / "dbe_fronts.gpkg")) == 8
    printed = capsys.readouterr().out
    assert "files written" in printed and "MDE" in printed and "pooled" in printed
    # the real part says on what its score was measured, in metres, and that DBE chose the recipe
    assert "a glacier these weights never saw: MDE" in printed and " m (" in printed
    assert "a selection estimate" in printed


def test_demo_replaces_its_own_folder_but_not_a_users(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--n-times", "1", "--size", "64", "--synthetic-only"]
    assert main(args) == 0
    assert main([*args, "--seed", "9"]) == 0  # a re-run replaces the demo's own output
    assert xcalving.open_cube(out / "cube.zarr").sizes["time"] == 1
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    assert main(["demo", "--out", str(mine), "--n-times", "1", "--size", "64"]) == 1
    assert (mine / "thesis.tex").read_text() == "precious"
    assert "--out" in capsys.readouterr().err


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == xcalving.__version__
    assert main([]) == 2
    with pytest.raises(SystemExit):
        main(["no-such-command"])


def test_plot_scene_rejects_a_missing_variable(small_cube):
    from xcalving.plot import scene

    cube, _ = small_cube
    with pytest.raises(xcalving.InputError, match="variable"):
        scene(cube, variable="backscatter")
    fig = scene(cube.drop_vars(["zones"]), time=1)
    assert len(fig.axes) == 2  # one panel and its colour bar
    assert np.isfinite(fig.axes[0].images[0].get_array()).any()


def test_predict_writes_a_georeferenced_prediction_cube(small_cube, tmp_path, capsys):
    from xcalving.model import ASPPUNet, save_model

    cube, _ = small_cube
    store = xcalving.write_cube(cube, tmp_path / "cube.zarr")
    weights = save_model(ASPPUNet(width=4), tmp_path / "net.safetensors")
    out = tmp_path / "pred.zarr"
    args = ["predict", store, "--out", str(out), "--model", str(weights), "--tile", "32",
            "--overlap", "8"]
    assert main(args) == 0
    pred = xcalving.open_cube(out)
    assert pred.rio.crs.to_epsg() == 3031 and pred.rio.transform() == cube.rio.transform()
    assert pred.front_probability.shape == cube.sar.shape
    assert np.isfinite(pred.front_probability.values).any()
    captured = capsys.readouterr()
    assert "wrote" in captured.out and "predict" in captured.err  # the progress bar
    # never overwrites without --overwrite, and errors are one line, not a traceback
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "--overwrite" in err and "Traceback" not in err
    assert main([*args, "--overwrite"]) == 0


def test_predict_at_another_resolution(small_cube, tmp_path, capsys):
    """--resolution: the network runs at 50 m on the 25 m cube; the output is on the cube's grid."""
    cube, _ = small_cube
    store = xcalving.write_cube(cube, tmp_path / "cube.zarr")
    out = tmp_path / "pred.zarr"
    base = ["predict", store, "--model", "demo", "--tile", "32", "--overlap", "8"]
    assert main([*base, "--out", str(out), "--resolution", "50"]) == 0
    pred = xcalving.open_cube(out)
    assert pred.attrs["resolution"] == 50.0 and pred.attrs["input_resolution"] == 25.0
    np.testing.assert_array_equal(pred.x.values, cube.x.values)
    assert main([*base, "--out", str(tmp_path / "p2.zarr"), "--resolution", "fine"]) == 1
    err = capsys.readouterr().err
    assert "--resolution must be 'model' or metres per pixel; got 'fine'" in err
    assert not (tmp_path / "p2.zarr").exists()


def test_predict_tta_and_an_ensemble_write_their_members(small_cube, tmp_path):
    """--tta and several --model: the mean is written, with every member's front probability."""
    cube, _ = small_cube
    store = xcalving.write_cube(cube, tmp_path / "cube.zarr")
    base = ["predict", store, "--tile", "32", "--overlap", "8"]
    assert main([*base, "--model", "demo", "--tta", "--out", str(tmp_path / "t.zarr")]) == 0
    pred = xcalving.open_cube(tmp_path / "t.zarr")
    assert pred.member_front_probability.sizes["member"] == 4
    assert pred.attrs["members"] == "demo:none,demo:x,demo:y,demo:xy"
    mean = pred.member_front_probability.mean("member")
    np.testing.assert_allclose(pred.front_probability.values, mean.values, atol=1 / 254)
    assert main([*base, "--model", "demo", "demo", "--out", str(tmp_path / "e.zarr")]) == 0
    pred = xcalving.open_cube(tmp_path / "e.zarr")
    assert pred.attrs["members"] == "demo-0,demo-1"
    frame = xcalving.fronts(pred)
    assert (frame["member_distance_px"].dropna() == 0).all()  # the same weights twice agree


def test_predict_with_an_unknown_model_says_what_exists(small_cube, tmp_path, capsys):
    cube, _ = small_cube
    store = xcalving.write_cube(cube, tmp_path / "cube.zarr")
    assert main(["predict", store, "--out", str(tmp_path / "p.zarr"), "--model", "nope"]) == 1
    assert "Registered names" in capsys.readouterr().err
    assert not (tmp_path / "p.zarr").exists()


def _truth_prediction(cube, tmp_path, **attrs):
    """A 'prediction' store whose zones are the truth: fronts must find every front."""
    import xarray as xr

    pred = xr.Dataset({"zones": cube.zones}, attrs=attrs).rio.write_crs(cube.rio.crs)
    pred = pred.rio.write_transform(cube.rio.transform())
    return xcalving.write_cube(pred, tmp_path / "pred.zarr")


def test_fronts_writes_parquet_geopackage_and_a_map(small_cube, tmp_path, capsys):
    from xcalving.vector import read_fronts

    cube, _ = small_cube
    store = _truth_prediction(cube, tmp_path)
    out = tmp_path / "fronts.parquet"
    args = ["fronts", store, "--out", str(out), "--gpkg", str(tmp_path / "fronts.gpkg"),
            "--map", str(tmp_path / "map.png"), "--min-length", "0"]
    assert main(args) == 0
    frame = read_fronts(out)
    assert len(frame) == 3 and not frame.geometry.is_empty.any()
    assert read_fronts(tmp_path / "fronts.gpkg").crs.to_epsg() == 3031
    assert (tmp_path / "map.png").read_bytes()[:4] == b"\x89PNG"
    assert "3 of 3 scenes have a front" in capsys.readouterr().out
    assert main(args) == 1  # existing outputs are not replaced without --overwrite
    assert "--out: " in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    # --out takes every front format, GeoJSON and FlatGeobuf included
    for name in ("fronts.geojson", "fronts.fgb"):
        assert main(["fronts", store, "--out", str(tmp_path / name), "--min-length", "0"]) == 0
        assert len(read_fronts(tmp_path / name)) == 3


@pytest.mark.parametrize(
    ("option", "path", "match"),
    [
        ("--out", "fronts.shp", r"--out: '.*fronts\.shp' is a Shapefile, which xcalving does not "
                                r"write: .*10 characters.*datetimes.*fronts\.gpkg"),
        ("--out", "fronts.kml", r"--out: '.*fronts\.kml' has extension '\.kml', which names no "
                                r"front format; use \.parquet"),
        ("--gpkg", "fronts", r"--gpkg: .* is not a \.gpkg path"),
        ("--out", "fronts", r"--out: .* has no extension"),
        ("--out", "missing/fronts.gpkg", r"--out: the folder .* does not exist"),
        ("--map", "map.xyz", r"--map: .* names no image format; use one of .*\.png"),
    ],
)
def test_fronts_checks_every_output_before_opening_anything(small_cube, tmp_path, monkeypatch,
                                                            capsys, option, path, match):
    import re

    import xcalving.vector.api

    cube, _ = small_cube
    store = _truth_prediction(cube, tmp_path)

    def never(*args, **kwargs):
        raise AssertionError("opened or computed before the outputs were checked")

    monkeypatch.setattr(xcalving, "open_cube", never)
    monkeypatch.setattr(xcalving.vector.api, "fronts", never)
    assert main(["fronts", store, option, str(tmp_path / path)]) == 1
    err = capsys.readouterr().err
    assert re.search(match, err) and len(err.strip().splitlines()) == 1, err


def test_fronts_finds_the_input_of_old_and_new_predictions():
    from xcalving.cli.fronts import _recorded_inputs

    assert _recorded_inputs({"input_path": "cube.zarr", "source": "xcalving 1 predict"}) == \
        ["cube.zarr"]
    assert _recorded_inputs({"input_path": ["a.tif", "b.tif"]}) == ["a.tif", "b.tif"]
    assert _recorded_inputs({"source": "cube.zarr"}) == ["cube.zarr"]  # written before input_path
    assert _recorded_inputs({"source": "xcalving 0.4 predict, model demo (sha256 …)"}) == []
    assert _recorded_inputs({}) == []


def test_weights_lists_the_registry_and_shows_cards(capsys):
    assert main(["weights"]) == 0
    table = capsys.readouterr().out
    assert "| name |" in table and "`caffe256` (default)" in table and "`demo`" in table
    assert main(["weights", "demo"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# demo") and "Known failure modes" in text
    assert main(["weights", "dmeo"]) == 1
    err = capsys.readouterr().err
    assert "Did you mean 'demo'?" in err and len(err.strip().splitlines()) == 1


def _subcommands():
    import argparse

    from xcalving.cli import _parser

    parser = _parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, sub.choices


@pytest.mark.parametrize("command", [None, *_subcommands()[1]])
def test_every_help_shows_defaults_help_for_each_option_and_an_example(command, capsys):
    import argparse

    parser, commands = _subcommands()
    target = parser if command is None else commands[command]
    with pytest.raises(SystemExit) as stop:
        main(["--help"] if command is None else [command, "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text and ":func:" not in text and ":class:" not in text
    assert any(line.lower().startswith("example") for line in text.splitlines()), text
    formatter = target._get_formatter()
    for action in target._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help.strip(), f"{command} {name}: no help text"
        shown = formatter._expand_help(action)
        assert "``" not in shown and ":func:" not in shown
        takes_value = action.nargs != 0 and not action.required
        if takes_value and action.default is not None and (action.option_strings
                                                           or action.nargs == "?"):
            assert "default" in shown.lower(), f"{command} {name}: no default in {shown!r}"
            assert " ".join(shown.split())[:40] in " ".join(text.split()), name


def test_predict_resume_writes_only_the_missing_blocks(tmp_path, capsys):
    import shutil

    from xcalving.data.synthetic import glacier_cube
    from xcalving.model import ASPPUNet, save_model

    cube, _ = glacier_cube(3, shape=(200, 160), seed=8)
    store = xcalving.write_cube(cube.chunk({"time": 1}), tmp_path / "cube.zarr")
    weights = save_model(ASPPUNet(width=2), tmp_path / "net.safetensors")
    common = ["--model", str(weights), "--tile", "32", "--overlap", "8", "--outputs", "all"]
    whole, part = tmp_path / "whole.zarr", tmp_path / "part.zarr"
    assert main(["predict", store, "--out", str(whole), *common]) == 0
    assert main(["predict", store, "--out", str(part), *common]) == 0
    # an interrupted run: the blocks of the second and third dates never reached the disk (time
    # is the first dim of every variable, zone_probability's (time, zone, y, x) included)
    variables = list(xcalving.open_cube(part).data_vars)
    assert sorted(variables) == ["front_probability", "zone_probability", "zones"]
    removed = []
    for var in variables:
        for lost in ("1", "2"):
            shutil.rmtree(part / var / "c" / lost)
            removed.append(part / var / "c" / lost)
    kept = {p: p.stat().st_mtime_ns for p in part.rglob("c/**/*") if p.is_file()}
    capsys.readouterr()
    assert main(["predict", store, "--out", str(part), *common, "--resume"]) == 0
    assert "wrote 2 of 3 blocks" in capsys.readouterr().out
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # done blocks untouched
    assert all(p.exists() for p in removed)
    a, b = xcalving.open_cube(whole), xcalving.open_cube(part)
    for var in variables:
        np.testing.assert_array_equal(a[var].values, b[var].values)
    assert b.rio.crs == a.rio.crs
    # resuming a finished run writes nothing; another model is refused
    assert main(["predict", store, "--out", str(part), *common, "--resume"]) == 0
    assert "wrote 0 of 3 blocks" in capsys.readouterr().out
    other = save_model(ASPPUNet(width=3), tmp_path / "other.safetensors")
    assert main(["predict", store, "--out", str(part), "--model", str(other), "--tile", "32",
                 "--overlap", "8", "--outputs", "all", "--resume"]) == 1
    assert "another prediction" in capsys.readouterr().err


def test_predict_dtype_and_outputs_are_written_and_resume_must_match_them(small_cube, tmp_path,
                                                                         capsys):
    cube, _ = small_cube
    store = xcalving.write_cube(cube, tmp_path / "cube.zarr")
    base = ["predict", store, "--model", "demo", "--tile", "32", "--overlap", "8"]
    packed, full = tmp_path / "packed.zarr", tmp_path / "full.zarr"
    assert main([*base, "--out", str(packed)]) == 0  # default: uint8, no zone_probability
    assert main([*base, "--out", str(full), "--dtype", "float32", "--outputs", "all"]) == 0
    a, b = xcalving.open_cube(packed), xcalving.open_cube(full)
    assert sorted(a.data_vars) == ["front_probability", "zones"]
    assert sorted(b.data_vars) == ["front_probability", "zone_probability", "zones"]
    assert a.front_probability.encoding["dtype"] == "uint8"
    assert b.front_probability.encoding["dtype"] == b.zone_probability.encoding["dtype"] == \
        "float32"
    np.testing.assert_allclose(a.front_probability.values, b.front_probability.values,
                               atol=1 / 500)
    # the store records the input under input_path; source is CF's (the software)
    assert a.attrs["input_path"] == store and a.attrs["source"].startswith("xcalving ")
    capsys.readouterr()
    # --resume refuses other variables or another stored dtype, saying what to pass
    assert main([*base, "--out", str(full), "--dtype", "float32", "--resume"]) == 1
    assert "pass --outputs front_probability zone_probability zones" in capsys.readouterr().err
    assert main([*base, "--out", str(full), "--outputs", "all", "--resume"]) == 1
    assert "stores front_probability as float32" in capsys.readouterr().err
    assert main([*base, "--out", str(full), "--dtype", "float32", "--outputs", "zones",
                 "front_probability", "zone_probability", "--resume"]) == 0
    assert "wrote 0 of" in capsys.readouterr().out
    assert main([*base, "--out", str(packed), "--outputs", "zones", "--resume"]) == 1
    assert "--outputs front_probability zones" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--out", str(tmp_path / "x.zarr"), "--dtype", "float16"])
    assert "invalid choice: 'float16'" in capsys.readouterr().err


def _scenes(folder, dates=("2020-01-05", "2020-01-17"), **kwargs):
    """Tiny dB GeoTIFF scenes, one a date, in ``folder``."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from bad_inputs_scenes import write_scene

    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    return [write_scene(folder / f"S1_{day}.tif", rng.normal(-12, 4, (64, 64)),
                        tags={"units": "dB"}, **kwargs) for day in dates]


def test_predict_reads_geotiff_scenes_from_files_and_globs(tmp_path, capsys):
    from xcalving.model import ASPPUNet, save_model

    files = _scenes(tmp_path / "s1")
    weights = str(save_model(ASPPUNet(width=4), tmp_path / "net.safetensors"))
    common = ["--model", weights, "--tile", "64", "--overlap", "16"]
    glob = str(tmp_path / "s1" / "*.tif")
    assert main(["predict", glob, "--out", str(tmp_path / "glob.zarr"), *common]) == 0
    pred = xcalving.open_cube(tmp_path / "glob.zarr").load()
    assert pred.sizes == {"time": 2, "y": 64, "x": 64}
    assert pred.rio.crs.to_epsg() == 32624 and pred.attrs["input_path"] == glob
    assert str(pred.time.values[1])[:10] == "2020-01-17"
    # --resume of an interrupted run over scenes (their fingerprint is stable across runs)
    import shutil

    for var in pred.data_vars:
        shutil.rmtree(tmp_path / "glob.zarr" / var / "c" / "1")
    capsys.readouterr()
    assert main(["predict", glob, "--out", str(tmp_path / "glob.zarr"), *common, "--resume"]) == 0
    assert "wrote 1 of 2 blocks" in capsys.readouterr().out
    np.testing.assert_array_equal(xcalving.open_cube(tmp_path / "glob.zarr").zones.values,
                                  pred.zones.values)
    # explicit files, several of them: the same cube; the inputs are recorded as a list
    paths = [str(f) for f in files]
    assert main(["predict", *paths, "--out", str(tmp_path / "files.zarr"), *common]) == 0
    again = xcalving.open_cube(tmp_path / "files.zarr")
    assert again.attrs["input_path"] == paths
    np.testing.assert_array_equal(again.zones.values, pred.zones.values)
    # --bounds (and --crs) choose the grid: the left half of the scenes
    left = ["--bounds", "500000", "6998720", "500640", "7000000", "--crs", "EPSG:32624"]
    assert main(["predict", glob, "--out", str(tmp_path / "left.zarr"), *common, *left]) == 0
    assert xcalving.open_cube(tmp_path / "left.zarr").sizes == {"time": 2, "y": 64, "x": 32}
    # and fronts reads such a prediction (its map drawn over the last scene)
    assert main(["fronts", str(tmp_path / "glob.zarr"), "--map", str(tmp_path / "map.png"),
                 "--min-length", "0"]) == 0
    assert (tmp_path / "map.png").read_bytes()[:4] == b"\x89PNG"


def test_predict_scenes_of_one_date_need_duplicates(tmp_path, capsys):
    from xcalving.model import ASPPUNet, save_model

    _scenes(tmp_path / "s1", dates=("2020-01-05",))
    _scenes(tmp_path / "s1b", dates=("2020-01-05",))
    weights = str(save_model(ASPPUNet(width=4), tmp_path / "net.safetensors"))
    args = ["predict", str(tmp_path / "s1" / "*.tif"), str(tmp_path / "s1b" / "*.tif"),
            "--model", weights, "--tile", "64", "--overlap", "16"]
    assert main([*args, "--out", str(tmp_path / "p.zarr")]) == 1
    assert "duplicates" in capsys.readouterr().err and not (tmp_path / "p.zarr").exists()
    assert main([*args, "--out", str(tmp_path / "p.zarr"), "--duplicates", "mean"]) == 0
    assert xcalving.open_cube(tmp_path / "p.zarr").sizes["time"] == 1


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda t: t / "none.zarr", r"no Zarr store at .*none\.zarr"),
        (lambda t: (t / "folder").mkdir() or t / "folder", r"a folder without Zarr metadata"),
        (lambda t: _touch(t / "cube.nc"), r"NetCDF.*xcalving\.write_cube"),
        (lambda t: _touch(t / "scene.png"), r"'.*scene\.png' is a \.png file, not a Zarr store"),
        (lambda t: t / "s1" / "*.tiff", r"matches no file"),
    ],
)
def test_predict_refuses_inputs_it_cannot_read_in_one_line(tmp_path, capsys, make, match):
    import re

    path = make(tmp_path)
    assert main(["predict", str(path), "--out", str(tmp_path / "p.zarr")]) == 1
    err = capsys.readouterr().err
    assert re.search(match, err), err
    assert len(err.strip().splitlines()) == 1 and "No group found" not in err
    if "matches" not in match:
        assert "GeoTIFF/COG scenes (.tif/.tiff files or quoted globs" in err
    assert not (tmp_path / "p.zarr").exists()


def _touch(path):
    path.write_bytes(b"not what predict reads")
    return path


def test_predict_refuses_mixed_inputs_and_grid_options_on_a_cube(small_cube, tmp_path, capsys):
    cube, _ = small_cube
    store = xcalving.write_cube(cube, tmp_path / "cube.zarr")
    tif = _scenes(tmp_path / "s1")[0]
    out = ["--out", str(tmp_path / "p.zarr")]
    assert main(["predict", str(tif), store, *out]) == 1
    assert "is not a .tif/.tiff file or glob" in capsys.readouterr().err
    assert main(["predict", store, "--crs", "EPSG:3413", *out]) == 1
    assert "--crs and --bounds place GeoTIFF/COG scenes" in capsys.readouterr().err


def test_unexpected_errors_are_one_line_unless_debug(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "not-a-cube.zarr"
    bad.mkdir()
    (bad / "zarr.json").write_text("{ this is not json")  # zarr's JSON error, named and explained
    assert main(["predict", str(bad), "--out", str(tmp_path / "p.zarr")]) == 1
    err = capsys.readouterr().err
    assert "not-a-cube.zarr" in err and "metadata is damaged" in err and "JSON" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1

    def boom(*args, **kwargs):  # an error no rule foresaw
        raise RuntimeError("deep inside a dependency")

    monkeypatch.setattr(xcalving, "open_cube", boom)
    plain = __import__("xarray").Dataset({"sar": (("y", "x"), np.zeros((4, 4)))})
    good = xcalving.write_cube(plain, tmp_path / "c.zarr")
    assert main(["predict", good, "--out", str(tmp_path / "p.zarr")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--debug" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(RuntimeError):  # --debug lets it through
        main(["--debug", "predict", good, "--out", str(tmp_path / "p.zarr")])


def test_predict_precision_is_passed_on_and_checked(small_cube, tmp_path, capsys):
    cube, _ = small_cube
    store = xcalving.write_cube(cube, tmp_path / "cube.zarr")
    base = ["predict", store, "--model", "demo", "--tile", "32", "--overlap", "8"]
    assert main([*base, "--out", str(tmp_path / "fp32.zarr")]) == 0  # auto: fp32 on CPU
    assert main([*base, "--out", str(tmp_path / "bf16.zarr"), "--precision", "bf16"]) == 0
    fp32, bf16 = (xcalving.open_cube(tmp_path / f"{p}.zarr") for p in ("fp32", "bf16"))
    assert (fp32.attrs["precision"], bf16.attrs["precision"]) == ("fp32", "bf16")
    # bf16 keeps ~3 significant digits: close everywhere, a little further on a few front pixels
    diff = np.abs(bf16.front_probability.values - fp32.front_probability.values)
    assert np.nanquantile(diff, 0.99) < 0.02 and np.nanmax(diff) < 0.15
    # a resumed run must match the precision of the run it finishes
    assert main([*base, "--out", str(tmp_path / "fp32.zarr"), "--resume", "--precision",
                 "bf16"]) == 1
    assert "another prediction" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--out", str(tmp_path / "half.zarr"), "--precision", "half"])
    assert "invalid choice: 'half'" in capsys.readouterr().err


def test_tune_closes_its_local_cluster_when_tuning_fails(tmp_path, monkeypatch, capsys):
    """The CLI starts a LocalCluster for `tune`; an error inside tuning must not leak it."""
    import distributed

    import xcalving.train.search

    started = []

    class Recorded(distributed.LocalCluster):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    def fail(*args, **kwargs):
        raise RuntimeError("tuning failed")

    monkeypatch.setattr(distributed, "LocalCluster", Recorded)
    monkeypatch.setattr(xcalving.train.search, "tune", fail)
    (tmp_path / "patches.zarr").mkdir()
    args = ["tune", str(tmp_path / "patches.zarr"), "--out", str(tmp_path / "t"), "--workers", "1"]
    assert main(args) == 1
    assert "tuning failed" in capsys.readouterr().err
    assert len(started) == 1 and started[0].status.name == "closed"


def test_synth_jitters_size_and_spacing_and_train_warm_starts_with_heavy_augmentation(tmp_path):
    from xcalving.data.caffe import open_caffe
    from xcalving.model import load_model

    root = tmp_path / "synth"
    assert main(["synth", "--out", str(root), "--train-seeds", "4", "--test-seeds", "1",
                 "--n-times", "1", "--size", "64", "96", "--spacing", "20", "40"]) == 0
    catalog = open_caffe(root / "data_raw")
    assert catalog["resolution"].tolist() == [20.0, 20.0, 40.0, 40.0, 20.0]
    from PIL import Image

    sizes = [Image.open(path).size for path in catalog["image_path"]]
    assert sizes == [(64, 64), (96, 96), (64, 64), (96, 96), (64, 64)]
    store = tmp_path / "p.zarr"
    assert main(["caffe", str(root / "data_raw"), "--out", str(store), "--window", "64"]) == 0
    common = [str(store), "--train-split", "train", "--val-split", "test", "--width", "2",
              "--epochs", "1", "--batch-size", "4"]
    assert main(["train", *common, "--out", str(tmp_path / "a")]) == 0
    start = tmp_path / "a" / "best.safetensors"
    assert main(["train", *common, "--out", str(tmp_path / "b"), "--heavy-augment",
                 "--init", str(start), "--lr", "1e-30"]) == 0
    before, after = load_model(start), load_model(tmp_path / "b" / "best.safetensors")
    for b, a in zip(before.parameters(), after.parameters(), strict=True):  # lr 1e-30: kept
        np.testing.assert_array_equal(b.detach().numpy(), a.detach().numpy())
    assert main(["train", *common, "--out", str(tmp_path / "c"), "--heavy-augment",
                 "--no-augment"]) == 1
    assert main(["train", *common, "--out", str(tmp_path / "d"), "--aimed-augment",
                 "--balance"]) == 0
    config = json.loads((tmp_path / "d" / "summary.json").read_text())["config"]
    assert (config["augment"], config["balance"]) == ("aimed", True)
    from xcalving.scaling import ROBUST_SCALING

    assert main(["train", *common, "--out", str(tmp_path / "e"), "--robust-scaling"]) == 0
    assert load_model(tmp_path / "e" / "best.safetensors").xcalving_scaling == ROBUST_SCALING
