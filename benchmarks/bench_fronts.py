"""How often ``fronts`` runs the network over a lazy prediction, counted, not timed.

``fronts`` is where a lazy prediction is computed; each block should be computed once. A
stand-in network counts its forward calls (a module-level counter: predict copies the module
into the graph), with Dask's synchronous scheduler in this process, for:

* ``compute``: ``pred.compute()``, the reference (every window of the plan, once);
* ``fronts`` / ``fronts_probability``: ``xcalving.fronts(pred)`` on the lazy prediction, by
  zones and by probability (goal: the reference's count, not more);
* ``to_zarr_then_fronts``: ``pred.to_zarr(...)`` then ``fronts`` on the same lazy object (the
  network runs twice: the documented way is the next one);
* ``stored``: ``fronts`` on the prediction written with ``write_cube`` and reopened (goal 0).

Before the one-pass ``fronts`` (each variable's graph optimised apart inside its own
``dask.delayed``), ``fronts`` ran the network 3x the reference and ``to_zarr_then_fronts`` 4x.

Run with ``make bench ASV_ARGS="--bench bench_fronts"`` or ``python benchmarks/bench_fronts.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from typing import Any

#: The lazy cube: (time, y, x), chunks smaller than a scene so blocks are shared between tasks.
N_TIMES, SCENE, CHUNK = 2, 512, 256
TILE, OVERLAP = 64, 16
CALLS = {"forward": 0}


def _counting_network() -> Any:
    """A small ASPPUNet whose forward calls add to :data:`CALLS`."""
    import torch

    from xcalving.model.unet import ASPPUNet

    class Counting(ASPPUNet):
        def forward(self, x: Any) -> Any:
            CALLS["forward"] += 1
            return super().forward(x)

    torch.manual_seed(0)
    return Counting(width=4).eval()


def _prediction() -> Any:
    import xcalving
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(N_TIMES, shape=(SCENE, SCENE), seed=3)
    sar = cube.sar.chunk({"time": 1, "y": CHUNK, "x": CHUNK})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rechunking for the windows warns
        return xcalving.predict(sar, _counting_network(), tile=TILE, overlap=OVERLAP)


def count_calls(job: Callable[[], Any]) -> int:
    """Forward calls made by ``job()`` run with the synchronous scheduler."""
    import dask

    CALLS["forward"] = 0
    with dask.config.set(scheduler="synchronous"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        job()
    return CALLS["forward"]


def all_counts() -> dict[str, int]:
    """The forward calls of every job of this file, on one lazy prediction."""
    import xcalving

    pred = _prediction()
    with tempfile.TemporaryDirectory() as tmp:
        stored = os.path.join(tmp, "stored.zarr")
        counts = {
            "compute": count_calls(pred.compute),
            "fronts": count_calls(lambda: xcalving.fronts(pred, min_length_px=0)),
            "fronts_probability": count_calls(
                lambda: xcalving.fronts(pred, method="probability", min_length_px=0)),
            "to_zarr_then_fronts": count_calls(lambda: (
                pred.to_zarr(os.path.join(tmp, "p.zarr")),
                xcalving.fronts(pred, min_length_px=0))),
        }
        count_calls(lambda: xcalving.write_cube(pred, stored))
        counts["stored"] = count_calls(
            lambda: xcalving.fronts(xcalving.open_cube(stored), min_length_px=0))
    return counts


class FrontsPasses:
    """Network forward calls of each job, and the ratio of each to ``pred.compute()``'s."""

    params = [["compute", "fronts", "fronts_probability", "to_zarr_then_fronts", "stored"]]
    param_names = ["job"]
    rounds = 1
    number = 1
    repeat = 1
    timeout = 600

    def setup_cache(self) -> dict[str, int]:
        return all_counts()

    def track_forward_calls(self, counts: dict[str, int], job: str) -> float:
        return float(counts[job])

    track_forward_calls.unit = "forward calls"  # type: ignore[attr-defined]

    def track_passes(self, counts: dict[str, int], job: str) -> float:
        return counts[job] / counts["compute"]

    track_passes.unit = "x pred.compute()"  # type: ignore[attr-defined]


if __name__ == "__main__":
    figures = all_counts()
    for name, calls in figures.items():
        print(f"{name:>20}: {calls:4d} forward calls = {calls / figures['compute']:.2f} x "
              "pred.compute()", file=sys.stdout)
