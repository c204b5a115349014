"""Bytes a prediction store takes, against the float32 input it was predicted from.

A figure here is a ratio of two stores written in the same process, deterministic (no timing):
the directory bytes of ``predict(...).to_zarr(...)`` ÷ the directory bytes of the float32 input
cube written with the same chunks and Zarr's default codecs (zstd), both Zarr v3, coordinates
and metadata included.

* ``StoreBytes.track_store_ratio``: for predict's default (``dtype="uint8"``: probabilities
  CF-packed in 1/254 steps; ``outputs``: ``front_probability`` and ``zones``; goal ≤ 0.6), for
  ``outputs="all"`` packed, and for ``dtype="float32", outputs="all"`` (the store as it was
  before packing: five float32 channels' worth, ~5x).
* ``StoreBytes.track_max_error``: the largest |stored - in memory| of the probabilities after
  ``xr.open_zarr`` decodes the store (goal ≤ 1/250; 0 for float32).

Cube (2, 512, 512) float32 dB (``glacier_cube(2, shape=(512, 512), seed=3)``), one chunk a
scene; network: a tiny ``ASPPUNet(width=4)`` (seeded, random weights: its probabilities are
noisier than a trained network's, so they compress worse) or the shipped ``demo`` weights;
tile 128, overlap 32.

Run with ``make bench ASV_ARGS="--bench bench_outputs"`` or ``python benchmarks/bench_outputs.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

#: The measured cube: (time, y, x) float32 dB, one chunk a scene.
N_TIMES, SCENE = 2, 512
TILE, OVERLAP = 128, 32
#: The stores measured: name → predict's storage options.
VARIANTS = {
    "default": {},
    "uint8-all": {"outputs": "all"},
    "float32-all": {"dtype": "float32", "outputs": "all"},
}
NETWORKS = ("tiny", "demo")


def _log(message: str) -> None:
    print(f"[bench_outputs] {message}", file=sys.stderr, flush=True)


def store_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes of every file under ``path`` (a Zarr directory store)."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def _network(name: str) -> Any:
    if name == "demo":
        return "demo"
    import torch

    from xcalving.model import ASPPUNet

    torch.manual_seed(0)
    return ASPPUNet(width=4).eval()


@cache
def measure(network: str, variant: str) -> tuple[float, float]:
    """(store bytes ÷ float32 input bytes, largest probability error) of one store."""
    import numpy as np
    import xarray as xr

    import xcalving
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(N_TIMES, shape=(SCENE, SCENE), seed=3)
    sar = cube.sar.chunk({"time": 1, "y": SCENE, "x": SCENE})
    pred = xcalving.predict(sar, _network(network), tile=TILE, overlap=OVERLAP,
                            **VARIANTS[variant])
    with tempfile.TemporaryDirectory() as tmp:
        sar.to_dataset(name="sar").to_zarr(f"{tmp}/in.zarr", zarr_format=3, consolidated=False)
        pred.to_zarr(f"{tmp}/pred.zarr", zarr_format=3, consolidated=False)
        ratio = store_bytes(f"{tmp}/pred.zarr") / store_bytes(f"{tmp}/in.zarr")
        stored = xr.open_zarr(f"{tmp}/pred.zarr", decode_coords="all", consolidated=False)
        memory = pred.compute()
        error = max(float(np.nanmax(np.abs(stored[v].values - memory[v].values)))
                    for v in ("front_probability", "zone_probability") if v in memory)
    _log(f"{network}, {variant}: store / float32 input = {ratio:.3f}, largest error {error:.4f}")
    return ratio, error


class StoreBytes:
    """Prediction store bytes ÷ float32 input store bytes, and the packing's largest error."""

    params = [list(NETWORKS), list(VARIANTS)]
    param_names = ["network", "variant"]
    timeout = 600

    def track_store_ratio(self, network: str, variant: str) -> float:
        return measure(network, variant)[0]

    track_store_ratio.unit = "store bytes / float32 input bytes"  # type: ignore[attr-defined]

    def track_max_error(self, network: str, variant: str) -> float:
        return measure(network, variant)[1]

    track_max_error.unit = "probability"  # type: ignore[attr-defined]


if __name__ == "__main__":
    for network in NETWORKS:
        for variant in VARIANTS:
            measure(network, variant)
