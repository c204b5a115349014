"""Blending windows into one block: every window of the plan that touches it, weighted.

One torch implementation serves both paths. :func:`predict_block` runs it on the CPU over the
block's own memory (no copy of the block is made); :func:`predict_block_on_device` sends the
block to the runner's GPU once, from pinned memory, on the calling thread's CUDA stream, and
brings one (L, 5, rows, cols) array back. For each block (:func:`_blend`):

1. every window position touching the core gets its share of each pixel
   (:func:`xcalving.windows.placements`: its blend weight ÷ the sum of the weights there, an
   outer product of two 1-D shares since the weights are), so the blended value is a
   weighted sum with no division pass;
2. windows are copied batch by batch into one reused (batch, C, H, W) buffer, and no data
   (NaN) is filled in place there;
3. for each window, the sigmoid and softmax of the part of its logits inside the core are
   added to the output with its share, in one ``addcmul_`` each (no temporary of the block's
   size).

Host-side cost is set by memory traffic, not Python: a 2048 x 2048 block with the default
windows has 25, and what costs is every pass over, and every fresh page of, its arrays
(``docs/performance.rst``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from xcalving.inference.runner import N_CHANNELS
from xcalving.runtime import on_stream, thread_stream
from xcalving.windows import Placement, WindowPlan, placements

if TYPE_CHECKING:
    from xcalving.inference.runner import _Runner

__all__ = ["predict_block", "predict_block_on_device"]


def predict_block(block: np.ndarray, origin: tuple[int, int], core: tuple[int, int, int, int],
                  plan: WindowPlan, runner: _Runner, fill: float,
                  batch_size: int) -> np.ndarray:
    """Blend every window that touches ``core`` into (L, 5, core rows, core cols), on the CPU.

    ``block`` is (L, rows, cols) normalised input with NaN for no data, or (L, C, rows, cols)
    for a network of C input channels (channel 0 the scene: its NaN mark no data; the others
    complete), whose pixel (0, 0) is global pixel ``origin``; ``core`` = (row0, row1, col0,
    col1) is the part to return, global. ``block`` is read, never written.
    """
    import torch  # heavy: torch, loaded on first use

    x = torch.from_numpy(_readable(block))
    out = np.zeros((block.shape[0], N_CHANNELS, *_core_shape(core)), np.float32)
    _blend(torch.from_numpy(out), x, origin, core, plan, runner, fill, batch_size,
           torch.from_numpy)
    return _mask_no_data(out, _core_no_data(block, origin, core), runner)


def predict_block_on_device(block: np.ndarray, origin: tuple[int, int],
                            core: tuple[int, int, int, int], plan: WindowPlan, runner: _Runner,
                            fill: float, batch_size: int) -> np.ndarray:
    """:func:`predict_block` with the windows cut and blended on the runner's device.

    Used on CUDA, where copying every window's five probability maps back to the host and
    blending them there costs more than the network: the block goes to the GPU once (from
    pinned memory), windows are sliced there, weighted sums accumulate there, and one
    (L, 5, rows, cols) array comes back. Each calling thread uses its own CUDA stream, so the
    copies of one block overlap the kernels of another. The same code as :func:`predict_block`.
    """
    import torch  # heavy: torch, loaded on first use

    dev = runner.device
    stream = thread_stream(dev)
    pinned = dev.startswith("cuda")
    host_in = torch.from_numpy(_readable(block))
    with on_stream(stream):
        x = (host_in.pin_memory() if pinned else host_in).to(dev, non_blocking=True)
        total = torch.zeros((block.shape[0], N_CHANNELS, *_core_shape(core)), device=dev)

        def to_device(values: np.ndarray) -> Any:
            return torch.from_numpy(values).to(dev)

        _blend(total, x, origin, core, plan, runner, fill, batch_size, to_device)
        host = torch.empty(total.shape, dtype=total.dtype, pin_memory=pinned)
        host.copy_(total, non_blocking=True)
        if stream is not None:
            stream.synchronize()
    out = host.numpy().copy() if pinned else host.numpy()  # pinned memory goes back to torch
    return _mask_no_data(out, _core_no_data(block, origin, core), runner)


# --- shared by both paths ------------------------------------------------------------------------
def _core_shape(core: tuple[int, int, int, int]) -> tuple[int, int]:
    return core[1] - core[0], core[3] - core[2]


def _readable(block: np.ndarray) -> np.ndarray:
    """``block`` (L, [C,] rows, cols) as (L, C, rows, cols) float32 that torch can share.

    No copy for what predict passes (float32 blocks it computed); a read-only or reversed
    array, or another dtype, is copied (torch shares neither, and warns about the first).
    """
    block = block.reshape(block.shape[0], -1, *block.shape[-2:])
    if (block.dtype != np.float32 or not block.flags.writeable
            or any(s < 0 for s in block.strides)):
        block = np.array(block, dtype=np.float32)
    return block


def _blend(total: Any, x: Any, origin: tuple[int, int], core: tuple[int, int, int, int],
           plan: WindowPlan, runner: _Runner, fill: float, batch_size: int,
           to_tensor: Any) -> None:
    """Add every window touching ``core`` to ``total`` (L, 5, rows, cols), weighted by its share.

    ``x`` (L, C, rows, cols) is the block as a tensor on ``total``'s device; ``to_tensor`` puts
    numpy arrays there: a window's 1-D row and column shares, whose outer product (its share
    of each pixel, :attr:`~xcalving.windows.Placement.weight`) is made there, once for all
    lead indices. The windows go to the network ``batch_size`` at a time, window
    positions in rows-first order and, for each, every lead index.
    """
    import torch  # heavy: torch, loaded on first use

    runner.use_threads()
    found = placements(plan, core)
    keys = [(lead, i) for i in range(len(found)) for lead in range(x.shape[0])]
    buffer = torch.empty((min(batch_size, len(keys)), x.shape[1], *plan.size), device=x.device)
    # work space of one window, reused: fresh memory per window costs page faults (and
    # disturbs the allocator for the network's own tensors), more than the arithmetic
    work = torch.empty(N_CHANNELS * math.prod(plan.extent), device=x.device)
    share_work = torch.empty(math.prod(plan.extent), device=x.device)
    shown = -1  # the position whose share is in share_work: leads follow each other
    for first in range(0, len(keys), batch_size):
        batch = keys[first:first + batch_size]
        windows = buffer[:len(batch)]
        for slot, (lead, i) in enumerate(batch):
            _cut_into(windows[slot], x[lead], found[i].start, origin, plan)
        windows.nan_to_num_(nan=fill, posinf=math.inf, neginf=-math.inf)  # NaN only
        zones, front = runner.logits(windows)
        for slot, (lead, i) in enumerate(batch):
            place = found[i]
            shape = (len(place.share_rows), len(place.share_cols))
            share = share_work[:shape[0] * shape[1]].view(shape)
            if shown != i:
                torch.outer(to_tensor(place.share_rows), to_tensor(place.share_cols), out=share)
                shown = i
            probs = work[:N_CHANNELS * shape[0] * shape[1]].view(N_CHANNELS, *shape)
            _add_window(total[lead], zones[slot], front[slot], place, share, probs)


def _cut_into(window: Any, x: Any, start: tuple[int, int], origin: tuple[int, int],
              plan: WindowPlan) -> None:
    """Copy the window at global ``start`` of ``x`` (C, rows, cols) into ``window`` (C, H, W).

    An axis shorter than a tile is padded with its edge pixels up to the network size.
    """
    (ey, ex), (sy, sx) = plan.extent, plan.size
    r, c = start[0] - origin[0], start[1] - origin[1]
    channels = window.shape[0]
    window[:, :ey, :ex].copy_(x[:, r:r + ey, c:c + ex])
    if ey < sy:
        window[:, ey:, :ex].copy_(window[:, ey - 1:ey, :ex].expand(channels, sy - ey, ex))
    if ex < sx:
        window[:, :, ex:].copy_(window[:, :, ex - 1:ex].expand(channels, sy, sx - ex))


def _add_window(total: Any, zones: Any, front: Any, place: Placement, share: Any,
                probs: Any) -> None:
    """Add one window's probabilities (its part inside the core) times its ``share``.

    ``total`` is (5, rows, cols) of one lead index, ``zones`` (4, H, W) and ``front``
    (1, H, W) the window's logits; ``probs`` (5, rows, cols of the part) is work space.
    """
    import torch  # heavy: torch, loaded on first use

    rows, cols = place.window
    torch.sigmoid(front[:, rows, cols], out=probs[:1])
    torch.softmax(zones[:, rows, cols], 0, out=probs[1:])
    total[(slice(None), *place.core)].addcmul_(probs, share)


def _core_no_data(block: np.ndarray, origin: tuple[int, int],
                  core: tuple[int, int, int, int]) -> np.ndarray:
    """Where the core of ``block`` has no data (NaN in the scene channel): (L, rows, cols) bool."""
    flat = block.reshape(block.shape[0], -1, *block.shape[-2:])[:, 0]
    return np.isnan(flat[:, core[0] - origin[0]:core[1] - origin[0],
                         core[2] - origin[1]:core[3] - origin[1]])


def _mask_no_data(out: np.ndarray, no_data: np.ndarray, runner: object = None) -> np.ndarray:
    """NaN in every channel of ``out`` (L, 5, rows, cols) where ``no_data`` (L, rows, cols).

    NaN already there where the input had data came from the network (NaN or Inf logits): a
    runner with ``report_nan_output`` is told how many pixels (it warns once). Checking costs
    one sum (NaN propagates through it); masking, a pass over the no-data pixels only, unless
    they are many.
    """
    report = getattr(runner, "report_nan_output", None)
    # the front and the first zone channel suffice: a NaN zone logit spoils every zone
    if report is not None and not np.isfinite(out[:, :2].sum(dtype=np.float32)):
        lost = (np.isnan(out[:, 0]) | np.isnan(out[:, 1])) & ~no_data
        if lost.any():
            report(int(np.count_nonzero(lost)))
    count = np.count_nonzero(no_data)
    if count * 8 > no_data.size:
        np.copyto(out, np.float32(np.nan), where=no_data[:, None])
    elif count:
        lead, rows, cols = np.nonzero(no_data)
        out[lead, :, rows, cols] = np.nan
    return out
