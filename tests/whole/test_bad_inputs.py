# ruff: noqa: E402  (the path is set before the rows are imported: run as a script too)
"""The bad-input matrix: every row of docs/bad_inputs.rst, raised for real and checked.

Each case runs the real call with one thing wrong and checks the exception class, that it
subclasses the builtin a caller would catch, and the message: it names the argument and says
what was expected or how to fix it. CLI cases run ``xcalving.cli.main`` and check the exit code
and that stderr is one line without a traceback.

``python tests/whole/test_bad_inputs.py > docs/bad_inputs.rst`` regenerates the page from this
table; a test fails when the page and the table disagree.
"""

from __future__ import annotations

import re
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# run as a script too (below): the rows' modules lie in tests/, the contract's in tests/inference/
sys.path[:0] = [str(Path(__file__).parents[1]), str(Path(__file__).parents[1] / "inference")]

import bad_inputs_edges
import bad_inputs_export
import bad_inputs_finetune
import bad_inputs_fronts
import bad_inputs_grid
import bad_inputs_model
import bad_inputs_outputs
import bad_inputs_scenes
import bad_inputs_trust
import bad_inputs_trust2
import bad_inputs_values
import bad_inputs_writes
import numpy as np
import pytest
import xarray as xr

DOCS = Path(__file__).resolve().parents[2] / "docs" / "bad_inputs.rst"


@dataclass(frozen=True)
class Case:
    id: str
    area: str
    what: str  # the bad input, in words
    error: str  # exception class name, or "exit 1"/"exit 2" for the CLI
    builtin: str  # the builtin it subclasses (or "-" for the CLI)
    match: str  # a piece of the message (regex)
    run: Callable[[Path], object]


# --- inputs the cases share ----------------------------------------------------------------------
def _cube(units: str | None = "dB", shape=(2, 64, 64)) -> xr.DataArray:
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(shape[0], shape=shape[1:], resolution=20.0, seed=3)
    sar = cube.sar
    return sar.assign_attrs(units=units) if units else sar.drop_attrs()


def _net():
    import torch

    from xcalving.model import ASPPUNet

    torch.manual_seed(0)
    return ASPPUNet(width=4).eval()


def _predict(da, **kwargs):
    import xcalving

    kwargs.setdefault("tile", 64)
    kwargs.setdefault("overlap", 16)
    model = kwargs.pop("model", None) or _net()
    return xcalving.predict(da, model, **kwargs)


def _unspaced_file(tmp):
    """A weights file that states no pixel spacing."""
    from xcalving.model import save_model

    return str(save_model(_net(), tmp / "unspaced.safetensors"))


def _prediction():
    return _predict(_cube()).compute()


