"""One row a scene: each scene's front traced and measured, all scenes in one Dask pass.

:func:`compute_rows` is the pass :func:`xcalving.vector.api.fronts` runs: every variable it
reads enters one ``map_blocks`` call, one task a scene, so a lazy prediction's blocks are
computed once; each task traces its scene's front (by the method asked for) and measures the
columns and confidence signals of its row.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from xcalving.errors import InputError
from xcalving.inference.members import MEMBER_VARIABLES
from xcalving.vector.confidence import MARGIN, scene_signals
from xcalving.vector.regions import REGION_VARIABLE
from xcalving.vector.tracing import (
    front_from_head,
    front_from_probability,
    pixel_length,
    trace_lines,
)
from xcalving.zones import front_from_zones

__all__ = ["compute_rows"]


def _geometry(lines: list[np.ndarray], transform: Any) -> Any:
    """Polylines of (row, col) pixel centres → (Multi)LineString in map or pixel coordinates."""
    import shapely  # heavy: shapely, loaded on first use

    parts = []
    for line in lines:
        rows, cols = line[:, 0] + 0.5, line[:, 1] + 0.5
        xs, ys = (cols, rows) if transform is None else \
            (transform.c + transform.a * cols + transform.b * rows,
             transform.f + transform.d * cols + transform.e * rows)
        coords = np.column_stack([xs, ys])
        parts.append(shapely.LineString(coords if len(coords) > 1 else np.repeat(coords, 2, 0)))
    if not parts:
        return shapely.LineString()
    return parts[0] if len(parts) == 1 else shapely.MultiLineString(parts)


def _scene_front(scene: dict[str, np.ndarray], method: str, min_pixels: float, threshold: float,
                 ocean: str) -> np.ndarray:
    zones, probability = scene.get("zones"), scene.get("front_probability")
    region = scene.get(REGION_VARIABLE)
    if method == "zones" and zones is not None:
        return front_from_zones(zones, min_pixels, bbox=region, ocean=ocean)
    if method == "probability" and probability is not None:
        return front_from_probability(probability, threshold, min_pixels, bbox=region)
    if method == "gated" and probability is not None:
        return front_from_head(probability, threshold, min_pixels, bbox=region, zones=zones,
                               ocean=ocean)
    raise InputError(f"method={method!r}: the variable it needs is missing.")


def _member_fronts(scene: dict[str, np.ndarray], method: str, min_pixels: float,
                   threshold: float, ocean: str) -> list[np.ndarray] | None:
    """Each ensemble member's front, traced from its own rasters as the scene's front is.

    None without members, or where the members lack what ``method`` reads.
    """
    own = {name: scene[member] for name, member in MEMBER_VARIABLES.items() if member in scene}
    if not own:
        return None
    region = {REGION_VARIABLE: scene[REGION_VARIABLE]} if REGION_VARIABLE in scene else {}
    n = len(next(iter(own.values())))
    try:
        return [_scene_front({**{k: v[i] for k, v in own.items()}, **region}, method,
                             min_pixels, threshold, ocean) for i in range(n)]
    except InputError:  # e.g. zones asked for, members without zones
        return None


def _scene_row(front: np.ndarray, scene: dict[str, np.ndarray], transform: Any,
               spacing: float | None, **settings: Any) -> dict[str, Any]:
    """One scene's columns; the confidence signals are measured here, in the same task."""
    ocean = settings.pop("ocean")
    member_fronts = _member_fronts(scene, settings["method"], settings["min_pixels"],
                                   settings["threshold"], ocean)
    lines = trace_lines(front)
    pieces = [pixel_length(line) for line in lines]
    length_px = sum(pieces)
    probability = scene.get("front_probability")
    mean_p = float(np.nanmean(probability[front])) if probability is not None and front.any() \
        else np.nan
    signals = scene_signals(front, pieces, zones=scene.get("zones"), probability=probability,
                            margin=scene.get(MARGIN), member_fronts=member_fronts, **settings)
    return {"geometry": _geometry(lines, transform),
            "length_m": length_px * spacing if spacing else np.nan, "length_px": length_px,
            "mean_probability": mean_p, "n_segments": len(lines), "n_pixels": int(front.sum()),
            **signals}


def _scene_blocks(var: Any, lead: str) -> Any:
    """A dask array (scene, y, x) with one chunk a scene: a front is traced over its scene.

    A variable with a ``member`` dim enters as (scene, member · y, x), its members stacked
    along the rows (:func:`_rows_of_blocks` unstacks them): every input has the same rank.
    """
    import dask  # heavy: dask, loaded on first use
    import dask.array as dsa  # heavy: dask, loaded on first use

    members = "member" in var.dims
    data = var.transpose(lead, *(("member",) if members else ()), "y", "x").data  # rows are y
    if not dask.is_dask_collection(data):
        data = dsa.from_array(np.asarray(data), chunks=(1,) + (-1,) * (data.ndim - 1),
                              name=False)
    data = data.rechunk((1,) + (-1,) * (data.ndim - 1))
    return data.reshape(data.shape[0], -1, data.shape[-1]) if members else data


def _rows_of_blocks(*blocks: np.ndarray, names: tuple[str, ...], method: str,
                    min_pixels: float, threshold: float, ocean: str, transform: Any,
                    spacing: float | None, rows: int) -> np.ndarray:
    """One scene's blocks (1, y, x), one a variable → its row, in an object array of one.

    ``rows`` is the scene's number of rows, to unstack the members of a stacked variable.
    """
    stacked = set(MEMBER_VARIABLES.values())
    scene = {name: block[0].reshape(-1, rows, block.shape[-1]) if name in stacked
             else block[0] for name, block in zip(names, blocks, strict=True)}
    front = _scene_front(scene, method, min_pixels, threshold, ocean)
    out = np.empty(1, object)
    out[0] = _scene_row(front, scene, transform, spacing, method=method, min_pixels=min_pixels,
                        threshold=threshold, ocean=ocean)
    return out


def compute_rows(scenes: Any, lead: str, names: list[str], **settings: Any) -> list[Any]:
    """Every scene's row, computed in one graph.

    All variables enter one ``map_blocks`` call, so the blocks they share (a lazy prediction's
    network output) are computed once: passing each variable to its own ``dask.delayed`` call
    optimises each one's graph apart, and the network runs once a variable.
    """
    import dask.array as dsa  # heavy: dask, loaded on first use

    if scenes.sizes[lead] == 0:
        return []
    stacks = [_scene_blocks(scenes[name], lead) for name in names]
    # the settings travel in a partial: dask would read a tuple (the transform) as a task
    function = functools.partial(_rows_of_blocks, names=tuple(names), rows=scenes.sizes["y"],
                                 **settings)
    rows = dsa.map_blocks(function, *stacks, drop_axis=[1, 2], dtype=object,
                          meta=np.empty((0,), object), token="xcalving-fronts")
    return list(rows.compute())
