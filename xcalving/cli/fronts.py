"""``xcalving fronts``: a stored prediction → front lines in GIS files, and a map.

Every output path is checked before the prediction is opened, so a wrong extension or an
existing file fails in a second, not after computing every front; no output may be the input.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np

import xcalving
from xcalving.errors import InputError, InputNotFoundError
from xcalving.io.lineage import input_paths
from xcalving.io.scenes import is_scene_path
from xcalving.safety import is_zarr_store, refuse_inputs, staged
from xcalving.vector.files import check_fronts_path, write_fronts
from xcalving.zones import MIN_LENGTH_M

_FRONTS_EPILOG = """examples:
  xcalving fronts pred.zarr --out fronts.gpkg --map fronts.png
  xcalving fronts pred.zarr --out fronts.parquet --method probability --min-length 500"""


def add_fronts(sub: Any) -> None:
    """Register ``xcalving fronts`` on the subparsers ``sub``."""
    fr = sub.add_parser(
        "fronts", help="vector fronts, files and a map from a prediction cube",
        description="Trace the calving front of every scene of a prediction (from 'xcalving "
                    "predict') as a line in map coordinates, and write the lines to front "
                    "files and a map. Every output path is checked before anything is "
                    "computed.",
        epilog=_FRONTS_EPILOG)
    fr.add_argument("pred", help="prediction Zarr store (from 'xcalving predict')")
    fr.add_argument("--out", default=None,
                    help="front file to write; its extension picks the format: .parquet "
                         "(GeoParquet), .gpkg (GeoPackage), .geojson or .json (GeoJSON), .fgb "
                         "(FlatGeobuf) (default: none)")
    fr.add_argument("--gpkg", default=None,
                    help="a GeoPackage of the fronts (a .gpkg path), besides --out, for QGIS "
                         "(default: none)")
    fr.add_argument("--map", default=None,
                    help="image of the fronts through time; its extension picks the format, "
                         "e.g. .png, .pdf, .svg (default: none)")
    fr.add_argument("--method", default=None, choices=["zones", "probability", "gated"],
                    help="zones: where glacier meets ocean in the predicted zones; "
                         "probability: the ridge of the front probability; gated: the front "
                         "probability kept where the zones meet (default: the method the "
                         "weights' folds chose, recorded in the prediction)")
    fr.add_argument("--min-length", type=float, default=MIN_LENGTH_M,
                    help="drop front pieces up to this length in metres (CaFFe: 750)")
    fr.add_argument("--min-length-px", type=float, default=None,
                    help="the same rule in pixels, for cubes without pixel spacing "
                         "(default: --min-length)")
    fr.add_argument("--overwrite", action="store_true",
                    help="replace existing output files (front files and maps only)")
    fr.set_defaults(run=_run_fronts)


def _run_fronts(args: argparse.Namespace) -> int:
    from xcalving._progress import progress  # heavy: xcalving._progress loads tqdm, dask

    targets = {opt: p for opt, p in (("--out", args.out), ("--gpkg", args.gpkg),
                                     ("--map", args.map)) if p}
    for option, path in targets.items():  # all before reading a block (the inputs: after open)
        refuse_inputs(path, [args.pred], what=option, flag="--overwrite")
        if option == "--map":
            _check_map(path, args.overwrite)
        else:
            _check_front_file(option, path, args.overwrite)
    files = {opt: p for opt, p in targets.items() if opt != "--map"}
    pred = xcalving.open_cube(args.pred)
    _refuse_fronts_targets(targets, pred, args.pred)
    with progress(desc="fronts"):
        frame = pred.calving.fronts(method=args.method, min_length=args.min_length,
                                    min_length_px=args.min_length_px)
    found = int((~frame.geometry.is_empty).sum())
    print(f"{found} of {len(frame)} scenes have a front ({frame.attrs['method']} method)")
    for path in files.values():
        print(f"wrote {write_fronts(frame, path, overwrite=args.overwrite)}")
    if args.map:
        _write_map(frame, pred, args.map, overwrite=args.overwrite)
        print(f"wrote {args.map}")
    return 0


#: Why no Shapefile: the columns fronts() writes would not survive it.
_NO_SHAPEFILE = ("Shapefile truncates field names to 10 characters (mean_probability, "
                 "head_distance_px and neighbour_distance_px would be cut and could clash) and "
                 "cannot store datetimes (the time of each front)")


def _check_front_file(option: str, path: str, overwrite: bool) -> str:
    """:func:`xcalving.vector.files.check_fronts_path`, its message naming the option.

    ``--gpkg`` takes a ``.gpkg`` path only; a ``.shp`` path is refused with the reason.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".shp":
        raise InputError(f"{option}: {path!r} is a Shapefile, which xcalving does not write: "
                         f"{_NO_SHAPEFILE}. Write a GeoPackage instead, which QGIS and ArcGIS "
                         f"open as easily: {Path(path).with_suffix('.gpkg')}.")
    if option == "--gpkg" and suffix != ".gpkg":
        raise InputError(f"--gpkg: {path!r} is not a .gpkg path; --gpkg writes a GeoPackage. "
                         f"Name it {Path(path).with_suffix('.gpkg')}, or give {path!r} as --out, "
                         "which takes every front format.")
    try:
        return check_fronts_path(path, overwrite=overwrite)
    except (InputError, FileNotFoundError, FileExistsError) as err:
        text = str(err).removeprefix("path: ").replace("overwrite=True", "--overwrite")
        raise type(err)(f"{option}: {text}") from None


