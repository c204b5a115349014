"""How far to trust each front: measurable signals, combined by a small calibrated model.

:func:`xcalving.fronts` measures, for every scene, in the same task that traces its line:

* ``head_distance_px`` -- disagreement of the network's two heads: the mean distance (pixels,
  each capped at :data:`HEAD_CAP_PX`) between the front used (zone boundary or thresholded
  front probability) and the front the other head gives; :data:`HEAD_CAP_PX` when the other
  head gives none;
* ``side_margin`` -- how clearly the two sides of the front are ocean and land, within
  :data:`BAND_PX` pixels of it: with ``zone_probability`` (``predict(..., outputs="all")``),
  the mean margin P(ocean) − P(glacier or rock) on the ocean side and its opposite on the land
  side, in [−1, 1]; with ``zones`` only, 2 × the share of band pixels whose zone agrees with
  the side they lie on (after CaFFe's clean-up) − 1;
* ``longest_share`` -- the share of the front's length in its longest piece (fragmentation);

* ``member_distance_px`` -- disagreement of an ensemble (``predict(..., model=[...])``) or
  of test-time flips (``predict(..., tta=True)``): the median over the members of the mean
  distance (pixels, capped as above) between the front used and each member's own front,
  traced from the member's rasters by the same method; NaN without members;

and, over the series, ``neighbour_distance_px`` -- the median distance (pixels) to the fronts
of up to 8 dates either side on the same grid (:func:`xcalving.vector.series.neighbour_distances`).

``confidence`` = σ(b₀ + Σ bᵢ·zᵢ), zᵢ the signal (log1p of the distances) standardised with the
calibration set's mean and standard deviation (0 where a signal is missing, e.g. a single
scene has no neighbours): the model's estimate that the front's error is below the median
error of the calibration fronts. :data:`CALIBRATION` holds the coefficients, fit by
``benchmarks/confidence_caffe256.py`` on the held-out glaciers of the leave-one-glacier-out
runs; :func:`fit_calibration` fits new ones from fronts with known errors. An empty front has
confidence 0. It ranks fronts; read it as a probability only for models and scenes like the
calibration ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from xcalving.errors import InputError
from xcalving.vector.qc import outlier_flags, sinuosity
from xcalving.vector.series import WINDOW, front_pairs, neighbour_distances
from xcalving.zones import (
    NO_DATA,
    OCEAN,
    ZONE_NAMES,
    drop_short_pieces,
    front_from_zones,
    main_ocean,
)

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

__all__ = ["BAND_PX", "CALIBRATION", "EXPECTED_SIGNS", "HEAD_CAP_PX", "MARGIN", "SERIES_COLUMNS",
           "SIGNALS", "Calibration", "assess_fronts", "confidence", "fit_calibration",
           "head_distance", "member_distance", "scene_signals", "side_margin", "with_margin"]

#: The signals the model combines, as columns of the fronts frame.
SIGNALS = ("neighbour_distance_px", "head_distance_px", "side_margin", "longest_share",
           "member_distance_px")
#: The sign of each signal's weight that its meaning predicts: far from the neighbours and from
#: the other head is bad, clear sides and one unbroken piece are good.
EXPECTED_SIGNS = {"neighbour_distance_px": -1, "head_distance_px": -1, "side_margin": 1,
                  "longest_share": 1, "member_distance_px": -1}
#: Signals that enter the model as log1p (distances: a long right tail).
_LOG = frozenset({"neighbour_distance_px", "head_distance_px", "member_distance_px"})
#: The columns :func:`assess_fronts` computes over the series, in the frame's order.
SERIES_COLUMNS = ("sinuosity", "neighbour_distance_px", "grid_id", "confidence", "outlier",
                  "qc_reason")
#: Per-pixel cap of the head distance: beyond it, the heads simply disagree.
HEAD_CAP_PX = 64.0
#: Width of the band on either side of a front that ``side_margin`` reads, in pixels.
BAND_PX = 5.0


@dataclass(frozen=True)
class Calibration:
    """A logistic model of ``confidence``: intercept, and per signal its weight, mean and scale.

    ``means`` and ``scales`` standardise the (log1p-transformed) signals; ``source`` says what
    the model was fit on.
    """

    intercept: float
    weights: dict[str, float]
    means: dict[str, float]
    scales: dict[str, float]
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def score(self, signals: Any) -> np.ndarray:
        """Confidence in [0, 1] of each row of ``signals`` (a DataFrame with the signal columns)."""
        z = np.full(len(signals), self.intercept, float)
        for name, weight in self.weights.items():
            values = _transformed(signals, name)
            standard = (values - self.means[name]) / self.scales[name]
            z += weight * np.where(np.isfinite(standard), standard, 0.0)
        return 1.0 / (1.0 + np.exp(-z))


#: The shipped models, one per front method, fit on all the leave-one-glacier-out runs' held-out
#: fronts (``benchmarks/confidence_caffe256.py``; its table holds the cross-fitted curves).
CALIBRATION: dict[str, Calibration] = {
    # the only signal whose weight had its expected sign in every run (fit_calibration(groups=))
    "zones": Calibration(
        intercept=-0.0098,
        weights={"neighbour_distance_px": -1.3056},
        means={"neighbour_distance_px": 3.4482},
        scales={"neighbour_distance_px": 0.7347},
        source="held-out fronts of runs/logo/{shipped,tyrion}-{Jorum,SI}, "
               "runs/logo12/{shipped,tyrion}-Jorum (caffe256, 256 x 256 px)"),
    # no signal kept its expected sign across the front-only (GlacierDL) runs: every front
    # gets the same confidence, the calibration set's share of good fronts
    "probability": Calibration(
        intercept=0.0109, weights={}, means={}, scales={},
        source="held-out fronts of runs/logo/glacierdl-{Jorum,SI}, "
               "runs/logo12/glacierdl-Jorum (caffe256, 256 x 256 px)"),
}
# the gated front head reads the same head as "probability": its model until one is fit for it
CALIBRATION["gated"] = CALIBRATION["probability"]


def _transformed(signals: Any, name: str) -> np.ndarray:
    if name not in getattr(signals, "columns", ()):
        raise InputError(f"signals: the column {name!r} is missing; the model needs "
                         f"{list(SIGNALS)} (the columns xcalving.fronts() adds).")
    values = np.asarray(signals[name], float)
    return np.log1p(np.maximum(values, 0.0)) if name in _LOG else values


# --- per-scene signals (numpy core) --------------------------------------------------------------
def head_distance(front: np.ndarray, other: np.ndarray,
                  to_front: np.ndarray | None = None) -> float:
    """Mean distance (pixels) between two front rasters, each distance capped at HEAD_CAP_PX.

    ``to_front`` is the distance transform of ``~front``, when it is already at hand.

    Examples
    --------
    >>> a = np.zeros((8, 8), bool); a[:, 2] = True
    >>> b = np.zeros((8, 8), bool); b[:, 5] = True
    >>> head_distance(a, b)
    3.0
    """
    if not front.any():
        return float("nan")
    if not other.any():
        return HEAD_CAP_PX
    if to_front is None:
        to_front = ndimage.distance_transform_edt(~front)
    to_other = ndimage.distance_transform_edt(~other)
    both = np.concatenate([to_other[front], to_front[other]])
    return float(np.minimum(both, HEAD_CAP_PX).mean())


def side_margin(to_front: np.ndarray, zones: np.ndarray,
                margin: np.ndarray | None = None) -> float:
    """How clearly ocean and land lie on their sides of the front, in [-1, 1] (see the module).

    ``to_front`` is the distance (pixels) of every pixel to the front; ``margin`` is
    P(ocean) − max(P(glacier), P(rock)) per pixel, or None to read the zones' purity.
    """
    band = (to_front >= 1) & (to_front <= BAND_PX) & (zones != NO_DATA)
    if not band.any():
        return float("nan")
    ocean_side = main_ocean(zones)[band]
    if margin is not None:
        values = np.where(ocean_side, margin[band], -margin[band])
        values = values[np.isfinite(values)]
        return float(values.mean()) if values.size else float("nan")
    agrees = (zones[band] == OCEAN) == ocean_side
    return float(2 * agrees.mean() - 1)


def _other_front(method: str, zones: np.ndarray | None, probability: np.ndarray | None,
                 min_pixels: float, threshold: float) -> np.ndarray | None:
    """The front of the head that ``method`` does not use (a raster), or None without it."""
    from skimage.morphology import skeletonize  # heavy: skimage, loaded on first use

    if method == "zones":
        if probability is None:
            return None
        mask = np.nan_to_num(np.asarray(probability, float), nan=0.0) > threshold
        return drop_short_pieces(skeletonize(mask), min_pixels)
    return None if zones is None else front_from_zones(zones, min_pixels)


def member_distance(front: np.ndarray, member_fronts: Sequence[np.ndarray] | None,
                    to_front: np.ndarray | None = None) -> float:
    """Median over the members' front rasters of their :func:`head_distance` to ``front``.

    NaN without members or without a front; a member without a front counts
    :data:`HEAD_CAP_PX`.

    Examples
    --------
    >>> front = np.zeros((16, 16), bool); front[:, 4] = True
    >>> others = [np.zeros((16, 16), bool) for _ in range(3)]
    >>> others[0][:, 4] = others[1][:, 6] = True
    >>> member_distance(front, others)  # 0, 2 and 64 (no front): the median
    2.0
    """
    if not member_fronts or not front.any():
        return float("nan")
    return float(np.median([head_distance(front, other, to_front) for other in member_fronts]))


def scene_signals(front: np.ndarray, piece_lengths: list[float], *, method: str,
                  zones: np.ndarray | None = None, probability: np.ndarray | None = None,
                  margin: np.ndarray | None = None,
                  member_fronts: Sequence[np.ndarray] | None = None, min_pixels: float = 0.0,
                  threshold: float = 0.5) -> dict[str, float]:
    """The per-scene signals of one front raster (``head_distance_px``, ``side_margin``, ...).

    ``piece_lengths`` are the lengths (pixels) of the traced pieces; ``zones``,
    ``probability`` and ``margin`` the scene's rasters where the prediction has them;
    ``member_fronts`` the fronts of an ensemble's members, traced the same way.

    Examples
    --------
    >>> zones = np.full((40, 40), 2); zones[:, 20:] = 3  # glacier | ocean
    >>> front = front_from_zones(zones)
    >>> signals = scene_signals(front, [39.0], method="zones", zones=zones)
    >>> signals["side_margin"], signals["longest_share"]
    (1.0, 1.0)
    """
    empty = {"head_distance_px": float("nan"), "side_margin": float("nan"),
             "longest_share": float("nan"), "member_distance_px": float("nan")}
    if not front.any():
        return empty
    to_front = ndimage.distance_transform_edt(~front)
    other = _other_front(method, zones, probability, min_pixels, threshold)
    total = float(sum(piece_lengths))
    return {
        "head_distance_px": float("nan") if other is None else head_distance(front, other,
                                                                             to_front),
        "side_margin": float("nan") if zones is None else side_margin(to_front, zones, margin),
        "longest_share": max(piece_lengths) / total if total > 0 else 1.0,
        "member_distance_px": member_distance(front, member_fronts, to_front),
    }


#: The name of the per-pixel ocean margin fronts() derives from ``zone_probability``.
MARGIN = "ocean_margin"


def with_margin(ds: Any, names: list[str]) -> tuple[Any, list[str]]:
    """Add P(ocean) − max(P(glacier), P(rock)) where ``zone_probability`` is there (lazily).

    It is built from the same (lazy) blocks as the other variables, so they are computed once.
    """
    zp = ds.get("zone_probability")
    if zp is None or "zone" not in zp.dims or zp.sizes["zone"] != len(ZONE_NAMES) or \
            set(zp.dims) - {"zone"} != set(ds[names[0]].dims):
        return ds, names
    labels = [str(v) for v in zp["zone"].values] if "zone" in zp.coords else list(ZONE_NAMES)
    if set(labels) != set(ZONE_NAMES):
        return ds, names
    pick = {name: labels.index(name) for name in ZONE_NAMES}
    margin = zp.isel(zone=pick["ocean"]) - np.maximum(zp.isel(zone=pick["glacier"]),
                                                      zp.isel(zone=pick["rock"]))
    return ds.assign({MARGIN: margin.drop_vars("zone", errors="ignore")}), [*names, MARGIN]


# --- the model -----------------------------------------------------------------------------------
def confidence(signals: Any, *, method: str = "zones",
               calibration: Calibration | None = None) -> np.ndarray:
    """Confidence in [0, 1] of each front from its signal columns; 0 for an empty front.

    Parameters
    ----------
    signals
        A DataFrame with the :data:`SIGNALS` columns, e.g. the frame of :func:`xcalving.fronts`
        (recompute after concatenating frames of several predictions).
    method
        Picks the shipped model of :data:`CALIBRATION` (``"zones"`` or ``"probability"``).
    calibration
        Another model (from :func:`fit_calibration`); it wins over ``method``.
    """
    if calibration is None:
        if method not in CALIBRATION:
            raise InputError(f"method must be one of {list(CALIBRATION)}; got {method!r}.")
        calibration = CALIBRATION[method]
    score = calibration.score(signals)
    empty = ~np.isfinite(np.asarray(signals["longest_share"], float))
    return np.where(empty, 0.0, score)


def fit_calibration(signals: pd.DataFrame, errors: Any, *, names: tuple[str, ...] | None = None,
                    groups: Any = None, l2: float = 1.0, source: str = "") -> Calibration:
    """Fit the logistic model: P(error ≤ median error) from standardised signals.

    With ``groups`` (e.g. the run or model of each front), a signal is kept only if its weight,
    fit on each group alone, has the sign of :data:`EXPECTED_SIGNS` in every group; the model
    is then fit on all fronts with the signals kept (none kept: the intercept alone, the same
    confidence for every front).

    Parameters
    ----------
    signals
        One row per front with a known error: the signal columns of :func:`xcalving.fronts`.
    errors
        Each front's error (e.g. its MDE against a label); fronts without one (NaN) and empty
        fronts are left out.
    names
        The signals to use; default the :data:`SIGNALS` that ``signals`` has with at least
        one finite value (``member_distance_px`` only exists for ensembles).
    groups
        One label a front: the signal selection above; None keeps every signal in ``names``.
    l2
        Ridge penalty on the weights (not the intercept), in units of the standardised signals.
    source
        Recorded in the result: what the fit saw.

    Examples
    --------
    >>> import pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> d = rng.gamma(2.0, 3.0, 200)
    >>> frame = pd.DataFrame({"neighbour_distance_px": d, "longest_share": 1.0})
    >>> model = fit_calibration(frame, d + rng.normal(0, 2, 200),
    ...                         names=("neighbour_distance_px",))
    >>> model.weights["neighbour_distance_px"] < 0
    True
    """
    if names is None:
        names = tuple(n for n in SIGNALS if n in getattr(signals, "columns", ())
                      and np.isfinite(_transformed(signals, n)).any())
    if groups is not None:
        names = _stable_signals(signals, errors, np.asarray(groups), names, l2)
    errors = np.asarray(errors, float)
    x = np.column_stack([_transformed(signals, n) for n in names]) if names else \
        np.empty((len(errors), 0))
    keep = np.isfinite(errors) & np.isfinite(np.asarray(signals["longest_share"], float))
    x, errors = x[keep], errors[keep]
    if len(errors) < 2 * (len(names) + 1):
        raise InputError(f"fit_calibration: {len(errors)} fronts with an error and a front are "
                         f"too few to fit {len(names) + 1} coefficients.")
    means, scales = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
    scales = np.where(scales > 0, scales, 1.0)
    z = np.nan_to_num((x - means) / scales)
    target = (errors <= np.median(errors)).astype(float)
    beta = _logistic(np.column_stack([np.ones(len(z)), z]), target, l2)
    return Calibration(
        intercept=float(beta[0]), weights={n: float(b) for n, b in zip(names, beta[1:],
                                                                        strict=True)},
        means={n: float(m) for n, m in zip(names, means, strict=True)},
        scales={n: float(s) for n, s in zip(names, scales, strict=True)},
        source=source or f"{len(errors)} fronts", extra={"median_error": float(np.median(errors))})


def _stable_signals(signals: Any, errors: Any, groups: np.ndarray, names: tuple[str, ...],
                    l2: float) -> tuple[str, ...]:
    """The signals whose weight has the expected sign when fit on each group alone."""
    errors = np.asarray(errors, float)
    keep = list(names)
    for group in dict.fromkeys(groups):
        mine = groups == group
        fit = fit_calibration(signals[mine], errors[mine], names=names, l2=l2)
        # a constant signal gets a weight of ~1e-17 of either sign: that is no sign
        keep = [n for n in keep if fit.weights[n] * EXPECTED_SIGNS.get(n, 0) > 1e-6]
    return tuple(keep)


def _logistic(x: np.ndarray, y: np.ndarray, l2: float, steps: int = 50) -> np.ndarray:
    """Ridge-penalised logistic regression by Newton's method (the intercept is not penalised)."""
    beta = np.zeros(x.shape[1])
    penalty = np.diag(np.r_[0.0, np.full(x.shape[1] - 1, l2)])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-x @ beta))
        hessian = x.T @ (x * (p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hessian, x.T @ (y - p) - penalty @ beta)
        beta += step
        if np.abs(step).max() < 1e-8:
            break
    return beta


# --- the series ----------------------------------------------------------------------------------
def assess_fronts(frame: gpd.GeoDataFrame, *, method: str | None = None,
                  pixel_size: float | None = None, calibration: Calibration | None = None,
                  window: int = WINDOW) -> gpd.GeoDataFrame:
    """The series columns of a fronts frame: sinuosity, neighbour distance, confidence, flags.

    :func:`xcalving.fronts` calls it; call it again on frames concatenated from several
    predictions (each keeps its ``grid_id``), or to use another ``calibration``.

    Parameters
    ----------
    frame
        Fronts with the per-scene signal columns (from :func:`xcalving.fronts`).
    method
        The front method, which picks the shipped model; default ``frame.attrs["method"]``.
    pixel_size
        CRS units per pixel, to give ``neighbour_distance_px`` in pixels; default
        ``frame.attrs["pixel_size"]`` (1 for pixel coordinates).
    calibration
        Another model of the confidence (:func:`fit_calibration`).
    window
        Dates on each side compared by the neighbour distance and the QC rules.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy with :data:`SERIES_COLUMNS` set (``grid_id`` left as it is, if present);
        the flags are :func:`xcalving.vector.qc.flag_outliers`' with its defaults.
    """
    method = method or str(frame.attrs.get("method", "zones"))
    pixel_size = float(pixel_size or frame.attrs.get("pixel_size", 1.0))
    out = frame.copy()
    pairs = front_pairs(out, window=window, step=pixel_size)  # measured once, for both
    out["sinuosity"] = np.array([sinuosity(g) for g in out.geometry], float)
    out["neighbour_distance_px"] = neighbour_distances(out, pairs=pairs) / pixel_size
    out["confidence"] = confidence(out, method=method, calibration=calibration)
    flags = outlier_flags(out, window=window, pixel_size=pixel_size, pairs=pairs)
    out["outlier"] = flags["outlier"].to_numpy(bool)
    out["qc_reason"] = flags["qc_reason"].to_numpy(object)
    return out
