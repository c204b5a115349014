"""Progress bars: ``tqdm.dask.TqdmCallback`` for Dask's local schedulers, text where no widgets."""

from __future__ import annotations

import importlib.util
from typing import Any

from tqdm.dask import TqdmCallback


class progress(TqdmCallback):  # noqa: N801  (used like a function: ``with xcalving.progress():``)
    """Show a progress bar of finished Dask tasks while Dask computes or writes.

    ``tqdm.dask.TqdmCallback`` with the bar of :func:`tqdm_class`: a widget in Jupyter where
    ipywidgets is installed, plain text elsewhere (a notebook without ipywidgets included). It
    covers every computation inside the ``with`` block, whatever starts it: ``.compute()``,
    ``to_zarr``, :func:`xcalving.fronts`. Each computation gets a bar of its own, counting its
    tasks (a predicted block is a few tasks, one of which runs the network).

    Works with the threaded and synchronous schedulers. On a ``dask.distributed`` cluster use
    ``distributed.progress(client.compute(...))`` or the dashboard instead.

    Parameters
    ----------
    desc
        Label in front of the bar.
    **tqdm_kwargs
        Passed to the tqdm bar (``disable=True``, ``file=``, ``leave=``, ...).

    Examples
    --------
    >>> import dask.array as da, xcalving
    >>> with xcalving.progress(disable=True):
    ...     int(da.ones(10, chunks=5).sum().compute())
    10
    """

    def __init__(self, desc: str = "xcalving", **tqdm_kwargs: Any) -> None:
        tqdm_kwargs.setdefault("unit", "task")
        super().__init__(tqdm_class=tqdm_class(), desc=desc, **tqdm_kwargs)


def tqdm_class() -> Any:
    """``tqdm.auto.tqdm`` where Jupyter widgets can be drawn (ipywidgets), else text ``tqdm``.

    ``tqdm.auto`` in a notebook without ipywidgets warns and falls back to text anyway.
    """
    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm  # choice: which tqdm depends on ipywidgets at call time
    else:
        from tqdm import tqdm  # choice: which tqdm depends on ipywidgets at call time
    return tqdm
