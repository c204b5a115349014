"""CaFFe scene names: ``GLACIER_DATE_SATELLITE_RESOLUTION_QUALITY_ORBIT`` and their fields."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass

from xcalving.errors import InputError, InputTypeError

__all__ = ["NAME_PATTERN", "SceneName", "parse_name"]

NAME_PATTERN = "GLACIER_DATE_SATELLITE_RESOLUTION_QUALITY_ORBIT"
_NAME_RE = re.compile(
    r"(?P<glacier>[A-Za-z][A-Za-z0-9-]*)_(?P<date>\d{4}-\d{2}-\d{2})"
    r"_(?P<satellite>[A-Za-z][A-Za-z0-9-]*)_(?P<resolution>\d+(?:\.\d+)?)"
    r"_(?P<quality>[1-6])_(?P<orbit>\d+)"
)
_SUFFIX_RE = re.compile(r"(_zones|_front)?(\.png)?$", re.IGNORECASE)


@dataclass(frozen=True)
class SceneName:
    """The fields of a CaFFe scene name ``GLACIER_DATE_SATELLITE_RESOLUTION_QUALITY_ORBIT``.

    Parameters
    ----------
    glacier
        Glacier code as written in the name (``"COL"``, ``"Jorum"``: case is kept).
    date
        Acquisition date.
    satellite
        Sensor code (``"TSX"``, ``"ERS"``, ``"S1"``, ...).
    resolution
        Original pixel spacing in metres.
    quality
        1 (best) to 6 (worst).
    orbit
        Orbit or track, a digit string with its leading zeros (``"092"``).

    Examples
    --------
    >>> name = parse_name("COL_2011-11-13_TDX_7_1_092_zones.png")
    >>> name.glacier, name.date.isoformat(), name.resolution, name.orbit
    ('COL', '2011-11-13', 7.0, '092')
    >>> name.stem
    'COL_2011-11-13_TDX_7_1_092'
    """

    glacier: str
    date: dt.date
    satellite: str
    resolution: float
    quality: int
    orbit: str

    def __post_init__(self) -> None:
        # Checking the rebuilt stem keeps one definition of a legal name: the parser's.
        if not isinstance(self.date, dt.date) or not _NAME_RE.fullmatch(self.stem):
            raise InputError(
                f"SceneName fields {self!r} do not make a CaFFe name {NAME_PATTERN}: glacier and "
                "satellite are letters/digits, date a datetime.date, resolution > 0, quality 1 "
                "to 6, orbit digits. Fix the offending field."
            )

    @property
    def stem(self) -> str:
        """The scene name without label suffix or extension."""
        date = self.date.isoformat() if isinstance(self.date, dt.date) else str(self.date)
        return "_".join([self.glacier, date, self.satellite, f"{self.resolution:g}",
                         str(self.quality), str(self.orbit)])

    def __str__(self) -> str:
        return self.stem


def parse_name(name: str | os.PathLike[str]) -> SceneName:
    """Parse a CaFFe scene name (a stem or a file name, label suffix and ``.png`` optional).

    Parameters
    ----------
    name
        ``"COL_2011-11-13_TDX_7_1_092"``, ``".../JAC_2015-12-23_TSX_6_1_005_front.png"``, ...

    Returns
    -------
    SceneName

    Raises
    ------
    InputError
        When the name does not follow ``GLACIER_DATE_SATELLITE_RESOLUTION_QUALITY_ORBIT``.
    """
    if not isinstance(name, str | os.PathLike):
        raise InputTypeError(f"name must be a file name or path; got {type(name).__name__}.")
    given = os.fspath(name)
    stem = _SUFFIX_RE.sub("", os.path.basename(given), count=1)
    match = _NAME_RE.fullmatch(stem)
    date = _iso_date(match["date"]) if match else None
    if match is None or date is None:
        raise InputError(
            f"{given!r} is not a CaFFe scene name: expected {NAME_PATTERN}[_zones|_front][.png], "
            "e.g. 'COL_2011-11-13_TDX_7_1_092.png' (DATE a real YYYY-MM-DD, RESOLUTION metres, "
            "QUALITY 1 to 6, ORBIT digits). Rename the file or move it out of the dataset."
        )
    return SceneName(match["glacier"], date, match["satellite"], float(match["resolution"]),
                     int(match["quality"]), match["orbit"])


def _iso_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:  # 2011-02-30 matches the pattern but is no date
        return None
