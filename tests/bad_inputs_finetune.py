"""Bad inputs of ``xcalving.finetune``: labels, grids, spacings, bases.

Rows of the bad-input matrix (``tests/whole/test_bad_inputs.py`` runs and renders them once it lists
this module; ``tests/adapt/test_finetune.py`` runs them too). ``cases(Case)`` builds them with the
matrix's own row type. Every row fails before any training step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _base(tmp: Path, *, scaling: bool = True, spacing: float | None = None) -> Path:
    import torch

    from xcalving.model import ASPPUNet, save_model
    from xcalving.scaling import CAFFE_SCALING

    torch.manual_seed(0)
    return save_model(ASPPUNet(width=4), tmp / "base.safetensors",
                      scaling=CAFFE_SCALING if scaling else None, pixel_spacing=spacing)


def _cube():
    from xcalving.data.synthetic import glacier_cube

    return glacier_cube(2, shape=(64, 64), seed=1)


def _geotiffs(tmp: Path) -> tuple[str, object]:
    """Two GeoTIFF scenes and their true front lines (date column, scene CRS)."""
    cube, fronts = _cube()
    for k in range(cube.sizes["time"]):
        cube.sar.isel(time=k).rio.to_raster(tmp / f"S1_{str(cube.time.values[k])[:10]}.tif")
    lines = fronts.reset_index().rename(columns={"time": "date"})
    return str(tmp / "S1_*.tif"), lines


def _finetune(tmp: Path, data, **kwargs):
    from xcalving.adapt import finetune

    kwargs.setdefault("out", tmp / "out.safetensors")
    return finetune(kwargs.pop("base", None) or _base(tmp), data, max_steps=1, batch_size=1,
                    progress=False, score=False, **kwargs)


def _no_labelled_scene(tmp: Path):
    scenes, lines = _geotiffs(tmp)
    lines["date"] = "2030-01-01"
    return _finetune(tmp, scenes, labels=lines)


def _labels_wrong_crs(tmp: Path):
    scenes, lines = _geotiffs(tmp)
    return _finetune(tmp, scenes, labels=lines.set_crs(3413, allow_override=True))


def _labels_no_crs(tmp: Path):
    scenes, lines = _geotiffs(tmp)
    return _finetune(tmp, scenes, labels=lines.set_crs(None, allow_override=True))


def _unknown_class(tmp: Path):
    import geopandas as gpd

    scenes, lines = _geotiffs(tmp)
    polygon = gpd.GeoDataFrame({"zone": ["iceberg"], "date": [lines["date"][0]]},
                               geometry=[lines.geometry[0].buffer(100)], crs=lines.crs)
    return _finetune(tmp, scenes, labels=gpd.pd.concat([lines, polygon], ignore_index=True))


def _zone_values(tmp: Path):
    cube, _ = _cube()
    cube["zones"] = cube["zones"].where(cube["zones"] != 3, 5)
    return _finetune(tmp, cube)


def _raster_labels_off_grid(tmp: Path):
    cube, _ = _cube()
    shifted = cube[["zones"]].assign_coords(x=cube.x + 20.0)
    return _finetune(tmp, cube[["sar"]], labels=shifted.isel(x=slice(1, None)))


def _mixed_spacing(tmp: Path):
    from xcalving.testing import write_fixture_tree

    return _finetune(tmp, write_fixture_tree(tmp / "caffe", n_train=3))  # 7, 6 and 20 m


def _base_without_scaling(tmp: Path):
    cube, _ = _cube()
    return _finetune(tmp, cube, base=_base(tmp, scaling=False))


def _front_without_date(tmp: Path):
    scenes, lines = _geotiffs(tmp)
    return _finetune(tmp, scenes, labels=lines.drop(columns="date"))


def _out_exists(tmp: Path):
    cube, _ = _cube()
    (tmp / "out.safetensors").write_bytes(b"mine")
    return _finetune(tmp, cube)


def _linear_as_db(tmp: Path):
    cube, _ = _cube()
    linear = (10 ** (cube["sar"] / 10)).assign_attrs(units="dB")
    return _finetune(tmp, cube.assign(sar=linear.astype(np.float32)))


def _batchnorm_typo(tmp: Path):
    cube, _ = _cube()
    return _finetune(tmp, cube, batchnorm="adapted")


def _replay_share_one(tmp: Path):
    cube, _ = _cube()
    return _finetune(tmp, cube, replay=cube, replay_share=1.0)


def _replay_unlabelled(tmp: Path):
    cube, _ = _cube()
    return _finetune(tmp, cube, replay=cube.drop_vars(["zones", "front"], errors="ignore"))


def _scene_without_data(tmp: Path):
    cube, _ = _cube()
    cube["sar"][1] = np.nan  # the second scene: no backscatter anywhere
    return _finetune(tmp, cube)


def _date_read_two_ways(tmp: Path):
    scenes, lines = _geotiffs(tmp)
    lines["date"] = "01/02/2019"  # 1 February or 2 January?
    return _finetune(tmp, scenes, labels=lines)


def _out_in_package(tmp: Path):
    import xcalving

    cube, _ = _cube()
    return _finetune(tmp, cube, out=Path(xcalving.__file__).parent / "mine.safetensors")


def cases(Case) -> list:  # noqa: N803  (the row class of the matrix)
    """The rows, built with ``Case(id, area, what, error, builtin, match, run)``."""
    return [
        Case("finetune-no-labelled-scene", "finetune",
             "front lines whose dates match no scene", "InputError", "ValueError",
             r"no labelled scene: the labels' dates.*date column", _no_labelled_scene),
        Case("finetune-labels-wrong-crs", "finetune",
             "labels declared in the wrong CRS (they land outside the scene)", "InputError",
             "ValueError", r"lie outside scene.*set_crs", _labels_wrong_crs),
        Case("finetune-labels-no-crs", "finetune", "labels without a CRS", "InputError",
             "ValueError", r"labels have no CRS.*set_crs", _labels_no_crs),
        Case("finetune-unknown-class", "finetune", "a zone polygon of class ``iceberg``",
             "InputError", "ValueError", r"'iceberg'.*not one of no_data, rock, glacier, ocean",
             _unknown_class),
        Case("finetune-zone-values", "finetune", "a cube's zones holding the value 5",
             "InputError", "ValueError", r"label values \[5\] outside the zone classes",
             _zone_values),
        Case("finetune-labels-off-grid", "finetune",
             "raster labels on a grid shifted by one pixel", "InputError", "ValueError",
             r"not on the grid of scene.*reproject_match", _raster_labels_off_grid),
        Case("finetune-mixed-spacing", "finetune",
             "CaFFe scenes of 7, 6 and 20 m and a base that records no spacing", "InputError",
             "ValueError", r"mixed pixel spacings.*caffe_spacing=None", _mixed_spacing),
        Case("finetune-base-no-scaling", "finetune", "a base that records no input scaling",
             "InputError", "ValueError", r"records no input scaling.*scaling=CAFFE_SCALING",
             _base_without_scaling),
        Case("finetune-front-no-date", "finetune", "front lines without a date column",
             "InputError", "ValueError", r"front lines have no date.*'date' column",
             _front_without_date),
        Case("finetune-out-exists", "finetune", "``out`` naming an existing file",
             "TargetExistsError", "FileExistsError", r"exists; choose a new name.*overwrite",
             _out_exists),
        Case("finetune-linear-as-db", "finetune", "linear power labelled dB", "InputError",
             "ValueError", r"scene .*linear", _linear_as_db),
        Case("finetune-batchnorm-typo", "finetune", "``batchnorm='adapted'``", "InputError",
             "ValueError", r"batchnorm must be one of \('frozen', 'adapt'\).*'adapt'",
             _batchnorm_typo),
        Case("finetune-replay-share", "finetune", "``replay_share=1.0`` (nothing of the glacier)",
             "InputError", "ValueError", r"replay_share must be .* between 0 and 1.*0\.25",
             _replay_share_one),
        Case("finetune-replay-unlabelled", "finetune", "``replay`` scenes without labels",
             "InputError", "ValueError", r"replay: .*labels", _replay_unlabelled),
        Case("finetune-scene-no-data", "finetune", "a scene with no valid pixel (all NaN)",
             "InputError", "ValueError", r"scene '2019-01-13' has no valid pixel.*Leave it out",
             _scene_without_data),
        Case("finetune-date-two-ways", "finetune", "a label date ``01/02/2019`` (day or month "
             "first?)", "InputError", "ValueError",
             r"'01/02/2019' .*reads two ways: 2019-02-01 or 2019-01-02.*YYYY-MM-DD",
             _date_read_two_ways),
        Case("finetune-out-in-package", "finetune", "``out`` inside the installed package",
             "UnsafeTargetError", "FileExistsError",
             r"out: .* inside the installed xcalving package.*outside it", _out_in_package),
    ]
