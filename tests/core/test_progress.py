"""Progress bars: xcalving.progress (tqdm.dask.TqdmCallback), the generator's, and the CLI's."""

import importlib.util

import dask.array as da
import pytest
import xarray as xr

import xcalving
from xcalving._progress import progress, tqdm_class


def _finished(err: str, desc: str) -> bool:
    """Whether a bar labelled ``desc`` reached 100% in the captured stderr."""
    return any(part.startswith(f"{desc}: 100%") for part in err.replace("\n", "\r").split("\r"))


def test_progress_is_tqdms_dask_callback_and_counts_every_task(capsys):
    from tqdm.dask import TqdmCallback

    bar = xcalving.progress(desc="sum")
    assert isinstance(bar, TqdmCallback)
    with bar:
        assert int(da.ones(12, chunks=3).sum().compute()) == 12
    err = capsys.readouterr().err
    assert _finished(err, "sum") and "task" in err
    with xcalving.progress(disable=True):
        da.ones(4, chunks=2).sum().compute()
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("widgets", [False, True])
def test_text_bars_where_jupyter_cannot_draw_widgets(monkeypatch, widgets):
    """No ipywidgets: a text bar (tqdm.auto would warn in a notebook and fall back anyway)."""
    from tqdm import tqdm as text
    from tqdm.auto import tqdm as auto

    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name == "ipywidgets":
            return object() if widgets else None
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    expected = auto if widgets else text
    assert tqdm_class() is expected
    assert progress().tqdm_class.func is expected  # the bars of the Dask callback too


def test_progress_covers_fronts(small_cube, capsys):
    """fronts() computes through Dask, so one xcalving.progress() bar follows it to the end."""
    cube, _ = small_cube
    pred = xr.Dataset({"zones": cube.zones.chunk({"time": 1})}).rio.write_crs(cube.rio.crs)
    with xcalving.progress(desc="fronts"):
        frame = xcalving.fronts(pred, min_length=0)
    assert len(frame) == cube.sizes["time"] and not frame.geometry.is_empty.any()
    assert _finished(capsys.readouterr().err, "fronts")


def test_the_cli_fronts_shows_a_bar(small_cube, tmp_path, capsys):
    from xcalving.cli import main

    cube, _ = small_cube
    pred = xr.Dataset({"zones": cube.zones}).rio.write_crs(cube.rio.crs)
    store = xcalving.write_cube(pred, tmp_path / "pred.zarr")
    assert main(["fronts", store, "--out", str(tmp_path / "f.parquet"), "--min-length", "0"]) == 0
    assert _finished(capsys.readouterr().err, "fronts")


def test_the_synthetic_generator_shows_a_bar_over_dates_when_asked(capsys):
    from xcalving.data.synthetic import glacier_cube

    quiet, _ = glacier_cube(3, shape=(64, 64), seed=2)
    assert capsys.readouterr().err == ""
    shown, _ = glacier_cube(3, shape=(64, 64), seed=2, progress=True)
    err = capsys.readouterr().err
    assert _finished(err, "synthetic scenes") and "3/3" in err and "date" in err
    xr.testing.assert_identical(quiet, shown)  # the bar changes nothing
