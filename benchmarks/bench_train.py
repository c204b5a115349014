"""Training throughput from the Zarr patch stream against in-memory tensors, in one process.

``track_stream_over_memory``: the same network (the shipped weights' width, 8), the same
optimizer, the same batches of 16 patches of 256 x 256, timed as ``A, B, A``: steps fed by
``PatchStream`` through a DataLoader (decoding Zarr chunks, normalising, thickening the front,
augmenting) against steps fed from tensors prepared in memory beforehand. The figure is
stream throughput ÷ in-memory throughput; goal >= 0.95.

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
    from xcalving.data.caffe import caffe_to_zarr, write_synthetic_tree

    root = os.path.join(directory, "synthetic")
    data_raw = write_synthetic_tree(root, train_seeds=range(40), test_seeds=(), n_times=6,
                                    shape=(256, 256))
    return caffe_to_zarr(data_raw, os.path.join(directory, "patches.zarr"), window=256,
                         mode="w", progress=False)


make_store.timeout = 600  # type: ignore[attr-defined]


def _setup() -> tuple[Any, Any, Any]:
    import torch

    from xcalving.model import ASPPUNet

    torch.manual_seed(0)
    net = ASPPUNet(width=WIDTH).to(memory_format=torch.channels_last)
    return net, torch.optim.Adam(net.parameters(), lr=1e-4), torch


def _step(net: Any, optimizer: Any, batch: dict[str, Any], torch: Any) -> None:
    from xcalving.train import _loss, _to

    batch = _to(batch, torch.device("cpu"))
    loss = _loss(net(batch["image"]), batch, 1.0)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _stream(store: str) -> Any:
    import torch

    from xcalving.data.stream import PatchStream

    stream = PatchStream(store, augment=True, seed=0)
    return torch.utils.data.DataLoader(stream, batch_size=BATCH, num_workers=WORKERS)


def time_stream(store: str, net: Any, optimizer: Any, torch: Any) -> float:
    started = time.perf_counter()
    for k, batch in enumerate(_stream(store)):
        if k == STEPS:
            break
        _step(net, optimizer, batch, torch)
    return time.perf_counter() - started


def time_memory(batches: list[dict[str, Any]], net: Any, optimizer: Any, torch: Any) -> float:
    started = time.perf_counter()
    for batch in batches:
        _step(net, optimizer, batch, torch)
    return time.perf_counter() - started


def measure(store: str) -> dict[str, float]:
    net, optimizer, torch = _setup()
    batches = []
    for k, batch in enumerate(_stream(store)):  # the same data, prepared before timing
        if k == STEPS:
            break
        batches.append({key: value.clone() for key, value in batch.items()})
    time_memory(batches[:2], net, optimizer, torch)  # warm-up
    memory_a = time_memory(batches, net, optimizer, torch)
    stream = time_stream(store, net, optimizer, torch)
    memory_b = time_memory(batches, net, optimizer, torch)
    memory = (memory_a + memory_b) / 2
    return {"stream_s": stream, "memory_s": memory, "ratio": memory / stream}


class StreamVsMemory:
    timeout = 1800
    number = 1
    repeat = 1
    rounds = 1

    def setup_cache(self) -> str:
        return make_store()

    def track_stream_over_memory(self, store: str) -> float:
        figures = measure(store)
        print(figures, file=sys.stderr)
        return figures["ratio"]

    track_stream_over_memory.unit = "ratio"  # type: ignore[attr-defined]


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print(measure(make_store(tmp)))
