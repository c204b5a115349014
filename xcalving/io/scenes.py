"""Per-date GeoTIFF/COG scenes as one lazy ``(time, y, x)`` cube on one grid.

:func:`open_scenes` reads the headers of the files (CRS, footprint, bands, units, date) and
nothing else: each scene is reprojected onto the common grid by odc-geo's dask reprojection,
block by block, so pixel data are read when (and where) the cube is computed. rioxarray's own
``rio.reproject`` would load the whole scene through ``.values`` the moment it is called.

The common grid: the CRS of the first file (``crs=``), the finest pixel spacing among the
scenes (``resolution=``), the union of their footprints (``bounds=``), snapped outwards onto
the pixel grid of the finest scene that is in the target CRS (so its pixels, and those of any
scene on the same grid, are copied unchanged), else onto multiples of the spacing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from xcalving.budget import DEFAULT_MAX_PIXELS, check_budget, check_max_pixels
from xcalving.errors import DamagedFileError, InputError, did_you_mean
from xcalving.io.scene_files import (
    Scene,
    common_labels,
    cube_attrs,
    date_groups,
    expand_paths,
    read_header,
    scene_dates,
)

if TYPE_CHECKING:
    import pyproj
    from affine import Affine

__all__ = ["DUPLICATES", "SCENE_SUFFIXES", "is_scene_path", "open_scenes"]

#: What to do with scenes of the same date: refuse, keep the first file, or average them
#: (NaN-aware: two frames of one pass become one mosaic).
DUPLICATES = ("error", "first", "mean")
#: File suffixes :func:`is_scene_path` takes for GeoTIFF/COG scenes.
SCENE_SUFFIXES = (".tif", ".tiff")
#: Chunks of the cube when ``chunks=None``: one scene a chunk along time.
DEFAULT_CHUNKS = {"y": 1024, "x": 1024}
_RESAMPLING = ("nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode",
               "max", "min", "med", "q1", "q3", "gauss")


def is_scene_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (a file or a glob pattern) names GeoTIFF/COG scenes, not a Zarr store.

    Examples
    --------
    >>> [is_scene_path(p) for p in ("s1/*.tif", "a.TIFF", "cube.zarr")]
    [True, True, False]
    """
    return os.fspath(path).lower().endswith(SCENE_SUFFIXES)


