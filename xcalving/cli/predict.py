"""``xcalving predict`` (with ``--resume``).

What predict reads: one Zarr cube, or GeoTIFF/COG scenes (files or globs, one date each) opened
onto one grid by :func:`xcalving.open_scenes`; the input is recorded in the ``input_path``
attribute (``source`` is the CF attribute naming the software).

Where a prediction is written: into ``.OUT.xcalving-partial`` beside ``--out``, moved to ``--out``
when complete. A failed run removes it; an interrupted one (Ctrl-C, exit 130) or a killed one
leaves it, and ``--resume`` continues it (it records a fingerprint of the input data, so a
regenerated input is refused); ``--overwrite`` starts over. ``--out`` is never the input cube,
nor a folder holding it or inside it.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

import xcalving
from xcalving.atomic import is_url, target_lock
from xcalving.budget import DEFAULT_MAX_PIXELS
from xcalving.cli import _dask
from xcalving.errors import InputError, InputNotFoundError
from xcalving.inference.options import DTYPES, OUTPUTS, PredictOptions
from xcalving.io.lineage import input_fingerprint, input_paths
from xcalving.io.resume import Flags, resumable_store, resume, write_partial
from xcalving.io.scenes import is_scene_path
from xcalving.runtime import PRECISIONS
from xcalving.safety import (
    check_names,
    check_replaceable,
    is_zarr_store,
    partial_path,
    refuse_inputs,
)

#: How resuming's messages name --out, --resume and --overwrite.
_FLAGS = Flags(out="--out", resume="--resume", overwrite="--overwrite")
#: What predict reads, for the messages that refuse anything else.
_ACCEPTED = ("a Zarr cube (a folder written by xcalving.write_cube or to_zarr) or GeoTIFF/COG "
             "scenes (.tif/.tiff files or quoted globs such as 's1/*.tif', one date each)")

_PREDICT_EPILOG = """examples:
  xcalving predict cube.zarr --out pred.zarr
  xcalving predict 's1/*.tif' --out pred.zarr --scaling linear   # RTC gamma0: linear power
  xcalving predict 's1/*.tif' --out pred.zarr --scaling linear --resolution 70
      # caffe256 states no pixel spacing (a pixel of its scenes was 50-93 m): choose one
  xcalving predict cube.zarr --out pred.zarr --outputs all --dtype float32
  xcalving predict cube.zarr --out pred.zarr --resume   # after Ctrl-C: only the missing blocks"""

def compute_with_progress(delayed: Any, scheduler: Any, what: str) -> None:
    """:func:`xcalving.cli._dask.compute_with_progress` (one name to patch in tests)."""
    _dask.compute_with_progress(delayed, scheduler, what)


