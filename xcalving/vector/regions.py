"""Where fronts are looked for: a region of interest as a boolean raster on the cube's grid.

A zone map marks every glacier–ocean contact, but only one of them is the calving front: the
ice along a fjord's side walls, an ice cap's coast and the front of a neighbouring glacier meet
the ocean too. CaFFe scores fronts inside a bounding box per scene for that reason; the
terminus-box method of glaciologists draws one box per glacier. :func:`region_mask` turns any of
the usual ways of saying *where* into a mask that :func:`xcalving.fronts` applies:

* a boolean (or 0/1) DataArray on the grid, ``(y, x)`` or with the scene dim, compared by
  coordinates, never by array position; the variable ``front_region`` of the Dataset is used
  when no region is given (the CaFFe readers attach one);
* shapely geometries, a GeoSeries or GeoDataFrame (reprojected to the cube's CRS when they carry
  another one), rasterised with every touched pixel;
* a box ``(xmin, ymin, xmax, ymax)`` in the cube's coordinates.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from xcalving.errors import InputError, InputTypeError
from xcalving.grid import check_same_grid, transform

__all__ = ["REGION_VARIABLE", "region_mask"]

#: The Dataset variable :func:`xcalving.fronts` reads as the region when none is given.
REGION_VARIABLE = "front_region"


def region_mask(ds: xr.Dataset, region: Any, scene_dim: str | None) -> xr.DataArray | None:
    """The region as a boolean DataArray on ``ds``'s grid, or None for the whole scene.

    ``region=None`` takes ``ds[REGION_VARIABLE]`` where ``ds`` has it; ``region=False`` turns
    every region off; a string names a variable of ``ds``.
    """
    if region is False:
        return None
    if region is None or isinstance(region, str):
        name = REGION_VARIABLE if region is None else region
        if name not in ds:
            if region is None:
                return None
            raise InputError(f"region={region!r} names no variable of ds (it has "
                             f"{list(ds.data_vars)}); pass a mask, geometries or a box.")
        region = ds[name]
    if isinstance(region, xr.DataArray):
        return _checked_raster(ds, region, scene_dim)
    return _rasterised(ds, _geometries(ds, region))


def _checked_raster(ds: xr.Dataset, region: xr.DataArray, scene_dim: str | None) -> xr.DataArray:
    allowed = {"y", "x"} | ({scene_dim} if scene_dim else set())
    if not {"y", "x"} <= set(region.dims) or set(region.dims) - allowed:
        raise InputError(f"region must be a mask on dims (y, x) or ({scene_dim}, y, x); got "
                         f"dims {region.dims}.")
    check_same_grid(region, ds, names=("region", "ds"))
    values = region.data
    if values.dtype != bool:
        if not np.issubdtype(values.dtype, np.number):
            raise InputError(f"region must be boolean or 0/1; got dtype {values.dtype}.")
        region = region != 0
    return region.drop_vars([c for c in region.coords if c not in region.dims], errors="ignore")


def _geometries(ds: xr.Dataset, region: Any) -> list[Any]:
    """Shapely geometries in ``ds``'s CRS from geometries, a GeoSeries/GeoDataFrame or a box."""
    import shapely  # heavy: shapely, loaded on first use

    if hasattr(region, "geometry") and hasattr(region, "crs"):
        if region.crs is not None and ds.rio.crs is not None and region.crs != ds.rio.crs:
            region = region.to_crs(ds.rio.crs)
        return [g for g in np.asarray(region.geometry) if g is not None and not g.is_empty]
    if isinstance(region, shapely.Geometry):
        return [region]
    if isinstance(region, tuple | list) and len(region) == 4 and \
            all(isinstance(v, int | float | np.number) for v in region):
        xmin, ymin, xmax, ymax = (float(v) for v in region)
        if not (xmin < xmax and ymin < ymax):
            raise InputError(f"region box must be (xmin, ymin, xmax, ymax) with xmin < xmax and "
                             f"ymin < ymax in the cube's coordinates; got {tuple(region)}.")
        return [shapely.box(xmin, ymin, xmax, ymax)]
    raise InputTypeError(
        f"region must be None, False, a variable name, a boolean DataArray on the grid, "
        f"shapely geometries, a GeoSeries/GeoDataFrame or a box (xmin, ymin, xmax, ymax); got "
        f"{type(region).__name__}."
    )


def _rasterised(ds: xr.Dataset, geometries: list[Any]) -> xr.DataArray:
    """Pixels touched by the geometries, on ``ds``'s grid (coordinates give the transform)."""
    from rasterio.features import geometry_mask  # heavy: rasterio, loaded on first use

    if not geometries:
        raise InputError("region holds no geometry: pass at least one polygon, line or box.")
    shape = (ds.sizes["y"], ds.sizes["x"])
    inside = geometry_mask(geometries, out_shape=shape, transform=transform(ds, what="region"),
                           all_touched=True, invert=True)
    return xr.DataArray(inside, dims=("y", "x"), coords={"y": ds["y"], "x": ds["x"]})
