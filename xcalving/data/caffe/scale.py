"""The physical scale of CaFFe scenes: pixel spacings, and un-squashing to square pixels.

Two facts give every CaFFe scene a size in metres (``shared/CAFFE.md`` of the project):

* **Full resolution.** All sensors of one glacier share a 20 m grid; the other sensors' scenes
  are exact resamplings of it, so the RESOLUTION of a file name is a rounded label:
  "7" is 6.67 m (×3), "17" is 16.67 m (×1.2), "12" is 12.5 m (×1.6); 20 m is 20 m. JAC has
  TerraSAR-X scenes only, labelled "6" (±5 %). :func:`name_spacing` applies the rules.
* **The 256 × 256 copy** (``caffe256``) squashed each glacier's ground rectangle to 256 × 256
  pixels, so each glacier has one x and one y spacing whatever the sensor
  (:data:`COPY_SPACING`). Sources: the raw image sizes of all 681 scenes (github
  saverin0/sar-transfer-glaciers, notebooks/01_inventory.ipynb), the padding of the official
  patching script (github amymorgan01/Calving_Fronts_Trial_AM), the areas in the figure of
  github ho11laqe/nnUNet_calvingfront_detection and Columbia's bounding box in torchgeo's CaFFe
  metadata. Metres are those of each scene's map projection.

:func:`unsquash` resamples one scene to square pixels at a chosen spacing: the SAR image by
bilinear interpolation that never blends in no-data pixels, zones by nearest neighbour and the
one-pixel front by re-drawing its traced lines, so that it stays one pixel wide and connected.
The result carries coordinates in metres in a local engineering CRS of the glacier (CaFFe
scenes have no geolocation: the grid is metric but its origin is the scene's corner).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr
from scipy import ndimage

from xcalving.errors import InputError
from xcalving.vector.tracing import trace_lines

__all__ = ["COPY_SPACING", "COPY_SIZE", "TRAINING_SPACING", "engineering_crs", "name_spacing",
           "unsquash", "unsquashed_shape"]

#: The side of the caffe256 copy's scenes, in pixels.
COPY_SIZE = 256
#: Metres per pixel (x, y) of the caffe256 copy, per glacier code as written in scene names.
COPY_SPACING: Mapping[str, tuple[float, float]] = {
    "Crane": (72.0, 92.7), "DBE": (80.2, 73.4), "JAC": (61.9, 73.7), "Jorum": (78.0, 50.9),
    "SI": (89.5, 73.7), "Mapple": (29.8, 31.6), "COL": (116.6, 54.8),
}
#: The square pixel spacing (metres) at which the real weights are trained and CaFFe is scored.
TRAINING_SPACING = 75.0
#: Rounded RESOLUTION labels of scene names → the true spacing (exact resamplings of 20 m).
_LABEL_SPACING = {7.0: 20 / 3, 17.0: 50 / 3, 12.0: 12.5}


def name_spacing(resolution: float) -> float:
    """The true pixel spacing (metres) of a full-resolution scene from its RESOLUTION label.

    Examples
    --------
    >>> round(name_spacing(7), 2), round(name_spacing(17), 2), name_spacing(12), name_spacing(20)
    (6.67, 16.67, 12.5, 20.0)
    """
    return float(_LABEL_SPACING.get(float(resolution), float(resolution)))


def copy_spacing(glacier: str) -> tuple[float, float]:
    """(x, y) metres per pixel of a glacier's scenes in the caffe256 copy."""
    if glacier not in COPY_SPACING:
        raise InputError(
            f"glacier {glacier!r} has no known spacing in the caffe256 copy (known: "
            f"{sorted(COPY_SPACING)}); open the tree with pixel_spacing='name' (full resolution) "
            "or None (unknown)."
        )
    return COPY_SPACING[glacier]


def unsquashed_shape(shape: tuple[int, int], spacing_xy: tuple[float, float],
                     spacing: float) -> tuple[int, int]:
    """(rows, cols) of a scene of ``shape`` pixels at ``spacing_xy`` resampled to ``spacing``."""
    return (max(1, round(shape[0] * spacing_xy[1] / spacing)),
            max(1, round(shape[1] * spacing_xy[0] / spacing)))