def add_predict(sub: Any) -> None:
    """Register ``xcalving predict`` on the subparsers ``sub``."""
    defaults = PredictOptions()
    pred = sub.add_parser(
        "predict", help="predict front probability and zones over a Zarr cube or GeoTIFF scenes",
        description="Predict calving-front probability and glacier zones, window by window, "
                    "over every scene of INPUT, and write them as a Zarr store on the input's "
                    "grid. The store is written beside --out and moved there when complete; "
                    "an interrupted run is continued with --resume.",
        epilog=_PREDICT_EPILOG)
    pred.add_argument("inputs", nargs="+", metavar="INPUT",
                      help="a Zarr cube (e.g. written by xcalving.write_cube), or GeoTIFF/COG "
                           "scenes: .tif/.tiff files or quoted globs such as 's1/*.tif', one "
                           "date each (from the file name), opened onto one grid")
    pred.add_argument("--out", required=True,
                      help="output Zarr store: a new path, never the input (required)")
    pred.add_argument("--model", default=None, nargs="+",
                      help="registered weights name (see 'xcalving weights') or a .safetensors "
                           "path (default: the package's default weights); several: an "
                           "ensemble, probabilities averaged")
    pred.add_argument("--tta", action="store_true",
                      help="test-time flips: also predict the cube flipped (x, y, both) and "
                           "average; four times the work")
    pred.add_argument("--variable", default=None,
                      help="Zarr input: the backscatter variable (default: sar, else HH, else "
                           "VV, else the only one)")
    pred.add_argument("--tile", type=int, default=defaults.tile,
                      help="window size in pixels, a multiple of the network stride")
    pred.add_argument("--overlap", type=int, default=defaults.overlap,
                      help="overlap of neighbouring windows in pixels")
    pred.add_argument("--batch-size", type=int, default=defaults.batch_size,
                      help="windows per forward pass")
    pred.add_argument("--device", default=defaults.device,
                      help="auto (a GPU where there is one), cpu or cuda")
    pred.add_argument("--precision", default=defaults.precision,
                      choices=("auto", *PRECISIONS),
                      help="auto: bf16 (fp16 without bf16) on CUDA, fp32 on CPU")
    pred.add_argument("--band", default=None,
                      help="band to use when the input has several (default: HH, else VV)")
    pred.add_argument("--resolution", default=None,
                      help="run the network at this spacing: 'model' (the weights', where "
                           "they state one: demo) or metres; the output stays on the input "
                           "grid (default: the input grid)")
    pred.add_argument("--scaling", default=defaults.scaling,
                      choices=["auto", "db", "linear", "uint8", "none"],
                      help="what the values are: auto reads the units tag or attribute (uint8 "
                           "data: 8-bit grey values); linear for Sentinel-1 RTC gamma0 "
                           "GeoTIFFs (linear power); none feeds them unchanged")
    pred.add_argument("--dtype", default=defaults.dtype, choices=DTYPES,
                      help="how probabilities are stored: uint8 (CF-packed in 1/254 steps, a "
                           "quarter of float32's size; read back as floats) or float32")
    pred.add_argument("--outputs", nargs="+", default=list(defaults.outputs), metavar="NAME",
                      choices=(*OUTPUTS, "all"),
                      help=f"variables to write: any of {', '.join(OUTPUTS)}, or all "
                           "(zone_probability holds four values a pixel)")
    scenes = pred.add_argument_group("GeoTIFF/COG input (see xcalving.open_scenes)")
    scenes.add_argument("--crs", default=None,
                        help="CRS of the common grid, e.g. EPSG:3413; projected, in metres "
                             "(default: the first file's)")
    scenes.add_argument("--bounds", nargs=4, type=float, default=None,
                        metavar=("LEFT", "BOTTOM", "RIGHT", "TOP"),
                        help="extent of the grid in the CRS (default: the union of the scenes' "
                             "footprints)")
    scenes.add_argument("--duplicates", default="error", choices=("error", "first", "mean"),
                        help="scenes of the same date: refuse them, keep the first file, or "
                             "average them where they have data (a mosaic)")
    pred.add_argument("--scheduler", default=None,
                      help="dask.distributed scheduler address (default: local threads)")
    pred.add_argument("--scheduler-timeout", default=None, metavar="SECONDS",
                      help=f"seconds the scheduler has to answer (default: ${_dask.TIMEOUT_ENV} "
                           f"or {_dask.DEFAULT_TIMEOUT:g})")
    pred.add_argument("--overwrite", action="store_true",
                      help="replace an existing --out (a Zarr store) once the new one is complete")
    pred.add_argument("--resume", action="store_true",
                      help="finish an interrupted run: write only the blocks it lacks")
    pred.add_argument("--max-pixels", type=_max_pixels_arg, default=DEFAULT_MAX_PIXELS,
                      metavar="N", help="work budget: refuse to start above N pixels of work "
                      "(the scenes' grid, the network's windows); 'none' for no budget")
    pred.set_defaults(run=_run_predict)


def _max_pixels_arg(value: str) -> float | None:
    """``--max-pixels``: a positive number of pixels, or ``none``."""
    if value.strip().lower() == "none":
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise argparse.ArgumentTypeError(f"must be a number of pixels such as 1e11, or none; "
                                         f"got {value!r}")
    return number


def _run_predict(args: argparse.Namespace) -> int:
    out = Path(args.out)
    resuming = _check_out(out, args)
    cube = _open_input(args.inputs, args)
    files = [f for v in cube.data_vars.values() for f in v.attrs.get("source_files", ())]
    named = [*args.inputs, *input_paths(cube), *files]
    refuse_inputs(out, named, what="--out", flag="--overwrite")
    client = _dask.connect(args.scheduler, args.scheduler_timeout) if args.scheduler else None
    try:
        with target_lock(out, what="--out"):  # a second run on this --out is refused, not raced
            resuming = _check_out(out, args)  # again: another run may have ended meanwhile
            pred = _prediction(cube, args)
            _write_or_resume(out, pred, client, resuming=resuming, overwrite=args.overwrite)
    finally:
        if client is not None:
            client.close()
    return 0


def _write_or_resume(out: Path, pred: Any, client: Any, *, resuming: bool,
                     overwrite: bool) -> None:
    def run(job: Any, what: str) -> None:
        compute_with_progress(job, client, "predict" if what == "write" else "predict --resume")

    store = resumable_store(out) if resuming else partial_path(out)
    try:
        if resuming:
            store, written, n_blocks = resume(out, pred, overwrite=overwrite, run=run, flags=_FLAGS)
        else:
            write_partial(out, pred, overwrite=overwrite, run=run, flags=_FLAGS)
    except KeyboardInterrupt:
        if store is not None and store.exists():
            _interrupted(store)
        raise
    if resuming:
        print(f"resumed {out}: wrote {written} of {n_blocks} blocks")
        return
    sizes = ", ".join(f"{k}: {v}" for k, v in pred.sizes.items())
    print(f"wrote {out} ({sizes}; crs {pred.rio.crs or 'none (pixel coordinates)'}; "
          f"model {pred.attrs['model']} sha256 {pred.attrs['model_sha256'][:12]}…)")


