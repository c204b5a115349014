"""Bad inputs of predict's input rules: values against their scaling, polarisations, CRS.

Rows of the bad-input matrix (``tests/whole/test_bad_inputs.py`` runs and renders them); kept apart
because they are many. ``cases(Case)`` builds them with the matrix's own row type.
"""

from __future__ import annotations

import numpy as np
import xarray as xr


# --- inputs ---------------------------------------------------------------------------------------
def _db() -> xr.DataArray:
    """Two synthetic scenes in dB, 64 × 64 (their swath edge is NaN)."""
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(2, shape=(64, 64), resolution=20.0, seed=3)
    return cube.sar.assign_attrs(units="dB")


def _linear() -> xr.DataArray:
    return (10.0 ** (_db() / 10.0)).assign_attrs(units="linear")


def _grey() -> xr.DataArray:
    from xcalving.scaling import db_to_grey

    db = _db()
    values = np.where(np.isnan(db.values), 0, np.rint(db_to_grey(db.values)))
    return xr.DataArray(values.astype(np.uint8), coords=db.coords, dims=db.dims)


def _bands(dim: str, labels: list[str]) -> xr.DataArray:
    db = _db()
    return xr.concat([db] * len(labels), dim=dim).assign_coords({dim: labels})


def _predict(da, **kwargs):
    import torch

    import xcalving
    from xcalving.model import ASPPUNet

    torch.manual_seed(0)
    return xcalving.predict(da, ASPPUNet(width=4).eval(), tile=64, overlap=16, **kwargs)


def _dataset_predict(ds: xr.Dataset):
    import torch

    from xcalving.model import ASPPUNet

    torch.manual_seed(0)
    return ds.calving.predict(ASPPUNet(width=4).eval(), tile=64, overlap=16)


def cases(Case) -> list:  # noqa: N803  (the row class of the matrix)
    """The rows, built with ``Case(id, area, what, error, builtin, match, run)``."""
    return [
        Case("predict-linear-as-db", "predict", "linear power labelled ``units='dB'``",
             "InputError", "ValueError", r"read as dB.*linear power.*scaling='linear'",
             lambda t: _predict(_linear().assign_attrs(units="dB"))),
        Case("predict-linear-as-db-dask", "predict",
             "linear power labelled dB, dask-backed (refused when the chunk is computed)",
             "InputError", "ValueError", r"chunk at time \d:\d, y 0:64, x 0:64 was read as dB",
             lambda t: _predict(_linear().assign_attrs(units="dB").chunk(time=1)).compute()),
        Case("predict-db-as-linear", "predict", "dB values with ``scaling='linear'``",
             "InputError", "ValueError", r"read as linear power.*look like dB.*scaling='db'",
             lambda t: _predict(_db(), scaling="linear")),
        Case("predict-undeclared-fill", "predict",
             "dB with most pixels at an undeclared no-data value (-9999)", "InputError",
             "ValueError", r"far darker.*undeclared no-data value.*_FillValue",
             lambda t: _predict(_db().where(_db().x > _db().x[40], -9999.0))),
        Case("predict-grey-as-db", "predict", "8-bit grey values as floats labelled dB",
             "InputError", "ValueError", r"read as dB.*8-bit grey values.*scaling='uint8'",
             lambda t: _predict(_grey().astype(np.float32).assign_attrs(units="dB"))),
        Case("predict-counts-as-linear", "predict",
             "uncalibrated digital numbers with ``scaling='linear'``", "InputError",
             "ValueError", r"read as linear power.*digital numbers.*calibrate",
             lambda t: _predict((_linear() * 4000.0).fillna(0).astype(np.uint16),
                                scaling="linear")),
        Case("predict-uint16-as-uint8", "predict", "16-bit values above 255 with "
             "``scaling='uint8'``", "InputError", "ValueError",
             r"8-bit grey values.*values up to 4\d\d\d.*scaling='db' or 'linear'",
             lambda t: _predict(_grey().astype(np.uint16) * 16, scaling="uint8")),
        Case("predict-fractions-as-uint8", "predict", "grey values scaled to 0..1 with "
             "``scaling='uint8'``", "InputError", "ValueError",
             r"fractions in 0\.\.1.*Multiply by 255",
             lambda t: _predict(_grey().astype(np.float32) / 255.0, scaling="uint8")),
        Case("predict-negative-as-uint8", "predict", "negative values with ``scaling='uint8'``",
             "InputError", "ValueError", r"negative values.*scaling='db'",
             lambda t: _predict(_db().fillna(0), scaling="uint8")),
        Case("predict-bool", "predict", "a boolean mask", "InputError", "ValueError",
             r"boolean: that is a mask.*SAR image",
             lambda t: _predict(_db() < -10, scaling="db")),
        Case("predict-complex-db", "predict", "complex values with ``scaling='db'``",
             "InputError", "ValueError", r"complex dtype.*amplitude",
             lambda t: _predict(_db().astype(np.complex64), scaling="db")),
        Case("predict-text", "predict", "strings", "InputError", "ValueError",
             r"dtype <U\d+; predict needs numbers.*astype",
             lambda t: _predict(_db().astype(str), scaling="db")),
        Case("predict-pol-dim-cross", "predict",
             "a ``pol`` dim (not ``band``) holding only HV and VH", "InputError", "ValueError",
             r"cross-polarised bands \['HV', 'VH'\].*HH or VV",
             lambda t: _predict(_bands("pol", ["HV", "VH"]))),
        Case("predict-one-cross-pol", "predict", "a single band labelled HV", "InputError",
             "ValueError", r"cross-polarised bands \['HV'\].*band='HV'",
             lambda t: _predict(_bands("band", ["HV"]))),
        Case("predict-named-cross-pol", "predict",
             "one array whose name or ``band`` attribute is VH (``ds['vh']``)", "InputError",
             "ValueError", r"cross-polarised bands \['vh'\].*band='vh'",
             lambda t: _predict(_db().rename("vh"))),
        Case("predict-dataset-cross-pol", "predict",
             "``ds.calving.predict()`` of a Dataset with only ``hv`` and ``vh`` variables",
             "InputError", "ValueError", r"cross-polarised.*HH or VV",
             lambda t: _dataset_predict(xr.Dataset({"hv": _db(), "vh": _db()}))),
        Case("predict-two-band-dims", "predict", "both a ``band`` and a ``pol`` dim",
             "InputError", "ValueError", r"2 band or polarisation dims.*da\.isel\(",
             lambda t: _predict(xr.concat([_bands("band", ["hh", "hv"])] * 2, "pol")
                                .assign_coords(pol=["hh", "vv"]))),
        Case("predict-unlabelled-pol", "predict", "a ``pol`` dim of 2 without labels",
             "InputError", "ValueError", r"2 bands \[0, 1\] along 'pol'.*band=0",
             lambda t: _predict(xr.concat([_db(), _db()], dim="pol"))),
        Case("predict-geographic", "predict", "a cube on a lon/lat grid (EPSG:4326)",
             "InputError", "ValueError",
             r"projected grid in metres.*da\.rio\.reproject\(da\.rio\.estimate_utm_crs\(\)\)",
             lambda t: _predict(_db().rio.write_crs("EPSG:4326"))),
    ]
