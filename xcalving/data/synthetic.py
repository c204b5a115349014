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
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage

from xcalving.errors import InputError
from xcalving.zones import GLACIER, NO_DATA, OCEAN, ROCK, ocean_next_to_glacier, zone_attrs
from xcalving.zones import ZONE_NAMES as ZONE_NAMES  # re-exported: the public home is zones

if TYPE_CHECKING:  # geopandas is imported when a cube is made, not with the package
    import geopandas as gpd

__all__ = ["UNIT_M", "ZONE_NAMES", "glacier_cube"]

#: The length unit of the landscape, in metres: the front moves within ±0.45 of it, and the
#: coast and the upstream ice field lie 0.62 of it from the centre (the fjord itself is 1.2–3 km
#: wide at the front's mean position, widening downstream). It is fixed in metres, never taken
#: from the scene size.
UNIT_M = 2560.0

#: The spacing (m) at which the small features (crevasses, streaks, icebergs, mélange floes) were
#: designed; other spacings scale them.
_DESIGN_SPACING_M = 20.0


# Mean backscatter (sigma0, dB) by surface, before texture and speckle. Ordered roughly as in
# C-band scenes of tidewater glaciers: rock brightest, open water darkest, mélange in between.
_DB = {"rock": -4.0, "glacier": -9.0, "ocean": -19.0, "melange": -11.0, "berg": -4.5,
       "shadow": -24.0, "crevasse": 5.0}


@dataclass(frozen=True)
class _Fjord:
    """The parts of a scene that stay fixed through a time series (index-space units)."""

    shape: tuple[int, int]
    fine: float  # pixels per design pixel (20 m): the scale of the small features
    u: np.ndarray  # along-flow coordinate of every pixel centre (increases towards the ocean)
    v: np.ndarray  # across-flow coordinate
    s: np.ndarray  # across-fjord position: -1 and +1 on the walls
    direction: np.ndarray  # unit flow vector (col, row)
    centre: np.ndarray  # (col, row) origin of u, v
    meander: tuple[float, float, float]  # amplitude, wavelength, phase of the centre line
    half_width: tuple[float, float]  # width at u = 0, relative widening per scene half-length
    half_length: float
    front_base: float  # mean front position (u)
    front_shape: np.ndarray  # bulge and Fourier amplitudes of the front curve across the fjord
    front_range: tuple[float, float]  # the front is kept inside this u interval
    plateau: np.ndarray  # u of the upstream edge of the ice-covered plateau, per pixel
    coast: np.ndarray  # u of the open coast, per pixel
    outcrops: np.ndarray  # bool: rock showing through the ice
    shadow: np.ndarray  # bool: radar shadow on rock slopes (zone no data, dark but measured)
    swath: np.ndarray  # bool: outside the swath (zone no data, no measurement: NaN)
    rock_texture: np.ndarray  # dB
    streaks: np.ndarray  # dB, flow-parallel


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Zero-mean, unit-variance noise with features about ``scale`` pixels across.

    Drawn on a coarse grid and interpolated up, which costs a fraction of filtering a full grid.
    """
    coarse = tuple(int(np.ceil(n / scale)) + 2 for n in shape)
    field = _upsample(rng.standard_normal(coarse), shape, scale)
    field -= field.mean()
    std = field.std()
    return field / std if std > 0 else field


def _upsample(coarse: np.ndarray, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Bilinear interpolation of a coarse grid with spacing ``scale`` onto ``shape`` pixels.

    Bilinear interpolation is separable, so it is two small matrix products.
    """
    rows = _interp_matrix(shape[0], coarse.shape[0], scale)
    cols = _interp_matrix(shape[1], coarse.shape[1], scale)
    return rows @ coarse.astype(np.float32) @ cols.T


def _interp_matrix(n: int, n_coarse: int, scale: float) -> np.ndarray:
    """Weights that linearly interpolate ``n_coarse`` samples, ``scale`` apart, at ``n`` points."""
    pos = np.arange(n) / scale
    lo = np.minimum(pos.astype(int), n_coarse - 2)
    frac = (pos - lo).astype(np.float32)
    weights = np.zeros((n, n_coarse), np.float32)
    weights[np.arange(n), lo] = 1 - frac
    weights[np.arange(n), lo + 1] = frac
    return weights


