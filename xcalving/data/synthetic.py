"""Synthetic SAR glacier scenes and time series with exact truth.

The generator draws one fjord per random seed — its orientation, meander, width, the shape of the
calving front, rock outcrops, radar shadow and the edge of the swath — and then, for every date,
moves the front (seasonal cycle + trend + noise), scatters ice mélange and icebergs in front of it
and renders backscatter with multiplicative Gamma speckle. Zones, the one-pixel front raster and
the true front lines all come from the same continuous geometry, so they agree exactly:

* a pixel is glacier when its centre lies upstream of the front curve, ocean downstream;
* the front raster follows CaFFe: every ocean pixel with a glacier pixel among its 4 neighbours;
* the true line is the front curve moved half a raster step towards the ocean, i.e. the centre
  line of that one-pixel band, so raster and line agree within half a pixel.

Everything is drawn at a physical size: fjords 1.2–3 km wide and lengths in multiples of
:data:`UNIT_M` metres, converted to pixels with the scene's spacing, so a larger scene shows more
terrain around the same fjord — ice upstream, open water downstream — not a larger fjord, and a
finer spacing shows the same fjord with more pixels. Scenes smaller than the fjord show a window
onto it centred on the front, whose range is then kept inside the window. Geometry is computed in
*index space* — column and row of pixel centres, floats — and mapped to the CRS through the affine
transform at the end; the true lines are clipped to the scene.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from xcalving.data.fjord import (
    UNIT_M,
    Fjord,
    front_pixels,
    front_u,
    make_fjord,
    smooth_noise,
    true_line,
    zones_of,
)
from xcalving.errors import InputError
from xcalving.zones import OCEAN, ROCK, zone_attrs

if TYPE_CHECKING:  # geopandas is imported when a cube is made, not with the package
    import geopandas as gpd

__all__ = ["UNIT_M", "glacier_cube"]

# Mean backscatter (sigma0, dB) by surface, before texture and speckle. Ordered roughly as in
# C-band scenes of tidewater glaciers: rock brightest, open water darkest, mélange in between.
_DB = {"rock": -4.0, "glacier": -9.0, "ocean": -19.0, "melange": -11.0, "berg": -4.5,
       "shadow": -24.0, "crevasse": 5.0}


def _icebergs(rng: np.random.Generator, db: np.ndarray, candidates: np.ndarray,
              fine: float) -> None:
    """Paint small bright ellipses (20–80 m radii) at random ``candidates`` (flat indices)."""
    if candidates.size == 0:
        return
    rows, cols = np.unravel_index(
        rng.choice(candidates, size=min(candidates.size, rng.poisson(10)), replace=False),
        db.shape)
    for r, c in zip(rows, cols, strict=True):
        ry, rx = np.maximum(rng.uniform(1.0, 4.0, size=2) * fine, 0.5)
        r0, r1 = max(0, int(r - ry)), min(db.shape[0], int(r + ry) + 1)
        c0, c1 = max(0, int(c - rx)), min(db.shape[1], int(c + rx) + 1)
        yy, xx = np.ogrid[r0:r1, c0:c1]
        inside = ((yy - r) / ry) ** 2 + ((xx - c) / rx) ** 2 <= 1
        db[r0:r1, c0:c1][inside] = _DB["berg"] + rng.normal(0, 1.5)


def _backscatter(rng: np.random.Generator, fjord: Fjord, zones: np.ndarray, front: np.ndarray,
                 looks: float) -> np.ndarray:
    """Render sigma0 in dB for one date: surfaces, texture, mélange, icebergs, then speckle."""
    shape, half, fine = fjord.shape, fjord.half_length, fjord.fine
    ahead = fjord.u - front  # > 0 downstream of the front
    db = np.where(zones == ROCK, _DB["rock"] + fjord.rock_texture, _DB["glacier"] + fjord.streaks)
    # Crevasse arcs parallel to the front (100-180 m apart), strongest close to it.
    behind = np.clip(-ahead, 0, None)
    arcs = np.mod(behind + 1.5 * fine * fjord.streaks, rng.uniform(5, 9) * fine) < 1.2 * fine
    fade = np.exp(-behind / (0.1 * half))
    db += np.where(arcs & (np.abs(fjord.s) < 1), _DB["crevasse"] * fade, 0)
    ocean = zones == OCEAN
    wind = 2.5 * smooth_noise(rng, shape, 0.15 * half)
    reach = rng.uniform(0.02, 0.15) * half
    melange_width = reach * (1 + 0.3 * smooth_noise(rng, shape, 0.1 * half))
    melange = ocean & (ahead < melange_width)
    db = np.where(ocean, _DB["ocean"] + wind, db)
    floes = smooth_noise(rng, shape, max(2.0 * fine, 1.0))
    db = np.where(melange, _DB["melange"] + 2.0 * floes, db)
    _icebergs(rng, db, np.flatnonzero(ocean & (ahead > 2 * fine) & (ahead < 0.4 * half)), fine)
    db = np.where(fjord.shadow, _DB["shadow"], db)
    speckle = rng.gamma(looks, 1.0 / looks, size=shape)
    sigma0 = 10.0 ** (db / 10.0) * speckle
    out = (10.0 * np.log10(sigma0)).astype(np.float32)
    out[fjord.swath] = np.nan
    return out


def _front_positions(rng: np.random.Generator, fjord: Fjord, times: pd.DatetimeIndex,
                     step_px: float, trend: float, seasonal: float, noise: float) -> np.ndarray:
    """Mean front position (u, pixels) for each date: trend + seasonal cycle + AR(1) noise."""
    years = np.asarray((times - times[0]) / pd.Timedelta(days=365.25), dtype=float)
    phase = rng.uniform(0, 1)
    wander = np.zeros(len(times))
    for k in range(1, len(times)):
        wander[k] = 0.7 * wander[k - 1] + rng.normal(0, noise)
    metres = trend * years + seasonal * np.cos(2 * np.pi * (years - phase)) + wander
    return np.clip(fjord.front_base + metres / step_px, *fjord.front_range)


def _check_args(n_times: int, shape: tuple[int, int], resolution: float, looks: float) -> None:
    if not isinstance(n_times, int | np.integer) or n_times < 1:
        raise InputError(f"n_times must be a whole number >= 1; got {n_times!r}.")
    if (len(tuple(shape)) != 2 or any(not isinstance(n, int | np.integer) for n in shape)
            or min(shape) < 64):
        raise InputError(
            f"shape must be (rows, cols), two whole numbers >= 64; got {shape!r}. "
            "A fjord needs room: use e.g. shape=(256, 256)."
        )
    if not np.isfinite(resolution) or resolution <= 0:
        raise InputError(
            f"resolution must be a positive pixel spacing in metres; got {resolution!r}."
        )
    if not np.isfinite(looks) or looks <= 0:
        raise InputError(f"looks must be a positive number of looks (e.g. 4.0); got {looks!r}.")


def glacier_cube(
    n_times: int = 6,
    *,
    shape: tuple[int, int] = (512, 512),
    resolution: float = 20.0,
    seed: int = 0,
    start: str = "2019-01-01",
    freq: str = "12D",
    looks: float = 4.0,
    trend: float = -300.0,
    seasonal: float = 400.0,
    noise: float = 40.0,
    crs: str = "EPSG:3031",
    origin: tuple[float, float] = (-2_430_000.0, 1_300_000.0),
    progress: bool = False,
) -> tuple[xr.Dataset, gpd.GeoDataFrame]:
    """Make a synthetic SAR time series of a tidewater glacier, with its exact truth.

    Parameters
    ----------
    n_times
        Number of acquisitions.
    shape
        ``(rows, cols)`` of every scene, each at least 64.
    resolution
        Pixel spacing in metres (square pixels).
    seed
        Random seed: the fjord's orientation and shape, the front and all noise follow from it.
        Scene ``k`` does not depend on ``n_times``: a longer series extends a shorter one.
    start, freq
        Acquisition dates, as for :func:`pandas.date_range` (12 days: Sentinel-1's revisit).
    looks
        Equivalent number of looks of the multiplicative Gamma speckle (1 is the rawest).
    trend, seasonal, noise
        Front motion: trend in metres per year (negative: retreat), amplitude of the seasonal
        cycle in metres, and the standard deviation of its AR(1) noise in metres per step.
    crs, origin
        Coordinate reference system and the map coordinates of the upper-left corner of the grid.
    progress
        Show a progress bar over the dates as they are made (text, or a Jupyter widget).

    Returns
    -------
    cube : xarray.Dataset
        ``sar`` (time, y, x) float32 backscatter in dB, NaN outside the swath; ``zones`` uint8
        (0 no data, 1 rock, 2 glacier, 3 ocean incl. mélange); ``front`` uint8, 1 on the
        one-pixel front. CRS and transform are written the rioxarray way (``spatial_ref``).
    fronts : geopandas.GeoDataFrame
        The true front of every date as a LineString in map coordinates, indexed by ``time``,
        with its length in metres.

    Examples
    --------
    >>> from xcalving.data.synthetic import glacier_cube
    >>> cube, fronts = glacier_cube(3, shape=(128, 160), seed=1)
    >>> cube.sar.dims, cube.sar.shape
    (('time', 'y', 'x'), (3, 128, 160))
    >>> cube.rio.crs.to_epsg(), len(fronts)
    (3031, 3)
    """
    _check_args(n_times, shape, resolution, looks)
    shape = (int(shape[0]), int(shape[1]))
    times = pd.date_range(start, periods=n_times, freq=freq, name="time")
    fjord = make_fjord(np.random.default_rng([seed, 0]), shape, resolution)
    positions = _front_positions(np.random.default_rng([seed, 1]), fjord, times, resolution,
                                 trend, seasonal, noise)
    sar = np.empty((n_times, *shape), np.float32)
    zones = np.empty((n_times, *shape), np.uint8)
    lines = []
    for k, position in enumerate(_dates_bar(positions, progress)):
        rng = np.random.default_rng([seed, 2, k])
        wobble = rng.normal(0, 0.01 * fjord.half_width[0] + 0.5 * fjord.fine, size=3)
        front = front_u(fjord, np.clip(fjord.s, -1, 1), position, wobble)
        zones[k] = zones_of(fjord, front)
        sar[k] = _backscatter(rng, fjord, zones[k], front, looks)
        lines.append(true_line(fjord, position, wobble))
    front_raster = np.stack([front_pixels(z) for z in zones])
    cube = _to_dataset(sar, zones, front_raster, times, resolution, origin, crs)
    cube.attrs.update(title="xcalving synthetic glacier cube", seed=int(seed), looks=float(looks))
    return cube, _lines_frame(lines, times, shape, resolution, origin, crs)


def _dates_bar(positions: np.ndarray, progress: bool) -> Iterable[float]:
    """``positions``, iterated under a bar of the dates made when ``progress`` is True."""
    from xcalving._progress import tqdm_class  # heavy: xcalving._progress loads tqdm, dask

    return tqdm_class()(positions, total=len(positions), desc="synthetic scenes", unit="date",
                        disable=not progress)


def _grid(shape: tuple[int, int], resolution: float, origin: tuple[float, float]):
    """Pixel-centre coordinates and the affine transform of the grid."""
    from affine import Affine  # heavy: affine, loaded on first use

    x = origin[0] + (np.arange(shape[1]) + 0.5) * resolution
    y = origin[1] - (np.arange(shape[0]) + 0.5) * resolution
    return x, y, Affine(resolution, 0.0, origin[0], 0.0, -resolution, origin[1])


def _to_dataset(sar: np.ndarray, zones: np.ndarray, front: np.ndarray, times: pd.DatetimeIndex,
                resolution: float, origin: tuple[float, float], crs: str) -> xr.Dataset:
    # heavy: rioxarray, loaded on first use
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    x, y, transform = _grid(sar.shape[1:], resolution, origin)
    dims = ("time", "y", "x")
    cube = xr.Dataset(
        {
            "sar": (dims, sar, {"long_name": "SAR backscatter (sigma0)", "units": "dB"}),
            "zones": (dims, zones, zone_attrs("zone")),
            "front": (dims, front, {"long_name": "calving front (one pixel wide)",
                                    "flag_values": [0, 1], "flag_meanings": "background front"}),
        },
        coords={"time": times, "y": y, "x": x},
    )
    cube = cube.rio.write_crs(crs).rio.write_transform(transform)
    return cube.rio.write_coordinate_system()


def _lines_frame(lines: list[np.ndarray], times: pd.DatetimeIndex, shape: tuple[int, int],
                 resolution: float, origin: tuple[float, float], crs: str) -> gpd.GeoDataFrame:
    """The true lines in map coordinates, clipped to the scene (walls may lie outside it)."""
    import geopandas as gpd  # heavy: geopandas, loaded on first use
    import shapely  # heavy: shapely, loaded on first use

    scene = shapely.box(origin[0], origin[1] - shape[0] * resolution,
                        origin[0] + shape[1] * resolution, origin[1])
    geoms = [
        shapely.LineString(np.column_stack([origin[0] + (pts[:, 0] + 0.5) * resolution,
                                            origin[1] - (pts[:, 1] + 0.5) * resolution]))
        .intersection(scene)
        for pts in lines
    ]
    frame = gpd.GeoDataFrame({"geometry": geoms}, index=times, crs=crs)
    frame["length_m"] = frame.geometry.length
    return frame
