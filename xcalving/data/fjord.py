"""The fixed geometry of a synthetic fjord, at a physical size: walls, front curve, terrain.

:func:`xcalving.data.synthetic.glacier_cube` draws one :class:`Fjord` per seed and renders its
dates from it. Lengths are drawn in metres and converted to pixels of the scene's spacing, so a
seed's fjord has the same size in metres at every scene size and spacing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from xcalving.zones import GLACIER, NO_DATA, OCEAN, ROCK, ocean_next_to_glacier

__all__ = ["UNIT_M", "Fjord", "front_pixels", "front_u", "make_fjord", "smooth_noise",
           "true_line", "zones_of"]

#: The length unit of the landscape, in metres: the front moves within ±0.45 of it, and the
#: coast and the upstream ice field lie 0.62 of it from the centre (the fjord itself is 1.2–3 km
#: wide at the front's mean position, widening downstream). It is fixed in metres, never taken
#: from the scene size.
UNIT_M = 2560.0

#: The spacing (m) at which the small features (crevasses, streaks, icebergs, mélange floes) were
#: designed; other spacings scale them.
_DESIGN_SPACING_M = 20.0


@dataclass(frozen=True)
class Fjord:
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


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
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
    total = smooth_noise(rng, shape, scale)
    for k in (1, 2):
        total += smooth_noise(rng, shape, scale / 2**k) * 0.5**k
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


def front_u(fjord: Fjord, s: np.ndarray, position: float, wobble: np.ndarray) -> np.ndarray:
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


def make_fjord(rng: np.random.Generator, shape: tuple[int, int], resolution: float) -> Fjord:
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
    outcrops = (smooth_noise(rng, shape, 0.06 * half) > 2.0) & ice_upstream
    land = (np.abs(s) >= 1) & (u >= plateau) & (u <= coast)
    shadow = (smooth_noise(rng, shape, 0.05 * half) > 1.9) & land
    # the swath may cut anything but the reach of the front (so every date shows its front)
    margin = 0.1 * half
    near_front = (np.abs(s) < 1.3) & (u > front_range[0] - margin) & (
        u < front_range[1] + front_shape[0] + margin)
    swath = _wedge(shape, rng, near_front)
    return Fjord(
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


def zones_of(fjord: Fjord, front: np.ndarray) -> np.ndarray:
    """Zone codes of one date, given the along-flow front position ``front`` of every pixel."""
    in_fjord = np.abs(fjord.s) < 1
    ocean = (in_fjord & (fjord.u >= front)) | (fjord.u > fjord.coast)
    glacier = ((in_fjord & (fjord.u < front)) | (fjord.u < fjord.plateau)) & ~fjord.outcrops
    zones = np.full(fjord.shape, ROCK, np.uint8)
    zones[glacier & ~ocean] = GLACIER
    zones[ocean] = OCEAN
    zones[fjord.shadow | fjord.swath] = NO_DATA
    return zones


def front_pixels(zones: np.ndarray) -> np.ndarray:
    """CaFFe's front raster: ocean pixels with a glacier pixel among their 4 neighbours."""
    return ocean_next_to_glacier(zones == OCEAN, zones == GLACIER).astype(np.uint8)


def true_line(fjord: Fjord, position: float, wobble: np.ndarray) -> np.ndarray:
    """The true front, wall to wall, as (col, row) vertices in index space.

    The continuous boundary lies between the last glacier and the first ocean pixel centres; the
    raster front band (ocean side) spans ``max(|n_col|, |n_row|)`` pixels along the normal ``n``,
    so the line is moved half of that towards the ocean to run down the middle of the band.
    """
    n = int(np.clip(8 * fjord.half_width[0], 64, 4096))
    s = np.linspace(-1, 1, n)
    u = front_u(fjord, s, position, wobble)
    v = _centre_line(u, fjord.meander) + s * _width(u, fjord.half_width, fjord.half_length)
    d = fjord.direction
    pts = np.column_stack([fjord.centre[0] + u * d[0] - v * d[1],
                           fjord.centre[1] + u * d[1] + v * d[0]])
    tangent = np.gradient(pts, axis=0)
    normal = np.column_stack([tangent[:, 1], -tangent[:, 0]])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    normal *= np.sign(normal @ d)[:, None]  # point downstream, towards the ocean
    return pts + 0.5 * np.abs(normal).max(axis=1, keepdims=True) * normal