def _fractal_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Three octaves of smooth noise: a cheap stand-in for rough terrain."""
    total = _smooth_noise(rng, shape, scale)
    for k in (1, 2):
        total += _smooth_noise(rng, shape, scale / 2**k) * 0.5**k
    return total / np.float32(total.std() or 1.0)


def _flow_frame(shape: tuple[int, int], theta: float) -> tuple[np.ndarray, ...]:
    """Along-flow ``u`` and across-flow ``v`` coordinates of every pixel centre."""
    direction = np.array([np.cos(theta), np.sin(theta)])
    centre = np.array([(shape[1] - 1) / 2, (shape[0] - 1) / 2])
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    dc, dr = cols - centre[0], rows - centre[1]
    u = dc * direction[0] + dr * direction[1]
    v = -dc * direction[1] + dr * direction[0]
    return u, v, direction, centre


def _centre_line(u: np.ndarray, meander: tuple[float, float, float]) -> np.ndarray:
    amplitude, wavelength, phase = meander
    return amplitude * np.sin(2 * np.pi * u / wavelength + phase)


def _width(u: np.ndarray, half_width: tuple[float, float], half_length: float) -> np.ndarray:
    base, widening = half_width
    return base * (1 + widening * u / half_length)


def _front_u(fjord: _Fjord, s: np.ndarray, position: float, wobble: np.ndarray) -> np.ndarray:
    """Along-flow position of the front at across-fjord positions ``s`` (convex tongue + bumps)."""
    bulge, *harmonics = fjord.front_shape
    u = position + bulge * (1 - s**2)
    for k, (amp, phase) in enumerate(zip(harmonics[::2], harmonics[1::2], strict=True), start=2):
        u = u + amp * np.sin(k * np.pi * (s + 1) / 2 + phase)
    for k, amp in enumerate(wobble, start=3):
        u = u + amp * np.sin(k * np.pi * (s + 1) / 2)
    return u


def _wedge(shape: tuple[int, int], rng: np.random.Generator, keep_clear: np.ndarray) -> np.ndarray:
    """The corner of the scene outside the swath, chosen so that it misses ``keep_clear``."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    for _ in range(4):
        corner = rng.integers(4)
        depth = rng.uniform(0.15, 0.35) * min(shape)
        r = rows if corner in (0, 1) else shape[0] - 1 - rows
        c = cols if corner in (0, 2) else shape[1] - 1 - cols
        tilt = rng.uniform(0.6, 1.6)
        wedge = r * tilt + c < depth
        if not (wedge & keep_clear).any():
            return wedge
    return np.zeros(shape, bool)


def _front_limits(shape: tuple[int, int], direction: np.ndarray, half: float,
                  bulge: float) -> tuple[float, float]:
    """The interval of ``u`` the mean front stays in: the physical range, inside the scene.

    The scene reaches ``reach`` pixels from its centre along the flow; the front is kept within
    80% of that, so that a scene smaller than the fjord still shows its front.
    """
    with np.errstate(divide="ignore"):
        reach = float(np.min([shape[1] / 2 / abs(direction[0]), shape[0] / 2 / abs(direction[1])]))
    low = max(-0.45 * half, -0.8 * reach)
    high = min(0.4 * half, 0.8 * reach) - bulge
    return low, max(high, low + 1.0)


