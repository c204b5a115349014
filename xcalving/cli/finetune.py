"""``xcalving finetune``: adapt weights to one glacier from a handful of its labelled scenes."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_finetune"]


_EPILOG = """examples:
  xcalving finetune caffe256 'scenes/*.tif' --labels labels.gpkg --out mine.safetensors
  xcalving finetune caffe256 my_caffe_tree --out mine.safetensors --max-minutes 5
  xcalving finetune demo labelled.zarr --out mine.safetensors --max-steps 60"""


def add_finetune(sub: Any) -> None:
    """Register ``xcalving finetune`` on the subparsers ``sub``."""
    ft = sub.add_parser(
        "finetune", help="adapt weights to your glacier from a few labelled scenes",
        description="Fine-tune BASE on the labelled scenes of DATA and write an ordinary weights "
                    "file for `xcalving predict`, with a card of what it saw and how it scored.",
        epilog=_EPILOG)
    ft.add_argument("base", help="registered weights name (caffe256, demo) or a .safetensors file")
    ft.add_argument("data", nargs="+",
                    help="a CaFFe data_raw folder, a Zarr cube with sar and zones, or GeoTIFF "
                         "scenes (files or a quoted glob such as 's1/*.tif') with --labels")
    ft.add_argument("--labels", default=None,
                    help="GeoPackage/GeoParquet of dated front lines (and optional zone "
                         "polygons) drawn on the GeoTIFF scenes")
    ft.add_argument("--out", required=True,
                    help="the new .safetensors file (never inside the installed package)")
    ft.add_argument("--replay", default="auto",
                    help="labelled scenes of other glaciers (e.g. a CaFFe data_raw tree) mixed "
                         "into training to keep what the base knew; auto (default): those a "
                         "registered base names (caffe256: the shipped CaFFe scenes); none")
    ft.add_argument("--replay-share", type=float, default=0.25,
                    help="share of training windows drawn from --replay (default 0.25)")
    ft.add_argument("--max-minutes", type=float, default=10.0,
                    help="wall-clock budget of the whole run (default 10)")
    ft.add_argument("--max-steps", type=int, default=1000,
                    help="optimiser steps (default 1000, about 9 minutes on two CPU cores)")
    ft.add_argument("--device", default="auto", help="auto (GPU where there is one), cpu, cuda")
    ft.add_argument("--trainable", default="all",
                    help="all (default), decoder (encoder and bottleneck frozen), or heads")
    ft.add_argument("--batchnorm", choices=["frozen", "adapt"], default="frozen",
                    help="BatchNorm statistics: the base's (frozen, default) or re-estimated on "
                         "the labelled scenes (adapt)")
    ft.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (cosine to 0)")
    ft.add_argument("--batch-size", type=int, default=8, help="training windows per step")
    ft.add_argument("--window", type=int, default=256, help="training window side (px)")
    ft.add_argument("--scaling", default="auto",
                    help="what the scenes hold: auto, db, linear or uint8")
    ft.add_argument("--caffe-spacing", choices=["name", "caffe256", "unknown"], default="name",
                    help="CaFFe trees: pixel spacing from the file names (full resolution), the "
                         "caffe256 copy's per-glacier table, or unknown")
    ft.add_argument("--date-column", default=None, help="date column of --labels")
    ft.add_argument("--class-column", default=None, help="zone class column of --labels")
    ft.add_argument("--no-score", action="store_true",
                    help="skip the before/after scores on the labelled (training) scenes")
    ft.add_argument("--seed", type=int, default=0,
                    help="seed of the window draws and augmentations")
    ft.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    ft.set_defaults(run=_run_finetune)


def _run_finetune(args: argparse.Namespace) -> int:
    from xcalving.adapt import finetune  # heavy: xcalving.adapt loads torch, safetensors, tqdm

    # heavy: xcalving.adapt.api loads torch, safetensors, tqdm
    from xcalving.adapt.api import refuse_package_target

    refuse_package_target(args.out, what="--out")
    result = finetune(
        args.base, args.data[0] if len(args.data) == 1 else list(args.data), out=args.out,
        labels=args.labels, replay=None if args.replay == "none" else args.replay,
        replay_share=args.replay_share,
        max_minutes=args.max_minutes, max_steps=args.max_steps,
        device=args.device, trainable=args.trainable, batchnorm=args.batchnorm, lr=args.lr,
        batch_size=args.batch_size, window=args.window, scaling=args.scaling,
        caffe_spacing=None if args.caffe_spacing == "unknown" else args.caffe_spacing,
        date_column=args.date_column, class_column=args.class_column,
        score=not args.no_score, seed=args.seed, overwrite=args.overwrite)
    print(result.card(), flush=True)
    if result.interrupted:
        print(f"interrupted: the best weights so far are in {result.path}", flush=True)
        return 130
    print(f"weights: {result.path} (predict with: xcalving predict CUBE --model {result.path})")
    return 0
