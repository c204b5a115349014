"""One Cloud-Optimized GeoTIFF: the numpy and rasterio core of :mod:`xcalving.io.export`.

How a variable's values are kept on disk (:class:`Storage`: packed integers as a store keeps
them, classes, or float32), the COG driver's profile, and the writing of one scene with its
scale and offset, band names, tags and colour table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from xcalving.zones import ZONE_COLOURS, ZONE_NAMES

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["Storage", "cog_profile", "is_zones", "storage_of", "write_geotiff", "zone_colours"]

_PACKED_INTS = ("uint8", "int8", "uint16", "int16")


class Storage(NamedTuple):
    """What a band holds on disk: dtype, nodata, CF scale and offset (None: not packed)."""

    dtype: str
    nodata: float | None
    scale: float | None = None
    offset: float | None = None


def storage_of(var: xr.DataArray) -> Storage:
    """The on-disk form of ``var``: packed integers as stored, classes, or float32."""
    enc = var.encoding
    stored = str(np.dtype(enc["dtype"])) if "dtype" in enc else str(var.dtype)
    packed = "scale_factor" in enc or "add_offset" in enc
    if packed and stored in _PACKED_INTS:
        fill = enc.get("_FillValue", np.iinfo(np.dtype(stored)).max)
        return Storage(stored, float(fill), float(enc.get("scale_factor", 1.0)),
                        float(enc.get("add_offset", 0.0)))
    if np.issubdtype(var.dtype, np.integer) or var.dtype == bool:
        dtype = "uint8" if var.dtype == bool else str(var.dtype)
        fill = enc.get("_FillValue", 0 if is_zones(var) else None)
        return Storage(dtype, None if fill is None else float(fill))
    return Storage("float32", float("nan"))


def is_zones(var: xr.DataArray) -> bool:
    """Whether ``var`` holds zone classes (``flag_meanings`` are :mod:`xcalving.zones`' names)."""
    return str(var.attrs.get("flag_meanings", "")).split() == list(ZONE_NAMES)


def on_disk(values: np.ndarray, storage: Storage) -> np.ndarray:
    """``values`` as ``storage`` keeps them: packed (NaN → nodata) or cast."""
    if storage.scale is None:
        return values.astype(storage.dtype, copy=False)
    info = np.iinfo(np.dtype(storage.dtype))
    raw = np.round((values.astype(np.float64) - (storage.offset or 0.0)) / storage.scale)
    raw = np.clip(np.nan_to_num(raw, nan=storage.nodata or 0.0), info.min, info.max)
    return raw.astype(storage.dtype)


def zone_colours() -> dict[int, tuple[int, int, int, int]]:
    """The colour table of zone codes 0..3: the map colours of :mod:`xcalving.zones`.

    No data (0) is transparent.
    """
    table = {}
    for code, hex_colour in enumerate(ZONE_COLOURS):
        red, green, blue = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
        table[code] = (red, green, blue, 0 if code == 0 else 255)
    return table


def cog_profile(storage: Storage, shape: tuple[int, int, int], crs: Any,
                transform: Any) -> dict[str, Any]:
    """Options of GDAL's COG driver for ``shape`` (bands, y, x): 256-px tiles, DEFLATE.

    Overviews are made where the image is larger than a tile: averaged for probabilities and
    other continuous values, nearest for classes (a class stays a class).
    """
    classes = storage.scale is None and storage.dtype != "float32"
    return {"driver": "COG", "count": shape[0], "height": shape[1], "width": shape[2],
            "dtype": storage.dtype, "crs": crs, "transform": transform,
            "nodata": storage.nodata, "compress": "DEFLATE", "blocksize": 256,
            "resampling": "NEAREST" if classes else "AVERAGE"}


def write_geotiff(values: np.ndarray, path: str, profile: dict[str, Any],
                  extras: dict[str, Any]) -> str:
    """Write one scene, ``values`` (bands, y, x) as decoded, as a COG at ``path``.

    ``extras``: ``storage`` (:class:`Storage`: how values are packed), ``bands`` (band
    descriptions), ``tags`` (text tags) and ``colours`` (the colour table of band 1, or None).
    """
    import rasterio  # heavy: rasterio, loaded on first use

    storage: Storage = extras["storage"]
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(on_disk(np.asarray(values), storage))
        if storage.scale is not None:
            dst.scales = (storage.scale,) * profile["count"]
            dst.offsets = (storage.offset or 0.0,) * profile["count"]
        for band, description in enumerate(extras["bands"], start=1):
            dst.set_band_description(band, description)
        dst.update_tags(**extras["tags"])
        if extras["colours"]:
            dst.write_colormap(1, extras["colours"])
    return path
