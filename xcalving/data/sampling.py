"""The order of an epoch's samples and its split over distributed ranks and loader workers.

Pure functions of ``(seed, epoch)`` and the selected store indices (numpy only), so that every
rank and worker computes the same order without talking to the others. Step by step (``n``
selected samples, ``R`` ranks, ``W`` workers per rank):

1. optionally, every glacier drawn equally often (:func:`balanced`);
2. the epoch's order (:func:`epoch_order`): chunks in an order drawn from ``(seed, epoch)``,
   samples inside a chunk shuffled, so reading stays sequential per chunk;
3. rank ``r`` takes the contiguous slice ``r`` of ``ceil(n / R)`` samples (:func:`shard`); the
   order is wrapped around to fill the last slice (as
   :class:`torch.utils.data.DistributedSampler` pads), so every rank runs the same number of
   steps;
4. worker ``w`` of a rank takes the contiguous piece ``w`` of the rank's slice.

:class:`~xcalving.data.stream.PatchStream` then mixes neighbouring chunks with a shuffle buffer.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["balanced", "epoch_order", "shard"]


def epoch_order(selected: np.ndarray, chunk_len: int, *, seed: int, epoch: int,
                shuffle: bool = True) -> np.ndarray:
    """The order of one epoch: chunks shuffled, then the samples inside each chunk.

    Parameters
    ----------
    selected
        Sorted store indices of the samples to use.
    chunk_len
        Samples per chunk of the store.
    seed, epoch
        The order is a function of these two only.
    shuffle
        ``False`` keeps store order.

    Examples
    --------
    >>> epoch_order(np.arange(6), 2, seed=0, epoch=0, shuffle=False).tolist()
    [0, 1, 2, 3, 4, 5]
    """
    if not shuffle:
        return selected.copy()
    rng = np.random.default_rng([seed, epoch])
    selected = np.sort(selected)
    # sorted indices: the samples of one chunk are one run, cut where the chunk id changes
    runs = np.split(selected, np.flatnonzero(np.diff(selected // chunk_len)) + 1)
    parts = [rng.permutation(runs[k]) for k in rng.permutation(len(runs))]
    return np.concatenate(parts) if parts else selected[:0]


def balanced(selected: np.ndarray, groups: np.ndarray, *, seed: int, epoch: int) -> np.ndarray:
    """An epoch's samples with every group (glacier) equally often, as many as ``selected``.

    Each group gets ``len(selected) / n_groups`` draws (the remainder to the first groups):
    a larger group a random subset, a smaller one all its samples and random repeats. The
    draw is a function of ``(seed, epoch)``, so every rank and worker agrees on it. Returns
    sorted store indices (repeats included) for :func:`epoch_order`.

    Examples
    --------
    >>> groups = np.array(["A"] * 6 + ["B"] * 2)
    >>> picked = balanced(np.arange(8), groups, seed=0, epoch=0)
    >>> int((picked < 6).sum()), int((picked >= 6).sum())
    (4, 4)
    """
    rng = np.random.default_rng([seed, epoch, 1])
    names = sorted(set(np.asarray(groups).tolist()))
    shares = np.full(len(names), len(selected) // len(names))
    shares[: len(selected) % len(names)] += 1
    parts = []
    for name, share in zip(names, shares, strict=True):
        members = selected[groups == name]
        repeats = rng.choice(members, share - members.size) if share > members.size else []
        own = members if share >= members.size else rng.choice(members, share, replace=False)
        parts.append(np.concatenate([own, np.asarray(repeats, dtype=members.dtype)]))
    return np.sort(np.concatenate(parts))


def shard(order: np.ndarray, *, rank: int = 0, world_size: int = 1, worker: int = 0,
          num_workers: int = 1) -> np.ndarray:
    """The part of an epoch's ``order`` that one (rank, worker) reads.

    Each rank gets a contiguous slice of ``ceil(len(order) / world_size)`` samples, the order
    wrapped around to pad the last one; each worker a contiguous piece of its rank's slice.

    Examples
    --------
    >>> shard(np.arange(5), rank=1, world_size=2).tolist()  # padded by wrapping around
    [3, 4, 0]
    >>> shard(np.arange(6), worker=1, num_workers=2).tolist()
    [3, 4, 5]
    """
    per_rank = math.ceil(len(order) / world_size)
    padded = np.resize(order, per_rank * world_size)  # np.resize repeats cyclically
    mine = padded[rank * per_rank:(rank + 1) * per_rank]
    return np.array_split(mine, num_workers)[worker]
