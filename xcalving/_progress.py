"""A tqdm progress bar for Dask's local schedulers."""

from __future__ import annotations

from typing import Any

from dask.callbacks import Callback


class progress(Callback):  # noqa: N801  (used like a function: ``with xcalving.progress():``)
    """Show a progress bar of finished tasks while Dask computes or writes.

    Works with the threaded and synchronous schedulers. On a ``dask.distributed`` cluster use
    ``distributed.progress(client.compute(...))`` or the dashboard instead.

    Examples
    --------
    >>> import dask.array as da, xcalving
    >>> with xcalving.progress(disable=True):
    ...     int(da.ones(10, chunks=5).sum().compute())
    10
    """

    def __init__(self, desc: str = "xcalving", **tqdm_kwargs: Any) -> None:
        super().__init__()
        self._desc, self._kwargs, self._bar = desc, tqdm_kwargs, None

    def _start_state(self, dsk: Any, state: Any) -> None:
        tqdm = tqdm_class()
        total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
        self._bar = tqdm(total=total, desc=self._desc, unit="task", **self._kwargs)

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def _finish(self, dsk: Any, state: Any, errored: bool) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def tqdm_class() -> Any:
    """``tqdm.auto.tqdm`` where Jupyter widgets can be drawn (ipywidgets), else text ``tqdm``.

    ``tqdm.auto`` in a notebook without ipywidgets warns and falls back to text anyway.
    """
    import importlib.util

    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    return tqdm
