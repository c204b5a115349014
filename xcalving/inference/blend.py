"""Blending windows into one block: every window of the plan that touches it, weighted.

:func:`predict_block` runs on numpy (the CPU path); :func:`predict_block_on_device` cuts and
blends the windows with torch on the runner's device (the GPU path). Both walk the windows in
the same order, batch them the same way and share :func:`_accumulate`, so they do the same
arithmetic in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from xcalving.inference.runner import N_CHANNELS
from xcalving.runtime import on_stream, thread_stream
from xcalving.windows import WindowPlan, blend_weights

if TYPE_CHECKING:
    from xcalving.inference.runner import _Runner

__all__ = ["predict_block", "predict_block_on_device"]

#: A window of a block: (lead index, first row, first column), rows and columns global.
Key = tuple[int, int, int]


def predict_block(block: np.ndarray, origin: tuple[int, int], core: tuple[int, int, int, int],
                  plan: WindowPlan, runner: Callable[[np.ndarray], np.ndarray], fill: float,
                  batch_size: int) -> np.ndarray:
    """Blend every window that touches ``core`` into (L, 5, core rows, core cols).

    ``block`` is (L, rows, cols) normalised input with NaN for no data, whose pixel (0, 0) is
    global pixel ``origin``; ``core`` = (row0, row1, col0, col1) is the part to return, global.
    """
    nan = np.isnan(block)
    clean = np.where(nan, np.float32(fill), block).astype(np.float32, copy=False)
    total = np.zeros((block.shape[0], N_CHANNELS, *_core_shape(core)), np.float32)
    weight_sum = np.zeros(_core_shape(core), np.float32)

    def cut(key: Key) -> np.ndarray:
        return _cut(clean, key, origin, plan)

    def forward(windows: list[np.ndarray]) -> np.ndarray:
        return runner(np.stack(windows)[:, None])

    _blend(total, weight_sum, blend_weights(plan.extent, plan.overlap), cut, forward, core, plan,
           batch_size)
    total /= weight_sum  # in place: a block's output is the largest array predict holds
    return _mask_no_data(total, nan, origin, core, runner)


def predict_block_on_device(block: np.ndarray, origin: tuple[int, int],
                            core: tuple[int, int, int, int], plan: WindowPlan, runner: _Runner,
                            fill: float, batch_size: int) -> np.ndarray:
    """:func:`predict_block` with the windows cut and blended on the runner's device.

    Used on CUDA, where copying every window's five probability maps back to the host and
    blending them there costs more than the network: the block goes to the GPU once, windows
    are sliced there, weighted sums accumulate there, and one (L, 5, rows, cols) array comes
    back. Each calling thread uses its own CUDA stream, so the copies of one block overlap the
    kernels of another. Same arithmetic as :func:`predict_block`, in the same order.
    """
    import torch

    dev = runner.device
    stream = thread_stream(dev)
    nan = np.isnan(block)
    clean = torch.from_numpy(np.where(nan, np.float32(fill), block).astype(np.float32, copy=False))
    with on_stream(stream):
        if dev.startswith("cuda"):
            clean = clean.pin_memory()
        x = clean.to(dev, non_blocking=True)
        total = torch.zeros((block.shape[0], N_CHANNELS, *_core_shape(core)), device=dev)
        weight_sum = torch.zeros(_core_shape(core), device=dev)
        weights = torch.from_numpy(blend_weights(plan.extent, plan.overlap)).to(dev)

        def cut(key: Key) -> Any:
            return _cut_on_device(x, key, origin, plan)

        def forward(windows: list[Any]) -> Any:
            return runner.probs(torch.stack(windows)[:, None])

        _blend(total, weight_sum, weights, cut, forward, core, plan, batch_size)
        total /= weight_sum
        host = torch.empty(total.shape, dtype=total.dtype, pin_memory=dev.startswith("cuda"))
        host.copy_(total, non_blocking=True)
        if stream is not None:
            stream.synchronize()
    out = host.numpy().copy()  # the pinned buffer goes back to torch's cache
    return _mask_no_data(out, nan, origin, core, runner)


# --- shared by both paths ------------------------------------------------------------------------
def _core_shape(core: tuple[int, int, int, int]) -> tuple[int, int]:
    return core[1] - core[0], core[3] - core[2]


def _touching(starts: np.ndarray, extent: int, lo: int, hi: int) -> np.ndarray:
    return starts[(starts < hi) & (starts + extent > lo)]


def _window_keys(plan: WindowPlan, core: tuple[int, int, int, int], leads: int) -> Iterator[Key]:
    """Every window of the plan that touches ``core``, for every lead index, in blending order."""
    for y0 in _touching(plan.starts_y, plan.extent[0], core[0], core[1]):
        for x0 in _touching(plan.starts_x, plan.extent[1], core[2], core[3]):
            for lead in range(leads):
                yield lead, int(y0), int(x0)


def _batches(keys: Iterator[Key], size: int) -> Iterator[list[Key]]:
    batch: list[Key] = []
    for key in keys:
        batch.append(key)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _blend(total: Any, weight_sum: Any, weights: Any, cut: Callable[[Key], Any],
           forward: Callable[[list[Any]], Any], core: tuple[int, int, int, int],
           plan: WindowPlan, batch_size: int) -> None:
    """Run the windows touching ``core`` in batches; add each one's weighted probabilities.

    A window's weight is added to ``weight_sum`` once, however many lead indices it serves.
    """
    counted: set[tuple[int, int]] = set()
    for batch in _batches(_window_keys(plan, core, total.shape[0]), batch_size):
        probs = forward([cut(key) for key in batch])
        for (lead, y0, x0), p in zip(batch, probs, strict=True):
            _accumulate(total[lead], weight_sum, p, weights, (y0, x0), core, plan.extent,
                        add_weight=(y0, x0) not in counted)
            counted.add((y0, x0))


def _accumulate(total: Any, weight_sum: Any, probs: Any, weights: Any, start: tuple[int, int],
                core: tuple[int, int, int, int], extent: tuple[int, int],
                add_weight: bool) -> None:
    """Add one window's weighted probabilities to the part of ``core`` it covers.

    Numpy arrays or torch tensors alike.
    """
    r0, r1 = max(start[0], core[0]), min(start[0] + extent[0], core[1])
    c0, c1 = max(start[1], core[2]), min(start[1] + extent[1], core[3])
    win = (slice(r0 - start[0], r1 - start[0]), slice(c0 - start[1], c1 - start[1]))
    out = (slice(r0 - core[0], r1 - core[0]), slice(c0 - core[2], c1 - core[2]))
    w = weights[win]
    total[(slice(None), *out)] += probs[(slice(None), *win)] * w
    if add_weight:
        weight_sum[out] += w


def _mask_no_data(out: np.ndarray, nan: np.ndarray, origin: tuple[int, int],
                  core: tuple[int, int, int, int], runner: object = None) -> np.ndarray:
    """NaN in every channel of ``out`` where the input (``nan``, the whole block) had no data.

    NaN already there where the input had data came from the network (NaN or Inf logits): a
    runner with ``report_nan_output`` is told how many pixels (it warns once).
    """
    core_nan = nan[:, core[0] - origin[0]:core[1] - origin[0],
                   core[2] - origin[1]:core[3] - origin[1]]
    report = getattr(runner, "report_nan_output", None)
    if report is not None:
        # the front and the first zone channel suffice: a NaN zone logit spoils every zone
        lost = (np.isnan(out[:, 0]) | np.isnan(out[:, 1])) & ~core_nan
        if lost.any():
            report(int(np.count_nonzero(lost)))
    out[np.broadcast_to(core_nan[:, None], out.shape)] = np.nan
    return out


# --- cutting windows -----------------------------------------------------------------------------
def _cut(clean: np.ndarray, key: Key, origin: tuple[int, int], plan: WindowPlan) -> np.ndarray:
    """One window of the block, padded with its edge pixels up to the network size."""
    (ey, ex), (sy, sx) = plan.extent, plan.size
    lead, r, c = key[0], key[1] - origin[0], key[2] - origin[1]
    window = clean[lead, r:r + ey, c:c + ex]
    if (ey, ex) != (sy, sx):  # an axis shorter than a tile: edge padding
        window = np.pad(window, ((0, sy - ey), (0, sx - ex)), mode="edge")
    return window


def _cut_on_device(x: Any, key: Key, origin: tuple[int, int], plan: WindowPlan) -> Any:
    """:func:`_cut` of a tensor on the device."""
    import torch.nn.functional as F

    (ey, ex), (sy, sx) = plan.extent, plan.size
    lead, r, c = key[0], key[1] - origin[0], key[2] - origin[1]
    window = x[lead, r:r + ey, c:c + ex]
    if (ey, ex) != (sy, sx):  # an axis shorter than a tile: edge padding
        window = F.pad(window[None, None], (0, sx - ex, 0, sy - ey), mode="replicate")[0, 0]
    return window
