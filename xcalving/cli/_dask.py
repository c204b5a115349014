"""Dask plumbing the subcommands share: connecting to a scheduler, computing with progress."""

from __future__ import annotations

from typing import Any

from xcalving.errors import InputError


def connect(address: str) -> Any:
    """A Client of the running scheduler at ``address`` (--scheduler); never starts a cluster."""
    from distributed import Client

    if not address.strip():
        raise InputError("--scheduler: the address is empty; give a running Dask scheduler's "
                         "address, e.g. tcp://10.0.0.5:8786, or leave --scheduler out.")
    try:
        return Client(address, timeout=10)
    except (ValueError, TypeError, OSError, TimeoutError) as err:
        raise InputError(
            f"--scheduler: cannot connect to a Dask scheduler at {address!r} ({err}); give a "
            "running scheduler's address, e.g. tcp://10.0.0.5:8786."
        ) from None


def compute_with_progress(delayed: Any, scheduler: str | None, what: str) -> None:
    """Compute ``delayed`` with a progress bar: tqdm locally, distributed.progress on a cluster."""
    if scheduler is None:
        from xcalving._progress import progress

        with progress(desc=what):
            delayed.compute()
        return
    from distributed import progress as cluster_progress

    with connect(scheduler) as client:
        future = client.compute(delayed)
        cluster_progress(future)
        future.result()