def _make_fjord(rng: np.random.Generator, shape: tuple[int, int], resolution: float) -> _Fjord:
    """Draw the fixed geometry of one glacier scene, in pixels of ``resolution`` metres.

    Every scalar is drawn before any field the size of the scene, so that a seed's fjord is the
    same in metres at every scene size and spacing.
    """
    half = UNIT_M / resolution
    u, v, direction, centre = _flow_frame(shape, rng.uniform(0, 2 * np.pi))
    meander = (rng.uniform(0.02, 0.12) * half, rng.uniform(1.2, 3.0) * half, rng.uniform(0, 6.3))
    half_width = (rng.uniform(600.0, 1500.0) / resolution, rng.uniform(0.0, 0.5))
    s = (v - _centre_line(u, meander)) / _width(u, half_width, half)
    n_harmonics = 3
    front_shape = np.concatenate([
        [rng.uniform(0.1, 0.35) * half_width[0]],
        np.ravel([(rng.uniform(0, 0.06) * half_width[0], rng.uniform(0, 6.3))
                  for _ in range(n_harmonics)]),
    ])
    plateau = -0.62 * half + 0.05 * half * np.sin(2 * np.pi * v / half + rng.uniform(0, 6.3))
    coast = 0.62 * half + 0.06 * half * np.sin(2 * np.pi * v / (0.7 * half) + rng.uniform(0, 6.3))
    front_base = rng.uniform(-0.1, 0.1) * half
    front_range = _front_limits(shape, direction, half, front_shape[0])
    ice_upstream = (u < -0.5 * half) & ((np.abs(s) < 1) | (u < plateau))
    outcrops = (_smooth_noise(rng, shape, 0.06 * half) > 2.0) & ice_upstream
    land = (np.abs(s) >= 1) & (u >= plateau) & (u <= coast)
    shadow = (_smooth_noise(rng, shape, 0.05 * half) > 1.9) & land
    near_fjord = (np.abs(s) < 1.3) & (u > -0.55 * half)
    swath = _wedge(shape, rng, near_fjord)
    return _Fjord(
        shape=shape, fine=_DESIGN_SPACING_M / resolution, u=u, v=v, s=s, direction=direction,
        centre=centre, meander=meander, half_width=half_width, half_length=half,
        front_base=front_base, front_shape=front_shape, front_range=front_range,
        plateau=plateau, coast=coast, outcrops=outcrops, shadow=shadow,
        swath=swath, rock_texture=3.0 * _fractal_noise(rng, shape, 0.08 * half),
        streaks=_streaks(rng, v, s, 4.0 * _DESIGN_SPACING_M / resolution),
    )


def _streaks(rng: np.random.Generator, v: np.ndarray, s: np.ndarray,
             spacing: float) -> np.ndarray:
    """Flow-parallel stripes ``spacing`` pixels apart: brightness varies across the flow only."""
    edges = np.arange(np.floor(v.min()) - 2 * spacing, np.ceil(v.max()) + 2 * spacing, spacing)
    profile = ndimage.gaussian_filter1d(rng.standard_normal(edges.size), 1.0)
    stripes = np.interp(v, edges, profile / (profile.std() or 1.0)).astype(np.float32)
    return 1.5 * stripes * (np.abs(s) < 1.2)


def _zones(fjord: _Fjord, front: np.ndarray) -> np.ndarray:
    """Zone codes of one date, given the along-flow front position ``front`` of every pixel."""
    in_fjord = np.abs(fjord.s) < 1
    ocean = (in_fjord & (fjord.u >= front)) | (fjord.u > fjord.coast)
    glacier = ((in_fjord & (fjord.u < front)) | (fjord.u < fjord.plateau)) & ~fjord.outcrops
    zones = np.full(fjord.shape, ROCK, np.uint8)
    zones[glacier & ~ocean] = GLACIER
    zones[ocean] = OCEAN
    zones[fjord.shadow | fjord.swath] = NO_DATA
    return zones


def _front_pixels(zones: np.ndarray) -> np.ndarray:
    """CaFFe's front raster: ocean pixels with a glacier pixel among their 4 neighbours."""
    return ocean_next_to_glacier(zones == OCEAN, zones == GLACIER).astype(np.uint8)


