"""Bad inputs of the second trust round: data loss, races, resume, budgets, meaning, messages.

Rows of the bad-input matrix (``tests/whole/test_bad_inputs.py`` runs and renders them; the helpers
are shared with ``tests/whole/test_trust2.py``). ``cases(Case)`` builds them with the matrix's own
row type.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import xarray as xr


# --- inputs ---------------------------------------------------------------------------------------
def cube(seed: int = 3, n: int = 2, size: int = 64) -> xr.Dataset:
    from xcalving.data.synthetic import glacier_cube

    data, _ = glacier_cube(n, shape=(size, size), resolution=20.0, seed=seed)
    return data[["sar"]]


def sar(seed: int = 3) -> xr.DataArray:
    return cube(seed).sar.assign_attrs(units="dB")


def store(tmp: Path, name: str = "cube.zarr", seed: int = 3) -> Path:
    import xcalving

    return Path(xcalving.write_cube(cube(seed), tmp / name))


def net():
    import torch

    from xcalving.model import ASPPUNet

    torch.manual_seed(0)
    return ASPPUNet(width=4).eval()


def weights(tmp: Path) -> str:
    from xcalving.model import save_model

    return str(save_model(net(), tmp / "net.safetensors"))


def predict(da, **kwargs):
    import xcalving

    return xcalving.predict(da, net(), tile=64, overlap=16, **kwargs)


def tifs(folder: Path, seed: int = 3) -> list[Path]:
    """Two dated, tiled, deflate-compressed GeoTIFF scenes (32-px tiles) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for scene in sar(seed):
        path = folder / f"S1_{str(scene.time.values)[:10]}.tif"
        scene.rio.to_raster(path, tiled=True, blockxsize=32, blockysize=32, compress="deflate")
        paths.append(path)
    return paths


def cli(argv: list[str], tmp: Path) -> None:
    """Run the CLI; raise SystemExit(code) so the case can check code and stderr."""
    from xcalving.cli import main

    raise SystemExit(main([a.replace("TMP", str(tmp)) for a in argv]))


def quiet_cli(argv: list[str], tmp: Path) -> int:
    """Run the CLI as a set-up step: its output must not reach the checked stderr."""
    from xcalving.cli import main

    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        return main([a.replace("TMP", str(tmp)) for a in argv])


def model_args(tmp: Path) -> list[str]:
    return ["--model", weights(tmp), "--tile", "64", "--overlap", "16"]


@contextlib.contextmanager
def held_elsewhere(target: Path) -> Iterator[None]:
    """Another run (a thread) holds ``target``'s lock for the block."""
    from xcalving.atomic import target_lock

    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        with target_lock(target):
            taken.set()
            done.wait(60)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    taken.wait(30)
    try:
        yield
    finally:
        done.set()
        thread.join(30)


def fronts_frame():
    import geopandas as gpd
    import pandas as pd
    import shapely

    index = pd.date_range("2020-01-01", periods=3, name="time")
    return gpd.GeoDataFrame({"length_px": [10.0, 11.0, 12.0], "n_segments": [1, 1, 1],
                             "n_pixels": [10, 11, 12]}, index=index, crs=3413,
                            geometry=[shapely.LineString([(0, i), (100, i)]) for i in range(3)])


def stopping_short(path: str) -> None:
    """A writer that stops halfway without a word, as on a full disk with a careless library."""
    with open(path, "wb") as handle:
        handle.write(b"PAR1" + b"\0" * 10)


# --- data loss and races -------------------------------------------------------------------------
def _fronts_disk_full(tmp: Path, suffix: str) -> None:
    from xcalving.vector import files as fronts_io

    frame = fronts_frame()
    path = fronts_io.write_fronts(frame, tmp / f"fronts{suffix}")
    before = fronts_io._write
    fronts_io._write = lambda out, target, driver: stopping_short(target)  # type: ignore
    try:
        fronts_io.write_fronts(frame.iloc[:1], path, overwrite=True)
    finally:
        fronts_io._write = before  # type: ignore[assignment]


