"""The numpy core of vectorisation: front pixels of one scene → ordered polylines.

:func:`trace_lines` orders each 8-connected piece of a front raster into a path of (row, col)
vertices; :func:`front_from_probability` turns a probability map into such a raster.
:mod:`xcalving.vector` maps them over the scenes of a prediction.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from xcalving.zones import drop_short_pieces

__all__ = ["front_from_probability", "pixel_length", "trace_lines"]

_EIGHT = np.ones((3, 3), bool)


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
    from skimage.morphology import skeletonize

    mask = np.nan_to_num(np.asarray(probability, float), nan=0.0) > threshold
    if bbox is not None:
        mask &= np.asarray(bbox, bool)
    skeleton = skeletonize(mask)
    front = np.zeros_like(skeleton)
    for line in trace_lines(skeleton):
        front[line[:, 0], line[:, 1]] = True
    return drop_short_pieces(front, min_pixels)
