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
    jorum = xcalving.open_cube(out / "jorum_prediction.zarr")
    assert jorum.attrs["model"] == "caffe256" and jorum.sizes["time"] == 8
    for name in ("scene.png", "fronts_map.png", "jorum_fronts_map.png"):
        png = (out / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    from xcalving.vector import read_fronts

    assert len(read_fronts(out / "fronts.parquet")) == 2
    assert len(read_fronts(out / "jorum_fronts.gpkg")) == 8
    printed = capsys.readouterr().out
    assert "files written" in printed and "MDE" in printed and "pooled" in printed


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


def test_predict_with_an_unknown_model_says_what_exists(small_cube, tmp_path, capsys):
    cube, _ = small_cube
    store = xcalving.write_cube(cube, tmp_path / "cube.zarr")
    assert main(["predict", store, "--out", str(tmp_path / "p.zarr"), "--model", "nope"]) == 1
    assert "Registered names" in capsys.readouterr().err
    assert not (tmp_path / "p.zarr").exists()


def test_fronts_writes_parquet_geopackage_and_a_map(small_cube, tmp_path, capsys):
    import xarray as xr

    from xcalving.vector import read_fronts

    cube, _ = small_cube
    # a 'prediction' whose zones are the truth: the CLI must find every front
    pred = xr.Dataset({"zones": cube.zones}).rio.write_crs(cube.rio.crs)
    pred = pred.rio.write_transform(cube.rio.transform())
    store = xcalving.write_cube(pred, tmp_path / "pred.zarr")
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


def test_predict_resume_writes_only_the_missing_blocks(tmp_path, capsys):
    import shutil

    from xcalving.data.synthetic import glacier_cube
    from xcalving.model import ASPPUNet, save_model

    cube, _ = glacier_cube(3, shape=(200, 160), seed=8)
    store = xcalving.write_cube(cube.chunk({"time": 1}), tmp_path / "cube.zarr")
    weights = save_model(ASPPUNet(width=2), tmp_path / "net.safetensors")
    common = ["--model", str(weights), "--tile", "32", "--overlap", "8"]
    whole, part = tmp_path / "whole.zarr", tmp_path / "part.zarr"
    assert main(["predict", store, "--out", str(whole), *common]) == 0
    assert main(["predict", store, "--out", str(part), *common]) == 0
    # an interrupted run: the blocks of the second and third dates never reached the disk
    removed = []
    for var in ("front_probability", "zones", "zone_probability"):
        chunks = part / var / "c"
        for lost in (["1"], ["2"]) if var != "zone_probability" else (["0", "1"], ["0", "2"]):
            shutil.rmtree(chunks.joinpath(*lost))
            removed.append(chunks.joinpath(*lost))
    kept = {p: p.stat().st_mtime_ns for p in part.rglob("c/**/*") if p.is_file()}
    capsys.readouterr()
    assert main(["predict", store, "--out", str(part), *common, "--resume"]) == 0
    assert "wrote 2 of 3 blocks" in capsys.readouterr().out
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # done blocks untouched
    assert all(p.exists() for p in removed)
    a, b = xcalving.open_cube(whole), xcalving.open_cube(part)
    for var in ("front_probability", "zone_probability", "zones"):
        np.testing.assert_array_equal(a[var].values, b[var].values)
    assert b.rio.crs == a.rio.crs
    # resuming a finished run writes nothing; another model is refused
    assert main(["predict", store, "--out", str(part), *common, "--resume"]) == 0
    assert "wrote 0 of 3 blocks" in capsys.readouterr().out
    other = save_model(ASPPUNet(width=3), tmp_path / "other.safetensors")
    assert main(["predict", store, "--out", str(part), "--model", str(other), "--tile", "32",
                 "--overlap", "8", "--resume"]) == 1
    assert "another prediction" in capsys.readouterr().err


def test_unexpected_errors_are_one_line_unless_debug(tmp_path, capsys):
    bad = tmp_path / "not-a-cube.zarr"
    bad.mkdir()
    (bad / "zarr.json").write_text("{ this is not json")  # an error from deep inside zarr
    assert main(["predict", str(bad), "--out", str(tmp_path / "p.zarr")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--debug" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(Exception):  # noqa: B017  (whatever zarr raises, --debug lets it through)
        main(["--debug", "predict", str(bad), "--out", str(tmp_path / "p.zarr")])


def test_predict_precision_is_passed_on_and_checked(small_cube, tmp_path, capsys):
    cube, _ = small_cube
    store = xcalving.write_cube(cube, tmp_path / "cube.zarr")
    base = ["predict", store, "--model", "demo", "--tile", "32", "--overlap", "8"]
    assert main([*base, "--out", str(tmp_path / "fp32.zarr")]) == 0  # auto: fp32 on CPU
    assert main([*base, "--out", str(tmp_path / "bf16.zarr"), "--precision", "bf16"]) == 0
    fp32, bf16 = (xcalving.open_cube(tmp_path / f"{p}.zarr") for p in ("fp32", "bf16"))
    assert (fp32.attrs["precision"], bf16.attrs["precision"]) == ("fp32", "bf16")
    np.testing.assert_allclose(bf16.front_probability.values, fp32.front_probability.values,
                               atol=0.05)
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

    import xcalving.tune

    started = []

    class Recorded(distributed.LocalCluster):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    def fail(*args, **kwargs):
        raise RuntimeError("tuning failed")

    monkeypatch.setattr(distributed, "LocalCluster", Recorded)
    monkeypatch.setattr(xcalving.tune, "tune", fail)
    (tmp_path / "patches.zarr").mkdir()
    args = ["tune", str(tmp_path / "patches.zarr"), "--out", str(tmp_path / "t"), "--workers", "1"]
    assert main(args) == 1
    assert "tuning failed" in capsys.readouterr().err
    assert len(started) == 1 and started[0].status.name == "closed"
