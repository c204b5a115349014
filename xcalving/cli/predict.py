"""``xcalving predict`` (with ``--resume``) and ``xcalving fronts``."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from xcalving.cli._dask import compute_with_progress
from xcalving.errors import InputError
from xcalving.runtime import PRECISIONS

#: Attributes that must match for --resume to add to an existing prediction: each changes values.
_SAME_RUN = ("model_sha256", "tile", "overlap", "precision", "input_scaling", "resolution",
             "source")


def add_predict(sub: Any) -> None:
    """Register ``xcalving predict`` on the subparsers ``sub``."""
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
    pred.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    pred.add_argument("--resume", action="store_true",
                      help="finish an interrupted run: write only the blocks --out lacks")
    pred.set_defaults(run=_run_predict)


def _run_predict(args: argparse.Namespace) -> int:
    import xcalving

    out = Path(args.out)
    if out.exists() and not (args.overwrite or args.resume):
        raise InputError(f"--out: {out} already exists; choose a new path, pass --resume to "
                         "finish an interrupted run, or --overwrite to replace it.")
    cube = xcalving.open_cube(args.cube)
    pred = cube.calving.predict(
        args.model, variable=args.variable, tile=args.tile, overlap=args.overlap,
        batch_size=args.batch_size, device=args.device, precision=args.precision,
        band=args.band, scaling=args.scaling, resolution=_resolution_arg(args.resolution),
    )
    pred.attrs["source"] = str(args.cube)
    if out.exists() and args.resume:
        _resume(out, pred, args.scheduler)
        return 0
    job = pred.to_zarr(out, mode="w" if args.overwrite else "w-", consolidated=False,
                       zarr_format=3, compute=False, write_empty_chunks=True)
    compute_with_progress(job, args.scheduler, "predict")
    sizes = ", ".join(f"{k}: {v}" for k, v in pred.sizes.items())
    print(f"wrote {out} ({sizes}; crs {pred.rio.crs or 'none (pixel coordinates)'}; "
          f"model {pred.attrs['model']} sha256 {pred.attrs['model_sha256'][:12]}…)")
    return 0


def _resolution_arg(value: str | None) -> float | str | None:
    if value is None or value == "model":
        return value
    try:
        return float(value)
    except ValueError:
        message = f"--resolution must be 'model' or metres per pixel; got {value!r}."
        raise InputError(message) from None


def _resume(out: Path, pred: Any, scheduler: str | None) -> None:
    """Write only the blocks an interrupted run left out (predict is chunk-invariant)."""
    import dask

    import xcalving
    from xcalving.io import missing_blocks

    done = xcalving.open_cube(out)
    same = all(done.attrs.get(k) == pred.attrs.get(k) for k in _SAME_RUN)
    if not same or dict(done.sizes) != dict(pred.sizes):
        raise InputError(f"--resume: {out} holds another prediction (model, tile, overlap, "
                         "precision, scaling, resolution, input or shape differ); pass "
                         "--overwrite to replace it or choose a new --out.")
    regions = missing_blocks(out, pred)
    writable = pred.drop_vars([c for c in pred.coords if not pred[c].dims])
    jobs = [writable.isel(region).to_zarr(out, region="auto", consolidated=False,
                                          write_empty_chunks=True, compute=False)
            for region in regions]
    compute_with_progress(dask.delayed(jobs), scheduler, "predict --resume")
    n_blocks = math.prod(len(c) for c in pred.chunksizes.values())
    print(f"resumed {out}: wrote {len(regions)} of {n_blocks} blocks")


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

    for path in (p for p in (args.out, args.gpkg, args.map) if p):
        if Path(path).exists() and not args.overwrite:
            raise InputError(f"{path} already exists; choose a new path or pass --overwrite.")
    pred = xcalving.open_cube(args.pred)
    with progress(desc="fronts"):
        frame = pred.calving.fronts(method=args.method, min_length=args.min_length,
                                    min_length_px=args.min_length_px)
    found = int((~frame.geometry.is_empty).sum())
    print(f"{found} of {len(frame)} scenes have a front ({args.method} method)")
    for path in (p for p in (args.out, args.gpkg) if p):
        print(f"wrote {write_fronts(frame, path, overwrite=args.overwrite)}")
    if args.map:
        from xcalving.plot import front_map

        front_map(frame, _background(pred)).figure.savefig(args.map, dpi=120)
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
