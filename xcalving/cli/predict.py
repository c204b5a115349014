"""``xcalving predict`` (with ``--resume``) and ``xcalving fronts``.

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

from xcalving.cli import _dask
from xcalving.errors import InputError
from xcalving.runtime import PRECISIONS

#: Attributes that must match for --resume to add to an existing prediction: each changes values.
_SAME_RUN = ("model_sha256", "tile", "overlap", "precision", "input_scaling", "resolution")


def compute_with_progress(delayed: Any, scheduler: Any, what: str) -> None:
    """:func:`xcalving.cli._dask.compute_with_progress` (one name to patch in tests)."""
    _dask.compute_with_progress(delayed, scheduler, what)


def add_predict(sub: Any) -> None:
    """Register ``xcalving predict`` on the subparsers ``sub``."""
    pred = sub.add_parser("predict", help="predict front probability and zones over a Zarr cube")
    pred.add_argument("cube", help="input Zarr cube (e.g. written by xcalving.write_cube)")
    pred.add_argument("--out", required=True,
                      help="output Zarr store: a new path, never the input cube")
    pred.add_argument("--model", default=None,
                      help="registered weights name or .safetensors path (default: the package's)")
    pred.add_argument("--variable", default=None,
                      help="backscatter variable (default: sar, else HH, else VV, else the only "
                           "one)")
    pred.add_argument("--tile", type=int, default=512, help="window size in pixels")
    pred.add_argument("--overlap", type=int, default=128, help="window overlap in pixels")
    pred.add_argument("--batch-size", type=int, default=8, help="windows per forward pass")
    pred.add_argument("--device", default="auto", help="auto, cpu or cuda")
    pred.add_argument("--precision", default="auto", choices=("auto", *PRECISIONS),
                      help="auto: bf16 (fp16 without bf16) on CUDA, fp32 on CPU "
                           "(default: %(default)s)")
    pred.add_argument("--band", default=None,
                      help="band to use when the cube has several (default: HH, else VV)")
    pred.add_argument("--resolution", default=None,
                      help="run the network at this spacing: 'model' (the weights') or metres; "
                           "the output stays on the input grid (default: the input grid)")
    pred.add_argument("--scaling", default="auto", choices=["auto", "db", "linear", "uint8",
                                                             "none"])
    pred.add_argument("--scheduler", default=None,
                      help="dask.distributed scheduler address (default: local threads)")
    pred.add_argument("--scheduler-timeout", default=None, metavar="SECONDS",
                      help=f"seconds the scheduler has to answer (default: ${_dask.TIMEOUT_ENV} "
                           f"or {_dask.DEFAULT_TIMEOUT:g})")
    pred.add_argument("--overwrite", action="store_true",
                      help="replace an existing --out (a Zarr store) once the new one is complete")
    pred.add_argument("--resume", action="store_true",
                      help="finish an interrupted run: write only the blocks it lacks")
    pred.set_defaults(run=_run_predict)


def _run_predict(args: argparse.Namespace) -> int:
    import xcalving
    from xcalving.lineage import input_paths
    from xcalving.safety import refuse_inputs

    out = Path(args.out)
    resuming = _check_out(out, args)
    cube = xcalving.open_cube(args.cube)
    refuse_inputs(out, [args.cube, *input_paths(cube)], what="--out", flag="--overwrite")
    client = _dask.connect(args.scheduler, args.scheduler_timeout) if args.scheduler else None
    try:
        pred = _prediction(cube, args)
        if resuming:
            _resume(out, pred, client, overwrite=args.overwrite)
        else:
            _write_new(out, pred, client, overwrite=args.overwrite)
    finally:
        if client is not None:
            client.close()
    return 0


def _check_out(out: Path, args: argparse.Namespace) -> bool:
    """Refuse an --out this run may not write, before anything is read; True: resume."""
    from xcalving.safety import check_replaceable, is_zarr_store, partial_path

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
    """The lazy prediction of ``cube``, its attrs naming the input and its data fingerprint."""
    from xcalving.lineage import input_fingerprint
    from xcalving.safety import check_names

    pred = cube.calving.predict(
        args.model, variable=args.variable, tile=args.tile, overlap=args.overlap,
        batch_size=args.batch_size, device=args.device, precision=args.precision,
        band=args.band, scaling=args.scaling, resolution=_resolution_arg(args.resolution),
    )
    check_names(pred)
    pred.attrs["source"] = str(args.cube)
    pred.attrs["input_fingerprint"] = input_fingerprint(cube)
    return pred


def _interrupted(store: Path) -> None:
    print(f"xcalving predict: the blocks written so far are kept in {store}; run the same "
          "command with --resume to continue, or with --overwrite to start over.",
          file=sys.stderr)


def _write_new(out: Path, pred: Any, client: Any, *, overwrite: bool) -> None:
    """Write ``pred`` into the partial store beside ``out``, then move it to ``out``."""
    from xcalving.safety import partial_path, remove_tree, staged

    partial = partial_path(out)
    if partial.exists():  # --overwrite: an interrupted run is started over
        remove_tree(partial)
    try:
        with staged(out, mode="w" if overwrite else "w-", what="--out", flag="--overwrite",
                    scratch=partial, keep_on=(KeyboardInterrupt,)) as scratch:
            job = pred.to_zarr(scratch, mode="w-", consolidated=False, zarr_format=3,
                               compute=False, write_empty_chunks=True)
            compute_with_progress(job, client, "predict")
    except KeyboardInterrupt:
        if partial.exists():
            _interrupted(partial)
        raise
    sizes = ", ".join(f"{k}: {v}" for k, v in pred.sizes.items())
    print(f"wrote {out} ({sizes}; crs {pred.rio.crs or 'none (pixel coordinates)'}; "
          f"model {pred.attrs['model']} sha256 {pred.attrs['model_sha256'][:12]}…)")


def _resolution_arg(value: str | None) -> float | str | None:
    if value is None or value == "model":
        return value
    try:
        return float(value)
    except ValueError:
        message = f"--resolution must be 'model' or metres per pixel; got {value!r}."
        raise InputError(message) from None


def _check_same_run(store: Path, pred: Any) -> None:
    """Refuse to resume ``store`` with another input or other settings."""
    import xcalving

    done = xcalving.open_cube(store)
    if "input_fingerprint" not in done.attrs:
        raise InputError(f"--resume: {store} records no fingerprint of its input (not written "
                         "by this version of `xcalving predict`), so nothing shows the input is "
                         "the same. Pass --overwrite instead of --resume to start over, or "
                         "choose a new --out.")
    if done.attrs["input_fingerprint"] != pred.attrs["input_fingerprint"]:
        raise InputError(
            f"--resume: the input cube holds other data than when {store} was started (its "
            "fingerprint differs: regenerated or edited since?), and mixing blocks of two inputs "
            "would corrupt the prediction. Pass --overwrite instead of --resume to start over, "
            "or choose a new --out."
        )
    same = all(done.attrs.get(k) == pred.attrs.get(k) for k in _SAME_RUN)
    if not same or dict(done.sizes) != dict(pred.sizes):
        raise InputError(f"--resume: {store} holds another prediction (model, tile, overlap, "
                         "precision, scaling, resolution or shape differ); pass --overwrite to "
                         "replace it or choose a new --out.")


def _resume(out: Path, pred: Any, client: Any, *, overwrite: bool) -> None:
    """Finish the partial store beside ``out`` (then move it there), or fill ``out`` itself."""
    from xcalving.safety import partial_path, staged

    partial = partial_path(out)
    store = partial if partial.exists() else out
    _check_same_run(store, pred)
    try:
        if store == out:
            written = _fill(out, pred, client)
        else:
            with staged(out, mode="w" if overwrite else "w-", what="--out", flag="--overwrite",
                        scratch=partial, keep_on=(BaseException,)) as scratch:
                written = _fill(scratch, pred, client)
    except KeyboardInterrupt:
        _interrupted(store)
        raise
    n_blocks = math.prod(len(c) for c in pred.chunksizes.values())
    print(f"resumed {out}: wrote {written} of {n_blocks} blocks")


def _fill(store: Path, pred: Any, client: Any) -> int:
    """Write only the blocks ``store`` lacks (predict is chunk-invariant); return how many."""
    import dask

    from xcalving.io import missing_blocks

    regions = missing_blocks(store, pred)
    writable = pred.drop_vars([c for c in pred.coords if not pred[c].dims])
    jobs = [writable.isel(region).to_zarr(store, region="auto", consolidated=False,
                                          write_empty_chunks=True, compute=False)
            for region in regions]
    compute_with_progress(dask.delayed(jobs), client, "predict --resume")
    return len(regions)


def add_fronts(sub: Any) -> None:
    """Register ``xcalving fronts`` on the subparsers ``sub``."""
    fr = sub.add_parser("fronts", help="vector fronts, files and a map from a prediction cube")
    fr.add_argument("pred", help="prediction Zarr store (from `xcalving predict`)")
    fr.add_argument("--out", default=None, help="GeoParquet file to write (.parquet)")
    fr.add_argument("--gpkg", default=None, help="GeoPackage file to write (.gpkg)")
    fr.add_argument("--map", default=None, help="PNG map of the fronts through time")
    fr.add_argument("--method", default="zones", choices=["zones", "probability"])
    fr.add_argument("--min-length", type=float, default=750.0,
                    help="drop front pieces up to this length in metres (CaFFe: 750)")
    fr.add_argument("--min-length-px", type=float, default=None,
                    help="the same rule in pixels (for cubes without pixel spacing)")
    fr.add_argument("--overwrite", action="store_true", help="replace existing output files")
    fr.set_defaults(run=_run_fronts)


def _run_fronts(args: argparse.Namespace) -> int:
    import xcalving
    from xcalving._progress import progress
    from xcalving.vector import write_fronts

    targets = {opt: p for opt, p in (("--out", args.out), ("--gpkg", args.gpkg),
                                     ("--map", args.map)) if p}
    for path in targets.values():
        if Path(path).exists() and not args.overwrite:
            raise InputError(f"{path} already exists; choose a new path or pass --overwrite.")
    pred = xcalving.open_cube(args.pred)
    _refuse_fronts_targets(targets, pred, args.pred)
    with progress(desc="fronts"):
        frame = pred.calving.fronts(method=args.method, min_length=args.min_length,
                                    min_length_px=args.min_length_px)
    found = int((~frame.geometry.is_empty).sum())
    print(f"{found} of {len(frame)} scenes have a front ({args.method} method)")
    for path in (p for p in (args.out, args.gpkg) if p):
        print(f"wrote {write_fronts(frame, path, overwrite=args.overwrite)}")
    if args.map:
        _write_map(frame, pred, args.map, overwrite=args.overwrite)
        print(f"wrote {args.map}")
    return 0


def _refuse_fronts_targets(targets: dict[str, str], pred: Any, store: str) -> None:
    """Each output is a file that is not, does not hold and does not lie inside an input."""
    from xcalving.lineage import input_paths
    from xcalving.safety import refuse_inputs

    inputs = [store, *input_paths(pred)]
    if pred.attrs.get("source"):
        inputs.append(str(pred.attrs["source"]))
    for option, path in targets.items():
        refuse_inputs(path, inputs, what=option, flag="--overwrite")
        if Path(path).is_dir():
            raise InputError(f"{option}: {path} is a folder; name a file to write.")


def _write_map(frame: Any, pred: Any, path: str, *, overwrite: bool) -> None:
    """Draw the map into a sibling file and move it to ``path`` once it is complete."""
    from xcalving.plot import front_map
    from xcalving.safety import staged

    figure = front_map(frame, _background(pred)).figure
    kind = Path(path).suffix.lstrip(".").lower() or "png"
    with staged(path, mode="w" if overwrite else "w-", what="--map", flag="--overwrite",
                check=_is_file) as scratch:
        figure.savefig(scratch, dpi=120, format=kind)


def _is_file(path: Path) -> None:
    if not path.is_file():
        raise InputError(f"--map: {path} is not a file; name a file to write.")


def _background(pred: Any) -> Any:
    """The scene to draw under the fronts: the input backscatter if recorded, else zones."""
    import xcalving

    source = pred.attrs.get("source")
    if source and Path(source).exists():
        cube = xcalving.open_cube(source)
        if "sar" in cube and "time" in cube["sar"].dims:
            return cube["sar"].isel(time=-1)
    zones = pred["zones"]
    return zones.isel(time=-1) if "time" in zones.dims else zones
