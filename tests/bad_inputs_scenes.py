"""Bad inputs of ``xcalving.open_scenes``: per-date GeoTIFF files that cannot make one cube.

Rows of the bad-input matrix (``tests/whole/test_bad_inputs.py`` runs and renders them);
``cases(Case)`` builds them with the matrix's own row type. :func:`write_scene` writes the
tiny GeoTIFFs they (and ``tests/io/test_scenes.py``) need.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_scene(path: Path, values: np.ndarray | None = None, *, crs: str | None = "EPSG:32624",
                origin: tuple[float, float] = (500_000.0, 7_000_000.0), spacing: float = 20.0,
                nodata: float | None = None, tags: dict | None = None,
                descriptions: tuple[str, ...] | None = None) -> Path:
    """Write ``values`` ((y, x) or (band, y, x), float32) as a tiled GeoTIFF; returns ``path``."""
    import rasterio
    from rasterio.transform import from_origin

    if values is None:
        values = np.arange(64 * 64, dtype=np.float32).reshape(64, 64) / 100.0 - 20.0
    values = np.asarray(values, np.float32)
    values = values[None] if values.ndim == 2 else values
    profile = {"driver": "GTiff", "height": values.shape[1], "width": values.shape[2],
               "count": values.shape[0], "dtype": "float32", "crs": crs, "nodata": nodata,
               "transform": from_origin(*origin, spacing, spacing), "tiled": True,
               "blockxsize": 16, "blockysize": 16}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values)
        if tags:
            dst.update_tags(**tags)
        for band, description in enumerate(descriptions or (), start=1):
            dst.set_band_description(band, description)
    return Path(path)


def _open(*args, **kwargs):
    from xcalving.io.scenes import open_scenes

    return open_scenes(*args, **kwargs)


def _two(tmp: Path, second: dict | None = None, name: str = "b_2020-01-17.tif") -> list[Path]:
    first = write_scene(tmp / "a_2020-01-05.tif", tags={"units": "dB"})
    return [first, write_scene(tmp / name, **({"tags": {"units": "dB"}} | (second or {})))]


def _garbage(tmp: Path) -> Path:
    path = tmp / "s_2020-01-05.tif"
    path.write_bytes(b"II*\x00 this is no TIFF")
    return path


def cases(Case) -> list:  # noqa: N803  (the row class of the matrix)
    """The rows, built with ``Case(id, area, what, error, builtin, match, run)``."""
    return [
        Case("scenes-missing", "scenes", "``open_scenes`` of a file that does not exist (a typo)",
             "InputNotFoundError", "FileNotFoundError", r"no file at .*Did you mean 'a_2020-01-05",
             lambda t: _open([_two(t)[0], t / "a_2020-01-50.tif"])),
        Case("scenes-glob", "scenes", "a glob pattern that matches no file", "InputNotFoundError",
             "FileNotFoundError", r"\*\.tiff' matches no file.*holds 2 entries",
             lambda t: _open(str(_two(t)[0].parent / "*.tiff"))),
        Case("scenes-no-crs", "scenes", "a GeoTIFF without a CRS", "InputError", "ValueError",
             r"has no CRS.*rio\.write_crs",
             lambda t: _open(write_scene(t / "s_2020-01-05.tif", crs=None))),
        Case("scenes-unreadable", "scenes", "a file that is not a GeoTIFF", "InputError",
             "ValueError", r"cannot be read as a raster", lambda t: _open(_garbage(t))),
        Case("scenes-no-date", "scenes", "a file with no date in its name or tags", "InputError",
             "ValueError", r"no date for \['scene\.tif'\].*times=",
             lambda t: _open(write_scene(t / "scene.tif"))),
        Case("scenes-duplicates", "scenes", "two scenes of the same date", "InputError",
             "ValueError", r"same date.*duplicates='first'.*duplicates='mean'",
             lambda t: _open(_two(t, name="c_20200105.tif"))),
        Case("scenes-units", "scenes", "scenes in dB and in linear power", "InputError",
             "ValueError", r"different units.*'linear'",
             lambda t: _open(_two(t, {"tags": {"units": "linear"}}))),
        Case("scenes-bounds", "scenes", "``bounds=`` that miss a scene", "InputError",
             "ValueError", r"does not overlap \['b_2020-01-17\.tif'\]",
             lambda t: _open(_two(t, {"origin": (600_000.0, 7_000_000.0)}),
                             bounds=(500_000, 6_999_000, 501_000, 7_000_000))),
        Case("scenes-apart", "scenes", "scenes that do not overlap each other", "InputError",
             "ValueError", r"overlaps none of the other scenes.*bounds=",
             lambda t: _open(_two(t, {"origin": (600_000.0, 7_000_000.0)}))),
        Case("scenes-geographic", "scenes", "``crs='EPSG:4326'`` (degrees)", "InputError",
             "ValueError", r"not projected in metres.*UTM",
             lambda t: _open(_two(t), crs="EPSG:4326")),
        Case("scenes-duplicates-option", "scenes", "``duplicates='mosaic'``", "InputError",
             "ValueError", r"duplicates must be 'error', 'first' or 'mean'",
             lambda t: _open(_two(t), duplicates="mosaic")),
        Case("scenes-times", "scenes", "``times=`` with a glob pattern", "InputError",
             "ValueError", r"times= pairs dates with files one by one",
             lambda t: _open(str(_two(t)[0].parent / "*.tif"), times=["2020-01-05"] * 2)),
    ]
