"""``xcalving demo`` (and ``make demo``): the end-to-end demo, its command and its parts.

(a) a synthetic cube → Zarr → predict with the ``demo`` weights → prediction Zarr → fronts →
GeoParquet + GeoPackage → time-series map → MDE table against the synthetic truth;
(b) the same on real DBE TerraSAR-X scenes shipped with xcalving, with the ``caffe256-nodbe``
weights → MDE in pixels against their labels.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import xcalving
from xcalving.data.synthetic import glacier_cube
from xcalving.errors import InputError
from xcalving.metrics import mean_distance_error, zone_iou
from xcalving.safety import MARKER, check_replaceable, mark_folder, marked_by, staged
from xcalving.vector.api import label_fronts
from xcalving.vector.files import write_fronts

#: Who the demo's folder marker (:data:`xcalving.safety.MARKER`) names.
WRITTEN_BY = "xcalving demo"


def check_demo_out(out: Path) -> None:
    """Refuse an ``--out`` the demo did not create: only an earlier demo run may be replaced.

    A demo folder carries a marker listing what the demo wrote; a folder without it (even an
    empty one), or with files added since, is never adopted or replaced.
    """
    if not os.path.lexists(out):
        return
    if marked_by(out) != WRITTEN_BY:
        raise InputError(
            f"--out: {out} exists and was not created by `xcalving demo` (it has no {MARKER} "
            "marker of the demo); the demo only replaces its own output. Choose another --out "
            "or remove that folder yourself."
        )
    check_replaceable(out, what="--out", flag="`xcalving demo`")


def _step(n: int, total: int, text: str) -> None:
    print(f"[{n}/{total}] {text}", flush=True)


def _predict_to_zarr(cube: Any, model: str, store: Path, tile: int, overlap: int) -> Any:
    pred = cube.calving.predict(model, tile=tile, overlap=overlap)
    with xcalving.progress(desc="predict"):
        pred.to_zarr(store, mode="w-", consolidated=False, zarr_format=3)
    return xcalving.open_cube(store)


def _write_fronts(frame: Any, out: Path, name: str, background: Any, title: str,
                  labels: Any = None) -> list[Path]:
    from xcalving.plot import front_map  # heavy: xcalving.plot loads matplotlib, PIL

    paths = [Path(write_fronts(frame, out / f"{name}.parquet")),
             Path(write_fronts(frame, out / f"{name}.gpkg"))]
    front_map(frame, background, title=title, labels=labels).figure.savefig(
        out / f"{name}_map.png", dpi=110)
    return [*paths, out / f"{name}_map.png"]


def _mde_table(frame: Any, truth: Any, resolution: float) -> str:
    lines = ["    date         MDE (m)   MDE (px)"]
    for time in frame.index:
        one = mean_distance_error(frame.loc[[time]], truth.loc[[time]], resolution=resolution)
        mde = f"{one.mde:8.1f}   {one.mde / resolution:8.2f}" if one.n_scored else "  no front"
        lines.append(f"    {time.date()}  {mde}")
    pooled = mean_distance_error(frame, truth, resolution=resolution)
    lines.append(f"    pooled      {pooled.mde:8.1f}   {pooled.mde / resolution:8.2f}   "
                 f"({pooled.n_scored} scored, {pooled.n_no_front} without a front)")
    return "\n".join(lines)


def synthetic_part(out: Path, *, seed: int, n_times: int, size: int, resolution: float,
                   freq: str, total: int) -> list[Path]:
    """Part (a): a synthetic cube from a seed never used in training, predicted end to end."""
    from xcalving.plot import scene  # heavy: xcalving.plot loads matplotlib, PIL

    _step(1, total, f"synthetic cube: {n_times} scenes of {size} x {size} px at {resolution:g} m, "
          f"seed {seed}")
    cube, truth = glacier_cube(n_times, shape=(size, size), resolution=resolution, seed=seed,
                               freq=freq)
    store = Path(xcalving.write_cube(cube, out / "cube.zarr"))
    cube = xcalving.open_cube(store)
    scene(cube, time=0).savefig(out / "scene.png", dpi=110)
    _step(2, total, f"wrote {store.name} and reopened it lazily (crs {cube.rio.crs}); predicting "
          "with the 'demo' weights")
    pred = _predict_to_zarr(cube, "demo", out / "prediction.zarr", tile=256, overlap=64)
    frame = pred.calving.fronts()
    files = _write_fronts(frame, out, "fronts", cube.sar.isel(time=-1),
                          "synthetic: predicted fronts ('demo' weights)")
    _step(3, total, f"fronts of {len(frame)} dates → GeoParquet, GeoPackage and a map; MDE "
          "against the synthetic truth:\n" + _mde_table(frame, truth, resolution))
    return [store, out / "scene.png", out / "prediction.zarr", *files]


#: The real part: a shipped time series, and weights of the shipped recipe that never saw it.
#: DBE was held out of these weights' training; it was one of the four folds that chose the
#: recipe, so its score is a selection estimate, said so where it is printed.
REAL_GLACIER, REAL_SATELLITE, REAL_WEIGHTS = "DBE", "TSX", "caffe256-nodbe"
#: The real part runs on square pixels of this many metres (the real weights' spacing).
REAL_SPACING = 75.0


def real_part(out: Path, *, step: int, total: int) -> list[Path]:
    """Part (b): shipped DBE TerraSAR-X scenes at 75 m, scored with weights that never saw DBE."""
    # heavy: xcalving.data.caffe.catalog loads torch, safetensors, tqdm
    from xcalving.data.caffe.catalog import open_caffe, shipped_scenes, time_series

    series = time_series(open_caffe(shipped_scenes(), pixel_spacing="caffe256"),
                         glacier=REAL_GLACIER, satellite=REAL_SATELLITE, spacing=REAL_SPACING)
    name = REAL_GLACIER.lower()
    store = Path(xcalving.write_cube(series, out / f"{name}.zarr"))
    _step(step, total, f"real CaFFe scenes: {series.sizes['time']} TerraSAR-X scenes of "
          f"{REAL_GLACIER} ({series.time.dt.year.min().item()}–"
          f"{series.time.dt.year.max().item()}, CC BY 4.0, Gourmelon et al. 2022) at "
          f"{REAL_SPACING:g} m → predicting with the {REAL_WEIGHTS!r} weights, which never saw "
          f"{REAL_GLACIER}")
    pred = _predict_to_zarr(xcalving.open_cube(store), REAL_WEIGHTS,
                            out / f"{name}_prediction.zarr", tile=256, overlap=64)
    frame = pred.calving.fronts()  # the defaults: what a user gets
    labels = label_fronts(series.front)
    score = _real_scores(frame, labels, pred, series)
    files = _write_fronts(frame, out, f"{name}_fronts", series.sar.isel(time=-1),
                          f"{REAL_GLACIER} (CaFFe, TSX, {REAL_SPACING:g} m) by {REAL_WEIGHTS!r}, "
                          f"which never saw it:\nMDE {score[0]:.0f} m from the labelled fronts",
                          labels=labels)
    _step(step + 1, total, f"fronts of {len(frame)} dates → GeoParquet, GeoPackage and a map "
          f"with the labelled fronts; {score[1]}")
    return [store, out / f"{name}_prediction.zarr", *files]


def _real_scores(frame: Any, labels: Any, pred: Any, series: Any) -> tuple[float, str]:
    """MDE (metres and pixels) and zone IoU against the labels, saying what they measure."""
    score = mean_distance_error(frame, labels, resolution=REAL_SPACING)
    iou = zone_iou(pred.zones.values, series.zones.values)
    return score.mde, (
        f"on {REAL_GLACIER}, a glacier these weights never saw: MDE {score.mde:.0f} m "
        f"({score.mde / REAL_SPACING:.1f} px of {REAL_SPACING:g} m; {score.n_scored} dates "
        f"scored, {score.n_no_front} without a front), mean zone IoU {iou.mean:.3f}. DBE was "
        "one of the four folds that chose the recipe: a selection estimate")


def run_demo(out: Path, *, seed: int, n_times: int, size: int, resolution: float, freq: str,
             real: bool = True) -> list[Path]:
    """Run both parts and return the files written.

    Everything is written into a hidden folder beside ``out``, marked as the demo's, and moved to
    ``out`` when complete (replacing an earlier demo run there); a failure or Ctrl-C removes it.
    """
    out = Path(out)
    check_demo_out(out)
    total = 5 if real else 3
    with staged(out, mode="w", what="--out", flag="`xcalving demo`",
                check=check_demo_out) as work:
        work.mkdir()
        files = synthetic_part(work, seed=seed, n_times=n_times, size=size,
                               resolution=resolution, freq=freq, total=total)
        if real:
            files += real_part(work, step=4, total=total)
        mark_folder(work, WRITTEN_BY)
    files = [out / path.relative_to(work) for path in files]
    print("\nfiles written:")
    for path in files:
        print(f"  {path}")
    return files


# --- the command ----------------------------------------------------------------------------------
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
    run_demo(Path(args.out), seed=args.seed, n_times=args.n_times, size=args.size,
             resolution=args.resolution, freq=args.freq, real=not args.synthetic_only)
    return 0
