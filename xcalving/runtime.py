"""Where and how networks run: device, precision, threads and CUDA streams.

Shared by prediction (each block resolves ``device="auto"`` on the process that runs it) and
training (one check of device names for the package). Torch and Dask load on first use.
"""

from __future__ import annotations

import contextlib
import os
import threading
from importlib import metadata
from typing import Any

from xcalving.errors import DeviceError, InputError

__all__ = [
    "PRECISIONS", "VERSION", "autocast", "client_active", "dask_threads_here", "planned_runtime",
    "resolve_device", "resolve_precision", "torch_threads_for_process",
]

def _installed_version() -> str:
    """The installed xcalving version, or ``"0+unknown"`` when run from a bare checkout."""
    try:
        return metadata.version("xcalving")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


#: The package version (``xcalving.__version__``), recorded in every output and weights file.
VERSION = _installed_version()

#: The precisions a network can run at; ``"auto"`` resolves to one of them.
PRECISIONS = ("fp32", "bf16", "fp16")


# --- device and precision ------------------------------------------------------------------------
def resolve_device(device: str) -> str:
    """``"auto"`` → ``"cuda"`` where this process sees a GPU, else ``"cpu"``; checks the rest."""
    import torch  # heavy: torch, loaded on first use

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(
            f"device={device!r} but torch sees no CUDA GPU in this process "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda is not None}). "
            "Use device='auto' (GPU where there is one, else CPU) or device='cpu'."
        )
    if str(device) not in ("cpu",) and not str(device).startswith(("cuda", "mps")):
        raise InputError(f"device must be 'auto', 'cpu' or 'cuda[:N]'; got {device!r}.")
    return str(device)


def check_precision(precision: str) -> None:
    """Raise unless ``precision`` is ``"auto"`` or one of :data:`PRECISIONS`."""
    if precision != "auto" and precision not in PRECISIONS:
        raise InputError(f"precision must be 'auto', 'fp32', 'bf16' or 'fp16'; got {precision!r}.")


def resolve_precision(precision: str, device: str) -> str:
    """``"auto"`` → bf16 (fp16 where bf16 is missing) on CUDA, fp32 on CPU."""
    check_precision(precision)
    if precision != "auto":
        return precision
    if not device.startswith("cuda"):
        return "fp32"
    import torch  # heavy: torch, loaded on first use

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def autocast(device: Any) -> Any:
    """Mixed precision for training on ``device``: bf16 where the GPU has it, else fp16; off on CPU.

    One home for training and fine-tuning (predict picks its precision with
    :func:`resolve_precision`).
    """
    import torch  # heavy: torch, loaded on first use

    enabled = device.type == "cuda"
    dtype = torch.bfloat16 if enabled and torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=enabled)


def planned_runtime(device: str, precision: str) -> tuple[str, str]:
    """The device and precision that the blocks of a prediction will run at, for its record.

    Without a ``dask.distributed`` client the blocks run in this process, so ``"auto"`` is
    resolved here, as the blocks will resolve it (and a missing GPU fails now, not inside a
    task). With a client, each worker resolves ``"auto"`` for itself; the record says so in
    words rather than guessing.
    """
    if not client_active():
        resolved = resolve_device(device)
        return resolved, resolve_precision(precision, resolved)
    if device == "auto":
        device = "per worker: cuda where it has a GPU, else cpu"
    if precision == "auto":
        precision = ("fp32" if device == "cpu" else
                     "per worker: bf16 (fp16 without bf16) on cuda, fp32 on cpu")
    return device, precision


# --- threads -------------------------------------------------------------------------------------
def dask_threads_here() -> int:
    """Number of Dask threads that run tasks in this process (1 outside Dask's thread pools)."""
    import dask  # heavy: dask, loaded on first use

    try:
        # optional: distributed may be missing (ImportError handled)
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        pass
    scheduler = dask.config.get("scheduler", None)
    if scheduler in ("sync", "synchronous", "single-threaded", "processes", "multiprocessing"):
        return 1
    from dask.system import CPU_COUNT  # heavy: dask, loaded on first use

    return int(dask.config.get("num_workers", None) or CPU_COUNT)


def torch_threads_for_process() -> int:
    """Torch intra-op threads for each Dask thread of this process: no oversubscription.

    ``max(1, cores of this process // Dask threads of this process)``; on a
    ``dask.distributed`` worker at most its ``OMP_NUM_THREADS`` (Dask's nanny sets it to 1, as
    several worker processes usually share a machine, and no process knows of the others); the
    environment variable ``XCALVING_TORCH_THREADS`` overrides both.
    """
    from dask.system import CPU_COUNT  # heavy: dask, loaded on first use

    override = os.environ.get("XCALVING_TORCH_THREADS", "").strip()
    if override:
        if not override.isdigit() or int(override) < 1:
            raise InputError(f"XCALVING_TORCH_THREADS must be a whole number >= 1; got "
                             f"{override!r}.")
        return int(override)
    threads = max(1, CPU_COUNT // dask_threads_here())
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) >= 1 and _on_distributed_worker():
        threads = min(threads, int(omp))
    return threads


def _on_distributed_worker() -> bool:
    try:
        # optional: distributed may be missing (ImportError handled)
        from distributed import get_worker

        get_worker()
        return True
    except (ImportError, ValueError):
        return False


def client_active() -> bool:
    """Whether a ``dask.distributed`` client is active here (then workers run the tasks)."""
    try:
        # optional: distributed may be missing (ImportError handled)
        from distributed import default_client

        default_client()
        return True
    except (ImportError, ValueError):
        return False


# --- CUDA streams --------------------------------------------------------------------------------
_STREAMS = threading.local()


def thread_stream(device: str) -> Any:
    """The calling thread's own CUDA stream on ``device`` (None off CUDA).

    One stream per thread lets the copies of one Dask task overlap the kernels of another.
    """
    if not device.startswith("cuda"):
        return None
    import torch  # heavy: torch, loaded on first use

    streams = _STREAMS.__dict__.setdefault("by_device", {})
    if device not in streams:
        streams[device] = torch.cuda.Stream(device=device)
    return streams[device]


def on_stream(stream: Any) -> Any:
    """Context manager that makes ``stream`` current (does nothing for None)."""
    if stream is None:
        return contextlib.nullcontext()
    import torch  # heavy: torch, loaded on first use

    return torch.cuda.stream(stream)
