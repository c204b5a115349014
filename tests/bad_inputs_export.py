"""Bad inputs of exporting results: GeoTIFFs, front files, and files that hide their values.

``export_geotiffs`` / ``xcalving export``, ``xcalving fronts`` front files (Shapefile, ``--gpkg``)
and ``xcalving predict`` on GeoTIFFs without a ``units`` tag. Rows of the bad-input matrix
(``tests/whole/test_bad_inputs.py`` runs and renders them); ``cases(Case)`` builds them with the
matrix's own row type.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr


def _cube() -> xr.DataArray:
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(2, shape=(64, 64), resolution=20.0, seed=3)
    return cube.sar


def _store(tmp: Path) -> str:
    """A small prediction store (zones only: no network needed)."""
    import xcalving
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(2, shape=(64, 64), resolution=20.0, seed=3)
    pred = xr.Dataset({"zones": cube.zones}).rio.write_crs(cube.rio.crs)
    return xcalving.write_cube(pred, tmp / "pred.zarr")


def _export(tmp: Path, pred, out, **kwargs):
    from xcalving.io.export import export_geotiffs

    return export_geotiffs(pred, out, **kwargs)


def _cube_store(tmp: Path) -> str:
    import xcalving

    return xcalving.write_cube(_cube().to_dataset(name="sar"), tmp / "cube.zarr")


def _existing_folder(tmp: Path) -> Path:
    folder = tmp / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    return folder


def _cli(argv: list[str]) -> None:
    from xcalving.cli import main

    raise SystemExit(main([str(a) for a in argv]))


def _unlabelled_scenes(tmp: Path) -> str:
    """Sentinel-1 RTC-like GeoTIFFs: linear power and no ``units`` tag, as they come."""
    from bad_inputs_scenes import write_scene

    (tmp / "s1").mkdir()
    write_scene(tmp / "s1" / "S1_2020-01-05.tif", np.full((64, 64), 0.05, np.float32))
    return str(tmp / "s1" / "*.tif")


def cases(Case) -> list:  # noqa: N803  (the row class of the matrix)
    """The rows, built with ``Case(id, area, what, error, builtin, match, run)``."""
    return [
        Case("export-no-store", "export", "``export_geotiffs`` of a path with nothing there",
             "InputNotFoundError", "FileNotFoundError", r"pred: .*nopred\.zarr' is not a Zarr "
             r"store \(nothing is there\)", lambda t: _export(t, t / "nopred.zarr", t / "tifs")),
        Case("export-not-a-store", "export", "``export_geotiffs`` of a GeoTIFF, not a store",
             "InputError", "ValueError", r"is not a Zarr store \(a file\); give the prediction "
             r"store", lambda t: _export(t, Path(_unlabelled_scenes(t)).parent
                                          / "S1_2020-01-05.tif", t / "tifs")),
        Case("export-no-rasters", "export", "a Dataset without variables on ``y``/``x``",
             "InputError", "ValueError", r"no raster variable to export",
             lambda t: _export(t, xr.Dataset({"n": ("time", [1, 2])}), t / "tifs")),
        Case("export-variable-typo", "export", "``variables=['zone']``", "InputError",
             "ValueError", r"variables: 'zone' is not a raster variable.*Did you mean 'zones'",
             lambda t: _export(t, _store(t), t / "tifs", variables=["zone"])),
        Case("export-inside-input", "export", "``out`` inside the prediction store",
             "InputError", "ValueError", r"out: .*lies inside the input",
             lambda t: _export(t, s := _store(t), Path(s) / "tifs")),
        Case("export-existing", "export", "``out`` an existing folder (``mode='w-'``)",
             "TargetExistsError", "FileExistsError", r"already exists.*mode='w'",
             lambda t: _export(t, _store(t), _existing_folder(t))),
        Case("export-replace-store", "export", "``mode='w'`` onto a Zarr store (no export "
             "folder)", "UnsafeTargetError", "FileExistsError",
             r"out: .*cube\.zarr' is not a folder of GeoTIFFs that xcalving export wrote",
             lambda t: _export(t, _store(t), _cube_store(t), mode="w")),
        Case("cli-export-wrong-store", "CLI", "``xcalving export`` of a GeoTIFF, not a store",
             "exit 1", "-", r"STORE: .* is not a Zarr store \(a file\)",
             lambda t: _cli(["export", Path(_unlabelled_scenes(t)).parent / "S1_2020-01-05.tif",
                             "--out", t / "tifs"])),
        Case("cli-export-inside-store", "CLI", "``xcalving export`` with ``--out`` inside the "
             "store", "exit 1", "-", r"--out: .*lies inside the input",
             lambda t: _cli(["export", s := _store(t), "--out", Path(s) / "tifs"])),
        Case("cli-fronts-shapefile", "CLI", "``xcalving fronts --out fronts.shp``", "exit 1",
             "-", r"--out: .* Shapefile.*10 characters.*datetimes.*\.gpkg",
             lambda t: _cli(["fronts", _store(t), "--out", t / "fronts.shp"])),
        Case("cli-fronts-gpkg-extension", "CLI", "``xcalving fronts --gpkg fronts.parquet``",
             "exit 1", "-", r"--gpkg: .* is not a \.gpkg path.*fronts\.gpkg",
             lambda t: _cli(["fronts", _store(t), "--gpkg", t / "fronts.parquet"])),
        Case("cli-predict-no-units", "CLI", "``xcalving predict`` of GeoTIFFs without a units "
             "tag and no ``--scaling``", "exit 1", "-",
             r"--scaling: the input has no units tag.*RTC gamma0.*--scaling linear",
             lambda t: _cli(["predict", _unlabelled_scenes(t), "--out", t / "p.zarr",
                             "--model", "demo"])),
    ]