def open_scenes(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    times: Sequence[Any] | None = None,
    crs: Any = None,
    resolution: float | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    chunks: Mapping[str, int] | None = None,
    duplicates: str = "error",
    resampling: str = "nearest",
    max_pixels: float | None = DEFAULT_MAX_PIXELS,
) -> xr.DataArray:
    """Open per-date GeoTIFF/COG scenes as one lazy ``(time, y, x)`` float32 cube.

    Only the headers are read here; every scene is reprojected onto the common grid block by
    block when the cube is computed, NaN outside its footprint and where it has no data.

    Parameters
    ----------
    paths
        A file, a glob pattern (``"s1/*.tif"``) or a list of them; patterns expand in name
        order.
    times
        One date per file, in the order of ``paths`` (explicit paths only, no patterns). Else
        the date comes from the file name (``YYYY-MM-DD``, ``YYYY_MM_DD`` or ``YYYYMMDD``,
        optionally followed by ``THHMMSS`` as in Sentinel-1 names; the first one counts), else
        from the ``TIFFTAG_DATETIME`` tag, which is often the processing time: prefer names.
    crs
        Target CRS (anything pyproj reads); default: the first file's. Must be projected, in
        metres.
    resolution
        Pixel spacing in metres; default: the finest spacing among the scenes.
    bounds
        ``(left, bottom, right, top)`` in the target CRS, snapped outwards onto the grid;
        default: the union of the footprints. Every scene must overlap it.
    chunks
        Dask chunks ``{"y": ..., "x": ...}``; default :data:`DEFAULT_CHUNKS`. Always one scene
        a chunk along time.
    duplicates
        Scenes of the same date: ``"error"`` (default) refuses them, ``"first"`` keeps the
        first file given, ``"mean"`` averages them where they have data (a mosaic).
    resampling
        GDAL resampling method (``"nearest"``, default, copies values; ``"bilinear"``, ...).
        The values are resampled as stored: in dB when the files hold dB.
    max_pixels
        The work budget (:mod:`xcalving.budget`): the pixels of the cube (dates x grid) may not
        exceed it, checked from the headers before anything is built, so a small file that
        declares an enormous raster (or a ``resolution=`` far finer than the files) is refused
        (:class:`~xcalving.errors.WorkBudgetError`). ``None``: no budget.

    Returns
    -------
    xarray.DataArray
        ``sar`` (time, y, x), or (time, band, y, x) for multi-band files, with bands labelled
        by their descriptions (polarisations upper-cased: ``"VV"``); float32, dask-backed; the
        CRS in ``spatial_ref``; a ``source`` coordinate along time (file names, joined by
        ``+`` when averaged); ``attrs["units"]`` from the files' ``units`` tags or band
        descriptions (``dB``/``linear``), ``attrs["source_files"]``, and ``attrs["band"]``
        when single-band files name one polarisation. 8-bit grey values come out as float32
        too: predict them with ``scaling="uint8"`` (and declare 0 as the files' nodata).

    Raises
    ------
    FileNotFoundError
        A file that does not exist or a pattern that matches nothing.
    InputError
        No CRS, no date or a missing one in ``times``, duplicate dates, mixed units or bands,
        scenes that do not overlap ``bounds`` or each other, a geographic target CRS, an
        ambiguous pattern; a cube above ``max_pixels``
        (:class:`~xcalving.errors.WorkBudgetError`).
    DamagedFileError
        A file that is not a raster, or is truncated (its header places pixels past its
        end); when computing, a block that cannot be read (the error names file and rows).

    Examples
    --------
    >>> import tempfile, numpy as np, xcalving
    >>> from xcalving.data.synthetic import glacier_cube
    >>> cube, _ = glacier_cube(2, shape=(64, 64), seed=0)
    >>> folder = tempfile.mkdtemp()
    >>> for scene in cube.sar:
    ...     day = str(scene.time.values)[:10]
    ...     scene.rio.to_raster(f"{folder}/S1_{day}.tif")
    >>> da = xcalving.open_scenes(f"{folder}/S1_*.tif")
    >>> da.dims, da.shape, da.attrs["units"], da.rio.crs.to_epsg()
    (('time', 'y', 'x'), (2, 64, 64), 'dB', 3031)
    >>> da.source.values.tolist()
    ['S1_2019-01-01.tif', 'S1_2019-01-13.tif']
    >>> np.array_equal(da[1].values, cube.sar[1].values, equal_nan=True)  # the same grid
    True
    """
    _check_options(duplicates, resampling, resolution, bounds)
    max_pixels = check_max_pixels(max_pixels)
    size = _chunk_size(chunks)
    files = expand_paths(paths, patterns_allowed=times is None)
    scenes = [read_header(path) for path in files]
    dates = scene_dates(scenes, times)
    target = _target_crs(scenes[0].crs if crs is None else crs)
    grid = _grid(scenes, target, resolution, bounds)
    labels, attrs = common_labels(scenes), cube_attrs(scenes)
    groups = date_groups(scenes, dates, duplicates)
    _check_size(grid, len(groups), max_pixels)
    layers = [[_lazy_scene(scenes[i], labels, target, grid, size, resampling)
               for i in group] for group in groups]
    attrs["source_files"] = [scenes[i].path for group in groups for i in group]
    coords = {"time": ("time", np.array([dates[g[0]] for g in groups], "datetime64[ns]")),
              "source": ("time", np.array(["+".join(scenes[i].name for i in g) for g in groups],
                                          dtype=object))}  # zarr v3 specifies variable strings
    return _cube([layer[0] if len(layer) == 1 else _nan_mean(layer) for layer in layers],
                 coords, labels, attrs, target, grid)


