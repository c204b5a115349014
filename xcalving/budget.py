"""Work budgets: how much a call may set in motion before it asks for an explicit override.

A small file can declare an enormous raster, and ``resolution=`` can ask for a spacing far finer
than the data; either would start hours of work or take gigabytes of memory without a word. So
each call that starts work estimates it first, from metadata alone (shapes, spacings, windows),
and refuses above its budget with :class:`~xcalving.errors.WorkBudgetError`, whose message names
the override: ``max_pixels=`` (``--max-pixels`` on the command line; ``None`` or ``none``
switches the budget off). :func:`xcalving.open_scenes` counts the pixels of the cube it would
build, :func:`xcalving.predict` the pixels its windows would feed the network.
"""

from __future__ import annotations

import math
from typing import Any

from xcalving.errors import InputError, WorkBudgetError

__all__ = ["DEFAULT_MAX_PIXELS", "MAX_REFINEMENT", "check_budget", "check_max_pixels",
           "check_refinement", "window_pixels"]

#: Pixels a call may process unless told otherwise: 2**34, about 1.7e10 -- some forty
#: Sentinel-1 IW scenes at 10 m through windows overlapping by a quarter, hours on a CPU.
DEFAULT_MAX_PIXELS = 2**34
#: ``resolution=`` may refine the input grid by at most this factor per axis (64x the pixels)
#: while a budget is set: beyond it the network sees interpolated pixels, no new detail.
MAX_REFINEMENT = 8.0


def check_max_pixels(value: Any, *, what: str = "max_pixels") -> float | None:
    """``value`` as a budget: a positive number of pixels, or None for no budget.

    Examples
    --------
    >>> check_max_pixels(1e9), check_max_pixels(None)
    (1000000000.0, None)
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InputError(f"{what} must be a positive number of pixels (e.g. {what}=1e11) or "
                         f"None for no budget; got {value!r}.")
    return float(value)


def window_pixels(size: int, tile: int, overlap: int) -> int:
    """Pixels the windows along one axis of ``size`` pixels cover, overlaps counted twice.

    Examples
    --------
    >>> window_pixels(1000, 512, 128), window_pixels(100, 512, 128)
    (1536, 512)
    """
    step = max(1, tile - overlap)
    count = 1 if size <= tile else math.ceil((size - tile) / step) + 1
    return count * tile


def check_budget(pixels: float, max_pixels: float | None, *, what: str, detail: str,
                 fix: str) -> None:
    """Refuse ``pixels`` of work above ``max_pixels`` (None: no budget).

    ``what`` names the call, ``detail`` how the count comes about, ``fix`` what to do instead.

    Raises
    ------
    WorkBudgetError
        ``pixels > max_pixels`` (an ``InputError``, a ``ValueError``).
    """
    if max_pixels is None or pixels <= max_pixels:
        return
    raise WorkBudgetError(
        f"{what} would process {pixels:.3g} pixels ({detail}), more than its budget of "
        f"max_pixels={max_pixels:.3g}: hours of work or gigabytes of memory. {fix} If it is "
        "meant, raise the budget: max_pixels=<pixels> (or max_pixels=None for none; "
        "--max-pixels on the command line).")


def check_refinement(target: float, spacing: float, max_pixels: float | None, *,
                     what: str = "resolution") -> None:
    """Refuse running at ``target`` m on a ``spacing`` m input more than 8x finer per axis.

    Skipped where there is no budget (``max_pixels=None``).
    """
    ratio = spacing / target
    if max_pixels is None or ratio <= MAX_REFINEMENT:
        return
    raise WorkBudgetError(
        f"{what}={target:g} m is {ratio:.3g}x finer than the input's {spacing:g} m pixels: the "
        f"network would run on {ratio ** 2:.3g} interpolated pixels for each input pixel, with "
        "no detail gained. Pass the spacing the weights were trained at (resolution='model') "
        "or one near the input's; if it is meant, pass max_pixels=None (--max-pixels none).")
