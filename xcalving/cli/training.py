"""``xcalving train`` and ``xcalving tune``: one set of run options, one TrainConfig builder."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from xcalving.cli._dask import connect
from xcalving.errors import InputError, InputNotFoundError
from xcalving.scaling import ROBUST_SCALING

if TYPE_CHECKING:
    from xcalving.train.config import TrainConfig


def _add_run_options(parser: Any, *, width: int, epochs: int) -> None:
    """Options that training and tuning share: data selection, network, budgets."""
    parser.add_argument("store", help="Zarr patch store (from `xcalving caffe`)")
    parser.add_argument("--train-glaciers", nargs="+", default=None, metavar="GLACIER",
                        help="glaciers to train on, e.g. DBE JAC SI (default: all)")
    parser.add_argument("--val-glaciers", nargs="+", default=None, metavar="GLACIER",
                        help="glaciers to validate on, e.g. Jorum (default: all)")
    parser.add_argument("--train-split", default=None,
                        help="split to train on, train or test (default: all)")
    parser.add_argument("--val-split", default=None,
                        help="split to validate on, train or test (default: all)")
    parser.add_argument("--width", type=int, default=width,
                        help="first-level width of the network")
    parser.add_argument("--epochs", type=int, default=epochs, help="epoch budget (of each run)")
    parser.add_argument("--patience", type=int, default=5,
                        help="early-stopping patience (epochs)")
    parser.add_argument("--no-augment", action="store_true",
                        help="train without augmentation (flips, turns, speckle)")
    parser.add_argument("--heavy-augment", action="store_true",
                        help="add a random zoom (scale jitter up to 1.5x) and gamma to the "
                             "flips, turns and speckle")
    parser.add_argument("--physical-augment", action="store_true",
                        help="--heavy-augment plus multilook or blur half the time, so that "
                             "scenes resampled to the network's spacing are in distribution")
    parser.add_argument("--aimed-augment", action="store_true",
                        help="--physical-augment without the gamma, with a zoom of 0.5-2x and "
                             "another scene mixed into the ocean three times in ten")
    parser.add_argument("--balance", action="store_true",
                        help="draw every training glacier equally often in each epoch")
    parser.add_argument("--robust-scaling", action="store_true",
                        help="robust per-scene scaling: each scene (each patch in training) "
                             "stretched from its 1st to its 99th percentile before the network")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="time budget in minutes (of each run; default: none)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed (of each run; tune also seeds its sampler with it)")


def _train_config(args: argparse.Namespace, **options: Any) -> TrainConfig:
    """The TrainConfig of the run options (:func:`_add_run_options`), plus ``options``."""
    # heavy: xcalving.train.config loads torch, matplotlib, safetensors
    from xcalving.train.config import TrainConfig

    if args.robust_scaling:
        options = {"scaling": ROBUST_SCALING.to_dict(), **options}
    return TrainConfig(
        store=args.store, out=args.out, train_glaciers=args.train_glaciers,
        val_glaciers=args.val_glaciers, train_split=args.train_split, val_split=args.val_split,
        width=args.width, epochs=args.epochs, patience=args.patience,
        augment=_augment(args), balance=args.balance, max_minutes=args.max_minutes,
        seed=args.seed, **options,
    )


def _augment(args: argparse.Namespace) -> bool | Literal["heavy", "physical", "aimed"]:
    flags: dict[str, bool | Literal["heavy", "physical", "aimed"]] = {
        "--no-augment": False, "--heavy-augment": "heavy", "--physical-augment": "physical",
        "--aimed-augment": "aimed"}
    given = [flag for flag in flags if getattr(args, flag[2:].replace("-", "_"))]
    if len(given) > 1:
        raise InputError(f"{' and '.join(given)} contradict each other; pass one.")
    return flags[given[0]] if given else True


def add_train(sub: Any) -> None:
    """Register ``xcalving train`` on the subparsers ``sub``."""
    tr = sub.add_parser(
        "train", help="train the ASPP U-Net on a Zarr patch store",
        description="Train the ASPP U-Net on the patches of a Zarr store (from 'xcalving "
                    "caffe'), validating every epoch and stopping early; the run folder gets "
                    "the best and last weights, the history and its curves.",
        epilog="example:\n  xcalving train patches.zarr --out run --val-glaciers Jorum "
               "--epochs 30\n  xcalving predict cube.zarr --out pred.zarr --model "
               "run/best.safetensors")
    _add_run_options(tr, width=16, epochs=50)
    tr.add_argument("--out", required=True,
                    help="run folder: checkpoints, history, curves (required)")
    tr.add_argument("--batch-size", type=int, default=16, help="patches per training step")
    tr.add_argument("--lr", type=float, default=1e-4, help="learning rate of Adam")
    tr.add_argument("--zone-weight", type=float, default=1.0,
                    help="weight of the zone loss (0: front head only, GlacierDL's recipe)")
    tr.add_argument("--dilation", type=int, default=10, help="front thickening for Dice (px)")
    tr.add_argument("--schedule", default="constant", choices=["constant", "cosine"],
                    help="learning rate: constant, or cosine decay to 0 over --epochs")
    tr.add_argument("--front-loss", default="dice", choices=["dice", "dice+bce+distance"],
                    help="front loss: Dice (GlacierDL), or Dice + balanced BCE + a penalty on "
                         "probability far from the labelled front")
    tr.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    tr.add_argument("--device", default="auto",
                    help="auto (a GPU where there is one), cpu or cuda")
    tr.add_argument("--min-length-px", type=float, default=10.0,
                    help="front pieces up to this many pixels are dropped in validation")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out")
    tr.add_argument("--context", action="store_true",
                    help="temporal context: the network sees each scene with the median and "
                         "spread of its six nearest other dates (a store from `xcalving caffe "
                         "--context`); predict then builds them from the cube's dates")
    tr.add_argument("--init", default=None, metavar="WEIGHTS",
                    help="start from these weights (a registered name such as demo, or a "
                         ".safetensors file of the same --width) instead of a random network")
    tr.set_defaults(run=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    # heavy: xcalving.train.loop loads torch, matplotlib, safetensors
    from xcalving.train.loop import train

    config = _train_config(
        args, batch_size=args.batch_size, lr=args.lr, zone_weight=args.zone_weight,
        front_dilation=args.dilation, num_workers=args.workers, device=args.device,
        min_length_px=args.min_length_px, init=args.init, schedule=args.schedule,
        front_loss=args.front_loss, context=args.context,
    )
    summary = train(config, resume=args.resume, on_epoch=_report_epoch)
    if summary:  # rank 0 (or a single process) reports
        print(f"stopped after {summary['epochs']} epochs ({summary['stopped']}); best epoch "
              f"{summary['best_epoch']}: {args.out}/best.safetensors")
    return 0


def _report_epoch(row: dict[str, Any]) -> None:
    print(f"epoch {row['epoch']:3d}  loss {row['loss']:.4f}  val {row['val_loss']:.4f}  "
          f"bbox acc {row['bbox_accuracy']:.3f}  zone IoU {row['zone_iou']:.3f}  "
          f"MDE {row['mde_px']:.1f} px ({row['n_no_front']} no front)  "
          f"{row['seconds']:.0f} s", flush=True)


def add_tune(sub: Any) -> None:
    """Register ``xcalving tune`` on the subparsers ``sub``."""
    tu = sub.add_parser(
        "tune", help="search lr and batch size with Optuna on a Dask cluster",
        description="Search the learning rate and batch size with Optuna, one short training "
                    "run a trial on the workers of a Dask cluster (a LocalCluster started here, "
                    "or a running scheduler), pruning poor trials early.",
        epilog="example:\n  xcalving tune patches.zarr --out search --val-glaciers Jorum "
               "--n-trials 20 \\\n      --workers 2 --then-train")
    _add_run_options(tu, width=8, epochs=10)
    tu.add_argument("--out", required=True,
                    help="tuning folder: study, trials, plot, best (required)")
    tu.add_argument("--n-trials", type=int, default=20, help="trials to add to the study")
    tu.add_argument("--workers", type=int, default=None,
                    help="start a LocalCluster of this many single-thread workers "
                         "(default: 2, unless --scheduler)")
    tu.add_argument("--scheduler", default=None,
                    help="address of a running Dask scheduler (default: a LocalCluster)")
    tu.add_argument("--lr-range", type=float, nargs=2, default=(1e-7, 1e-2),
                    metavar=("LOW", "HIGH"), help="learning rates searched (log scale)")
    tu.add_argument("--batch-range", type=int, nargs=2, default=(2, 32),
                    metavar=("LOW", "HIGH"), help="batch sizes searched")
    tu.add_argument("--then-train", action="store_true",
                    help="train once more with the best setting into OUT/best-run")
    tu.set_defaults(run=_run_tune)


def _run_tune(args: argparse.Namespace) -> int:
    # heavy: xcalving.train.search loads torch, matplotlib, safetensors
    from xcalving.train.search import tune

    if args.scheduler is not None and args.workers:
        raise InputError("--scheduler and --workers: pass one — a running cluster's address, "
                         "or the number of workers of a LocalCluster the CLI starts.")
    base = _train_config(args)
    space = {"lr": tuple(args.lr_range), "batch_size": tuple(args.batch_range)}
    if "://" not in str(args.store) and not Path(args.store).exists():  # before any cluster
        raise InputNotFoundError(f"store: no Zarr store at {args.store!r}; write one with "
                                "`xcalving caffe`.")
    with _tune_client(args.scheduler, args.workers) as client:
        print(f"tuning on {client} ({args.n_trials} trials)", flush=True)
        result = tune(base, n_trials=args.n_trials, space=space, seed=args.seed,
                      then_train=args.then_train)
    print(f"best trial {result['number']}: {result['params']} (validation loss "
          f"{result['val_loss']:.4f}); {result['complete']} complete, {result['pruned']} "
          f"pruned, {result['fail']} failed — {args.out}/best.json, trials.csv, search.png")
    return 0


@contextmanager
def _tune_client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """A Client of ``scheduler``, or of a LocalCluster started (and always closed) here."""
    if scheduler is not None:
        with connect(scheduler) as client:
            yield client
        return
    from distributed import Client, LocalCluster  # heavy: distributed, loaded on first use

    with LocalCluster(n_workers=workers or 2, threads_per_worker=1,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client