def _png(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _grey_png(path: Path, values: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(values.astype(np.uint8), mode="L").save(path)
    return path


def _train_store(tmp: Path) -> str:
    from xcalving.data.caffe import caffe_to_zarr, open_caffe
    from xcalving.testing import write_fixture_tree

    root = write_fixture_tree(tmp / "caffe", n_train=2, n_test=1)
    return str(caffe_to_zarr(open_caffe(root), tmp / "train.zarr", window=64, progress=False))


def _cli(argv: list[str], tmp: Path) -> None:
    """Run the CLI; raise SystemExit(code) so the case can check code and stderr."""
    from xcalving.cli import main

    raise SystemExit(main([a.replace("TMP", str(tmp)) for a in argv]))


def _cli_cube(tmp: Path) -> str:
    import xcalving

    return str(xcalving.write_cube(_cube().to_dataset(name="sar"), tmp / "cube.zarr"))


# --- the matrix ----------------------------------------------------------------------------------
CASES = [
    # predict
    Case("predict-no-yx", "predict", "array without ``y``/``x`` dims (``lat``, ``lon``)",
         "InputError", "ValueError", r"spatial dims 'y' and 'x'.*rename",
         lambda tmp: _predict(_cube().rename(y="lat", x="lon"))),
    Case("predict-complex", "predict", "complex SAR (SLC) values", "InputError", "ValueError",
         r"complex dtype.*amplitude",
         lambda tmp: _predict(_cube().astype(np.complex64).assign_attrs(units="dB"))),
    Case("predict-no-units", "predict", "float values with no ``units`` and ``scaling='auto'``",
         "InputError", "ValueError", r"scaling='db', 'linear' or 'uint8'",
         lambda tmp: _predict(_cube(units=None))),
    Case("predict-scaling-typo", "predict", "``scaling='linaer'``", "InputError", "ValueError",
         r"scaling must be .*Did you mean", lambda tmp: _predict(_cube(), scaling="linaer")),
    Case("predict-overlap", "predict", "``overlap >= tile``", "InputError", "ValueError",
         r"overlap=64 must be >= 0 and smaller than tile=64; e\.g\. overlap=16",
         lambda tmp: _predict(_cube(), overlap=64)),
    Case("predict-tile-stride", "predict", "``tile`` not a multiple of the network stride",
         "InputError", "ValueError", r"tile=50 is not a multiple of the network stride 16.*"
         r"Use tile=48", lambda tmp: _predict(_cube(), tile=50)),
    Case("predict-batch", "predict", "``batch_size=0``", "InputError", "ValueError",
         r"batch_size must be >= 1", lambda tmp: _predict(_cube(), batch_size=0)),
    Case("predict-weights-name", "predict", "unknown weights name", "WeightsNotFoundError",
         "FileNotFoundError", r"Registered names: \['caffe256', 'caffe256-nodbe', 'demo'\]",
         lambda tmp: _predict(_cube(), model="caffe265")),
    Case("predict-model-type", "predict", "``model=42``", "InputTypeError", "TypeError",
         r"model must be a weights name", lambda tmp: _predict(_cube(), model=42)),
    Case("predict-pickle", "predict", "a pickled PyTorch checkpoint (``.pt``)", "UnsafeFileError",
         "ValueError", r"pickle", lambda tmp: _predict(_cube(), model=_pickle_checkpoint(tmp))),
    Case("predict-device", "predict", "``device='cuda'`` without a GPU", "DeviceError",
         "RuntimeError", r"CUDA", lambda tmp: _no_gpu_or_skip() or _predict(_cube(),
                                                                              device="cuda")),
    Case("predict-precision", "predict", "``precision='half'``", "InputError", "ValueError",
         r"precision must be 'auto', 'fp32', 'bf16' or 'fp16'",
         lambda tmp: _predict(_cube(), precision="half")),
    Case("predict-band", "predict", "several bands that are not polarisations, no ``band=``",
         "InputError", "ValueError", r"2 bands \['B04', 'B08'\].*band=",
         lambda tmp: _predict(xr.concat([_cube(), _cube()], "band").assign_coords(
             band=["B04", "B08"]))),
    Case("predict-cross-pol", "predict", "only cross-polarised bands (HV, VH)", "InputError",
         "ValueError", r"cross-polarised.*HH or VV",
         lambda tmp: _predict(xr.concat([_cube(), _cube()], "band").assign_coords(
             band=["hv", "vh"]))),
    Case("predict-dataset", "predict", "a Dataset passed to ``xcalving.predict``", "InputError",
         "ValueError", r"ds\.calving\.predict\(variable=",
         lambda tmp: _predict(_cube().to_dataset(name="sar"))),
    Case("predict-variable", "predict", "``ds.calving.predict(variable='SAR')``", "InputError",
         "ValueError", r"variable='SAR' is not in the Dataset.*Did you mean 'sar'",
         lambda tmp: _cube().to_dataset(name="sar").calving.predict(_net(), variable="SAR")),
    Case("predict-resolution-unknown", "predict",
         "``resolution='model'`` with weights that state no pixel spacing", "InputError",
         "ValueError", r"do not state the pixel spacing.*resolution=20\.0",
         lambda tmp: _predict(_cube(), model=_unspaced_file(tmp), resolution="model")),
    Case("predict-resolution-geographic", "predict", "``resolution=`` on a lon/lat grid",
         "InputError", "ValueError", r"projected grid in metres.*reproject",
         lambda tmp: _predict(_cube().rio.write_crs("EPSG:4326"), resolution=20.0)),
    # io
    Case("open-missing", "io", "``open_cube`` of a path that does not exist", "InputNotFoundError",
         "FileNotFoundError", r"path: no Zarr store",
         lambda tmp: __import__("xcalving").open_cube(tmp / "nope.zarr")),
    Case("write-existing", "io", "``write_cube`` onto an existing store (``mode='w-'``)",
         "TargetExistsError", "FileExistsError", r"already exists.*mode='w'",
         lambda tmp: [__import__("xcalving").write_cube(_cube().to_dataset(name="sar"),
                                                        tmp / "c.zarr") for _ in range(2)]),
    # fronts
    Case("fronts-method", "fronts", "``method='edges'``", "InputError", "ValueError",
         r"method must be one of \['zones', 'probability', 'gated'\]",
         lambda tmp: _prediction().calving.fronts(method="edges")),
    Case("fronts-missing-var", "fronts", "a Dataset without ``zones`` (method='zones')",
         "InputError", "ValueError", r"needs ds\['zones'\].*method='probability'",
         lambda tmp: _prediction().drop_vars("zones").calving.fronts()),
    Case("fronts-dataarray", "fronts", "``xcalving.fronts`` of a DataArray", "InputError",
         "ValueError", r"ds must be a prediction Dataset \(from predict\(\)\); got DataArray",
         lambda tmp: __import__("xcalving").fronts(_prediction().front_probability)),
    Case("fronts-dims", "fronts", "a prediction with an extra ``band`` dim", "InputError",
         "ValueError", r"ds must have dims \(time,\) y, x",
         lambda tmp: _prediction().expand_dims(band=2).calving.fronts()),
    Case("fronts-overwrite", "fronts", "``write_fronts`` onto an existing file",
         "TargetExistsError", "FileExistsError", r"overwrite=True",
         lambda tmp: _write_fronts_twice(tmp)),
    # metrics
    Case("mde-shapes", "metrics", "raster MDE of arrays of different shapes", "InputError",
         "ValueError", r"shape", lambda tmp: __import__("xcalving.metrics").metrics
         .mean_distance_error(np.zeros((8, 8)), np.zeros((8, 9)))),
    Case("mde-vector-resolution", "metrics", "vector MDE without ``resolution``", "InputError",
         "ValueError", r"pass the pixel spacing, e\.g\. resolution=20\.0",
         lambda tmp: _vector_mde_without_resolution()),
    Case("iou-classes", "metrics", "zone labels outside ``0..n_classes-1``", "InputError",
         "ValueError", r"n_classes|class",
         lambda tmp: __import__("xcalving.metrics").metrics.zone_iou(
             np.full((4, 4), 7), np.zeros((4, 4)))),
    # CaFFe reading
    Case("caffe-name", "CaFFe", "a file name that is not ``GLACIER_DATE_SATELLITE_...``",
         "InputError", "ValueError", r"GLACIER_DATE_SATELLITE",
         lambda tmp: __import__("xcalving.data.caffe").data.caffe.parse_name("Jorum_2011.png")),
    Case("caffe-corrupt-png", "CaFFe", "a truncated PNG label", "InputError", "ValueError",
         r"broken_zones\.png",
         lambda tmp: __import__("xcalving.data.caffe").data.caffe.read_label(
             _truncated_png(tmp / "broken_zones.png"), "zones")),
    Case("caffe-grey", "CaFFe", "a zone label with grey values CaFFe does not use", "InputError",
         "ValueError", r"odd_zones\.png.*grey",
         lambda tmp: __import__("xcalving.data.caffe").data.caffe.read_label(
             _grey_png(tmp / "odd_zones.png", np.full((8, 8), 77)), "zones")),
    Case("caffe-kind", "CaFFe", "``read_label(path, kind='front_line')``", "InputError",
         "ValueError", r"kind",
         lambda tmp: __import__("xcalving.data.caffe").data.caffe.read_label(
             _grey_png(tmp / "x_front.png", np.zeros((8, 8))), "front_line")),
    Case("caffe-folder", "CaFFe", "``open_caffe`` of a folder that does not exist",
         "InputNotFoundError", "FileNotFoundError", r"nowhere",
         lambda tmp: __import__("xcalving.data.caffe").data.caffe.open_caffe(tmp / "nowhere")),
    Case("caffe-zip-slip", "CaFFe", "a CaFFe zip whose members escape the target folder",
         "UnsafeFileError", "ValueError", r"outside",
         lambda tmp: _zip_slip(tmp)),
    # training
    Case("train-lr", "training", "``TrainConfig(lr=0)``", "InputError", "ValueError",
         r"lr must be a positive learning rate such as 1e-4",
         lambda tmp: __import__("xcalving.train").train.TrainConfig(store="s", out="o", lr=0.0)),
    Case("train-batch", "training", "``TrainConfig(batch_size=0)``", "InputError",
         "ValueError", r"batch_size must be a whole number >= 1",
         lambda tmp: __import__("xcalving.train").train.TrainConfig(store="s", out="o",
                                                                    batch_size=0)),
    Case("train-glacier", "training", "a validation glacier the store does not hold",
         "InputError", "ValueError", r"Jorumm",
         lambda tmp: _train_unknown_glacier(tmp)),
    Case("train-existing-run", "training", "``out`` already holds a run and no ``resume``",
         "InputError", "ValueError", r"resume=True", lambda tmp: _train_twice(tmp)),
    # CLI
    Case("cli-out-exists", "CLI", "``xcalving predict`` onto an existing ``--out``", "exit 1",
         "-", r"--out: .* already exists.*--overwrite",
         lambda tmp: _cli(["predict", cube := _cli_cube(tmp), "--out", cube], tmp)),
    Case("cli-tile", "CLI", "``--tile abc``", "exit 2", "-", r"--tile: invalid int value",
         lambda tmp: _cli(["predict", "c.zarr", "--out", "p.zarr", "--tile", "abc"], tmp)),
    Case("cli-command", "CLI", "an unknown subcommand (``xcalving predcit``)", "exit 2", "-",
         r"invalid choice: 'predcit'", lambda tmp: _cli(["predcit"], tmp)),
    Case("cli-resolution", "CLI", "``--resolution fine``", "exit 1", "-",
         r"--resolution must be 'model' or metres per pixel",
         lambda tmp: _cli(["predict", _cli_cube(tmp), "--out", "TMP/p.zarr",
                           "--resolution", "fine"], tmp)),
    Case("cli-missing-cube", "CLI", "``xcalving predict`` of a store that does not exist",
         "exit 1", "-", r"no Zarr store", lambda tmp: _cli(["predict", "TMP/none.zarr", "--out",
                                                            "TMP/p.zarr"], tmp)),
    Case("cli-scheduler", "CLI", "``--scheduler tcp://localhost`` (no port)", "exit 1", "-",
         r"--scheduler: cannot connect to a Dask scheduler at 'tcp://localhost'",
         lambda tmp: _cli(["predict", _cli_cube(tmp), "--out", "TMP/p.zarr", "--scheduler",
                           "tcp://localhost"], tmp)),
    Case("cli-tune-store", "CLI", "``xcalving tune`` of a store that does not exist (no cluster "
         "is started)", "exit 1", "-", r"store: no Zarr store at",
         lambda tmp: _cli(["tune", "TMP/none.zarr", "--out", "TMP/search"], tmp)),
    Case("cli-train-store", "CLI", "``xcalving train`` of a store that does not exist", "exit 1",
         "-", r"none\.zarr", lambda tmp: _cli(["train", "TMP/none.zarr", "--out", "TMP/run"],
                                              tmp)),
]
CASES += (bad_inputs_trust.cases(Case) + bad_inputs_grid.cases(Case)
          + bad_inputs_values.cases(Case) + bad_inputs_model.cases(Case)
          + bad_inputs_scenes.cases(Case) + bad_inputs_fronts.cases(Case)
          + bad_inputs_outputs.cases(Case) + bad_inputs_writes.cases(Case)
          + bad_inputs_finetune.cases(Case) + bad_inputs_edges.cases(Case)
          + bad_inputs_trust2.cases(Case) + bad_inputs_export.cases(Case))


# --- helpers of single cases ---------------------------------------------------------------------
def _no_gpu_or_skip() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: device='cuda' is not an error")


def _pickle_checkpoint(tmp: Path) -> Path:
    import torch

    path = tmp / "net.pt"
    torch.save(_net().state_dict(), path)
    return path


def _truncated_png(path: Path) -> Path:
    full = _grey_png(path, np.zeros((32, 32))).read_bytes()
    return _png(path, full[: len(full) // 2])


def _zip_slip(tmp: Path) -> None:
    """Serve a zip with a ``../`` member from a local HTTP server and download it."""
    import functools
    import hashlib
    import http.server
    import threading

    from xcalving.data.caffe import download_caffe

    www = tmp / "www"
    www.mkdir()
    with zipfile.ZipFile(www / "data_raw.zip", "w") as zf:
        zf.writestr("data_raw/Jorum_2011-01-01_TSX_7_1_001.png", "x")
        zf.writestr("data_raw/../../evil.txt", "x")
    digest = hashlib.sha256((www / "data_raw.zip").read_bytes()).hexdigest()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            functools.partial(Quiet, directory=str(www)))
    threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
    try:
        download_caffe(tmp / "target", url=f"http://127.0.0.1:{httpd.server_address[1]}"
                       "/data_raw.zip", sha256=digest, progress=False)
    finally:
        httpd.shutdown()
        httpd.server_close()


def _write_fronts_twice(tmp: Path) -> None:
    from xcalving.vector import write_fronts

    frame = _prediction().calving.fronts()
    write_fronts(frame, tmp / "f.parquet")
    write_fronts(frame, tmp / "f.parquet")


def _vector_mde_without_resolution() -> None:
    from xcalving.data.synthetic import glacier_cube
    from xcalving.metrics import mean_distance_error

    _, truth = glacier_cube(2, shape=(64, 64), seed=3)
    mean_distance_error(truth, truth)


def _train_unknown_glacier(tmp: Path) -> None:
    from xcalving.train import TrainConfig, train

    store = _train_store(tmp)
    train(TrainConfig(store=store, out=str(tmp / "run"), val_glaciers=["Jorumm"], width=4,
                      epochs=1))


def _train_twice(tmp: Path) -> None:
    from xcalving.train import TrainConfig, train

    store = _train_store(tmp)
    config = TrainConfig(store=store, out=str(tmp / "run"), train_split="train",
                         val_split="test", width=4, epochs=1, batch_size=2)
    train(config)
    train(config)


# --- the tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, capsys) -> None:
    import builtins

    import xcalving.errors as errors

    if case.error.startswith("exit"):
        with pytest.raises(SystemExit) as info:
            case.run(tmp_path)
        assert f"exit {info.value.code}" == case.error
        err = capsys.readouterr().err.strip()
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines and "Traceback" not in err, err
        if info.value.code == 1:  # xcalving's own errors: one line
            assert len(lines) == 1, err
        else:  # argparse: its usage, then one "error:" line
            assert lines[0].startswith("usage: xcalving") and "error:" in lines[-1], err
        assert re.search(case.match, lines[-1]), lines[-1]
        return
    expected = getattr(errors, case.error, None) or getattr(builtins, case.error)
    with pytest.raises(expected, match=case.match) as info:
        case.run(tmp_path)
    assert isinstance(info.value, getattr(builtins, case.builtin))
    if case.error != case.builtin:
        assert isinstance(info.value, errors.XcalvingError)


def rst() -> str:
    """The docs page, rendered from :data:`CASES`."""
    lines = [
        "Bad inputs and the errors they get",
        "==================================",
        "",
        "Every row is a test (``tests/whole/test_bad_inputs.py``, which also renders this page):",
        "the call is made for real with one thing wrong, and the test checks the exception class,",
        "that it subclasses the builtin a caller would catch, and that the message contains the",
        "text shown. Every xcalving exception derives from :class:`xcalving.errors.XcalvingError`",
        "and from that builtin, so ``except ValueError`` keeps working. The CLI reports each error",
        "as one line on stderr and exits 1 (2 for arguments argparse rejects); ``xcalving --debug",
        "...`` shows the traceback.",
        "",
    ]
    for area in dict.fromkeys(c.area for c in CASES):
        rows = [c for c in CASES if c.area == area]
        lines += [area, "-" * len(area), "", ".. list-table::", "   :header-rows: 1",
                  "   :widths: 30 18 14 38", "",
                  "   * - bad input", "     - error", "     - subclasses", "     - message has"]
        for c in rows:
            shown = c.match.replace("\\", "").replace(".*", " … ")
            lines += [f"   * - {c.what}", f"     - ``{c.error}``",
                      f"     - ``{c.builtin}``" if c.builtin != "-" else "     - –",
                      f"     - ``{shown}``"]
        lines.append("")
    return "\n".join(lines)


def test_docs_page_lists_every_case() -> None:
    assert len(CASES) >= 30
    assert DOCS.read_text() == rst() + "\n", (
        "docs/bad_inputs.rst is out of date: python tests/whole/test_bad_inputs.py > "
        "docs/bad_inputs.rst")


if __name__ == "__main__":
    sys.stdout.write(rst() + "\n")
