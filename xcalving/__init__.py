"""xcalving: glacier calving fronts from SAR datacubes, lazily, with xarray, Dask and PyTorch.

The public API fits on one screen:

- :func:`open_cube` / :func:`write_cube` — Zarr cubes in and out, CRS kept;
  :func:`open_scenes` — per-date GeoTIFF/COG files as one lazy cube on one grid;
  :func:`export_geotiffs` — a prediction as Cloud-Optimized GeoTIFFs for QGIS and GDAL.
- :func:`predict` and ``da.calving.predict()`` — lazy, chunk-invariant front probability and
  zones; :func:`progress` shows a bar while computing.
- :func:`fronts` and ``ds.calving.fronts()`` — time-indexed front lines (GeoDataFrame);
  :mod:`xcalving.metrics`, :mod:`xcalving.vector.change`, :mod:`xcalving.plot`.
- :mod:`xcalving.model` — the ASPP U-Net and its self-describing safetensors checkpoints.
- :mod:`xcalving.data.synthetic` — synthetic SAR glacier cubes with exact truth.

Importing xcalving stays light: matplotlib, geopandas and the CLI load only when used.
"""

import importlib

from xcalving import accessor as _accessor  # noqa: F401  (registers .calving)
from xcalving.errors import (
    DamagedFileError,
    DeviceError,
    InputError,
    InputNotFoundError,
    InputTypeError,
    MissingDependencyError,
    PerformanceWarning,
    TargetBusyError,
    TargetExistsError,
    UnknownScalingError,
    UnsafeFileError,
    UnsafeTargetError,
    WeightsNotFoundError,
    WorkBudgetError,
    WorkerLostError,
    WriteVerificationError,
    XcalvingError,
    XcalvingWarning,
)
from xcalving.io.cube import open_cube
from xcalving.io.write import write_cube
from xcalving.runtime import VERSION

__version__ = VERSION

__all__ = [
    "DamagedFileError",
    "DeviceError",
    "InputError",
    "InputNotFoundError",
    "InputTypeError",
    "MissingDependencyError",
    "PerformanceWarning",
    "TargetBusyError",
    "TargetExistsError",
    "UnknownScalingError",
    "UnsafeFileError",
    "UnsafeTargetError",
    "WeightsNotFoundError",
    "WorkBudgetError",
    "WorkerLostError",
    "WriteVerificationError",
    "XcalvingError",
    "XcalvingWarning",
    "__version__",
    "export_geotiffs",
    "open_cube",
    "open_scenes",
    "finetune",
    "fronts",
    "predict",
    "progress",
    "write_cube",
]


#: Names that load their module on first use (torch, training code, rasterio and odc-geo, tqdm).
_LAZY = {"predict": "xcalving.inference", "fronts": "xcalving.vector",
         "finetune": "xcalving.adapt", "open_scenes": "xcalving.io",
         "progress": "xcalving._progress", "export_geotiffs": "xcalving.io"}


def __getattr__(name: str):  # torch loads on first use, not with the package
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'xcalving' has no attribute {name!r}")


def __dir__() -> list[str]:  # completion lists the lazy names too
    return sorted({*__all__, *globals()})