def _weights_disk_full(tmp: Path) -> None:
    import xcalving.atomic as atomic
    from xcalving.model import save_model

    path = save_model(net(), tmp / "w.safetensors")
    before = atomic._put
    atomic._put = lambda target, data: before(target, data[:-100])  # type: ignore
    try:
        save_model(net(), path)
    finally:
        atomic._put = before  # type: ignore[assignment]


def _gpkg_open_elsewhere(tmp: Path) -> None:
    from xcalving.vector import write_fronts

    path = write_fronts(fronts_frame(), tmp / "fronts.gpkg")
    Path(f"{path}-wal").write_bytes(b"unsaved edits")  # QGIS holds it open in WAL mode
    write_fronts(fronts_frame(), path, overwrite=True)


def _fronts_held(tmp: Path) -> None:
    from xcalving.vector import write_fronts

    with held_elsewhere(tmp / "fronts.parquet"):
        write_fronts(fronts_frame(), tmp / "fronts.parquet")


def _cube_held(tmp: Path) -> None:
    import xcalving

    with held_elsewhere(tmp / "c.zarr"):
        xcalving.write_cube(cube(), tmp / "c.zarr")


def _predict_held(tmp: Path, *extra: str) -> None:
    source = store(tmp)
    args = model_args(tmp)
    with held_elsewhere(tmp / "p.zarr"):
        cli(["predict", str(source), "--out", "TMP/p.zarr", *args, *extra], tmp)


