"""``xcalving synth`` and ``xcalving caffe``: training data as a CaFFe tree and a patch store."""

from __future__ import annotations

import argparse
from typing import Any, Literal


def add_synth(sub: Any) -> None:
    """Register ``xcalving synth`` on the subparsers ``sub``."""
    sy = sub.add_parser("synth", help="write synthetic scenes as a CaFFe data_raw tree")
    sy.add_argument("--out", required=True, help="folder that receives data_raw/")
    sy.add_argument("--train-seeds", type=int, default=40, help="seeds 0..N-1 → split train")
    sy.add_argument("--test-seeds", type=int, default=8, help="seeds 1000.. → split test")
    sy.add_argument("--n-times", type=int, default=6, help="scenes per seed")
    sy.add_argument("--size", type=int, default=256, help="scene size in pixels")
    sy.set_defaults(run=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    from xcalving.data.caffe import write_synthetic_tree

    data_raw = write_synthetic_tree(args.out, train_seeds=range(args.train_seeds),
                                    test_seeds=range(1000, 1000 + args.test_seeds),
                                    n_times=args.n_times, shape=(args.size, args.size))
    print(f"wrote {data_raw}")
    return 0


def add_caffe(sub: Any) -> None:
    """Register ``xcalving caffe`` on the subparsers ``sub``."""
    cf = sub.add_parser("caffe", help="convert a CaFFe data_raw tree to a Zarr patch store")
    cf.add_argument("root", help="the data_raw folder (or its parent)")
    cf.add_argument("--out", required=True, help="Zarr patch store to write")
    cf.add_argument("--window", type=int, default=256, help="patch size in pixels")
    cf.add_argument("--stride", type=int, default=None, help="patch stride (default: window)")
    cf.add_argument("--unknown-spacing", action="store_true",
                    help="pixel spacing unknown (resized scenes such as caffe256)")
    cf.add_argument("--overwrite", action="store_true",
                    help="replace an existing --out (a Zarr store) once the new one is complete")
    cf.set_defaults(run=_run_caffe)


def _run_caffe(args: argparse.Namespace) -> int:
    from xcalving.data.caffe import caffe_to_zarr
    from xcalving.safety import check_target

    mode: Literal["w-", "w"] = "w" if args.overwrite else "w-"
    check_target(args.out, mode=mode, what="--out", flag="--overwrite")  # before reading scenes
    spacing: Literal["name"] | None = None if args.unknown_spacing else "name"
    store = caffe_to_zarr(args.root, args.out, window=args.window, stride=args.stride,
                          pixel_spacing=spacing, mode=mode)
    print(f"wrote {store}")
    return 0
