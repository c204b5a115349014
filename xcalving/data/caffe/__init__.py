"""The CaFFe benchmark on disk: scene names, labels, a catalog, scenes and a Zarr patch store.

CaFFe (Gourmelon et al. 2022, ESSD 14, 4287–4313; data doi:10.1594/PANGAEA.940950, CC BY 4.0)
ships as ``data_raw/{sar_images,zones,fronts}/{train,test}/`` PNG files plus
``data_raw/bounding_boxes/``. Scene names follow ``GLACIER_DATE_SATELLITE_RESOLUTION_QUALITY_ORBIT``
and labels carry ``_zones`` / ``_front`` before ``.png``. The scenes are not georeferenced:
coordinates are pixels, and metres come from RESOLUTION — unless the images were resized, as in the
``caffe256`` copy, where the pixel spacing is unknown.

The path from files to training::

    catalog = open_caffe("data_raw")            # one row per scene, labels checked to exist
    scene = load_scene(catalog.iloc[0])         # xarray Dataset: sar, zones, front
    store = caffe_to_zarr(catalog, "patches.zarr", window=256)   # (sample, y, x) patches
    # then xcalving.data.stream.PatchStream(store) feeds PyTorch, one chunk at a time

One module per job: ``names`` (scene names), ``png`` (reading PNG files and labels),
``catalog`` (the tree, the catalog, one scene, a time series, the shipped scenes), ``patches``
(the Zarr patch store) and ``download`` (fetching and unzipping CaFFe). Everything public is
named here; the label greys live in :mod:`xcalving.zones`, the window grid in
:mod:`xcalving.windows` and the fixture trees in :mod:`xcalving.testing`.
"""

from __future__ import annotations

from xcalving.data.caffe.catalog import (
    CATALOG_COLUMNS,
    load_scene,
    open_caffe,
    shipped_scenes,
    time_series,
)
from xcalving.data.caffe.download import CAFFE_SHA256, CAFFE_URL, download_caffe
from xcalving.data.caffe.names import NAME_PATTERN, SceneName, parse_name
from xcalving.data.caffe.patches import caffe_to_zarr
from xcalving.data.caffe.png import read_label

__all__ = [
    "CAFFE_SHA256",
    "CAFFE_URL",
    "CATALOG_COLUMNS",
    "NAME_PATTERN",
    "SceneName",
    "caffe_to_zarr",
    "download_caffe",
    "load_scene",
    "open_caffe",
    "parse_name",
    "read_label",
    "shipped_scenes",
    "time_series",
]