# --- resume ---------------------------------------------------------------------------------------
def _edit_pixel_in_place(path: Path, row: int, col: int) -> None:
    """Change one pixel of an uncompressed GeoTIFF in place: same size, same header."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(path, "r+") as dst:
        value = dst.read(1, window=Window(col, row, 1, 1))
        dst.write(value + 7.0, 1, window=Window(col, row, 1, 1))


def _resume_edited_tif(tmp: Path) -> None:
    paths = []
    for scene in sar():  # uncompressed strips: an edit changes no size
        paths.append(tmp / f"S1_{str(scene.time.values)[:10]}.tif")
        scene.rio.to_raster(paths[-1])
    args = [str(tmp / "S1_*.tif"), "--out", "TMP/p.zarr", *model_args(tmp)]
    assert quiet_cli(["predict", *args], tmp) == 0
    _edit_pixel_in_place(paths[1], 40, 23)  # far from the sampled windows
    cli(["predict", *args, "--resume"], tmp)


def _resume_edited_chunk(tmp: Path) -> None:
    import xcalving

    source = store(tmp)
    args = [str(source), "--out", "TMP/p.zarr", *model_args(tmp)]
    assert quiet_cli(["predict", *args], tmp) == 0
    edited = xcalving.open_cube(source).load()
    edited["sar"][1, 40, 23] += 3.0  # one pixel of a sample-free place
    xcalving.write_cube(edited, source, mode="w")
    cli(["predict", *args, "--resume"], tmp)


def _resume_sampled(tmp: Path) -> None:
    import zarr

    source = store(tmp)
    args = [str(source), "--out", "TMP/p.zarr", *model_args(tmp)]
    assert quiet_cli(["predict", *args], tmp) == 0
    group = zarr.open_group(tmp / "p.zarr", mode="r+")
    group.attrs["input_fingerprint"] = "sampled-sha256:" + "0" * 64  # a remote input's
    cli(["predict", *args, "--resume"], tmp)


# --- budgets --------------------------------------------------------------------------------------
def huge_sparse_tif(path: Path, size: int = 400_000) -> Path:
    """A GeoTIFF of a few kB whose header declares ``size`` x ``size`` pixels (no block stored)."""
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(path, "w", driver="GTiff", height=size, width=size, count=1,
                       dtype="float32", crs="EPSG:3413", transform=from_origin(0, 0, 20, 20),
                       tiled=True, blockxsize=512, blockysize=512, compress="deflate",
                       SPARSE_OK="TRUE", nodata=np.nan):
        pass
    return path


def _huge_zarr(tmp: Path) -> xr.DataArray:
    """A store of a few kB that declares a 300,000 x 300,000 raster (no chunk written)."""
    import dask.array as dsa

    import xcalving

    big = xr.DataArray(dsa.zeros((1, 300_000, 300_000), chunks=(1, 4096, 4096),
                                 dtype=np.float32), dims=("time", "y", "x"), name="sar",
                       attrs={"units": "dB"})
    path = xcalving.write_cube(big.to_dataset(), tmp / "huge.zarr", compute=False)
    return xcalving.open_cube(path).sar


# --- meaning --------------------------------------------------------------------------------------
def _open_times(tmp: Path, times: list) -> None:
    import xcalving

    xcalving.open_scenes(tifs(tmp / "s1"), times=times)


def _with_dim(name: str, labels: list) -> xr.DataArray:
    da = sar()
    return xr.concat([da, da], dim=name).assign_coords({name: labels}).assign_attrs(units="dB")


def _scrambled(dim: str) -> xr.DataArray:
    order = np.random.default_rng(0).permutation(64)
    return sar().isel({dim: order})


def _bracket_folder_ambiguous(tmp: Path) -> None:
    import xcalving

    tifs(tmp / "run[1]")
    tifs(tmp / "run1", seed=4)  # read as a pattern, run[1] matches run1 too
    xcalving.open_scenes(str(tmp / "run[1]" / "*.tif"))


# --- messages -------------------------------------------------------------------------------------
def truncated_tif(tmp: Path) -> Path:
    path = tifs(tmp / "s1")[0]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def damaged_block_tif(tmp: Path) -> Path:
    """A GeoTIFF of full length whose last tile holds garbage instead of deflate data."""
    import rasterio

    path = tifs(tmp / "s1")[0]
    with rasterio.open(path) as src:
        offset = int(src.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1))
        length = int(src.get_tag_item("BLOCK_SIZE_1_1", "TIFF", bidx=1))
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(bytes(range(256)) * (length // 256) + b"\xff" * (length % 256))
    return path


def _compute_scenes(path: Path) -> None:
    import xcalving

    xcalving.open_scenes(path).compute()


def damaged_chunk_store(tmp: Path) -> Path:
    import glob

    path = store(tmp)
    chunk = sorted(f for f in glob.glob(str(path / "sar" / "c" / "**"), recursive=True)
                   if os.path.isfile(f))[0]
    Path(chunk).write_bytes(b"not zstd at all")
    return path


def _damaged_metadata(tmp: Path) -> None:
    import xcalving

    path = store(tmp)
    (path / "sar" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "arr')
    xcalving.open_cube(path)


def _weights_folder(tmp: Path) -> None:
    import xcalving

    run = tmp / "run"
    run.mkdir()
    (run / "best.safetensors").write_bytes(b"")
    xcalving.predict(sar(), str(run))


def _damaged_card(tmp: Path) -> None:
    from xcalving.adapt.card import FACTS_KEY
    from xcalving.model import save_model

    path = save_model(net(), tmp / "mine.safetensors", metadata={FACTS_KEY: '{"base": "cut'})
    cli(["weights", str(path)], tmp)


def _killed_worker(tmp: Path) -> None:
    from distributed.scheduler import KilledWorker

    from xcalving.cli import _dask

    class Client:  # a cluster whose workers die of memory, without starting one
        def compute(self, job):
            worker = types.SimpleNamespace(address="tcp://10.0.0.5:40001")
            raise KilledWorker("('predict-block', 0, 0, 0)", worker, 3)

    before = _dask._compute_on
    _dask._compute_on = lambda client, job: client.compute(job)  # type: ignore[assignment]
    try:
        _dask.compute_with_progress(None, Client(), "predict")
    finally:
        _dask._compute_on = before  # type: ignore[assignment]


def _pattern_matches_folder(tmp: Path) -> None:
    import xcalving

    tifs(tmp / "s1")
    (tmp / "s1" / "pred.tif").mkdir()  # an output written among the inputs
    xcalving.open_scenes(str(tmp / "s1" / "*.tif"))


def cases(Case) -> list:  # noqa: N803  (the row class of the matrix)
    """The rows, built with ``Case(id, area, what, error, builtin, match, run)``."""
    import xcalving

    return [
        # data loss and races
        Case("t2-fronts-short-parquet", "data loss and races", "``write_fronts(overwrite=True)`` "
             "whose writer stops short without an error (a full disk), GeoParquet",
             "WriteVerificationError", "OSError", r"does not read back as written.*is left as "
             r"it was.*disk full", lambda t: _fronts_disk_full(t, ".parquet")),
        Case("t2-fronts-short-gpkg", "data loss and races", "the same onto a GeoPackage",
             "WriteVerificationError", "OSError", r"fronts\.gpkg.*is left as it was",
             lambda t: _fronts_disk_full(t, ".gpkg")),
        Case("t2-fronts-short-geojson", "data loss and races", "the same onto a GeoJSON file",
             "WriteVerificationError", "OSError", r"fronts\.geojson.*is left as it was",
             lambda t: _fronts_disk_full(t, ".geojson")),
        Case("t2-weights-short", "data loss and races", "``save_model`` over a weights file "
             "when fewer bytes reach the disk than were meant", "WriteVerificationError",
             "OSError", r"save_model: .*w\.safetensors.*bytes.*is left as it was",
             lambda t: _weights_disk_full(t)),
        Case("t2-gpkg-open", "data loss and races", "``write_fronts(overwrite=True)`` onto a "
             "GeoPackage open in QGIS (unsaved ``-wal`` journal)", "InputError", "ValueError",
             r"open in another program.*close it there", lambda t: _gpkg_open_elsewhere(t)),
        Case("t2-fronts-busy", "data loss and races", "``write_fronts`` while another run "
             "writes the same file", "TargetBusyError", "BlockingIOError",
             r"another xcalving run is writing .*fronts\.parquet.*Wait for that run",
             lambda t: _fronts_held(t)),
        Case("t2-cube-busy", "data loss and races", "``write_cube`` while another run writes "
             "the same store", "TargetBusyError", "BlockingIOError",
             r"another xcalving run is writing .*c\.zarr", lambda t: _cube_held(t)),
        Case("t2-cli-overwrite-race", "data loss and races", "``xcalving predict --overwrite`` "
             "while another run writes the same ``--out``", "exit 1", "-",
             r"--out: another xcalving run is writing .*p\.zarr",
             lambda t: _predict_held(t, "--overwrite")),
        Case("t2-cli-resume-race", "data loss and races", "``xcalving predict --resume`` while "
             "another run writes the same ``--out``", "exit 1", "-",
             r"--out: another xcalving run is writing", lambda t: _predict_held(t, "--resume")),
        # resume
        Case("t2-resume-tif-edited", "resume", "``--resume`` after one pixel of a GeoTIFF was "
             "edited in place, outside the sampled windows (same size)", "exit 1", "-",
             r"--resume: the input cube holds other data.*every input byte.*--overwrite",
             lambda t: _resume_edited_tif(t)),
        Case("t2-resume-zarr-edited", "resume", "``--resume`` after one pixel of the Zarr input "
             "was rewritten", "exit 1", "-", r"--resume: .*holds other data",
             lambda t: _resume_edited_chunk(t)),
        Case("t2-resume-sampled", "resume", "``--resume`` of a run whose input could not be read "
             "in full (a remote store)", "exit 1", "-",
             r"--resume: .*cannot read in full.*--overwrite", lambda t: _resume_sampled(t)),
        # budgets
        Case("t2-budget-sparse-tif", "budgets", "``open_scenes`` of a 3 kB GeoTIFF that "
             "declares 400,000 x 400,000 pixels", "WorkBudgetError", "ValueError",
             r"open_scenes would process 1\.6e\+11 pixels.*max_pixels=",
             lambda t: xcalving.open_scenes(huge_sparse_tif(t / "S1_2020-01-01.tif"))),
        Case("t2-budget-cli-sparse-tif", "budgets", "``xcalving predict`` of that file",
             "exit 1", "-", r"would process .* pixels.*--max-pixels",
             lambda t: cli(["predict", str(huge_sparse_tif(t / "S1_2020-01-01.tif")),
                            "--out", "TMP/p.zarr"], t)),
        Case("t2-budget-zarr", "budgets", "``predict`` of a Zarr store of a few kB declaring "
             "300,000 x 300,000 pixels", "WorkBudgetError", "ValueError",
             r"predict would process .* pixels \(1 scene\(s\) of 300000 x 300000 px",
             lambda t: predict(_huge_zarr(t))),
        Case("t2-budget-refine", "budgets", "``predict(resolution=0.5)`` of a 20 m cube (40x "
             "finer)", "WorkBudgetError", "ValueError",
             r"resolution=0\.5 m is 40x finer.*resolution='model'.*max_pixels=None",
             lambda t: predict(sar(), resolution=0.5)),
        Case("t2-budget-value", "budgets", "``max_pixels=-1``", "InputError", "ValueError",
             r"max_pixels must be a positive number of pixels", lambda t:
             predict(sar(), max_pixels=-1)),
        Case("t2-budget-cli-value", "budgets", "``--max-pixels lots``", "exit 2", "-",
             r"--max-pixels: must be a number of pixels such as 1e11, or none",
             lambda t: cli(["predict", "c.zarr", "--out", "p.zarr", "--max-pixels", "lots"],
                           t)),
        # meaning
        Case("t2-times-none", "meaning", "``open_scenes(times=[None, '2020-01-13'])``",
             "InputError", "ValueError", r"times\[0\] is None: every file needs its date.*NaT",
             lambda t: _open_times(t, [None, "2020-01-13"])),
        Case("t2-times-nat", "meaning", "``times=[numpy.datetime64('NaT'), ...]``",
             "InputError", "ValueError", r"times\[0\] is .*NaT",
             lambda t: _open_times(t, [np.datetime64("NaT"), "2020-01-13"])),
        Case("t2-times-number", "meaning", "``times=[20200101, 20200113]`` (numbers)",
             "InputError", "ValueError", r"times\[0\]=20200101 is a number.*'2020-01-31'",
             lambda t: _open_times(t, [20200101, 20200113])),
        Case("t2-times-text", "meaning", "``times=['Jan 1st', ...]``", "InputError",
             "ValueError", r"times\[0\]='Jan 1st' is not a date in ISO form.*guessed",
             lambda t: _open_times(t, ["Jan 1st", "2020-01-13"])),
        Case("t2-threshold-percent", "meaning", "``ds.calving.fronts(threshold=50)``",
             "InputError", "ValueError", r"threshold=50 is not a probability.*Pass 0\.5, not 50",
             lambda t: predict(sar()).calving.fronts(method="probability", threshold=50)),
        Case("t2-threshold-bbox", "meaning", "``bbox_accuracy(threshold=75)``", "InputError",
             "ValueError", r"Pass 0\.75, not 75",
             lambda t: __import__("xcalving.metrics").metrics.bbox_accuracy(
                 np.zeros((8, 8)), np.zeros((8, 8), bool), threshold=75)),
        Case("t2-extra-dim", "meaning", "a ``channel`` dim with two entries (neither bands nor "
             "scenes by name)", "InputError", "ValueError",
             r"dim 'channel' \(2 entries \['a', 'b'\]\).*da\.sel\(channel=.*da\.stack",
             lambda t: predict(_with_dim("channel", ["a", "b"]))),
        Case("t2-extra-dim-numbers", "meaning", "an ``orbit`` dim labelled 1, 2", "InputError",
             "ValueError", r"dim 'orbit'.*da\.rename\(\{'orbit': 'time'\}\)",
             lambda t: predict(_with_dim("orbit", [1, 2]))),
        Case("t2-rows-scrambled", "meaning", "rows in a scrambled order (``y`` not monotonic)",
             "InputError", "ValueError", r"predict: da's 'y' coordinates are not monotonic.*"
             r"da\.sortby\('y'\)", lambda t: predict(_scrambled("y"))),
        Case("t2-cols-scrambled", "meaning", "columns in a scrambled order", "InputError",
             "ValueError", r"'x' coordinates are not monotonic.*sortby\('x'\)",
             lambda t: predict(_scrambled("x"))),
        Case("t2-rows-repeated", "meaning", "a row repeated (``y`` with a duplicate)",
             "InputError", "ValueError", r"'y' coordinates repeat.*drop_duplicates",
             lambda t: predict(sar().isel(y=[0, 1, 1, *range(2, 63)]))),
        Case("t2-glob-ambiguous", "meaning", "``'run[1]/*.tif'`` where both ``run[1]`` and "
             "``run1`` hold scenes", "InputError", "ValueError",
             r"is ambiguous: the folder .*run\[1\].*glob\.escape",
             lambda t: _bracket_folder_ambiguous(t)),
        # messages
        Case("t2-tif-truncated", "messages", "a truncated GeoTIFF", "DamagedFileError",
             "OSError", r"S1_2019-01-01\.tif' is truncated: .*Download or export it again",
             lambda t: xcalving.open_scenes(truncated_tif(t))),
        Case("t2-tif-damaged-block", "messages", "a GeoTIFF of full length with a damaged tile "
             "(when computed)", "DamagedFileError", "OSError",
             r"S1_2019-01-01\.tif': its pixels in rows 0:64, columns 0:64 cannot be read",
             lambda t: _compute_scenes(damaged_block_tif(t))),
        Case("t2-tif-folder", "messages", "a folder given where a GeoTIFF is expected",
             "InputError", "ValueError", r"is a folder, not a GeoTIFF.*\*\.tif",
             lambda t: xcalving.open_scenes(t)),
        Case("t2-glob-output-folder", "messages", "a pattern that matches an output written "
             "among the inputs (``s1/pred.tif/``)", "InputError", "ValueError",
             r"matches .*pred\.tif', which is a folder \(an output written among the inputs",
             lambda t: _pattern_matches_folder(t)),
        Case("t2-cli-out-in-pattern", "messages", "``xcalving predict 's1/*.tif' --out "
             "s1/pred.tif``", "exit 1", "-", r"--out: .*matches the input pattern",
             lambda t: (tifs(t / "s1"), cli(["predict", "TMP/s1/*.tif", "--out",
                                             "TMP/s1/pred.tif"], t))),
        Case("t2-zarr-metadata", "messages", "a Zarr store with damaged metadata",
             "DamagedFileError", "OSError", r"the Zarr store .*cube\.zarr' cannot be opened "
             r"\(JSONDecodeError.*metadata is damaged", lambda t: _damaged_metadata(t)),
        Case("t2-zarr-chunk", "messages", "a Zarr store with a damaged chunk (when computed)",
             "DamagedFileError", "OSError",
             r"cube\.zarr': the block of 'sar' at \[0:1, 0:64, 0:64\] cannot be read",
             lambda t: xcalving.open_cube(damaged_chunk_store(t)).sar.values),
        Case("t2-zarr-not-store", "messages", "``open_cube`` of a folder that is no store",
             "InputError", "ValueError", r"is not a Zarr store \(no zarr\.json.*write_cube",
             lambda t: xcalving.open_cube(t)),
        Case("t2-weights-folder", "messages", "a training run's folder passed as weights",
             "InputError", "ValueError", r"is a directory.*It holds \['best\.safetensors'\]",
             lambda t: _weights_folder(t)),
        Case("t2-cli-weights-folder", "messages", "``xcalving weights FOLDER``", "exit 1", "-",
             r"is a directory, not a regular file",
             lambda t: cli(["weights", str(t)], t)),
        Case("t2-cli-damaged-card", "messages", "``xcalving weights FILE`` with a damaged "
             "fine-tuning card", "exit 1", "-",
             r"mine\.safetensors': the fine-tuning card in its header is damaged",
             lambda t: _damaged_card(t)),
        Case("t2-killed-worker", "messages", "a Dask worker killed for memory "
             "(``KilledWorker``)", "WorkerLostError", "RuntimeError",
             r"predict: a Dask worker died.*memory.*--memory-limit",
             lambda t: _killed_worker(t)),
    ]
