"""Temporal context: each scene enters the network with a summary of its neighbouring dates.

A datacube holds many dates of one glacier on one grid. Ocean and mélange change from date to
date (wind, waves, drifting ice); the glacier trunk and the rock change little. Weights trained
with temporal context see three input channels per scene:

0. the scene itself (normalised backscatter, as for one-band weights);
1. the per-pixel **median** of the :data:`NEIGHBOURS` nearest *other* dates;
2. the per-pixel **spread** (standard deviation) of those dates.

"Nearest" is by absolute time difference, ties to the earlier date, so the summary of a date
never depends on how the cube is chunked, and it never includes the date itself. Pixels with no
data on a neighbouring date are left out of that pixel's median and spread; a pixel with no
valid neighbour gets the network's fill value as median and 0 as spread.

**A single scene** (a cube with one date, or a 2-D image) has no neighbours: its context is the
scene itself as the median and 0 as the spread. Training shows the network that case
(:data:`SINGLE_SCENE_RATE` of the samples), so it degrades to a one-date model rather than
failing; ``predict`` warns when it happens.

The context is a function of the input channel count of the network (``in_channels`` 3 means
this context), so weights files need no extra record: :func:`uses_context` reads it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from xcalving.scaling import Scaling, fill_value, to_network_input

__all__ = ["CONTEXT_CHANNELS", "NEIGHBOURS", "SINGLE_SCENE_RATE", "fill_context", "grey_context",
           "grey_series_context",
           "neighbour_indices", "network_channels", "single_scene_context", "summarise",
           "uses_context"]

#: How many other dates summarise a scene.
NEIGHBOURS = 6
#: Input channels of a network with temporal context: scene, median, spread.
CONTEXT_CHANNELS = 3
#: Share of training samples that get the single-scene context (the scene itself, spread 0).
SINGLE_SCENE_RATE = 0.1


def uses_context(config: Mapping[str, Any]) -> bool:
    """Whether a network of this config (``ASPPUNet.get_config()``) expects temporal context."""
    return int(config.get("in_channels", 1)) == CONTEXT_CHANNELS


def neighbour_indices(times: np.ndarray, k: int = NEIGHBOURS) -> list[np.ndarray]:
    """For each date, the indices of the ``k`` nearest other dates (fewer when there are fewer).

    Distances are absolute time differences; ties go to the earlier date (then the lower
    index), so the answer depends on the dates only.

    Examples
    --------
    >>> t = np.array(["2020-01-01", "2020-01-05", "2020-01-06", "2020-02-01"], "datetime64[D]")
    >>> [ix.tolist() for ix in neighbour_indices(t, 2)]
    [[1, 2], [2, 0], [1, 0], [2, 1]]
    """
    values = np.asarray(times)
    if np.issubdtype(values.dtype, np.datetime64):
        values = values.astype("datetime64[s]").astype(np.int64)
    values = values.astype(np.float64)
    order = np.argsort(values, kind="stable")
    out = []
    for i, t in enumerate(values):
        others = order[order != i]
        distance = np.abs(values[others] - t)
        # ties: the earlier date first, then the lower index (lexsort: last key is primary)
        rank = np.lexsort((others, values[others], distance))
        out.append(others[rank[:k]])
    return out


def summarise(images: np.ndarray, neighbours: Sequence[np.ndarray]) -> np.ndarray:
    """Median and spread of the ``neighbours`` of each target: (len(neighbours), 2, y, x) float32.

    ``images`` is (T, y, x) with NaN for no data; ``neighbours[j]`` the indices into ``images``
    whose summary is target ``j`` (from :func:`neighbour_indices`). A pixel with no valid
    neighbour is NaN in both channels (:func:`fill_context` gives it its values).

    Examples
    --------
    >>> images = np.array([[[1.0]], [[3.0]], [[np.nan]], [[8.0]]])
    >>> summarise(images, [np.array([1, 2, 3]), np.array([2])])[:, :, 0, 0].tolist()
    [[5.5, 2.5], [nan, nan]]
    """
    images = np.asarray(images, dtype=np.float32)
    out = np.full((len(neighbours), 2, *images.shape[1:]), np.nan, np.float32)
    for slot, chosen in enumerate(neighbours):
        if len(chosen) == 0:
            continue
        stack = images[np.asarray(chosen, dtype=int)]
        valid = np.isfinite(stack).any(axis=0)
        if valid.any():
            values = stack[:, valid]
            out[slot, 0][valid] = np.nanmedian(values, axis=0)
            out[slot, 1][valid] = np.nanstd(values, axis=0)
    return out


def fill_context(context: np.ndarray, fill: float) -> np.ndarray:
    """Give pixels without a valid neighbour the fill value as median and 0 as spread."""
    out = np.array(context, dtype=np.float32, copy=True)
    median, spread = out[..., 0, :, :], out[..., 1, :, :]
    median[np.isnan(median)] = fill
    spread[np.isnan(spread)] = 0.0
    return out


def single_scene_context(image: np.ndarray, fill: float) -> np.ndarray:
    """The context of a date without neighbours: the scene itself and 0 spread, (2, y, x)."""
    image = np.asarray(image, dtype=np.float32)
    median = np.where(np.isfinite(image), image, np.float32(fill))
    return np.stack([median, np.zeros_like(median)]).astype(np.float32)


# --- training: context stored as 8-bit grey, fed as the network's channels ---------------------
def grey_context(summary: np.ndarray) -> np.ndarray:
    """A (2, y, x) summary of 8-bit grey scenes (NaN: none) as uint8, median 0 = no neighbour."""
    median, spread = summary
    return np.stack([
        np.where(np.isnan(median), 0, np.clip(np.rint(median), 1, 255)),
        np.where(np.isnan(spread), 0, np.clip(np.rint(spread), 0, 255)),
    ]).astype(np.uint8)


def grey_series_context(greys: Sequence[np.ndarray], dates: Sequence[Any]) -> list[np.ndarray]:
    """The 8-bit context (:func:`grey_context`) of each scene of one series on one grid.

    ``greys`` are the scenes as 8-bit grey (0 = no data), ``dates`` their dates; each scene is
    summarised by its nearest others of the series.
    """
    grey = np.stack(greys).astype(np.float32)
    grey[grey == 0] = np.nan
    times = pd.to_datetime(list(dates)).to_numpy()
    return [grey_context(one) for one in summarise(grey, neighbour_indices(times))]


def network_channels(image: np.ndarray, context: np.ndarray | None, scaling: Scaling,
                     single: bool = False) -> np.ndarray:
    """(3, H, W): a normalised scene with its grey context (:func:`grey_context`) normalised.

    The grey values are converted as the scene is (the scaling is linear in grey levels, so the
    spread scales by its slope). ``context`` None or ``single``: the single-scene context.
    """
    fill = fill_value(scaling)
    if single or context is None:
        return np.concatenate([image[None], single_scene_context(image, fill)])
    median = np.nan_to_num(to_network_input(context[0], "uint8", scaling), nan=fill)
    slope = np.diff(to_network_input(np.array([1.0, 2.0]), "uint8", scaling))[0]
    spread = np.where(context[0] == 0, 0.0, context[1] * slope)
    return np.stack([image, median, spread]).astype(np.float32)