# --- the grid ------------------------------------------------------------------------------------
def _target_crs(crs: Any) -> pyproj.CRS:
    import pyproj  # heavy: pyproj, loaded on first use

    try:
        target = pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as exc:
        raise InputError(f"crs={crs!r} is not a CRS pyproj knows, e.g. 'EPSG:32624'.") from exc
    if not (target.is_projected and target.axis_info[0].unit_name == "metre"):
        raise InputError(
            f"the target CRS {target.to_string()!r} is not projected in metres, so pixel "
            "spacings and front lengths would be in degrees. Pass crs= a projected CRS, e.g. "
            "the UTM zone of the glacier ('EPSG:326NN' north, 'EPSG:327NN' south) or "
            "'EPSG:3413' (Arctic) / 'EPSG:3031' (Antarctic).")
    return target


def _footprint(scene: Scene, target: pyproj.CRS) -> tuple[float, float, float, float]:
    import pyproj  # heavy: pyproj, loaded on first use

    if scene.crs == target:
        return scene.bounds
    move = pyproj.Transformer.from_crs(scene.crs, target, always_xy=True)
    return tuple(move.transform_bounds(*scene.bounds, densify_pts=21))  # type: ignore[return-value]


def _spacing(scene: Scene, target: pyproj.CRS) -> float:
    """The scene's pixel spacing in metres (in the target CRS where it is not in metres)."""
    if scene.crs.is_projected and scene.crs.axis_info[0].unit_name == "metre":
        return min(abs(scene.transform.a), abs(scene.transform.e))
    from rasterio.warp import calculate_default_transform  # heavy: rasterio, loaded on first use

    moved, _, _ = calculate_default_transform(scene.crs.to_wkt(), target.to_wkt(),
                                              scene.shape[1], scene.shape[0], *scene.bounds)
    return float(abs(moved.a))


def _grid(scenes: list[Scene], target: pyproj.CRS, resolution: float | None,
          bounds: tuple[float, float, float, float] | None) -> tuple[Affine, tuple[int, int]]:
    """Transform and shape of the common grid: snapped outwards onto the anchor."""
    from affine import Affine  # heavy: affine, loaded on first use

    footprints = [_footprint(s, target) for s in scenes]
    _check_overlap(scenes, footprints, bounds)
    res = resolution or min(_spacing(s, target) for s in scenes)
    corners = np.array(footprints)
    left, bottom, right, top = bounds or (*corners[:, :2].min(axis=0), *corners[:, 2:].max(axis=0))
    on_target = [s for s in scenes if s.crs == target and s.transform.b == s.transform.d == 0]
    anchor = min(on_target, key=lambda s: _spacing(s, target)).transform if on_target else None
    ax, ay = (anchor.c, anchor.f) if anchor is not None else (0.0, 0.0)
    eps = 1e-6
    left = ax + math.floor((left - ax) / res + eps) * res
    top = ay + math.ceil((top - ay) / res - eps) * res
    width = max(1, math.ceil((right - left) / res - eps))
    height = max(1, math.ceil((top - bottom) / res - eps))
    return Affine(res, 0.0, left, 0.0, -res, top), (height, width)


def _check_overlap(scenes: list[Scene], footprints: Sequence[tuple[float, ...]],
                   bounds: tuple[float, float, float, float] | None) -> None:
    """Every scene meets ``bounds``; without bounds, each meets another scene."""
    def meet(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
        return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]

    if bounds is not None:
        outside = [s.name for s, f in zip(scenes, footprints, strict=True) if not meet(f, bounds)]
        if outside:
            raise InputError(f"bounds={tuple(bounds)} (target CRS) does not overlap {outside}; "
                             "widen bounds or leave those files out.")
        return
    for i, (scene, f) in enumerate(zip(scenes, footprints, strict=True)):
        if len(scenes) > 1 and not any(meet(f, g) for j, g in enumerate(footprints) if j != i):
            raise InputError(
                f"{scene.name!r} (footprint {tuple(round(v) for v in f)} in the target CRS) "
                "overlaps none of the other scenes: another glacier or a wrong CRS? Leave it "
                "out, or pass bounds=(left, bottom, right, top) covering all the scenes if one "
                "grid over all of them is what you want.")