def _open_input(values: list[str], args: argparse.Namespace) -> Any:
    """The Dataset ``xcalving predict`` reads: GeoTIFF/COG scenes, or one Zarr cube.

    Scenes when every value is a ``.tif``/``.tiff`` file or glob (:func:`xcalving.open_scenes`
    with ``--crs``, ``--bounds``, ``--duplicates``); else one Zarr store. Anything else is
    refused in one line naming what is accepted, before Zarr can answer "no group found".
    """
    if all(is_scene_path(v) for v in values):
        bounds = tuple(args.bounds) if args.bounds is not None else None
        scenes = xcalving.open_scenes(values, crs=args.crs, bounds=bounds,
                                      duplicates=args.duplicates, max_pixels=args.max_pixels)
        return scenes.to_dataset()
    if len(values) > 1:
        others = [v for v in values if not is_scene_path(v)]
        raise InputError(f"INPUT: several inputs are read only as GeoTIFF/COG scenes, and "
                         f"{others[0]!r} is not a .tif/.tiff file or glob; give {_ACCEPTED}.")
    if args.crs is not None or args.bounds is not None:
        raise InputError(f"--crs and --bounds place GeoTIFF/COG scenes on a grid; {values[0]!r} "
                         "is read as a Zarr cube, which keeps its own grid. Leave them out, or "
                         "reproject the cube first.")
    _check_zarr_input(values[0])
    return xcalving.open_cube(values[0])


def _check_zarr_input(path: str) -> None:
    """Refuse a local ``path`` that is not a Zarr store, saying what it is and what is read."""
    if is_url(path) or is_zarr_store(path):
        return
    if not os.path.lexists(path):
        raise InputNotFoundError(f"INPUT: no Zarr store at {path!r} (nothing is there); give "
                                f"{_ACCEPTED}.")
    suffix = Path(path).suffix.lower()
    if os.path.isdir(path):
        what = "a folder without Zarr metadata (no zarr.json or .zgroup at its root)"
    elif suffix in (".nc", ".nc4", ".h5", ".hdf5"):
        what = ("a NetCDF/HDF5 file; convert it once with xcalving.write_cube("
                "xarray.open_dataset(path), 'cube.zarr'), then predict on the store")
    else:
        what = f"a {suffix} file" if suffix else "a file"
    raise InputError(f"INPUT: {path!r} is {what}, not a Zarr store; give {_ACCEPTED}.")


def _check_out(out: Path, args: argparse.Namespace) -> bool:
    """Refuse an --out this run may not write, before anything is read; True: resume."""
    partial = partial_path(out)
    exists = os.path.lexists(out)
    if args.resume and (partial.exists() or exists):
        store = partial if partial.exists() else out
        if not is_zarr_store(store):
            raise InputError(f"--resume: {store} is not a Zarr store written by `xcalving "
                             "predict`; there is nothing to continue. Choose a new --out.")
        if store == partial and exists and not args.overwrite:
            raise InputError(f"--out: {out} already exists, and finishing the interrupted run in "
                             f"{partial} would replace it; pass --resume --overwrite to do so, or "
                             "choose a new --out.")
        return True
    if partial.exists() and not args.overwrite:
        raise InputError(f"--out: an interrupted run left {partial}; pass --resume to continue "
                         "it or --overwrite to start over.")
    if exists and not args.overwrite:
        raise InputError(f"--out: {out} already exists; choose a new path, pass --resume to "
                         "finish an interrupted run, or --overwrite to replace it.")
    if exists:
        check_replaceable(out, what="--out", flag="--overwrite")
    return False


def _prediction(cube: Any, args: argparse.Namespace) -> Any:
    """The lazy prediction of ``cube``; its attrs name the input and its data fingerprint."""
    model = args.model[0] if args.model and len(args.model) == 1 else args.model
    pred = cube.calving.predict(
        model, variable=args.variable, tile=args.tile, overlap=args.overlap,
        batch_size=args.batch_size, device=args.device, precision=args.precision,
        band=args.band, scaling=args.scaling, resolution=_resolution_arg(args.resolution),
        dtype=args.dtype, outputs="all" if "all" in args.outputs else args.outputs,
        max_pixels=args.max_pixels, tta=args.tta,
    )
    check_names(pred)
    inputs = [str(v) for v in args.inputs]
    pred.attrs["input_path"] = inputs[0] if len(inputs) == 1 else inputs
    pred.attrs["input_fingerprint"] = input_fingerprint(_strings_as_text(cube))
    return pred


def _strings_as_text(cube: Any) -> Any:
    """``cube`` with its object-dtype coordinates (open_scenes' ``source``) as fixed-width text.

    The fingerprint hashes the bytes of coordinates held in memory, and those of an object array
    are pointers, new in every process: text makes them the same from one run to the next.
    """
    strings = {name: coord.astype(str) for name, coord in cube.coords.items()
               if coord.dtype == object and not coord.chunks}
    return cube.assign_coords(strings) if strings else cube


def _interrupted(store: Path) -> None:
    print(f"xcalving predict: the blocks written so far are kept in {store}; run the same "
          "command with --resume to continue, or with --overwrite to start over.",
          file=sys.stderr)


def _resolution_arg(value: str | None) -> float | str | None:
    if value is None or value == "model":
        return value
    try:
        return float(value)
    except ValueError:
        message = f"--resolution must be 'model' or metres per pixel; got {value!r}."
        raise InputError(message) from None
