"""A local Sentinel-1 RTC-like STAC catalogue: COGs and items, as a public catalogue serves them.

Tests, the STAC example notebook and users without network access need STAC items that behave
like those of a public Sentinel-1 RTC collection (e.g. Microsoft Planetary Computer's
``sentinel-1-rtc``): one item per acquisition, one Cloud-Optimised GeoTIFF per polarisation,
linear gamma0 backscatter in float32 with NaN outside the swath, the projection extension
(``proj:epsg``, ``proj:transform``, ``proj:shape``) on the item and the SAR extension
(``sar:product_type`` = ``"RTC"``, ``sar:polarizations``). :func:`write_s1_rtc_items` writes such
a catalogue from the synthetic glacier of :func:`xcalving.data.synthetic.glacier_cube`, so
``stackstac.stack(items, assets=["hh", "hv"])`` and ``odc.stac.load(items, bands=["hh", "hv"])``
read dims, CRS and transform from STAC metadata exactly as they do in the wild.

Needs ``pystac`` (``pip install 'xcalving[stac]'``) and rasterio (installed with rioxarray).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from xcalving.data.synthetic import glacier_cube
from xcalving.errors import InputError, require

__all__ = ["write_s1_rtc_items", "CROSS_POL_OFFSET_DB"]

#: How much weaker the cross-polarised channel is than the co-polarised one, in dB, in the
#: synthetic catalogue (HV is typically 6-10 dB below HH over ice and open water).
CROSS_POL_OFFSET_DB = 8.0

_CO_POL = {"hh": "hv", "vv": "vh"}
_PROJECTION = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
_SAR = "https://stac-extensions.github.io/sar/v1.0.0/schema.json"
_RASTER = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"


def _import_pystac() -> Any:
    return require("pystac", extra="stac", what="xcalving.data.stac")


def write_s1_rtc_items(
    directory: str | os.PathLike[str],
    n_times: int = 4,
    *,
    shape: tuple[int, int] = (256, 256),
    resolution: float = 20.0,
    seed: int = 0,
    polarisations: tuple[str, ...] = ("hh", "hv"),
    epsg: int = 3031,
) -> tuple[Any, Any]:
    """Write a synthetic Sentinel-1 RTC time series as COGs plus STAC items.

    Parameters
    ----------
    directory
        New or empty folder; receives ``<item id>/<pol>.tif`` and ``items.json`` (a STAC
        ItemCollection, what ``catalog.search(...).item_collection()`` returns).
    n_times
        Acquisitions, 12 days apart.
    shape, resolution, seed
        Grid size, pixel spacing in metres and seed, as for
        :func:`~xcalving.data.synthetic.glacier_cube`.
    polarisations
        Asset names, from ``"hh"``, ``"hv"``, ``"vv"``, ``"vh"``. Cross-polarised assets are the
        co-polarised scene :data:`CROSS_POL_OFFSET_DB` dB weaker with their own speckle.
    epsg
        EPSG code of the grid (the synthetic glacier's coordinates are polar stereographic).

    Returns
    -------
    items : pystac.ItemCollection
        One item per date, sorted by time.
    fronts : geopandas.GeoDataFrame
        The true front lines (map coordinates), indexed by time.

    Examples
    --------
    >>> import tempfile
    >>> from xcalving.data.stac import write_s1_rtc_items
    >>> items, fronts = write_s1_rtc_items(tempfile.mkdtemp(), 2, shape=(64, 64))
    >>> [sorted(item.assets) for item in items]
    [['hh', 'hv'], ['hh', 'hv']]
    >>> items[0].properties["sar:product_type"], items[0].properties["proj:epsg"]
    ('RTC', 3031)
    """
    pystac = _import_pystac()
    import rasterio  # heavy: rasterio, loaded on first use
    from pyproj import Transformer  # heavy: pyproj, loaded on first use
    from shapely.geometry import box, mapping  # heavy: shapely, loaded on first use


    pols = [str(p).lower() for p in polarisations]
    unknown = sorted(set(pols) - {"hh", "hv", "vv", "vh"})
    if unknown or not pols:
        raise InputError("polarisations must be among 'hh', 'hv', 'vv', 'vh'; got "
                         f"{polarisations!r}.")
    directory = os.fspath(directory)
    if os.path.exists(directory) and os.listdir(directory):
        raise InputError(f"directory {directory!r} is not empty; give a new or empty folder.")
    os.makedirs(directory, exist_ok=True)

    cube, fronts = glacier_cube(n_times, shape=shape, resolution=resolution, seed=seed,
                                crs=f"EPSG:{epsg}")
    transform = cube.rio.transform()
    rows, cols = shape
    left, top = transform.c, transform.f
    right, bottom = left + cols * transform.a, top + rows * transform.e
    to_lonlat = Transformer.from_crs(epsg, 4326, always_xy=True)
    lon, lat = to_lonlat.transform([left, right, right, left], [top, top, bottom, bottom])
    footprint = mapping(box(min(lon), min(lat), max(lon), max(lat)))
    rng = np.random.default_rng(seed + 10_000)

    items = []
    for t, time in enumerate(cube.time.values):
        stamp = np.datetime_as_string(time, unit="s")
        item_id = f"S1A_EW_SYNTH_{stamp.replace('-', '').replace(':', '')}"
        os.makedirs(os.path.join(directory, item_id))
        db = cube.sar.values[t].astype(np.float64)
        item = pystac.Item(
            id=item_id, geometry=footprint, bbox=[min(lon), min(lat), max(lon), max(lat)],
            datetime=np.datetime64(time, "us").astype(object),
            properties={
                "platform": "sentinel-1a", "constellation": "sentinel-1",
                "sar:instrument_mode": "EW", "sar:product_type": "RTC",
                "sar:polarizations": [p.upper() for p in pols], "sar:frequency_band": "C",
                "proj:epsg": epsg,
                "proj:shape": [rows, cols], "proj:transform": list(transform)[:6],
                "xcalving:synthetic": True,
            },
            stac_extensions=[_PROJECTION, _SAR, _RASTER],
        )
        for pol in pols:
            if pol in _CO_POL:
                values = db
            else:  # cross-pol: weaker, with its own speckle (Gamma, 4 looks)
                speckle = 10 * np.log10(rng.gamma(4.0, 1 / 4.0, size=db.shape))
                values = db - CROSS_POL_OFFSET_DB + speckle
            gamma0 = np.power(10.0, values / 10.0).astype(np.float32)  # dB -> linear gamma0
            path = os.path.join(directory, item_id, f"{pol}.tif")
            with rasterio.open(path, "w", driver="COG", width=cols, height=rows, count=1,
                               dtype="float32", crs=f"EPSG:{epsg}", transform=transform,
                               nodata=float("nan"), compress="deflate", blocksize=256) as dst:
                dst.write(gamma0, 1)
            item.add_asset(pol, pystac.Asset(
                href=os.path.abspath(path), media_type=pystac.MediaType.COG, roles=["data"],
                title=f"{pol.upper()}: radiometrically terrain corrected gamma0, linear power",
                extra_fields={"raster:bands": [{"data_type": "float32", "nodata": "nan",
                                                "spatial_resolution": resolution}]},
            ))
        items.append(item)
    collection = pystac.ItemCollection(items)
    collection.save_object(os.path.join(directory, "items.json"))
    return collection, fronts
