"""``xcalving export``: a prediction store as Cloud-Optimized GeoTIFFs for QGIS and GDAL."""

from __future__ import annotations

import argparse
import os
from typing import Any

from xcalving.io.export import CLI_NAMES, write_export

__all__ = ["add_export"]

_EXPORT_EPILOG = """examples:
  xcalving export pred.zarr --out pred-tifs
  xcalving export pred.zarr --out pred-tifs --variables front_probability"""


def add_export(sub: Any) -> None:
    """Register ``xcalving export`` on the subparsers ``sub``."""
    ex = sub.add_parser(
        "export", help="write a prediction as Cloud-Optimized GeoTIFFs (one a date and variable)",
        description="Write every scene of every raster variable of a prediction store (from "
                    "'xcalving predict') as a Cloud-Optimized GeoTIFF: OUT/VARIABLE/DATE.tif, "
                    "DATE as YYYY-MM-DD (YYYY-MM-DDTHHMMSS when two scenes share a day). Each "
                    "file has the CRS, nodata, the packed probabilities' scale and offset (GIS "
                    "programs show probabilities) and, for zones, a colour table. The folder is "
                    "written beside --out and moved there when complete.",
        epilog=_EXPORT_EPILOG)
    ex.add_argument("store", help="prediction Zarr store (from 'xcalving predict')")
    ex.add_argument("--out", required=True,
                    help="folder to create for the GeoTIFFs: a new path, never inside the "
                         "store (required)")
    ex.add_argument("--variables", nargs="+", default=None, metavar="NAME",
                    help="variables to export (default: every variable on the y/x grid: "
                         "front_probability, zones, and zone_probability where stored)")
    ex.add_argument("--overwrite", action="store_true",
                    help="replace an existing --out that an earlier export wrote")
    ex.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from xcalving._progress import progress  # heavy: xcalving._progress loads tqdm, dask

    with progress(desc="export"):
        files = write_export(args.store, args.out, variables=args.variables,
                             mode="w" if args.overwrite else "w-", names=CLI_NAMES)
    folders = sorted({os.path.basename(os.path.dirname(f)) for f in files})
    print(f"wrote {len(files)} GeoTIFFs to {args.out} ({', '.join(folders)})")
    return 0