def _true_line(fjord: _Fjord, position: float, wobble: np.ndarray) -> np.ndarray:
    """The true front, wall to wall, as (col, row) vertices in index space.

    The continuous boundary lies between the last glacier and the first ocean pixel centres; the
    raster front band (ocean side) spans ``max(|n_col|, |n_row|)`` pixels along the normal ``n``,
    so the line is moved half of that towards the ocean to run down the middle of the band.
    """
    n = int(np.clip(8 * fjord.half_width[0], 64, 4096))
    s = np.linspace(-1, 1, n)
    u = _front_u(fjord, s, position, wobble)
    v = _centre_line(u, fjord.meander) + s * _width(u, fjord.half_width, fjord.half_length)
    d = fjord.direction
    pts = np.column_stack([fjord.centre[0] + u * d[0] - v * d[1],
                           fjord.centre[1] + u * d[1] + v * d[0]])
    tangent = np.gradient(pts, axis=0)
    normal = np.column_stack([tangent[:, 1], -tangent[:, 0]])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    normal *= np.sign(normal @ d)[:, None]  # point downstream, towards the ocean
    return pts + 0.5 * np.abs(normal).max(axis=1, keepdims=True) * normal


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


def _backscatter(rng: np.random.Generator, fjord: _Fjord, zones: np.ndarray, front: np.ndarray,
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
    wind = 2.5 * _smooth_noise(rng, shape, 0.15 * half)
    reach = rng.uniform(0.02, 0.15) * half
    melange_width = reach * (1 + 0.3 * _smooth_noise(rng, shape, 0.1 * half))
    melange = ocean & (ahead < melange_width)
    db = np.where(ocean, _DB["ocean"] + wind, db)
    floes = _smooth_noise(rng, shape, max(2.0 * fine, 1.0))
    db = np.where(melange, _DB["melange"] + 2.0 * floes, db)
    _icebergs(rng, db, np.flatnonzero(ocean & (ahead > 2 * fine) & (ahead < 0.4 * half)), fine)
    db = np.where(fjord.shadow, _DB["shadow"], db)
    speckle = rng.gamma(looks, 1.0 / looks, size=shape)
    sigma0 = 10.0 ** (db / 10.0) * speckle
    out = (10.0 * np.log10(sigma0)).astype(np.float32)
    out[fjord.swath] = np.nan
    return out


def _front_positions(rng: np.random.Generator, fjord: _Fjord, times: pd.DatetimeIndex,
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
    fjord = _make_fjord(np.random.default_rng([seed, 0]), shape, resolution)
    positions = _front_positions(np.random.default_rng([seed, 1]), fjord, times, resolution,
                                 trend, seasonal, noise)
    sar = np.empty((n_times, *shape), np.float32)
    zones = np.empty((n_times, *shape), np.uint8)
    lines = []
    for k, position in enumerate(_dates_bar(positions, progress)):
        rng = np.random.default_rng([seed, 2, k])
        wobble = rng.normal(0, 0.01 * fjord.half_width[0] + 0.5 * fjord.fine, size=3)
        front = _front_u(fjord, np.clip(fjord.s, -1, 1), position, wobble)
        zones[k] = _zones(fjord, front)
        sar[k] = _backscatter(rng, fjord, zones[k], front, looks)
        lines.append(_true_line(fjord, position, wobble))
    front_raster = np.stack([_front_pixels(z) for z in zones])
    cube = _to_dataset(sar, zones, front_raster, times, resolution, origin, crs)
    cube.attrs.update(title="xcalving synthetic glacier cube", seed=int(seed), looks=float(looks))
    return cube, _lines_frame(lines, times, shape, resolution, origin, crs)


def _dates_bar(positions: np.ndarray, progress: bool) -> Iterable[float]:
    """``positions``, iterated under a bar of the dates made when ``progress`` is True."""
    from xcalving._progress import tqdm_class

    return tqdm_class()(positions, total=len(positions), desc="synthetic scenes", unit="date",
                        disable=not progress)


def _grid(shape: tuple[int, int], resolution: float, origin: tuple[float, float]):
    """Pixel-centre coordinates and the affine transform of the grid."""
    from affine import Affine

    x = origin[0] + (np.arange(shape[1]) + 0.5) * resolution
    y = origin[1] - (np.arange(shape[0]) + 0.5) * resolution
    return x, y, Affine(resolution, 0.0, origin[0], 0.0, -resolution, origin[1])


def _to_dataset(sar: np.ndarray, zones: np.ndarray, front: np.ndarray, times: pd.DatetimeIndex,
                resolution: float, origin: tuple[float, float], crs: str) -> xr.Dataset:
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
    import geopandas as gpd
    import shapely

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
