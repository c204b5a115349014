"""Bad inputs of predict's output options: ``dtype`` (how probabilities are stored), ``outputs``.

Rows of the bad-input matrix (``tests/whole/test_bad_inputs.py`` runs and renders them).
``cases(Case)`` builds them with the matrix's own row type.
"""

from __future__ import annotations

import xarray as xr


def _cube() -> xr.DataArray:
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(2, shape=(64, 64), resolution=20.0, seed=3)
    return cube.sar


def _predict(**kwargs):
    import torch

    import xcalving
    from xcalving.model import ASPPUNet

    torch.manual_seed(0)
    return xcalving.predict(_cube(), ASPPUNet(width=4).eval(), tile=64, overlap=16, **kwargs)


def cases(Case) -> list:  # noqa: N803  (the row class of the matrix)
    """The rows, built with ``Case(id, area, what, error, builtin, match, run)``."""
    return [
        Case("predict-dtype-float16", "predict", "``dtype='float16'`` (not a storage dtype)",
             "InputError", "ValueError", r"dtype must be 'uint8'.*or 'float32'.*Did you mean",
             lambda t: _predict(dtype="float16")),
        Case("predict-dtype-typo", "predict", "``dtype='unit8'``", "InputError", "ValueError",
             r"dtype must be .*Did you mean 'uint8'", lambda t: _predict(dtype="unit8")),
        Case("predict-outputs-typo", "predict", "``outputs=('front_probability', "
             "'zone_probabilities')``", "InputError", "ValueError",
             r"'zone_probabilities' is not an output.*Did you mean 'zone_probability'",
             lambda t: _predict(outputs=("front_probability", "zone_probabilities"))),
        Case("predict-outputs-empty", "predict", "``outputs=()``", "InputError", "ValueError",
             r"outputs is empty: name at least one of",
             lambda t: _predict(outputs=())),
        Case("predict-outputs-type", "predict", "``outputs=['zones', 3]`` (not all names)",
             "InputTypeError", "TypeError", r"outputs must be a name or a sequence of names",
             lambda t: _predict(outputs=["zones", 3])),
        Case("accessor-outputs-typo", "predict", "``ds.calving.predict(outputs='zone')``",
             "InputError", "ValueError", r"'zone' is not an output.*Did you mean 'zones'",
             lambda t: _cube().to_dataset(name="sar").calving.predict(outputs="zone")),
    ]
