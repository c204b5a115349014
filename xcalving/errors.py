"""Exceptions and warnings raised by xcalving.

Every exception subclasses the builtin a caller would catch for the same mistake (``ValueError``
for bad input, ``FileNotFoundError`` for missing weights, ...), so ``except ValueError`` keeps
working; ``except XcalvingError`` catches everything the package raises on purpose.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable
from types import ModuleType


class XcalvingError(Exception):
    """Base class of every error xcalving raises on purpose."""


class InputError(XcalvingError, ValueError):
    """An argument has the wrong value, shape, dims or dtype."""


class InputTypeError(XcalvingError, TypeError):
    """An argument has the wrong type."""


class UnknownScalingError(InputError):
    """``scaling="auto"`` cannot tell what the values are (dB, linear power, 8-bit grey).

    Nothing in the metadata says (no ``units`` attribute or tag): pass the scaling. The command
    line turns it into a message that names ``--scaling``.
    """


class InputNotFoundError(XcalvingError, FileNotFoundError):
    """An input file, folder, store or pattern is not there (or matches nothing)."""


class TargetExistsError(XcalvingError, FileExistsError):
    """A write target exists and the call was not asked to replace it (``mode="w-"``)."""


class MissingDependencyError(XcalvingError, ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


class WeightsNotFoundError(XcalvingError, FileNotFoundError):
    """A weights name or path does not lead to a weights file."""


class UnsafeFileError(XcalvingError, ValueError):
    """A file is refused because reading it could run code or it failed a checksum."""


class UnsafeTargetError(XcalvingError, FileExistsError):
    """A write target exists and is not something xcalving may replace, or it is an input."""


class DeviceError(XcalvingError, RuntimeError):
    """The requested compute device is not available."""


class DamagedFileError(InputError, OSError):
    """An input file or store cannot be read: truncated, damaged, or not what its name says.

    A ``ValueError`` like every bad input, and an ``OSError`` like the reading library's own
    error it replaces (rasterio's, zarr's), so either ``except`` keeps working.
    """


class WorkBudgetError(InputError):
    """A call would set more work in motion than its budget (``max_pixels=``) allows."""


class TargetBusyError(XcalvingError, BlockingIOError):
    """Another run (or thread) is writing the same target; its lock is held."""


class WriteVerificationError(XcalvingError, OSError):
    """A file written beside its target did not read back as written; the target is untouched."""


class WorkerLostError(XcalvingError, RuntimeError):
    """A Dask worker died while computing (most often killed for using too much memory)."""


class XcalvingWarning(UserWarning):
    """Base class of every warning xcalving emits."""


class PerformanceWarning(XcalvingWarning):
    """The computation is correct but will cost more time or memory than it needs to."""


def require(module: str, *, extra: str | None, what: str, name: str | None = None) -> ModuleType:
    """Import the optional dependency ``module``, or refuse naming the extra that installs it.

    ``extra`` is the ``xcalving[...]`` extra (None for a plain ``pip install module``); ``what``
    names the feature that needs it, ``name`` the package as people know it.

    Examples
    --------
    >>> require("json", extra=None, what="this example").__name__
    'json'
    >>> require("no_such_module", extra="tune", what="xcalving tune", name="Optuna")
    Traceback (most recent call last):
    ...
    xcalving.errors.MissingDependencyError: xcalving tune needs Optuna: pip install 'xcalving[tune]'
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        how = f"pip install 'xcalving[{extra}]'" if extra else f"pip install {module}"
        raise MissingDependencyError(f"{what} needs {name or module}: {how}") from err


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""`` when none is close."""
    names = [str(c) for c in choices]
    by_lower = {name.lower(): name for name in reversed(names)}  # the first of equal names wins
    close = difflib.get_close_matches(str(value).lower(), list(by_lower), n=1, cutoff=0.6)
    return f" Did you mean {by_lower[close[0]]!r}?" if close else ""
