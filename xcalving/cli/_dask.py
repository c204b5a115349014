"""Dask plumbing the subcommands share: connecting to a scheduler, computing with progress."""

from __future__ import annotations

import asyncio
import math
import os
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from xcalving.errors import InputError, WorkerLostError

#: Environment variable with the seconds a scheduler has to answer (``--scheduler-timeout``).
TIMEOUT_ENV = "XCALVING_SCHEDULER_TIMEOUT"
#: Seconds a scheduler has to answer when neither the option nor the variable says otherwise.
DEFAULT_TIMEOUT = 20.0


def scheduler_timeout(value: float | str | None = None) -> float:
    """Seconds to wait for a scheduler: ``value``, else ``$XCALVING_SCHEDULER_TIMEOUT``, else 20."""
    chosen = value if value is not None else os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT
    try:
        seconds = float(chosen)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise InputError(f"--scheduler-timeout (or {TIMEOUT_ENV}) must be seconds > 0, e.g. 20; "
                         f"got {chosen!r}.")
    return seconds


def _cannot_connect(address: str, reason: str) -> InputError:
    return InputError(
        f"--scheduler: cannot connect to a Dask scheduler at {address!r} ({reason}); give a "
        "running scheduler's address, e.g. tcp://10.0.0.5:8786, or leave --scheduler out."
    )


async def _identity(address: str, seconds: float) -> Any:
    from distributed.comm import connect as comm_connect  # heavy: distributed, loaded on first use

    comm = await comm_connect(address, timeout=seconds)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


def handshake(address: str, seconds: float) -> None:
    """Ask ``address`` who it is, waiting at most ``seconds``; refuse anything but a scheduler.

    ``distributed.Client(address, timeout=...)`` waits forever on a port that accepts a connection
    and says nothing; this asks in a thread of its own, bounded by ``seconds`` in all.
    """
    bounded = asyncio.wait_for(_identity(address, seconds), seconds)
    pool = ThreadPoolExecutor(1, thread_name_prefix="xcalving-handshake")
    try:
        reply = pool.submit(asyncio.run, bounded).result(timeout=seconds + 5)
    except (TimeoutError, FutureTimeout):
        raise _cannot_connect(address, f"nothing answered as a Dask scheduler within {seconds:g} "
                                       f"s; raise the wait with --scheduler-timeout or "
                                       f"{TIMEOUT_ENV}") from None
    except (ValueError, TypeError, OSError) as err:
        raise _cannot_connect(address, str(err) or type(err).__name__) from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    kind = reply.get("type") if isinstance(reply, dict) else None
    if kind != "Scheduler":
        raise _cannot_connect(address, f"a Dask {kind} answered, not a scheduler" if kind
                              else "what answered is not a Dask scheduler")


def connect(address: str, timeout: float | str | None = None) -> Any:
    """A Client of the running scheduler at ``address`` (--scheduler); never starts a cluster.

    The scheduler must answer within ``timeout`` seconds (default: :func:`scheduler_timeout`);
    call this before creating any output, so a wrong address leaves nothing behind.
    """
    from distributed import Client  # heavy: distributed, loaded on first use

    if not address.strip():
        raise InputError("--scheduler: the address is empty; give a running Dask scheduler's "
                         "address, e.g. tcp://10.0.0.5:8786, or leave --scheduler out.")
    seconds = scheduler_timeout(timeout)
    handshake(address, seconds)
    try:
        return Client(address, timeout=seconds)
    except (ValueError, TypeError, OSError, TimeoutError) as err:
        raise _cannot_connect(address, str(err)) from None


def compute_with_progress(delayed: Any, scheduler: Any, what: str) -> None:
    """Compute ``delayed`` with a progress bar: tqdm locally, distributed.progress on a cluster.

    ``scheduler`` is None (local threads), a connected ``distributed.Client`` (from
    :func:`connect`) or a scheduler address (connected to, and closed, here). A worker that dies
    (``KilledWorker``, most often the nanny killing it for memory) is reported as
    :class:`~xcalving.errors.WorkerLostError`, with what to change.
    """
    if scheduler is None:
        from xcalving._progress import progress  # heavy: xcalving._progress loads tqdm, dask

        with progress(desc=what):
            delayed.compute()
        return
    try:
        if isinstance(scheduler, str):
            with connect(scheduler) as client:
                _compute_on(client, delayed)
            return
        _compute_on(scheduler, delayed)
    except Exception as err:
        if type(err).__name__ != "KilledWorker":  # distributed's, without importing it here
            raise
        raise _worker_lost(err, what) from err


def _worker_lost(err: Exception, what: str) -> WorkerLostError:
    try:
        detail = str(err)
    except Exception:  # distributed's message needs the worker's state
        detail = type(err).__name__
    return WorkerLostError(
        f"{what}: a Dask worker died while computing, and so did each one that retried the "
        f"task ({detail}). Most often the worker was killed for using more memory than its limit: "
        "give each worker more memory (dask worker --memory-limit) or fewer threads "
        "(--nthreads 1), or ask less of each task: a smaller --batch-size or --tile, or a cube "
        "stored in smaller chunks. The worker's log says why it died.")


def _compute_on(client: Any, delayed: Any) -> None:
    from distributed import progress as cluster_progress  # heavy: distributed, loaded on first use

    future = client.compute(delayed)
    cluster_progress(future)
    future.result()
