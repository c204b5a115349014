"""Exceptions and warnings raised by xcalving.

Every exception subclasses the builtin a caller would catch for the same mistake (``ValueError``
for bad input, ``FileNotFoundError`` for missing weights, ...), so ``except ValueError`` keeps
working; ``except XcalvingError`` catches everything the package raises on purpose.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class XcalvingError(Exception):
    """Base class of every error xcalving raises on purpose."""


class InputError(XcalvingError, ValueError):
    """An argument has the wrong value, shape, dims or dtype."""


class InputTypeError(XcalvingError, TypeError):
    """An argument has the wrong type."""


class WeightsNotFoundError(XcalvingError, FileNotFoundError):
    """A weights name or path does not lead to a weights file."""


class UnsafeFileError(XcalvingError, ValueError):
    """A file is refused because reading it could run code or it failed a checksum."""


class UnsafeTargetError(XcalvingError, FileExistsError):
    """A write target exists and is not something xcalving may replace, or it is an input."""


class DeviceError(XcalvingError, RuntimeError):
    """The requested compute device is not available."""


class XcalvingWarning(UserWarning):
    """Base class of every warning xcalving emits."""


class PerformanceWarning(XcalvingWarning):
    """The computation is correct but will cost more time or memory than it needs to."""


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""`` when none is close."""
    names = [str(c) for c in choices]
    by_lower = {name.lower(): name for name in reversed(names)}  # the first of equal names wins
    close = difflib.get_close_matches(str(value).lower(), list(by_lower), n=1, cutoff=0.6)
    return f" Did you mean {by_lower[close[0]]!r}?" if close else ""
