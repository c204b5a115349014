"""The ``xcalving`` command line."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from xcalving.errors import InputError, XcalvingError


def _run_demo(args: argparse.Namespace) -> int:
    from xcalving.demo import run_demo

    run_demo(Path(args.out), seed=args.seed, n_times=args.n_times, size=args.size,
             resolution=args.resolution, freq=args.freq, real=not args.synthetic_only)
    return 0


def _connect(address: str) -> Any:
    """A Client of the running scheduler at ``address`` (--scheduler); never starts a cluster."""
    from distributed import Client

    if not address.strip():
        raise InputError("--scheduler: the address is empty; give a running Dask scheduler's "
                         "address, e.g. tcp://10.0.0.5:8786, or leave --scheduler out.")
    try:
        return Client(address, timeout=10)
    except (ValueError, TypeError, OSError, TimeoutError) as err:
        raise InputError(
            f"--scheduler: cannot connect to a Dask scheduler at {address!r} ({err}); give a "
            "running scheduler's address, e.g. tcp://10.0.0.5:8786."
        ) from None


def _compute_with_progress(delayed: Any, scheduler: str | None, what: str) -> None:
    """Compute ``delayed`` with a progress bar: tqdm locally, distributed.progress on a cluster."""
    if scheduler is None:
        from xcalving._progress import progress

        with progress(desc=what):
            delayed.compute()
        return
    from distributed import progress as cluster_progress

    with _connect(scheduler) as client:
        future = client.compute(delayed)
        cluster_progress(future)
        future.result()


def _missing_blocks(store: Path, pred: Any) -> list[dict[str, slice]]:
    """Regions (one per Dask block) of which some variable has a chunk missing from ``store``."""
    import itertools

    import numpy as np

    template = pred["front_probability"]
    dims, chunks = template.dims, template.data.chunks
    edges = [np.cumsum([0, *c]) for c in chunks]
    missing = []
    for index in itertools.product(*[range(len(c)) for c in chunks]):
        where = dict(zip(dims, index, strict=True))
        for name, var in pred.data_vars.items():
            key = "/".join(str(where.get(d, 0)) for d in var.dims)
            if not (store / str(name) / "c" / key).exists():
                missing.append({d: slice(int(e[i]), int(e[i + 1]))
                                for d, e, i in zip(dims, edges, index, strict=True)})
                break
    return missing


def _resume(out: Path, pred: Any, args: argparse.Namespace) -> None:
    """Write only the blocks an interrupted run left out (predict is chunk-invariant)."""
    import dask

    import xcalving

    done = xcalving.open_cube(out)
    same = all(done.attrs.get(k) == pred.attrs.get(k)
               for k in ("model_sha256", "tile", "overlap", "source"))
    if not same or dict(done.sizes) != dict(pred.sizes):
        raise InputError(f"--resume: {out} holds another prediction (model, tile, overlap, input "
                         "or shape differ); pass --overwrite to replace it or choose a new --out.")
    regions = _missing_blocks(out, pred)
    writable = pred.drop_vars([c for c in pred.coords if not pred[c].dims])
    jobs = [writable.isel(region).to_zarr(out, region="auto", consolidated=False,
                                          write_empty_chunks=True, compute=False)
            for region in regions]
    _compute_with_progress(dask.delayed(jobs), args.scheduler, "predict --resume")
    n_blocks = math.prod(len(c) for c in pred["front_probability"].data.chunks)
    print(f"resumed {out}: wrote {len(regions)} of {n_blocks} blocks")


def _run_predict(args: argparse.Namespace) -> int:
    import xcalving

    out = Path(args.out)
    if out.exists() and not (args.overwrite or args.resume):
        raise InputError(f"--out: {out} already exists; choose a new path, pass --resume to "
                         "finish an interrupted run, or --overwrite to replace it.")
    cube = xcalving.open_cube(args.cube)
    pred = cube.calving.predict(
        args.model, variable=args.variable, tile=args.tile, overlap=args.overlap,
        batch_size=args.batch_size, device=args.device, band=args.band, scaling=args.scaling,
        resolution=_resolution_arg(args.resolution),
    )
    pred.attrs["source"] = str(args.cube)
    if out.exists() and args.resume:
        _resume(out, pred, args)
        return 0
    job = pred.to_zarr(out, mode="w" if args.overwrite else "w-", consolidated=False,
                       zarr_format=3, compute=False, write_empty_chunks=True)
    _compute_with_progress(job, args.scheduler, "predict")
    sizes = ", ".join(f"{k}: {v}" for k, v in pred.sizes.items())
    print(f"wrote {out} ({sizes}; crs {pred.rio.crs or 'none (pixel coordinates)'}; "
          f"model {pred.attrs['model']} sha256 {pred.attrs['model_sha256'][:12]}…)")
    return 0


def _run_fronts(args: argparse.Namespace) -> int:
    import xcalving
    from xcalving.vector import write_fronts

    outputs = [p for p in (args.out, args.gpkg, args.map) if p]
    for path in outputs:
        if Path(path).exists() and not args.overwrite:
            raise InputError(f"{path} already exists; choose a new path or pass --overwrite.")
    pred = xcalving.open_cube(args.pred)
    from xcalving._progress import progress

    with progress(desc="fronts"):
        frame = pred.calving.fronts(method=args.method, min_length=args.min_length,
                                    min_length_px=args.min_length_px)
    found = int((~frame.geometry.is_empty).sum())
    print(f"{found} of {len(frame)} scenes have a front ({args.method} method)")
    if args.out:
        print(f"wrote {write_fronts(frame, args.out, overwrite=args.overwrite)}")
    if args.gpkg:
        print(f"wrote {write_fronts(frame, args.gpkg, overwrite=args.overwrite)}")
    if args.map:
        from xcalving.plot import front_map

        background = _background(pred)
        front_map(frame, background).figure.savefig(args.map, dpi=120)
        print(f"wrote {args.map}")
    return 0


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


def _run_train(args: argparse.Namespace) -> int:
    from xcalving.train import TrainConfig, train

    config = TrainConfig(
        store=args.store, out=args.out, train_glaciers=args.train_glaciers,
        val_glaciers=args.val_glaciers, train_split=args.train_split,
        val_split=args.val_split, width=args.width, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, patience=args.patience,
        zone_weight=args.zone_weight, front_dilation=args.dilation, augment=not args.no_augment,
        seed=args.seed, num_workers=args.workers, device=args.device,
        max_minutes=args.max_minutes, min_length_px=args.min_length_px,
    )

    def report(row: dict[str, Any]) -> None:
        print(f"epoch {row['epoch']:3d}  loss {row['loss']:.4f}  val {row['val_loss']:.4f}  "
              f"bbox acc {row['bbox_accuracy']:.3f}  zone IoU {row['zone_iou']:.3f}  "
              f"MDE {row['mde_px']:.1f} px ({row['n_no_front']} no front)  "
              f"{row['seconds']:.0f} s", flush=True)

    summary = train(config, resume=args.resume, on_epoch=report)
    if summary:  # rank 0 (or a single process) reports
        print(f"stopped after {summary['epochs']} epochs ({summary['stopped']}); best epoch "
              f"{summary['best_epoch']}: {args.out}/best.safetensors")
    return 0


def _run_tune(args: argparse.Namespace) -> int:
    from distributed import Client, LocalCluster

    from xcalving.train import TrainConfig
    from xcalving.tune import tune

    if args.scheduler is not None and args.workers:
        raise InputError("--scheduler and --workers: pass one — a running cluster's address, "
                         "or the number of workers of a LocalCluster the CLI starts.")
    base = TrainConfig(store=args.store, out=args.out, train_glaciers=args.train_glaciers,
                       val_glaciers=args.val_glaciers, train_split=args.train_split,
                       val_split=args.val_split, width=args.width, epochs=args.epochs,
                       patience=args.patience, augment=not args.no_augment,
                       max_minutes=args.max_minutes)
    space = {"lr": tuple(args.lr_range), "batch_size": tuple(args.batch_range)}
    if "://" not in str(args.store) and not Path(args.store).exists():  # before any cluster
        raise FileNotFoundError(f"store: no Zarr store at {args.store!r}; write one with "
                                "`xcalving caffe`.")
    if args.scheduler is not None:
        client = _connect(args.scheduler)
    else:
        cluster = LocalCluster(n_workers=args.workers or 2, threads_per_worker=1,
                               dashboard_address=None)
        client = Client(cluster)
    with client:
        print(f"tuning on {client} ({args.n_trials} trials)", flush=True)
        result = tune(base, n_trials=args.n_trials, space=space, seed=args.seed,
                      then_train=args.then_train)
    if args.scheduler is None:
        cluster.close()
    print(f"best trial {result['number']}: {result['params']} (validation loss "
          f"{result['val_loss']:.4f}); {result['complete']} complete, {result['pruned']} "
          f"pruned, {result['fail']} failed — {args.out}/best.json, trials.csv, search.png")
    return 0


def _run_synth(args: argparse.Namespace) -> int:
    from xcalving.data.caffe import write_synthetic_tree

    data_raw = write_synthetic_tree(args.out, train_seeds=range(args.train_seeds),
                                    test_seeds=range(1000, 1000 + args.test_seeds),
                                    n_times=args.n_times, shape=(args.size, args.size))
    print(f"wrote {data_raw}")
    return 0


def _run_caffe(args: argparse.Namespace) -> int:
    from xcalving.data.caffe import caffe_to_zarr

    spacing: Literal["name"] | None = None if args.unknown_spacing else "name"
    store = caffe_to_zarr(args.root, args.out, window=args.window, stride=args.stride,
                          pixel_spacing=spacing, mode="w" if args.overwrite else "w-")
    print(f"wrote {store}")
    return 0


def _add_demo(sub: Any) -> None:
    demo = sub.add_parser("demo", help="run the end-to-end demo: synthetic and real CaFFe scenes")
    demo.add_argument("--out", default="xcalving-demo",
                      help="output folder, the demo's own: a re-run replaces it "
                           "(default: %(default)s)")
    demo.add_argument("--seed", type=int, default=2026,
                      help="random seed of the synthetic cube (the demo weights never saw it)")
    demo.add_argument("--n-times", type=int, default=12, help="number of scenes")
    demo.add_argument("--size", type=int, default=256,
                      help="scene size in pixels (the demo weights were trained at 256)")
    demo.add_argument("--resolution", type=float, default=20.0, help="pixel spacing in metres")
    demo.add_argument("--freq", default="30D", help="time between scenes (pandas frequency)")
    demo.add_argument("--synthetic-only", action="store_true",
                      help="skip the real CaFFe part (b)")
    demo.set_defaults(run=_run_demo)


def _resolution_arg(value: str | None) -> float | str | None:
    if value is None or value == "model":
        return value
    try:
        return float(value)
    except ValueError:
        message = f"--resolution must be 'model' or metres per pixel; got {value!r}."
        raise InputError(message) from None


def _add_predict(sub: Any) -> None:
    pred = sub.add_parser("predict", help="predict front probability and zones over a Zarr cube")
    pred.add_argument("cube", help="input Zarr cube (e.g. written by xcalving.write_cube)")
    pred.add_argument("--out", required=True, help="output Zarr store (a new path)")
    pred.add_argument("--model", default=None,
                      help="registered weights name or .safetensors path (default: the package's)")
    pred.add_argument("--variable", default=None,
                      help="backscatter variable (default: sar, else HH, else VV, else the only "
                           "one)")
    pred.add_argument("--tile", type=int, default=512, help="window size in pixels")
    pred.add_argument("--overlap", type=int, default=128, help="window overlap in pixels")
    pred.add_argument("--batch-size", type=int, default=8, help="windows per forward pass")
    pred.add_argument("--device", default="auto", help="auto, cpu or cuda")
    pred.add_argument("--band", default=None,
                      help="band to use when the cube has several (default: HH, else VV)")
    pred.add_argument("--resolution", default=None,
                      help="run the network at this spacing: 'model' (the weights') or metres; "
                           "the output stays on the input grid (default: the input grid)")
    pred.add_argument("--scaling", default="auto", choices=["auto", "db", "linear", "uint8",
                                                             "none"])
    pred.add_argument("--scheduler", default=None,
                      help="dask.distributed scheduler address (default: local threads)")
    pred.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    pred.add_argument("--resume", action="store_true",
                      help="finish an interrupted run: write only the blocks --out lacks")
    pred.set_defaults(run=_run_predict)


def _add_fronts(sub: Any) -> None:
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


def _add_synth(sub: Any) -> None:
    sy = sub.add_parser("synth", help="write synthetic scenes as a CaFFe data_raw tree")
    sy.add_argument("--out", required=True, help="folder that receives data_raw/")
    sy.add_argument("--train-seeds", type=int, default=40, help="seeds 0..N-1 → split train")
    sy.add_argument("--test-seeds", type=int, default=8, help="seeds 1000.. → split test")
    sy.add_argument("--n-times", type=int, default=6, help="scenes per seed")
    sy.add_argument("--size", type=int, default=256, help="scene size in pixels")
    sy.set_defaults(run=_run_synth)


def _add_caffe(sub: Any) -> None:
    cf = sub.add_parser("caffe", help="convert a CaFFe data_raw tree to a Zarr patch store")
    cf.add_argument("root", help="the data_raw folder (or its parent)")
    cf.add_argument("--out", required=True, help="Zarr patch store to write")
    cf.add_argument("--window", type=int, default=256, help="patch size in pixels")
    cf.add_argument("--stride", type=int, default=None, help="patch stride (default: window)")
    cf.add_argument("--unknown-spacing", action="store_true",
                    help="pixel spacing unknown (resized scenes such as caffe256)")
    cf.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    cf.set_defaults(run=_run_caffe)


def _add_run_options(parser: Any, *, width: int, epochs: int) -> None:
    """Options that training and tuning share: data selection, network, budgets."""
    parser.add_argument("store", help="Zarr patch store (from `xcalving caffe`)")
    parser.add_argument("--train-glaciers", nargs="+", default=None, help="glaciers to train on")
    parser.add_argument("--val-glaciers", nargs="+", default=None,
                        help="glaciers to validate on")
    parser.add_argument("--train-split", default=None, help="split to train on (train/test)")
    parser.add_argument("--val-split", default=None, help="split to validate on (train/test)")
    parser.add_argument("--width", type=int, default=width,
                        help="first-level width of the network")
    parser.add_argument("--epochs", type=int, default=epochs, help="epoch budget (of each run)")
    parser.add_argument("--patience", type=int, default=5,
                        help="early-stopping patience (epochs)")
    parser.add_argument("--no-augment", action="store_true", help="no flips, turns, speckle")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="time budget (of each run)")
    parser.add_argument("--seed", type=int, default=0)


def _add_train(sub: Any) -> None:
    tr = sub.add_parser("train", help="train the ASPP U-Net on a Zarr patch store")
    _add_run_options(tr, width=16, epochs=50)
    tr.add_argument("--out", required=True, help="run folder: checkpoints, history, curves")
    tr.add_argument("--batch-size", type=int, default=16)
    tr.add_argument("--lr", type=float, default=1e-4)
    tr.add_argument("--zone-weight", type=float, default=1.0,
                    help="weight of the zone loss (0: front head only, GlacierDL's recipe)")
    tr.add_argument("--dilation", type=int, default=10, help="front thickening for Dice (px)")
    tr.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    tr.add_argument("--device", default="auto")
    tr.add_argument("--min-length-px", type=float, default=10.0,
                    help="front pieces up to this many pixels are dropped in validation")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out")
    tr.set_defaults(run=_run_train)


def _add_tune(sub: Any) -> None:
    tu = sub.add_parser("tune", help="search lr and batch size with Optuna on a Dask cluster")
    _add_run_options(tu, width=8, epochs=10)
    tu.add_argument("--out", required=True, help="tuning folder: study, trials, plot, best")
    tu.add_argument("--n-trials", type=int, default=20, help="trials to add to the study")
    tu.add_argument("--workers", type=int, default=None,
                    help="start a LocalCluster of this many single-thread workers (default 2)")
    tu.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    tu.add_argument("--lr-range", type=float, nargs=2, default=(1e-7, 1e-2))
    tu.add_argument("--batch-range", type=int, nargs=2, default=(2, 32))
    tu.add_argument("--then-train", action="store_true",
                    help="train once more with the best setting into OUT/best-run")
    tu.set_defaults(run=_run_tune)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xcalving", description=__doc__)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line")
    sub = parser.add_subparsers(dest="command")
    for add in (_add_demo, _add_predict, _add_fronts, _add_synth, _add_caffe, _add_train,
                _add_tune):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        from xcalving import __version__

        print(__version__)
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print(f"xcalving {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one line, no traceback, unless --debug asks for it
        if args.debug:
            raise
        expected = isinstance(err, XcalvingError | FileNotFoundError | FileExistsError)
        kind = "" if expected else f"{type(err).__name__}: "
        hint = "" if expected else " (run again with --debug for the traceback)"
        print(f"xcalving {args.command}: error: {kind}{err}{hint}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
