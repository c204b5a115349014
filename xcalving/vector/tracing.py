"""The numpy core of vectorisation: front pixels of one scene → ordered polylines.

:func:`trace_lines` orders each 8-connected piece of a front raster into a path of (row, col)
vertices; :func:`front_from_probability` turns a probability map into such a raster.
:mod:`xcalving.vector.rows` maps them over the scenes of a prediction.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from xcalving.zones import drop_short_pieces, front_from_zones

__all__ = ["GATE_PX", "MIN_MASS_SHARE", "front_from_head", "front_from_probability",
           "pixel_length", "trace_lines"]

_EIGHT = np.ones((3, 3), bool)
#: ``front_from_head``: a piece is kept where at least half of it lies within this many pixels
#: of the zones' glacier–ocean boundary.
GATE_PX = 8.0
#: ``front_from_head``: pieces with less probability mass than this share of the strongest
#: piece's are dropped (faint spurs and far echoes).
MIN_MASS_SHARE = 0.2


def _component_path(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Indices of the longest shortest path through one 8-connected set of pixels."""
    n = len(rows)
    if n == 1:
        return np.zeros(1, int)
    index = {(r, c): i for i, (r, c) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True))}
    src, dst, cost = [], [], []
    for dr, dc, w in ((0, 1, 1.0), (1, 0, 1.0), (1, 1, np.sqrt(2)), (1, -1, np.sqrt(2))):
        for i, (r, c) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
            j = index.get((r + dr, c + dc))
            if j is not None:
                src.append(i)
                dst.append(j)
                cost.append(w)
    graph = csr_matrix((cost, (src, dst)), shape=(n, n))
    first = dijkstra(graph, directed=False, indices=0)
    start = int(np.argmax(np.where(np.isfinite(first), first, -1)))
    dist, pred = dijkstra(graph, directed=False, indices=start, return_predecessors=True)
    node = int(np.argmax(np.where(np.isfinite(dist), dist, -1)))
    path = [node]
    while pred[node] >= 0:
        node = int(pred[node])
        path.append(node)
    return np.asarray(path[::-1])


def trace_lines(front: np.ndarray) -> list[np.ndarray]:
    """Order the pixels of each 8-connected front piece into a polyline of (row, col) vertices.

    Each piece becomes the longest path through it (spurs of a pixel or two are left out);
    pieces are returned longest first.
    """
    labels, n = ndimage.label(front, structure=_EIGHT)
    lines = []
    for k, piece in enumerate(ndimage.find_objects(labels), start=1):
        rows, cols = np.nonzero(labels[piece] == k)
        path = _component_path(rows, cols)
        lines.append(np.column_stack([rows[path] + piece[0].start, cols[path] + piece[1].start]))
    return sorted(lines, key=pixel_length, reverse=True)


def pixel_length(line: np.ndarray) -> float:
    """Length of a polyline of (row, col) vertices, in pixels."""
    return float(np.hypot(*np.diff(line, axis=0).T).sum()) if len(line) > 1 else 0.0


def front_from_probability(probability: np.ndarray, threshold: float = 0.5,
                           min_pixels: float = 0.0, bbox: np.ndarray | None = None) -> np.ndarray:
    """Threshold, skeletonize, keep the longest path of each piece, then the length rule."""
    from skimage.morphology import skeletonize  # heavy: skimage, loaded on first use

    mask = np.nan_to_num(np.asarray(probability, float), nan=0.0) > threshold
    if bbox is not None:
        mask &= np.asarray(bbox, bool)
    skeleton = skeletonize(mask)
    front = np.zeros_like(skeleton)
    for line in trace_lines(skeleton):
        front[line[:, 0], line[:, 1]] = True
    return drop_short_pieces(front, min_pixels)


def _head_mask(probability: np.ndarray, threshold: float) -> np.ndarray:
    """Hysteresis: pixels above ``threshold / 2`` connected to one above ``threshold``.

    Where nothing reaches ``threshold`` but the probability still rises above the low
    threshold, the strongest half of it is taken: a faint front is still a front.
    """
    from skimage.filters import apply_hysteresis_threshold  # heavy: skimage, loaded on first use

    low = threshold / 2
    mask = apply_hysteresis_threshold(probability, low, threshold)
    peak = float(probability.max()) if probability.size else 0.0
    if not mask.any() and peak > low:
        mask = probability >= max(low, peak / 2)
    return mask


def _keep_piece(line: np.ndarray, near: np.ndarray | None) -> bool:
    return near is None or near[line[:, 0], line[:, 1]].mean() >= 0.5


def front_from_head(probability: np.ndarray, threshold: float = 0.5, min_pixels: float = 0.0,
                    bbox: np.ndarray | None = None, zones: np.ndarray | None = None,
                    ocean: str = "largest") -> np.ndarray:
    """The front head read with the zones as a gate (``fronts(method="gated")``).

    Hysteresis thresholds (``threshold`` and half of it), a skeleton, its pieces traced; a
    piece is kept where at least half of it lies within :data:`GATE_PX` pixels of where the
    predicted glacier meets the predicted ocean (when ``zones`` are given) and where it holds
    at least :data:`MIN_MASS_SHARE` of the strongest piece's probability mass; then the
    length rule. When the gate removes every piece, the strongest piece is kept: the answer is
    empty only where the probability shows no front at all.
    """
    from skimage.morphology import skeletonize  # heavy: skimage, loaded on first use

    p = np.nan_to_num(np.asarray(probability, float), nan=0.0)
    mask = _head_mask(p, threshold)
    if bbox is not None:
        mask &= np.asarray(bbox, bool)
    lines = trace_lines(skeletonize(mask))
    if not lines:
        return np.zeros(p.shape, bool)
    near = None
    if zones is not None:
        boundary = front_from_zones(zones, ocean=ocean)
        near = ndimage.distance_transform_edt(~boundary) <= GATE_PX if boundary.any() else None
    masses = [float(p[line[:, 0], line[:, 1]].sum()) for line in lines]
    kept = [k for k, line in enumerate(lines) if _keep_piece(line, near)] or \
        [int(np.argmax(masses))]
    best = max(masses[k] for k in kept)
    front = np.zeros(p.shape, bool)
    for k in kept:
        if masses[k] >= MIN_MASS_SHARE * best:
            front[lines[k][:, 0], lines[k][:, 1]] = True
    return drop_short_pieces(front, min_pixels)