def engineering_crs(glacier: str) -> Any:
    """A local metric CRS for one glacier's scenes: metres east and north, no geolocation."""
    import pyproj  # heavy: pyproj, loaded on first use

    return pyproj.CRS.from_wkt(
        f'ENGCRS["CaFFe {glacier} scene grid",EDATUM["CaFFe {glacier} scene corner"],'
        'CS[Cartesian,2],AXIS["easting (E)",east,ORDER[1],LENGTHUNIT["metre",1]],'
        'AXIS["northing (N)",north,ORDER[2],LENGTHUNIT["metre",1]]]'
    )


def _source_coords(shape: tuple[int, int], out: tuple[int, int],
                   spacing_xy: tuple[float, float], spacing: float) -> np.ndarray:
    """Source (row, col) of each output pixel centre, pixel-centre aligned."""
    rows = (np.arange(out[0]) + 0.5) * spacing / spacing_xy[1] - 0.5
    cols = (np.arange(out[1]) + 0.5) * spacing / spacing_xy[0] - 0.5
    rr, cc = np.meshgrid(np.clip(rows, 0, shape[0] - 1), np.clip(cols, 0, shape[1] - 1),
                         indexing="ij")
    return np.stack([rr, cc])


def _resample_sar(sar: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Bilinear over valid pixels only (0 is no data and is never blended in)."""
    valid = (sar > 0).astype(np.float32)
    total = ndimage.map_coordinates(sar.astype(np.float32) * valid, where, order=1)
    weight = ndimage.map_coordinates(valid, where, order=1)
    nearest = ndimage.map_coordinates(sar, where, order=0)
    out = np.where(weight > 1e-6, total / np.maximum(weight, 1e-6), 0)
    out = np.where(nearest > 0, np.clip(np.rint(out), 1, 255), 0)
    return out.astype(np.uint8)


def _redraw_front(front: np.ndarray, out: tuple[int, int], spacing_xy: tuple[float, float],
                  spacing: float) -> np.ndarray:
    """The front's traced lines scaled to the new grid and drawn one pixel wide."""
    from skimage.draw import line  # heavy: skimage, loaded on first use


    drawn = np.zeros(out, bool)
    sy, sx = spacing_xy[1] / spacing, spacing_xy[0] / spacing
    for path in trace_lines(front.astype(bool)):
        rows = np.clip(np.floor((path[:, 0] + 0.5) * sy).astype(int), 0, out[0] - 1)
        cols = np.clip(np.floor((path[:, 1] + 0.5) * sx).astype(int), 0, out[1] - 1)
        drawn[rows[0], cols[0]] = True
        for k in range(1, len(rows)):
            rr, cc = line(rows[k - 1], cols[k - 1], rows[k], cols[k])
            drawn[rr, cc] = True
    return drawn.astype(np.uint8)


def unsquash(scene: xr.Dataset, spacing_xy: tuple[float, float], spacing: float) -> xr.Dataset:
    """One scene (y, x) in pixels → square pixels of ``spacing`` metres, coordinates in metres.

    Variables ``sar`` (bilinear over valid pixels), ``zones`` and ``front_region`` (nearest) and
    ``front`` (re-drawn lines) are resampled where present; attributes are kept and
    ``pixel_spacing`` is set. ``x`` runs east from 0 at the scene's left edge, ``y`` north from
    0 at its bottom edge (descending rows), in :func:`engineering_crs` of ``attrs["glacier"]``.
    """
    # heavy: rioxarray, loaded on first use
    import rioxarray  # noqa: F401  (registers .rio)

    if not (isinstance(spacing, int | float) and math.isfinite(spacing) and spacing > 0):
        raise InputError(f"spacing must be a pixel spacing in metres > 0, e.g. "
                         f"{TRAINING_SPACING:g}; got {spacing!r}.")
    shape = (scene.sizes["y"], scene.sizes["x"])
    out = unsquashed_shape(shape, spacing_xy, spacing)
    where = _source_coords(shape, out, spacing_xy, spacing)
    data = {}
    for name, var in scene.data_vars.items():
        values = var.to_numpy()
        if name == "sar":
            new = _resample_sar(values, where)
        elif name == "front":
            new = _redraw_front(values, out, spacing_xy, spacing)
        else:
            new = ndimage.map_coordinates(values, where, order=0).astype(values.dtype)
        data[name] = (("y", "x"), new, dict(var.attrs))
    coords = {"y": (out[0] - 0.5 - np.arange(out[0])) * spacing,
              "x": (np.arange(out[1]) + 0.5) * spacing}
    ds = xr.Dataset(data, coords=coords, attrs={**scene.attrs, "pixel_spacing": float(spacing)})
    return ds.rio.write_crs(engineering_crs(str(scene.attrs.get("glacier", "scene"))))
