"""Bad inputs of fronts, front files and the terminus box.

Rows of the bad-input matrix (``tests/whole/test_bad_inputs.py`` runs and renders them); kept apart
because they are many. ``cases(Case)`` builds them with the matrix's own row type.
"""

from __future__ import annotations

from pathlib import Path


# --- inputs ---------------------------------------------------------------------------------------
def _zones():
    """A two-date zone cube, 32 x 32 at 20 m in EPSG:32624: glacier left, ocean right."""
    import numpy as np
    import pandas as pd
    import rioxarray  # noqa: F401  (registers .rio)
    import xarray as xr

    import xcalving  # noqa: F401  (registers .calving)

    values = np.full((2, 32, 32), 2, np.uint8)
    values[:, :, 20:] = 3
    ds = xr.Dataset({"zones": (("time", "y", "x"), values)},
                    coords={"time": pd.date_range("2020-01-01", periods=2),
                            "y": 1000.0 - 20.0 * np.arange(32), "x": 20.0 * np.arange(32)})
    return ds.rio.write_crs(32624)


def _frame():
    return _zones().calving.fronts(min_length_px=0)


def _write(tmp: Path, name: str, **kwargs):
    from xcalving.vector import write_fronts

    return write_fronts(_frame(), tmp / name, **kwargs)


def _check(path, **kwargs):
    from xcalving.vector import check_fronts_path

    return check_fronts_path(path, **kwargs)


def _existing(tmp: Path) -> Path:
    path = tmp / "fronts.gpkg"
    path.write_bytes(b"someone else's file")
    return path


def _folder(tmp: Path) -> Path:
    path = tmp / "fronts.parquet"
    path.mkdir()
    return path


# a front retreating 591 m inside a box drawn from the ocean end (upstream edge at y = 5000)
def _retreat():
    import geopandas as gpd
    import pandas as pd
    import shapely

    return gpd.GeoDataFrame(
        geometry=[shapely.LineString([(-100, y), (1100, y)]) for y in (3000, 2409)],
        index=pd.date_range("2020-01-01", periods=2, freq="366D", name="time"), crs=32624)


def _change(box=None, **kwargs):
    import shapely

    from xcalving.vector import terminus_change

    box = box or shapely.Polygon([(0, 5000), (1000, 5000), (1000, 0), (0, 0)])
    return terminus_change(_retreat(), box, **kwargs)


def _centreline(coords, width=500.0):
    import shapely

    from xcalving.vector import box_from_centreline

    return box_from_centreline(shapely.LineString(coords), width)


def _orient():
    import shapely

    from xcalving.vector import orient_box

    return orient_box(shapely.box(0, 0, 1000, 5000))


def cases(Case) -> list:  # noqa: N803  (the row class of the matrix)
    """The rows, built with ``Case(id, area, what, error, builtin, match, run)``."""
    import shapely

    return [
        Case("fronts-no-yx", "fronts", "a Dataset on ``lat``/``lon`` instead of ``y``/``x``",
             "InputError", "ValueError", r"ds must have dims \(time,\) y, x.*ds\.rename",
             lambda t: _zones().rename(y="lat", x="lon").calving.fronts()),
        Case("fronts-two-scene-dims", "fronts", "a Dataset with two dims besides ``y``/``x``",
             "InputError", "ValueError", r"one scene dim of any name.*isel\(run=0\)",
             lambda t: _zones().expand_dims(run=2).calving.fronts()),
        Case("fronts-export-extension", "fronts", "``write_fronts`` to a ``.shp`` file",
             "InputError", "ValueError",
             r"Shapefiles are not written: they cut field names to 10 characters.*Use a "
             r"GeoPackage.*fronts\.gpkg",
             lambda t: _write(t, "fronts.shp")),
        Case("fronts-export-unknown-extension", "fronts", "``write_fronts`` to a ``.geotiff``",
             "InputError", "ValueError",
             r"names no front format; use \.parquet \(GeoParquet\), \.gpkg",
             lambda t: _write(t, "fronts.geotiff")),
        Case("fronts-export-no-extension", "fronts", "``check_fronts_path`` of a name without "
             "an extension", "InputError", "ValueError", r"has no extension.*\.fgb",
             lambda t: _check(t / "fronts")),
        Case("fronts-export-existing", "fronts", "``check_fronts_path`` of an existing file",
             "TargetExistsError", "FileExistsError", r"exists; choose a new path or pass "
             r"overwrite=True", lambda t: _check(_existing(t))),
        Case("fronts-export-foreign", "fronts", "``write_fronts(..., overwrite=True)`` onto a "
             "file that is not a front file", "TargetExistsError", "FileExistsError",
             r"not a front file written by xcalving.*remove the file yourself",
             lambda t: _write(t, _existing(t).name, overwrite=True)),
        Case("fronts-export-folder-missing", "fronts", "``write_fronts`` into a folder that "
             "does not exist", "InputNotFoundError", "FileNotFoundError",
             r"folder .* does not exist; create it first",
             lambda t: _write(t / "nope", "fronts.parquet")),
        Case("fronts-export-directory", "fronts", "``write_fronts`` onto a directory, even "
             "with ``overwrite=True``", "InputError", "ValueError",
             r"is a directory; write_fronts writes one file",
             lambda t: _write(_folder(t).parent, "fronts.parquet", overwrite=True)),
        Case("fronts-export-frame", "fronts", "``write_fronts`` of a plain DataFrame",
             "InputTypeError", "TypeError", r"frame must be a GeoDataFrame",
             lambda t: __import__("xcalving.vector.api").vector.write_fronts(
                 __import__("pandas").DataFrame({"a": [1]}), t / "f.parquet")),
        Case("change-wrong-way", "change", "a box whose first edge is at the ocean end "
             "(``ocean=`` given)", "InputError", "ValueError",
             r"wrong way round.*orient_box.*box_from_centreline",
             lambda t: _change(ocean=shapely.Point(500, 6000))),
        Case("change-ocean-undecided", "change", "``ocean=`` a polygon covering the whole box",
             "InputError", "ValueError", r"cannot tell which end is the ocean's",
             lambda t: _change(ocean=shapely.box(-1e4, -1e4, 1e4, 1e4))),
        Case("change-orient-no-hint", "change", "``orient_box`` without ``ocean=`` or "
             "``zones=``", "InputError", "ValueError", r"needs ocean= .* or zones=",
             lambda t: _orient()),
        Case("change-centreline-degenerate", "change", "``box_from_centreline`` of a line "
             "that ends where it starts", "InputError", "ValueError",
             r"first and last points must differ",
             lambda t: _centreline([(0, 0), (100, 100), (0, 0)])),
        Case("change-centreline-width", "change", "``box_from_centreline`` with ``width=0``",
             "InputError", "ValueError", r"width must be .* a number > 0",
             lambda t: _centreline([(0, 0), (0, 1000)], width=0)),
    ]
