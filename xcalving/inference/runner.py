"""The per-process model cache: one network per weights, device and precision in each process.

A block task asks :func:`get_runner` for its network; the first task of a process builds it
from the :class:`~xcalving.model.weights.ModelSpec` (:func:`~xcalving.model.weights.build_module`),
every later task reuses it. :func:`model_cache_info` says what a process holds.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from xcalving.errors import InputError
from xcalving.runtime import torch_threads_for_process

if TYPE_CHECKING:
    from xcalving.model.weights import ModelSpec

__all__ = ["N_CHANNELS", "get_runner", "model_cache_info"]

#: Output channels of a runner: front probability, then the four zone probabilities.
N_CHANNELS = 5

_CACHE: dict[tuple[str, str, str], _Runner] = {}
_LOADS: dict[str, int] = {}
_LOCK = threading.Lock()


def model_cache_info() -> dict[str, Any]:
    """What this process has loaded: ``{"loaded": {sha256: times built}, "torch_threads": n}``.

    Each network is built once per process, device and precision, whatever the number of tasks.
    """
    import torch

    # the count the runners set on the threads that run blocks (torch's count is per thread)
    threads = max((r.threads for r in _CACHE.values()), default=torch.get_num_threads())
    return {"loaded": dict(_LOADS), "torch_threads": threads, "cached": len(_CACHE)}


def get_runner(spec: ModelSpec, device: str, precision: str) -> _Runner:
    """The network for ``spec`` on ``device``: built once per process, then served from cache."""
    from xcalving.model.weights import build_module

    key = (spec.sha256, device, precision)
    with _LOCK:
        if key not in _CACHE:
            module = build_module(spec).to(device).eval()
            _CACHE[key] = _Runner(module, device, precision, torch_threads_for_process())
            _LOADS[spec.sha256] = _LOADS.get(spec.sha256, 0) + 1
        return _CACHE[key]


class _Runner:
    """Call a network on a batch (B, 1, H, W) → probabilities (B, 5, H, W) float32.

    ``runner(numpy batch)`` returns numpy (the CPU path); ``runner.probs(tensor)`` takes and
    returns tensors on the runner's device (the GPU path, ``predict_block_on_device``).
    """

    def __init__(self, module: Any, device: str, precision: str, threads: int) -> None:
        self.module, self.device, self.precision = module, device, precision
        self.threads = threads

    def probs(self, x: Any) -> Any:
        """Front probability (sigmoid) and zone probabilities (softmax) of a batch tensor."""
        import torch

        zones, front = _check_output(self._forward(x))
        return torch.cat([torch.sigmoid(front), torch.softmax(zones, dim=1)], dim=1)

    def _forward(self, x: Any) -> Any:
        import torch

        # torch's intra-op thread count belongs to the calling thread, and each Dask pool thread
        # that runs a block may have its own: set it on every call (it costs nothing when equal)
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        with torch.inference_mode(), torch.autocast(
            device_type=self.device.split(":")[0], dtype=dtype or torch.float32,
            enabled=dtype is not None,
        ):
            return self.module(x)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        return self.probs(torch.from_numpy(batch).to(self.device)).cpu().numpy()


def _check_output(out: Any) -> tuple[Any, Any]:
    """The (zones, front) logits of a network's output, as float32, or a clear error."""
    if not isinstance(out, dict) or "front" not in out or "zones" not in out:
        raise InputError(
            "model must return a dict with 'front' (N×1×H×W) and 'zones' (N×4×H×W) logits, "
            f"like xcalving.model.ASPPUNet; got {type(out).__name__}."
        )
    zones, front = out["zones"].float(), out["front"].float()
    if zones.shape[1] != N_CHANNELS - 1 or front.shape[1] != 1:
        raise InputError(
            f"model returned zones with {zones.shape[1]} and front with {front.shape[1]} "
            "channels; predict needs 4 zone classes (no data, rock, glacier, ocean) and "
            "1 front."
        )
    return zones, front
