"""Scores as the CaFFe benchmark and GlacierDL computed them.

- :func:`mean_distance_error` — CaFFe's MDE: all front-to-front distances pooled over all scenes;
- :func:`zone_iou` — IoU per zone class (no data included) and their mean;
- :func:`dice` — the Dice coefficient of two binary masks;
- :func:`bbox_accuracy` — GlacierDL's pixel accuracy around the front.

Every function takes one scene (y, x) or a stack of scenes (scene, y, x), numpy or xarray.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import ndimage

from xcalving.errors import InputError
from xcalving.grid import check_same_grid
from xcalving.zones import ZONE_NAMES

__all__ = ["MDE", "ZoneIoU", "bbox_accuracy", "check_threshold", "dice",
           "front_distance_halves", "mean_distance_error", "zone_iou"]


class MDE(NamedTuple):
    """Mean distance error: the pooled mean, scenes scored, scenes with no predicted front."""

    mde: float
    n_scored: int
    n_no_front: int


class ZoneIoU(NamedTuple):
    """IoU per class (NaN for a class absent from both) and the mean over the classes present."""

    per_class: dict[str, float]
    mean: float




def _check_same_grid(pred: Any, true: Any) -> None:
    """Rasters are compared by coordinates and CRS, never by array position."""
    check_same_grid(pred, true, names=("pred", "true"))


def _front_mask(a: Any, name: str) -> np.ndarray:
    """A front raster as bool: booleans or 0/1; NaN counts as background; anything else refused."""
    values = _stack(a, name)
    if values.dtype == bool:
        return values
    if not np.issubdtype(values.dtype, np.number):
        raise InputError(f"{name} must be a front mask (bool or 0/1); got dtype {values.dtype}.")
    values = np.where(np.isnan(values), 0, values) if values.dtype.kind == "f" else values
    odd = np.setdiff1d(np.unique(values), (0, 1))
    if odd.size == 0:
        return values.astype(bool)
    if np.all((odd > 0) & (odd < 1)):
        raise InputError(f"{name} looks like a probability map (values between 0 and 1); pass a "
                         f"front mask: threshold it first, e.g. {name} > 0.5.")
    raise InputError(f"{name} must be a front mask (bool or 0/1); got values "
                     f"{odd.tolist()[:5]}. CaFFe's front PNGs use 255 for front: read them with "
                     f"xcalving.data.caffe.png.read_label, or pass {name} == 255.")


def check_threshold(threshold: Any, *, what: str = "threshold") -> float:
    """``threshold`` as a probability in [0, 1]; a percentage (50) is refused, not guessed.

    Examples
    --------
    >>> check_threshold(0.5)
    0.5
    >>> check_threshold(50)
    Traceback (most recent call last):
    ...
    xcalving.errors.InputError: threshold=50 is not a probability: probabilities run from 0 \
to 1. Pass 0.5, not 50 (a percentage).
    """
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.number) \
            or not np.isfinite(threshold):
        raise InputError(f"{what} must be a probability between 0 and 1, e.g. {what}=0.5; got "
                         f"{threshold!r}.")
    if 1 < threshold <= 100:
        raise InputError(f"{what}={threshold!r} is not a probability: probabilities run from 0 "
                         f"to 1. Pass {threshold / 100:g}, not {threshold!r} (a percentage).")
    if not 0 <= threshold <= 1:
        raise InputError(f"{what} must be a probability between 0 and 1, e.g. {what}=0.5; got "
                         f"{threshold!r}.")
    return float(threshold)


def _check_resolution(resolution: Any) -> float | None:
    if resolution is None:
        return None
    if isinstance(resolution, bool) or not isinstance(resolution, int | float | np.number) \
            or not np.isfinite(resolution) or resolution <= 0:
        raise InputError(f"resolution must be the pixel spacing, a number > 0 such as 20.0 "
                         f"(metres), or None for pixels; got {resolution!r}.")
    return float(resolution)


def _stack(a: Any, name: str) -> np.ndarray:
    values = np.asarray(getattr(a, "values", a))
    if values.ndim == 2:
        values = values[None]
    if values.ndim != 3:
        raise InputError(f"{name} must be one scene (y, x) or a stack (scene, y, x); got shape "
                         f"{values.shape}.")
    return values


def _pair(pred: Any, true: Any) -> tuple[np.ndarray, np.ndarray]:
    p, t = _stack(pred, "pred"), _stack(true, "true")
    if p.shape != t.shape:
        raise InputError(f"pred and true must have the same shape; got {p.shape} and {t.shape}.")
    return p, t


def front_distance_halves(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two halves of one scene's MDE (pixels): predicted → label, label → predicted.

    ``pred`` and ``true`` are boolean front rasters of one scene.

    Examples
    --------
    >>> true = np.zeros((5, 5), bool); true[:, 2] = True
    >>> pred = np.zeros((5, 5), bool); pred[0, 4] = True
    >>> [round(float(half.mean()), 2) for half in front_distance_halves(pred, true)]
    [2.0, 3.03]
    """
    to_true = ndimage.distance_transform_edt(~true)
    to_pred = ndimage.distance_transform_edt(~pred)
    return to_true[pred], to_pred[true]


