"""``xcalving synth`` and ``xcalving caffe``: training data as a CaFFe tree and a patch store."""

from __future__ import annotations

import argparse
from typing import Any, Literal

from xcalving.errors import InputError
from xcalving.safety import check_target
from xcalving.testing import write_synthetic_tree


def add_synth(sub: Any) -> None:
    """Register ``xcalving synth`` on the subparsers ``sub``."""
    sy = sub.add_parser(
        "synth", help="write synthetic scenes as a CaFFe data_raw tree",
        description="Write synthetic glacier scenes (one fjord a seed, with their exact zones "
                    "and fronts) as a CaFFe data_raw tree, ready for 'xcalving caffe'.",
        epilog="example:\n  xcalving synth --out synthetic --train-seeds 8 --test-seeds 2\n"
               "  xcalving caffe synthetic/data_raw --out patches.zarr")
    sy.add_argument("--out", required=True,
                    help="folder that receives data_raw/ (required; data_raw/ must not exist "
                         "or be empty)")
    sy.add_argument("--train-seeds", type=int, default=40,
                    help="N: seeds 0..N-1 go to the train split")
    sy.add_argument("--test-seeds", type=int, default=8,
                    help="N: seeds 1000..1000+N-1 go to the test split")
    sy.add_argument("--n-times", type=int, default=6, help="scenes per seed, 30 days apart")
    sy.add_argument("--size", type=int, nargs="+", default=[256],
                    help="scene size in pixels (at least 64); several sizes are given to the "
                         "seeds in turn")
    sy.add_argument("--spacing", type=float, nargs="+", default=[20.0],
                    help="pixel spacing in metres; several spacings (scale jitter) are given "
                         "to the seeds in turn, after the sizes")
    sy.set_defaults(run=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    data_raw = write_synthetic_tree(args.out, train_seeds=range(args.train_seeds),
                                    test_seeds=range(1000, 1000 + args.test_seeds),
                                    n_times=args.n_times, sizes=args.size,
                                    spacings=args.spacing)
    print(f"wrote {data_raw}")
    return 0


def add_caffe(sub: Any) -> None:
    """Register ``xcalving caffe`` on the subparsers ``sub``."""
    cf = sub.add_parser(
        "caffe", help="convert a CaFFe data_raw tree to a Zarr patch store",
        description="Cut the scenes of a CaFFe data_raw tree (SAR, zones, fronts) into patches "
                    "on the window grid of 'xcalving predict' and write them as one Zarr store "
                    "for 'xcalving train' and 'xcalving tune'.",
        epilog="example:\n  xcalving caffe CaFFe/data_raw --out patches.zarr --window 256\n"
               "  xcalving caffe caffe256/data_raw --caffe256 --spacing 75 --context --out p.zarr")
    cf.add_argument("root", help="the data_raw folder (or its parent)")
    cf.add_argument("--out", required=True, help="Zarr patch store to write (required)")
    cf.add_argument("--window", type=int, default=256, help="patch size in pixels")
    cf.add_argument("--stride", type=int, default=None,
                    help="patch stride in pixels (default: --window, patches side by side)")
    cf.add_argument("--unknown-spacing", action="store_true",
                    help="pixel spacing unknown (resized scenes)")
    cf.add_argument("--caffe256", action="store_true",
                    help="the 256 x 256 copy of CaFFe: each glacier's x and y spacing from "
                         "the table of xcalving.data.caffe.scale")
    cf.add_argument("--spacing", type=float, default=None, metavar="METRES",
                    help="resample every scene to square pixels of this spacing before cutting "
                         "(e.g. 75; needs a known spacing: not with --unknown-spacing)")
    cf.add_argument("--context", action="store_true",
                    help="also write each patch's temporal context (median and spread of the "
                         "scene's six nearest other dates), for `xcalving train --context`")
    cf.add_argument("--overwrite", action="store_true",
                    help="replace an existing --out (a Zarr store) once the new one is complete")
    cf.set_defaults(run=_run_caffe)


def _run_caffe(args: argparse.Namespace) -> int:
    # heavy: xcalving.data.caffe.patches loads torch, safetensors, tqdm
    from xcalving.data.caffe.patches import caffe_to_zarr

    mode: Literal["w-", "w"] = "w" if args.overwrite else "w-"
    check_target(args.out, mode=mode, what="--out", flag="--overwrite")  # before reading scenes
    if args.unknown_spacing and args.caffe256:
        raise InputError("--unknown-spacing and --caffe256 contradict each other; pass one.")
    rule: Literal["name", "caffe256"] | None = (
        None if args.unknown_spacing else "caffe256" if args.caffe256 else "name")
    store = caffe_to_zarr(args.root, args.out, window=args.window, stride=args.stride,
                          pixel_spacing=rule, spacing=args.spacing, mode=mode,
                          context=args.context)
    print(f"wrote {store}")
    return 0
