"""``xcalving demo``: the end-to-end demo on synthetic and real CaFFe scenes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_demo(sub: Any) -> None:
    """Register ``xcalving demo`` on the subparsers ``sub``."""
    demo = sub.add_parser(
        "demo", help="run the end-to-end demo: synthetic and real CaFFe scenes",
        description="(a) Make a synthetic glacier cube, predict it with the demo weights, trace "
                    "the fronts and score them against the truth; (b) the same on real "
                    "labelled scenes shipped with xcalving. Files and maps go to --out.",
        epilog="examples:\n  xcalving demo\n"
               "  xcalving demo --out demo --n-times 4 --size 128 --synthetic-only")
    demo.add_argument("--out", default="xcalving-demo",
                      help="output folder, created and marked by the demo: a re-run replaces "
                           "it, never a folder the demo did not create")
    demo.add_argument("--seed", type=int, default=2026,
                      help="random seed of the synthetic cube (the demo weights never saw it)")
    demo.add_argument("--n-times", type=int, default=12, help="number of synthetic scenes")
    demo.add_argument("--size", type=int, default=256,
                      help="scene size in pixels (the demo weights were trained at 256)")
    demo.add_argument("--resolution", type=float, default=20.0, help="pixel spacing in metres")
    demo.add_argument("--freq", default="30D", help="time between scenes (pandas frequency)")
    demo.add_argument("--synthetic-only", action="store_true",
                      help="skip the real CaFFe part (b)")
    demo.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from xcalving.demo import run_demo

    run_demo(Path(args.out), seed=args.seed, n_times=args.n_times, size=args.size,
             resolution=args.resolution, freq=args.freq, real=not args.synthetic_only)
    return 0
