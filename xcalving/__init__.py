"""xcalving: glacier calving fronts from SAR datacubes, lazily, with xarray, Dask and PyTorch.

The public API fits on one screen:

- :func:`open_cube` / :func:`write_cube` — Zarr cubes in and out, CRS kept;
  :func:`open_scenes` — per-date GeoTIFF/COG files as one lazy cube on one grid.
- :func:`predict` and ``da.calving.predict()`` — lazy, chunk-invariant front probability and
  zones; :func:`progress` shows a bar while computing.
- :func:`fronts` and ``ds.calving.fronts()`` — time-indexed front lines (GeoDataFrame);
  :mod:`xcalving.metrics`, :mod:`xcalving.change`, :mod:`xcalving.plot`.
- :mod:`xcalving.model` — the ASPP U-Net and its self-describing safetensors checkpoints.
- :mod:`xcalving.data.synthetic` — synthetic SAR glacier cubes with exact truth.

Importing xcalving stays light: matplotlib, geopandas and the CLI load only when used.
"""

from importlib.metadata import PackageNotFoundError, version

from xcalving import accessor as _accessor  # noqa: F401  (registers .calving)
from xcalving.errors import (
    DeviceError,
    InputError,
    InputTypeError,
    PerformanceWarning,
    UnsafeFileError,
    UnsafeTargetError,
    WeightsNotFoundError,
    XcalvingError,
    XcalvingWarning,
)
from xcalving.io import open_cube, write_cube

try:
    __version__ = version("xcalving")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "DeviceError",
    "InputError",
    "InputTypeError",
    "PerformanceWarning",
    "UnsafeFileError",
    "UnsafeTargetError",
    "WeightsNotFoundError",
    "XcalvingError",
    "XcalvingWarning",
    "__version__",
    "open_cube",
    "open_scenes",
    "finetune",
    "fronts",
    "predict",
    "progress",
    "write_cube",
]


def __getattr__(name: str):  # torch loads on first use, not with the package
    if name == "predict":
        from xcalving.inference import predict

        return predict
    if name == "fronts":
        from xcalving.vector import fronts

        return fronts
    if name == "finetune":  # training code loads on first use
        from xcalving.adapt import finetune

        return finetune
    if name == "open_scenes":  # rasterio and odc-geo load on first use
        from xcalving.scenes import open_scenes

        return open_scenes
    if name == "progress":
        from xcalving._progress import progress

        return progress
    raise AttributeError(f"module 'xcalving' has no attribute {name!r}")
