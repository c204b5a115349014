"""Training throughput on CPU: the stream against memory, and a step against a bare pass.

``StreamVsMemory.track_stream_over_memory``: the same network (the shipped weights' width, 8),
the same optimizer, the same batches of 16 patches of 256 x 256, timed as ``A, B, A``: steps
fed by ``PatchStream`` through a DataLoader (decoding Zarr chunks, normalising, thickening the
front, augmenting) against steps fed from tensors prepared in memory beforehand. The figure is
stream throughput ÷ in-memory throughput; goal >= 0.95.

``StepVsBare.track_step_over_bare``: :func:`xcalving.train.loop.train_step` (learning-rate
schedule, the recipe's loss — Dice, class-balanced BCE and the distance penalty of the front,
cross-entropy of the zones — backward and Adam's update) against a bare forward and backward
pass of the same network on the same batch (the sum of the outputs as the loss, no optimizer),
timed as ``bare, step, bare``. The figure is step throughput ÷ bare throughput; goal >= 0.9.
``channels_last_gain`` is bare throughput in channels-last ÷ in the default memory format.

Run with ``make bench ASV_ARGS="--bench bench_train"`` or ``python benchmarks/bench_train.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

# workers 0: on 2 cores a loader process takes CPU from torch (see benchmarks/README.md)
STEPS, BATCH, WIDTH, WORKERS = 14, 16, 8, 0


def make_store(directory: str = ".") -> str:
    """A patch store of synthetic scenes in CaFFe layout (256 x 256 patches)."""
    from xcalving.data.caffe import caffe_to_zarr
    from xcalving.testing import write_synthetic_tree

    root = os.path.join(directory, "synthetic")
    data_raw = write_synthetic_tree(root, train_seeds=range(40), test_seeds=(), n_times=6,
                                    shape=(256, 256))
    return caffe_to_zarr(data_raw, os.path.join(directory, "patches.zarr"), window=256,
                         mode="w", progress=False)


make_store.timeout = 600  # type: ignore[attr-defined]


def _setup(channels_last: bool = True) -> tuple[Any, Any, Any]:
    import torch

    from xcalving.model import ASPPUNet

    torch.manual_seed(0)
    net = ASPPUNet(width=WIDTH)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net, torch.optim.Adam(net.parameters(), lr=1e-4), torch


def _config(store: str) -> Any:
    from xcalving.train import TrainConfig

    return TrainConfig(store=store, out=".", width=WIDTH, front_dilation=3, lr=5e-4,
                       zone_weight=0.5, schedule="cosine", front_loss="dice+bce+distance")


def _stream(store: str) -> Any:
    import torch

    from xcalving.data.stream import PatchStream

    stream = PatchStream(store, augment=True, seed=0)
    return torch.utils.data.DataLoader(stream, batch_size=BATCH, num_workers=WORKERS)


def _batches(store: str) -> list[dict[str, Any]]:
    batches = []
    for k, batch in enumerate(_stream(store)):
        if k == STEPS:
            break
        batches.append({key: value.clone() for key, value in batch.items()})
    return batches


def time_steps(batches: list[dict[str, Any]], net: Any, optimizer: Any, config: Any) -> float:
    import torch

    from xcalving.train.loop import train_step

    started = time.perf_counter()
    for batch in batches:
        train_step(net, batch, optimizer, config, torch.device("cpu"), config.lr)
    return time.perf_counter() - started


def time_bare(batches: list[dict[str, Any]], net: Any, channels_last: bool = True) -> float:
    import torch

    started = time.perf_counter()
    for batch in batches:
        image = batch["image"]
        if channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        out = net(image)
        net.zero_grad(set_to_none=True)
        (out["front"].sum() + out["zones"].sum()).backward()
    return time.perf_counter() - started


def time_stream(store: str, net: Any, optimizer: Any, config: Any) -> float:
    import torch

    from xcalving.train.loop import train_step

    started = time.perf_counter()
    for k, batch in enumerate(_stream(store)):
        if k == STEPS:
            break
        train_step(net, batch, optimizer, config, torch.device("cpu"), config.lr)
    return time.perf_counter() - started


def measure(store: str) -> dict[str, float]:
    """Stream ÷ memory throughput (steps both)."""
    net, optimizer, _ = _setup()
    config, batches = _config(store), _batches(store)
    time_steps(batches[:2], net, optimizer, config)  # warm-up
    memory_a = time_steps(batches, net, optimizer, config)
    stream = time_stream(store, net, optimizer, config)
    memory_b = time_steps(batches, net, optimizer, config)
    memory = (memory_a + memory_b) / 2
    return {"stream_s": stream, "memory_s": memory, "ratio": memory / stream}


def measure_step(store: str) -> dict[str, float]:
    """Training step ÷ bare forward+backward throughput, and the channels-last gain."""
    net, optimizer, _ = _setup()
    config, batches = _config(store), _batches(store)
    time_bare(batches[:2], net)  # warm-up
    bare_a = time_bare(batches, net)
    step = time_steps(batches, net, optimizer, config)
    bare_b = time_bare(batches, net)
    plain, _, _ = _setup(channels_last=False)
    time_bare(batches[:2], plain, channels_last=False)
    contiguous = time_bare(batches, plain, channels_last=False)
    bare = (bare_a + bare_b) / 2
    return {"bare_s": bare, "step_s": step, "ratio": bare / step,
            "contiguous_bare_s": contiguous, "channels_last_gain": contiguous / bare}


class _OneRun:
    """asv settings of a figure measured once per run, on one synthetic store."""

    timeout = 1800
    number = 1
    repeat = 1
    rounds = 1

    def setup_cache(self) -> str:
        return make_store()


class StreamVsMemory(_OneRun):
    def track_stream_over_memory(self, store: str) -> float:
        figures = measure(store)
        print(figures, file=sys.stderr)
        return figures["ratio"]

    track_stream_over_memory.unit = "ratio"  # type: ignore[attr-defined]


class StepVsBare(_OneRun):
    def track_step_over_bare(self, store: str) -> float:
        figures = measure_step(store)
        print(figures, file=sys.stderr)
        return figures["ratio"]

    track_step_over_bare.unit = "ratio"  # type: ignore[attr-defined]


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        store = make_store(tmp)
        print(measure_step(store))
        if "--stream" in sys.argv:
            print(measure(store))