# --- the lazy cube -------------------------------------------------------------------------------
def _lazy_scene(scene: Scene, labels: tuple[Any, ...], target: pyproj.CRS,
                grid: tuple[Affine, tuple[int, int]], chunks: tuple[int, int],
                resampling: str) -> Any:
    """The scene on the grid, bands in ``labels``' order, as a dask array (band, y, x).

    A graph: nothing is read until it is computed, and then block by block.
    """
    import odc.geo.xr  # heavy: odc, loaded on first use
    from odc.geo.geobox import GeoBox  # heavy: odc, loaded on first use

    src = _scene_pixels(scene, chunks)  # float32, nodata is NaN from here on
    geobox = GeoBox(grid[1], grid[0], target)
    out = odc.geo.xr.xr_reproject(src, geobox, resampling=resampling, src_nodata=np.nan,
                                  dst_nodata=np.nan, dtype="float32", chunks=chunks)
    if len(labels) == 1:
        return out.data
    order = [list(map(str, scene.labels)).index(str(label)) for label in labels]
    return out.data if order == sorted(order) else out.data[order]


def _scene_pixels(scene: Scene, chunks: tuple[int, int]) -> Any:
    """The file's pixels as a lazy (band, y, x) float32 DataArray on its own grid."""
    import dask.array as darray  # heavy: dask, loaded on first use
    from dask.base import tokenize  # heavy: dask, loaded on first use
    from odc.geo.geobox import GeoBox  # heavy: odc, loaded on first use
    from odc.geo.xr import wrap_xr  # heavy: odc, loaded on first use

    reader = _SceneFile(scene.path, (len(scene.labels), *scene.shape))
    stat = os.stat(scene.path)
    name = f"xcalving-scene-{tokenize(scene.path, stat.st_size, stat.st_mtime_ns)}"
    data = darray.from_array(reader, chunks=(1, *chunks), name=name, asarray=False,
                             meta=np.empty((0, 0, 0), np.float32))
    geobox = GeoBox(scene.shape, scene.transform, scene.crs)
    return wrap_xr(data, geobox, axis=1, dims=("band", "y", "x"), nodata=np.nan)


class _SceneFile:
    """The pixels of one GeoTIFF, read window by window; a failed read names file and window.

    What :func:`dask.array.from_array` slices: each block opens the file, reads its window as
    float32 (masked pixels -- nodata, the file's mask -- become NaN; scales and offsets
    applied), and closes it. A read that fails (a damaged block) raises
    :class:`~xcalving.errors.DamagedFileError` naming the file, never the reader's own error.
    ``path`` is a :class:`~pathlib.Path`, which :func:`xcalving.io.lineage.input_paths` finds.
    """

    def __init__(self, path: str, shape: tuple[int, int, int]) -> None:
        self.path = Path(path)
        self.shape = shape
        self.dtype = np.dtype(np.float32)
        self.ndim = 3

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        bands, rows, cols = (range(*k.indices(n)) for k, n in zip(key, self.shape, strict=True))
        try:
            return self._read(bands, rows, cols)
        except MemoryError:
            raise
        except Exception as err:  # rasterio's, GDAL's or the OS's words: named and explained
            raise DamagedFileError(
                f"{os.fspath(self.path)!r}: its pixels in rows {rows.start}:{rows.stop}, columns "
                f"{cols.start}:{cols.stop} cannot be read ({type(err).__name__}: {err}); the "
                "file is damaged or was changed while being read. Download or export it again, "
                "or leave it out.") from err

    def _read(self, bands: range, rows: range, cols: range) -> np.ndarray:
        import rasterio  # heavy: rasterio, loaded on first use
        from rasterio.windows import Window  # heavy: rasterio, loaded on first use

        window = Window(cols.start, rows.start, len(cols), len(rows))
        indexes = [b + 1 for b in bands]
        with rasterio.open(self.path) as src:
            pixels = src.read(indexes, window=window, out_dtype=np.float32, masked=True)
            scales = np.array([src.scales[i - 1] for i in indexes], np.float32)[:, None, None]
            offsets = np.array([src.offsets[i - 1] for i in indexes], np.float32)[:, None, None]
        values = np.ma.filled(pixels, np.nan).astype(np.float32, copy=False)
        return values * scales + offsets if (scales != 1).any() or offsets.any() else values


