"""Zone classes and the front rule: the one home of CaFFe's label conventions.

Zones are coded 0..3 in the order of :data:`ZONE_NAMES`; CaFFe stores them as the grey values
:data:`ZONE_GREYS` and its one-pixel fronts as :data:`FRONT_GREYS`. The front rule
(:func:`front_from_zones`) is CaFFe's post-processing from zones to a front raster, used by the
synthetic generator, training, evaluation and vectorisation alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from xcalving.errors import InputError

__all__ = ["FRONT_GREYS", "GLACIER", "MIN_LENGTH_M", "NO_DATA", "OCEAN", "OCEAN_RULES", "ROCK",
           "ZONE_COLOURS", "ZONE_GREYS", "ZONE_NAMES", "check_ocean_rule", "drop_short_pieces",
           "front_from_zones", "main_ocean", "ocean_next_to_glacier", "zone_attrs"]

#: Zone classes, in the order of their codes 0..3.
ZONE_NAMES = ("no_data", "rock", "glacier", "ocean")
NO_DATA, ROCK, GLACIER, OCEAN = range(4)
#: CaFFe's grey values of the zone classes 0..3 (no data, rock, glacier, ocean incl. mélange).
ZONE_GREYS = (0, 64, 127, 254)
#: CaFFe's grey values of a front label: background, front.
FRONT_GREYS = (0, 255)
#: Map colours of the zone classes 0..3 (maps and the GeoTIFF colour table): no data, rock,
#: glacier, ocean.
ZONE_COLOURS = ("#000000", "#8c6d46", "#dff3ff", "#1d4e89")

_EIGHT = np.ones((3, 3), bool)
#: Which ocean bodies give fronts: CaFFe's one main body, or every body (several glaciers).
OCEAN_RULES = ("largest", "all")
#: CaFFe drops front pieces of at most this length in metres: the default of ``fronts()`` and
#: ``xcalving fronts --min-length``.
MIN_LENGTH_M = 750.0


def zone_attrs(long_name: str = "zones") -> dict[str, Any]:
    """CF flag attributes of a zone-class variable."""
    return {"long_name": long_name, "flag_values": list(range(len(ZONE_NAMES))),
            "flag_meanings": " ".join(ZONE_NAMES)}


def _largest(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected region of ``mask`` (empty where ``mask`` is empty)."""
    labels, n = ndimage.label(mask, structure=_EIGHT)
    if n == 0:
        return np.zeros_like(mask)
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (np.argmax(sizes) + 1)


def drop_short_pieces(front: np.ndarray, min_pixels: float) -> np.ndarray:
    """Remove 8-connected pieces of ``front`` with at most ``min_pixels`` pixels."""
    if min_pixels <= 0:
        return front
    labels, n = ndimage.label(front, structure=_EIGHT)
    if n == 0:
        return front
    sizes = np.bincount(labels.ravel())
    keep = sizes > min_pixels
    keep[0] = False
    return keep[labels]


def ocean_next_to_glacier(ocean: np.ndarray, glacier: np.ndarray) -> np.ndarray:
    """CaFFe's front rule: ocean pixels with a glacier pixel among their 4 neighbours."""
    padded = np.pad(glacier, 1)
    touches = padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]
    return ocean & touches


def check_ocean_rule(ocean: object) -> str:
    """``ocean`` checked against :data:`OCEAN_RULES`."""
    if ocean not in OCEAN_RULES:
        raise InputError(f"ocean must be one of {OCEAN_RULES} ('largest': CaFFe's one main "
                         f"ocean body; 'all': every ocean body); got {ocean!r}.")
    return str(ocean)


def _clean_ocean(zones: np.ndarray, ocean: str) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1-2 of CaFFe's clean-up: (the ocean with its holes filled, the ocean kept)."""
    check_ocean_rule(ocean)
    sea = zones == OCEAN
    sea |= ~sea & ~_largest(~sea)  # 1: holes in the ocean (icebergs, islands) become ocean
    return sea, _largest(sea) if ocean == "largest" else sea  # 2: detached bodies → glacier


def main_ocean(zones: np.ndarray, ocean: str = "largest") -> np.ndarray:
    """The ocean after CaFFe's clean-up (steps 1-2 of :func:`front_from_zones`).

    Examples
    --------
    >>> zones = np.full((3, 6), GLACIER); zones[:, 4:] = OCEAN; zones[1, 0] = OCEAN
    >>> main_ocean(zones).sum(axis=0).tolist()  # the puddle on the left is not the ocean
    [0, 0, 0, 0, 3, 3]
    """
    return _clean_ocean(np.asarray(zones), ocean)[1]


def front_from_zones(zones: np.ndarray, min_pixels: float = 0.0,
                     bbox: np.ndarray | None = None, ocean: str = "largest") -> np.ndarray:
    """CaFFe's post-processing: zone classes (y, x) → boolean one-pixel front.

    1. every non-ocean 8-connected region but the largest becomes ocean (fills the ocean's gaps:
       icebergs, islands, noise);
    2. only the largest 8-connected ocean region stays ocean; other ocean pixels become glacier
       (``ocean="largest"``, CaFFe's rule); ``ocean="all"`` keeps every ocean body, for scenes
       that hold several glaciers in fjords that do not meet;
    3. the front is every ocean pixel with a glacier pixel among its 4 neighbours;
    4. 8-connected front pieces of at most ``min_pixels`` pixels are dropped, and the front is
       masked with ``bbox`` (a boolean raster of where fronts are scored) when given.

    Examples
    --------
    >>> import numpy as np
    >>> zones = np.full((4, 6), GLACIER)
    >>> zones[:, 3:] = OCEAN
    >>> front_from_zones(zones).sum(axis=0).tolist()
    [0, 0, 0, 4, 0, 0]
    """
    zones = np.asarray(zones)
    sea, kept = _clean_ocean(zones, ocean)
    glacier = ((zones == GLACIER) | sea) & ~kept
    front = ocean_next_to_glacier(kept, glacier)  # 3
    if bbox is not None:
        front &= np.asarray(bbox, bool)
    return drop_short_pieces(front, min_pixels)