def _front_distances(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Distances (pixels) from each predicted to the nearest true pixel and back."""
    return np.concatenate(front_distance_halves(pred, true))


def mean_distance_error(pred: Any, true: Any, resolution: float | None = None) -> MDE:
    """CaFFe's mean distance error between predicted and true fronts.

    For each scene, the distance from every predicted front pixel to the nearest true front
    pixel and from every true front pixel to the nearest predicted one; all distances of all
    scenes pooled into one mean (not a mean of per-scene means). Scenes with no predicted front
    are left out and counted; scenes with no true front are left out.

    Parameters
    ----------
    pred, true
        Front rasters (non-zero = front), one scene or a stack; or two GeoDataFrames of front
        lines with the same index (then ``resolution`` is the sampling step along the lines, in
        CRS units, and is required).
    resolution
        Pixel spacing in metres: the MDE is in metres; ``None`` gives pixels.

    Examples
    --------
    >>> import numpy as np
    >>> true = np.zeros((5, 5), bool); true[:, 2] = True
    >>> pred = np.zeros((5, 5), bool); pred[:, 3] = True
    >>> mean_distance_error(pred, true, resolution=20.0)
    MDE(mde=20.0, n_scored=1, n_no_front=0)
    """
    if hasattr(pred, "geometry") or hasattr(true, "geometry"):
        return _vector_mde(pred, true, resolution)
    resolution = _check_resolution(resolution)
    _check_same_grid(pred, true)
    p, t = _front_mask(pred, "pred"), _front_mask(true, "true")
    if p.shape != t.shape:
        raise InputError(f"pred and true must have the same shape; got {p.shape} and {t.shape}.")
    pooled, no_front = [], 0
    for ps, ts in zip(p, t, strict=True):
        if not ts.any():
            continue
        if not ps.any():
            no_front += 1
            continue
        pooled.append(_front_distances(ps, ts))
    if not pooled:
        return MDE(float("nan"), 0, no_front)
    mde = float(np.concatenate(pooled).mean()) * (resolution if resolution else 1.0)
    return MDE(mde, len(pooled), no_front)


def _vector_mde(pred: Any, true: Any, resolution: float | None) -> MDE:
    """MDE between lines: both sampled every ``resolution`` CRS units, point-to-line distances."""
    import shapely  # heavy: shapely, loaded on first use

    if resolution is None:
        raise InputError("resolution: the vector MDE samples the lines every `resolution` CRS "
                         "units, as pixels would; pass the pixel spacing, e.g. resolution=20.0.")
    resolution = _check_resolution(resolution)
    if not hasattr(pred, "geometry") or not hasattr(true, "geometry"):
        raise InputError("pred and true must both be GeoDataFrames of front lines, or both "
                         "rasters; got one of each.")
    if pred.crs != true.crs:
        raise InputError(f"pred and true GeoDataFrames are in different CRS ({pred.crs} and "
                         f"{true.crs}); reproject one first, e.g. pred.to_crs(true.crs).")
    if pred.crs is not None and pred.crs.is_geographic:
        raise InputError(f"the fronts are in a geographic CRS ({pred.crs}), where distances "
                         "are in degrees; reproject both to a metric CRS first, e.g. "
                         "pred.to_crs(pred.estimate_utm_crs()).")
    if not pred.index.equals(true.index):
        raise InputError("pred and true GeoDataFrames must share their index (the same times).")
    pooled, no_front = [], 0
    for p_geom, t_geom in zip(pred.geometry, true.geometry, strict=True):
        if t_geom is None or t_geom.is_empty:
            continue
        if p_geom is None or p_geom.is_empty:
            no_front += 1
            continue
        p_pts = shapely.points(shapely.get_coordinates(p_geom.segmentize(resolution)))
        t_pts = shapely.points(shapely.get_coordinates(t_geom.segmentize(resolution)))
        pooled.append(np.concatenate([shapely.distance(p_pts, t_geom),
                                      shapely.distance(t_pts, p_geom)]))
    if not pooled:
        return MDE(float("nan"), 0, no_front)
    return MDE(float(np.concatenate(pooled).mean()), len(pooled), no_front)


def zone_iou(pred: Any, true: Any, n_classes: int = 4) -> ZoneIoU:
    """Intersection over union per zone class, pooled over all scenes, and the mean.

    Examples
    --------
    >>> import numpy as np
    >>> zone_iou(np.array([[1, 2], [3, 3]]), np.array([[1, 2], [2, 3]])).per_class["ocean"]
    0.5
    """
    _check_same_grid(pred, true)
    p, t = _pair(pred, true)
    for name, labels in (("pred", p), ("true", t)):
        odd = np.setdiff1d(np.unique(labels), np.arange(n_classes))
        if odd.size:
            raise InputError(
                f"{name} has zone labels {odd.tolist()[:8]} outside 0..{n_classes - 1} "
                f"(n_classes={n_classes}); pass zone labels (0 no data, 1 rock, 2 glacier, "
                "3 ocean), not probabilities or grey values."
            )
    names = ZONE_NAMES if n_classes == 4 else tuple(str(k) for k in range(n_classes))
    per_class = {}
    for k, name in enumerate(names):
        inter = np.count_nonzero((p == k) & (t == k))
        union = np.count_nonzero((p == k) | (t == k))
        per_class[name] = float(inter / union) if union else float("nan")
    present = [v for v in per_class.values() if not np.isnan(v)]
    return ZoneIoU(per_class, float(np.mean(present)) if present else float("nan"))


def dice(pred: Any, true: Any, eps: float = 0.0) -> float:
    """Dice coefficient ``2|A∩B| / (|A|+|B|)`` of two binary masks (1.0 when both are empty)."""
    _check_same_grid(pred, true)
    p, t = _pair(pred, true)
    p, t = _front_mask(p, "pred"), _front_mask(t, "true")
    total = p.sum() + t.sum()
    return float((2 * np.count_nonzero(p & t) + eps) / (total + eps)) if total else 1.0


def bbox_accuracy(pred: Any, true: Any, *, threshold: float = 0.5, dilation: int = 10,
                  margin: int = 0) -> float:
    """GlacierDL's bounding-box accuracy of a front prediction.

    The true one-pixel front is thickened by a binary dilation with a disk of ``dilation``
    pixels; the prediction is thresholded at ``threshold``; the score is the share of pixels
    where both agree inside the bounding box of the true front pixels, grown by ``margin``
    pixels on every side, pooled over all scenes. Scenes without a true front are skipped.
    (This is not CaFFe's ``bounding_boxes`` files, which limit where fronts are scored.)
    """
    from skimage.morphology import disk  # heavy: skimage, loaded on first use

    check_threshold(threshold)
    _check_same_grid(pred, true)
    p, t = _pair(pred, true)
    t = _front_mask(t, "true")
    footprint = disk(dilation) if dilation > 0 else np.ones((1, 1), bool)
    agree, total = 0, 0
    for ps, ts in zip(np.nan_to_num(p.astype(float)) > threshold, t.astype(bool), strict=True):
        if not ts.any():
            continue
        rows, cols = np.nonzero(ts)
        box = (slice(max(rows.min() - margin, 0), rows.max() + margin + 1),
               slice(max(cols.min() - margin, 0), cols.max() + margin + 1))
        thick = ndimage.binary_dilation(ts, structure=footprint)
        agree += int(np.count_nonzero(ps[box] == thick[box]))
        total += thick[box].size
    return agree / total if total else float("nan")