def _check_size(grid: tuple[Affine, tuple[int, int]], dates: int,
                max_pixels: float | None) -> None:
    """Refuse a cube of more than ``max_pixels`` pixels before any of it is built."""
    (height, width), spacing = grid[1], abs(grid[0].a)
    check_budget(dates * height * width, max_pixels, what="open_scenes",
                 detail=f"{dates} date(s) of {height} x {width} px at {spacing:g} m",
                 fix="A file may declare a raster far larger than its scene (check the files "
                     "with gdalinfo), or resolution= be finer than meant; pass bounds= to "
                     "read a smaller area, or a coarser resolution=.")


def _nan_mean(layers: list[Any]) -> Any:
    """Mean of same-date scenes where they have data; NaN where none has."""
    import dask.array as darray  # heavy: dask, loaded on first use

    stack = darray.stack(layers)
    count = darray.isfinite(stack).sum(axis=0)
    total = darray.nansum(stack, axis=0)
    return (total / darray.where(count > 0, count, np.nan)).astype(np.float32)


def _cube(stacks: list[Any], coords: dict[str, Any], labels: tuple[Any, ...],
          attrs: dict[str, Any], target: pyproj.CRS,
          grid: tuple[Affine, tuple[int, int]]) -> xr.DataArray:
    import dask.array as darray  # heavy: dask, loaded on first use

    # heavy: rioxarray, loaded on first use
    import rioxarray  # noqa: F401  (registers .rio)

    transform, (height, width) = grid
    coords = {**coords, "band": list(labels),
              "y": transform.f + transform.e * (np.arange(height) + 0.5),
              "x": transform.c + transform.a * (np.arange(width) + 0.5)}
    da = xr.DataArray(darray.stack(stacks), dims=("time", "band", "y", "x"), coords=coords,
                      name="sar", attrs=attrs)
    if len(labels) == 1:
        da = da.squeeze("band", drop=True)
    return da.rio.write_crs(target)


def _check_options(duplicates: str, resampling: str, resolution: Any, bounds: Any) -> None:
    if duplicates not in DUPLICATES:
        raise InputError(f"duplicates must be 'error', 'first' or 'mean' (which mosaics scenes "
                         f"of one date); got {duplicates!r}."
                         + did_you_mean(str(duplicates), DUPLICATES))
    if resampling not in _RESAMPLING:
        raise InputError(f"resampling must be a GDAL method such as 'nearest' or 'bilinear'; "
                         f"got {resampling!r}." + did_you_mean(str(resampling), _RESAMPLING))
    if resolution is not None and not (isinstance(resolution, int | float)
                                       and math.isfinite(resolution) and resolution > 0):
        raise InputError(f"resolution must be a pixel spacing in metres, e.g. 20.0; got "
                         f"{resolution!r}.")
    if bounds is not None and not (isinstance(bounds, Sequence) and len(bounds) == 4
                                   and bounds[0] < bounds[2]
                                   and bounds[1] < bounds[3]):
        raise InputError(f"bounds must be (left, bottom, right, top) with left < right and "
                         f"bottom < top, in the target CRS; got {bounds!r}.")


def _chunk_size(chunks: Mapping[str, int] | None) -> tuple[int, int]:
    chunks = dict(DEFAULT_CHUNKS if chunks is None else chunks)
    unknown = set(chunks) - {"time", "y", "x"}
    if unknown or chunks.get("time", 1) != 1:
        raise InputError(f"chunks may set 'y' and 'x' (time is one scene a chunk); got {chunks}.")
    size = (int(chunks.get("y", DEFAULT_CHUNKS["y"])), int(chunks.get("x", DEFAULT_CHUNKS["x"])))
    if min(size) < 1:
        raise InputError(f"chunks must be positive pixel counts; got {chunks}.")
    return size