def _check_map(path: str, overwrite: bool) -> None:
    """Refuse a --map that exists (without --overwrite) or names no image format, before work."""
    from matplotlib.backend_bases import FigureCanvasBase  # heavy: matplotlib, loaded on first use

    kinds = FigureCanvasBase.get_supported_filetypes()
    kind = Path(path).suffix.lstrip(".").lower()
    if kind not in kinds:
        raise InputError(f"--map: {path!r} has {f'extension .{kind}' if kind else 'no extension'}"
                         f", which names no image format; use one of "
                         f"{', '.join('.' + k for k in sorted(kinds))}, e.g. fronts.png.")
    if os.path.lexists(path) and not overwrite:
        raise InputError(f"--map: {path} already exists; choose a new path or pass --overwrite.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputNotFoundError(f"--map: the folder {folder!r} does not exist; create it first "
                                "or choose another path.")


def _recorded_inputs(attrs: Any) -> list[str]:
    """The input paths a prediction records: ``input_path``, else (older stores) ``source``."""
    recorded = attrs.get("input_path")
    if recorded is None:
        source = attrs.get("source")  # written before input_path: the input's path, not CF's
        recorded = source if isinstance(source, str) and not source.startswith("xcalving ") \
            else None
    if recorded is None:
        return []
    return [str(recorded)] if isinstance(recorded, str) else [str(p) for p in recorded]


def _refuse_fronts_targets(targets: dict[str, str], pred: Any, store: str) -> None:
    """Each output is a file that is not, does not hold and does not lie inside an input."""
    inputs = [store, *input_paths(pred), *_recorded_inputs(pred.attrs)]
    for option, path in targets.items():
        refuse_inputs(path, inputs, what=option, flag="--overwrite")
        if Path(path).is_dir():
            raise InputError(f"{option}: {path} is a folder; name a file to write.")


def _write_map(frame: Any, pred: Any, path: str, *, overwrite: bool) -> None:
    """Draw the map into a sibling file and move it to ``path`` once it is complete."""
    from xcalving.plot import front_map  # heavy: xcalving.plot loads matplotlib, PIL

    figure = front_map(frame, _background(pred)).figure
    kind = Path(path).suffix.lstrip(".").lower() or "png"
    with staged(path, mode="w" if overwrite else "w-", what="--map", flag="--overwrite",
                check=_is_file) as scratch:
        figure.savefig(scratch, dpi=120, format=kind)


def _is_file(path: Path) -> None:
    if not path.is_file():
        raise InputError(f"--map: {path} is not a file; name a file to write.")


def _background(pred: Any) -> Any:
    """The scene to draw under the fronts: the input backscatter if it can be read, else zones."""
    last = _input_scene(pred)
    if last is not None:
        return last
    zones = pred["zones"]
    return zones.isel(time=-1) if "time" in zones.dims else zones


def _input_scene(pred: Any) -> Any:
    """The last input scene on the prediction's grid, or None (moved, regridded, not recorded)."""
    paths = _recorded_inputs(pred.attrs)
    try:
        if paths and all(is_scene_path(p) for p in paths):
            sar = xcalving.open_scenes(paths, duplicates="first")
        elif len(paths) == 1 and is_zarr_store(paths[0]):
            sar = xcalving.open_cube(paths[0]).get("sar")
        else:
            return None
    except (OSError, InputError):  # the scenes moved or changed since: draw the zones
        return None
    if sar is None or sar.dims[0] != "time" or sar.ndim != 3 or not all(
            d in sar.dims and np.array_equal(sar[d].values, pred[d].values) for d in ("y", "x")):
        return None
    return sar.isel(time=-1)
