"""Stream training patches from a Zarr patch store into PyTorch, one chunk at a time.

The store is the one :func:`xcalving.data.caffe.caffe_to_zarr` writes: ``sar``, ``zones`` and
``front`` uint8 (sample, y, x) with per-sample coordinates. :class:`PatchStream` never reads the
whole store: every epoch it shuffles the *chunks*, then the samples inside each chunk, shards
that order over distributed ranks and DataLoader workers, and mixes neighbouring chunks with a
shuffle buffer. Reading stays sequential per chunk; the model still sees a well mixed stream.

The epoch's order and its sharding over ranks and workers are :mod:`xcalving.data.sampling`'s;
the stream reads that order chunk by chunk, augments each sample and mixes neighbouring chunks
through a shuffle buffer.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset

from xcalving.data.augment import (
    AUGMENTS,
    flip_rotate,
    gamma,
    ocean_mixup,
    radiometry,
    resampled,
    rezoom,
    thicken_front,
)
from xcalving.data.sampling import balanced, epoch_order, shard
from xcalving.errors import InputError, InputNotFoundError, InputTypeError, did_you_mean
from xcalving.model.context import SINGLE_SCENE_RATE, network_channels
from xcalving.scaling import CAFFE_SCALING, Scaling, fill_value, to_network_input

__all__ = ["PatchStream"]

_REQUIRED = ("sar", "zones", "front", "glacier", "split")
# (index, sar, zones, front[, ctx_median, ctx_spread]) of one sample, as read from the store
_Raw = tuple[Any, ...]
_CONTEXT = ("ctx_median", "ctx_spread")


def _resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    dist = torch.distributed
    running = dist.is_available() and dist.is_initialized()
    if rank is None:
        rank = dist.get_rank() if running else 0
    if world_size is None:
        world_size = dist.get_world_size() if running else 1
    for name, value in (("rank", rank), ("world_size", world_size)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise InputTypeError(f"{name} must be an int or None; got {type(value).__name__}.")
    if world_size < 1 or not 0 <= rank < world_size:
        raise InputError(f"need 0 <= rank < world_size; got rank={rank}, world_size={world_size}.")
    return int(rank), int(world_size)


def _as_names(value: str | Iterable[str] | None, arg: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = (value,) if isinstance(value, str) else tuple(value)
    if not names or not all(isinstance(v, str) for v in names):
        raise InputError(f"{arg} must be a name, a sequence of names, or None; got {value!r}.")
    return names


def _matching(values: np.ndarray, wanted: Sequence[str] | None, arg: str) -> np.ndarray:
    """Mask of samples whose ``values`` are among ``wanted``; an unknown name is an error."""
    if wanted is None:
        return np.ones(values.shape, bool)
    present = sorted(set(values.tolist()))
    for name in wanted:
        if name not in present:
            raise InputError(f"{arg}: {name!r} is not in the store, which has {present}."
                             + did_you_mean(name, present))
    return np.isin(values, list(wanted))


def _check_options(scaling: Any, front_dilation: Any, shuffle_buffer: Any, seed: Any) -> None:
    if not isinstance(scaling, Scaling):
        raise InputTypeError(f"scaling must be an xcalving.scaling.Scaling (e.g. CAFFE_SCALING); "
                             f"got {type(scaling).__name__}.")
    for name, value in (("front_dilation", front_dilation), ("shuffle_buffer", shuffle_buffer),
                        ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise InputError(f"{name} must be a whole number >= 0; got {value!r}.")


class PatchStream(IterableDataset):
    """Training patches from a Zarr patch store as an iterable PyTorch dataset.

    Parameters
    ----------
    store
        Local path or fsspec URL of a store written by
        :func:`~xcalving.data.caffe.caffe_to_zarr`. Opened lazily; one chunk is read at a time.
    glaciers
        Keep only samples of these glaciers, e.g. train on ``["DBE", "JAC", "SI"]`` and
        validate on ``"Jorum"``.
    split
        Keep only samples of this split (``"train"``, ``"test"``) or splits.
    scaling
        The network's input normalisation; see :func:`xcalving.scaling.to_network_input`. With
        a ``stretch`` (robust per-scene scaling) each patch is stretched by its own
        percentiles after augmentation (at the store's 75 m a 256-px patch holds most of a
        CaFFe scene; ``predict`` stretches by the whole scene's).
    augment
        Random flips, quarter turns (square patches), Gamma speckle on intensity and
        contrast/brightness jitter; geometry is applied to image and labels alike.
        ``"heavy"`` adds a random zoom-in of up to 1.5× and a random gamma; ``"physical"``
        adds to ``"heavy"`` a multilook or blur half the time, so that scenes resampled to
        the network's spacing (from coarser or finer data) are in distribution;
        ``"aimed"`` is ``"physical"`` without the gamma (a random gamma erased the
        glacier/melange brightness difference in synthetic runs), with the zoom widened to
        0.5-2× (zooming out shrinks the patch into an empty one) and, three times in ten,
        another patch mixed into the ocean (:func:`~xcalving.data.augment.ocean_mixup`): the
        failures seen on never-seen glaciers are fjords of another size and a bright ocean
        read as glacier.
    front_dilation
        Radius in pixels of the disk that thickens the front target (0: one pixel).
    shuffle
        Shuffle chunks, samples within chunks and through the buffer; ``False``: store order.
    shuffle_buffer
        Samples held to mix neighbouring chunks (0 or 1: no mixing).
    seed
        With the epoch (:meth:`set_epoch`), fixes the order and the augmentations.
    rank, world_size
        Distributed shard; default from :mod:`torch.distributed` when initialised, else 0 of 1.
    storage_options
        Passed to fsspec for remote stores.
    balance
        Draw every glacier equally often in each epoch
        (:func:`~xcalving.data.sampling.balanced`), with as many
        samples an epoch as without.
    context
        Add the temporal context to ``image``: (3, H, W), the scene, the median and the spread
        of its nearest other dates (:mod:`xcalving.model.context`), from the store's
        ``ctx_median`` and ``ctx_spread`` (``caffe_to_zarr(..., context=True)``). With
        ``augment``, flips, turns and zooms move them with the scene, and a share
        :data:`~xcalving.model.context.SINGLE_SCENE_RATE` of samples gets the single-scene
        context (the scene itself, spread 0), as ``predict`` feeds one scene.

    Notes
    -----
    Items are dicts of tensors: ``image`` float32 (1, H, W), no-data pixels at the scaling's
    normalised fill value; ``zones`` int64 (H, W); ``front`` float32 (1, H, W), the thickened
    front; ``front_raw`` uint8 (1, H, W), the one-pixel front; ``valid`` bool (H, W)
    (``sar != 0``); ``index`` int64, the sample's position in the store.

    Call :meth:`set_epoch` before each epoch. A DataLoader with ``persistent_workers=True``
    keeps its own copies of the stream, which do not see the call.

    Examples
    --------
    >>> import tempfile
    >>> from xcalving.data.caffe import caffe_to_zarr, shipped_scenes
    >>> store = caffe_to_zarr(shipped_scenes(), tempfile.mkdtemp() + "/p.zarr", window=128,
    ...                       pixel_spacing=None, progress=False)
    >>> stream = PatchStream(store, glaciers="Jorum", augment=True)
    >>> stream.n_samples, stream.steps_per_epoch(8)
    (32, 4)
    >>> item = next(iter(stream))
    >>> item["image"].shape, item["zones"].dtype, item["front"].dtype
    (torch.Size([1, 128, 128]), torch.int64, torch.float32)
    """

    def __init__(
        self,
        store: str | os.PathLike[str],
        *,
        glaciers: str | Sequence[str] | None = None,
        split: str | Sequence[str] | None = None,
        scaling: Scaling = CAFFE_SCALING,
        augment: bool | str = False,
        front_dilation: int = 10,
        shuffle: bool = True,
        shuffle_buffer: int = 64,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        storage_options: Mapping[str, Any] | None = None,
        context: bool = False,
        balance: bool = False,
    ) -> None:
        super().__init__()
        _check_options(scaling, front_dilation, shuffle_buffer, seed)
        self.store = os.fspath(store) if isinstance(store, os.PathLike) else store
        self.storage_options = dict(storage_options) if storage_options else None
        self.scaling, self.front_dilation = scaling, front_dilation
        if augment not in AUGMENTS:
            raise InputError(f"augment must be one of {AUGMENTS}; got {augment!r}.")
        self.augment: bool | str = augment if isinstance(augment, str) else bool(augment)
        self.balance = bool(balance)
        self.shuffle, self.shuffle_buffer, self.seed = bool(shuffle), shuffle_buffer, seed
        self.rank, self.world_size = _resolve_rank(rank, world_size)
        self.epoch = 0
        self._group: Any = None
        self._pid: int | None = None
        group = self._open()
        self.chunk_len = int(group["sar"].chunks[0])
        self.window = tuple(int(n) for n in group["sar"].shape[1:])
        self.context = bool(context)
        if self.context and scaling.stretch is not None:
            raise InputError("context=True and a scaling with a stretch cannot be combined: the "
                             "store's context is summarised from unstretched scenes.")
        # the store indices of the samples used, and the glacier of each (for balance)
        self.selected, self._glaciers = self._select(group, _as_names(glaciers, "glaciers"),
                                                     _as_names(split, "split"))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_group"] = None  # a worker opens the store itself
        return state

    def _open(self) -> Any:
        """The store's zarr group, opened once per process."""
        import zarr  # heavy: zarr, loaded on first use

        if self._group is None or self._pid != os.getpid():
            if isinstance(self.store, str) and "://" not in self.store \
                    and not os.path.exists(self.store):
                raise InputNotFoundError(f"store: no patch store at {self.store!r}; write one "
                                        "with xcalving.data.caffe.caffe_to_zarr.")
            self._group = zarr.open_group(self.store, mode="r",
                                          storage_options=self.storage_options)
            self._pid = os.getpid()
        return self._group

    def _select(self, group: Any, glaciers: Sequence[str] | None,
                split: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray]:
        missing = [name for name in _REQUIRED if name not in group]
        if missing or group["sar"].ndim != 3:
            raise InputError(f"store {self.store!r} is not a patch store (sample, y, x) with "
                             f"{list(_REQUIRED)}; missing {missing}. Write it with "
                             "xcalving.data.caffe.caffe_to_zarr.")
        if self.context and any(name not in group for name in _CONTEXT):
            raise InputError(f"context=True: store {self.store!r} has no temporal context "
                             f"({', '.join(_CONTEXT)}). Write it with "
                             "xcalving.data.caffe.caffe_to_zarr(..., context=True).")
        glacier_of = np.asarray(group["glacier"][:]).astype(object)
        keep = _matching(glacier_of, glaciers, "glaciers")
        keep &= _matching(np.asarray(group["split"][:]).astype(object), split, "split")
        if not keep.any():
            raise InputError(f"no sample of store {self.store!r} is of glaciers={glaciers} and "
                             f"split={split}; widen the selection.")
        return np.flatnonzero(keep), glacier_of[keep]

    @property
    def pixel_spacing(self) -> float | None:
        """Metres per pixel of the selected samples where they share one (within 1 %), else None.

        Training records it in the weights (``xcalving.pixel_spacing``), so that
        ``predict(..., resolution="model")`` runs them at the spacing they learnt.
        """
        group = self._open()
        if "pixel_spacing" not in group:
            return None
        values = np.asarray(group["pixel_spacing"][:], dtype=np.float64)[self.selected]
        if values.size == 0 or not np.isfinite(values).all() or values.min() <= 0:
            return None
        return float(np.median(values)) if values.max() <= 1.01 * values.min() else None

    # --- order and sizes ---------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Use the order and augmentations of ``epoch`` (a function of ``(seed, epoch)``)."""
        if isinstance(epoch, bool) or not isinstance(epoch, int | np.integer) or epoch < 0:
            raise InputError(f"epoch must be a whole number >= 0; got {epoch!r}.")
        self.epoch = int(epoch)

    def indices(self, worker: int = 0, num_workers: int = 1) -> np.ndarray:
        """Store indices this rank's ``worker`` reads this epoch, before the shuffle buffer."""
        selected = self.selected
        if self.balance:
            selected = balanced(selected, self._glaciers, seed=self.seed, epoch=self.epoch)
        order = epoch_order(selected, self.chunk_len, seed=self.seed, epoch=self.epoch,
                            shuffle=self.shuffle)
        return shard(order, rank=self.rank, world_size=self.world_size, worker=worker,
                     num_workers=num_workers)

    @property
    def n_samples(self) -> int:
        """Samples this rank yields per epoch (the same on every rank)."""
        return math.ceil(len(self.selected) / self.world_size)

    def steps_per_epoch(self, batch_size: int, *, num_workers: int = 0,
                        drop_last: bool = False) -> int:
        """Batches per epoch on this rank through a DataLoader of ``num_workers`` workers.

        Each worker batches its own piece, so with several workers there can be more partial
        batches than ``ceil(n_samples / batch_size)``; the count is the same on every rank.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a whole number >= 1; got {batch_size!r}.")
        pieces = np.array_split(np.arange(self.n_samples), max(1, num_workers))
        rounding = math.floor if drop_last else math.ceil
        return int(sum(rounding(len(p) / batch_size) for p in pieces))

    # --- iteration ---------------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        worker, num_workers = (0, 1) if info is None else (info.id, info.num_workers)
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, worker])
        raw = self._read(self.indices(worker, num_workers))
        if self.shuffle and self.shuffle_buffer > 1:
            raw = _buffered(raw, self.shuffle_buffer, rng)
        partner = None  # the previous sample's grey values, for the ocean mix-up
        for sample in raw:
            yield self._item(sample, rng, partner)
            partner = sample[1]

    def _read(self, indices: np.ndarray) -> Iterator[_Raw]:
        """Samples in the given order, reading each run of one chunk with one request."""
        group = self._open()
        chunk_ids = indices // self.chunk_len
        breaks = np.flatnonzero(np.diff(chunk_ids)) + 1
        for run in np.split(indices, breaks):
            if run.size == 0:
                continue
            lo, hi = int(run.min()), int(run.max()) + 1
            names = ("sar", "zones", "front", *(_CONTEXT if self.context else ()))
            block = [group[name][lo:hi] for name in names]
            for i in run:
                yield (int(i), *(b[i - lo] for b in block))

    def _item(self, sample: _Raw, rng: np.random.Generator,
              partner: np.ndarray | None = None) -> dict[str, torch.Tensor]:
        index, sar, zones, front, *context = sample
        amplitude: np.ndarray = sar
        if self.augment:
            if self.augment in ("heavy", "physical", "aimed"):
                low, high = (0.5, 2.0) if self.augment == "aimed" else (1.0, 1.5)
                sar, zones, front, *context = rezoom((sar, zones, front, *context), rng,
                                                     max_zoom=high, min_zoom=low)
            sar, zones, front, *context = flip_rotate((sar, zones, front, *context), rng)
            amplitude = sar
            if self.augment == "aimed" and partner is not None:
                amplitude = ocean_mixup(sar, zones, partner, rng)
            amplitude = radiometry(amplitude, rng)
            if self.augment in ("physical", "aimed"):
                amplitude = resampled(amplitude, rng)
            if self.augment in ("heavy", "physical"):
                amplitude = gamma(amplitude, rng)
        image = to_network_input(amplitude, "uint8", self.scaling)
        if context:
            single = bool(self.augment) and rng.random() < SINGLE_SCENE_RATE
            image = network_channels(image, np.stack(context), self.scaling, single)
        image = np.nan_to_num(image, nan=fill_value(self.scaling))
        thick = thicken_front(front, self.front_dilation)
        return {
            "image": torch.from_numpy(image if image.ndim == 3 else image[None]),
            "zones": torch.from_numpy(zones.astype(np.int64)),
            "front": torch.from_numpy(thick[None].astype(np.float32)),
            "front_raw": torch.from_numpy(np.ascontiguousarray(front[None], dtype=np.uint8)),
            "valid": torch.from_numpy(sar != 0),
            "index": torch.tensor(index, dtype=torch.int64),
        }


def _buffered(items: Iterable[_Raw], size: int, rng: np.random.Generator) -> Iterator[_Raw]:
    """Yield ``items`` through a random-replacement buffer of ``size`` entries."""
    buffer: list[_Raw] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        j = int(rng.integers(size))
        yield buffer[j]
        buffer[j] = item
    for j in rng.permutation(len(buffer)):
        yield buffer[j]
