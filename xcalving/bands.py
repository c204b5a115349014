"""Bands and polarisations: which band of a cube, or variable of a Dataset, the network reads.

One home for the polarisation rule (:func:`polarisation_of`, :func:`choose_polarisation`: HH,
else VV; cross-polarised bands only by name) and for the Dataset-variable policy
(:func:`dataset_variable`), shared by :func:`xcalving.predict`, ``ds.calving.predict()``,
:func:`xcalving.open_scenes` and the command line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import xarray as xr

from xcalving.errors import InputError, did_you_mean

__all__ = ["CO_POLARISATIONS", "CROSS_POLARISATIONS", "choose_polarisation", "dataset_variable",
           "polarisation_of"]

CO_POLARISATIONS = ("hh", "vv")
CROSS_POLARISATIONS = ("hv", "vh")


def polarisation_of(label: Any) -> str | None:
    """``"hh"``, ``"hv"``, ``"vh"`` or ``"vv"`` when ``label`` names one polarisation, else None.

    Any case, alone or as one word of a longer name (words split at anything but letters and
    digits); a name with two polarisations in it (a ratio, ``"vv_vh"``) names none.

    Examples
    --------
    >>> [polarisation_of(s) for s in ("VV", "sigma0_vh", "Gamma0-HH-dB", "vv_vh", "B04", 3)]
    ['vv', 'vh', 'hh', None, None, None]
    """
    words = set(re.split(r"[^0-9a-z]+", str(label).lower()))
    found = words & {*CO_POLARISATIONS, *CROSS_POLARISATIONS}
    return found.pop() if len(found) == 1 else None


def choose_polarisation(labels: Sequence[Any]) -> Any | None:
    """The label to use among ``labels`` when some name polarisations: HH, else VV.

    Returns None when none of them names a polarisation (then nothing is guessed). Raises when
    the only polarisations there are cross-polarised (HV, VH), however many.

    Examples
    --------
    >>> choose_polarisation(["VH", "VV"]), choose_polarisation(["B04", "B08"])
    ('VV', None)
    >>> choose_polarisation(["sigma0_vh", "sigma0_hh", "angle"])
    'sigma0_hh'
    """
    pols = [polarisation_of(label) for label in labels]
    if not any(pols):
        return None
    for pol in CO_POLARISATIONS:
        if pol in pols:
            return labels[pols.index(pol)]
    cross = [label for label, pol in zip(labels, pols, strict=True) if pol]
    message = (
        f"only cross-polarised bands {cross} are there; the network was trained on "
        "co-polarised (HH or VV) backscatter, and HV/VH scenes are darker with other contrasts "
        "between ice, rock and water. Load HH or VV, or, if you accept the mismatch, name the "
        f"band explicitly: band={cross[0]!r} (a Dataset's variable: "
        f"xcalving.predict(ds[{cross[0]!r}], band={cross[0]!r}))."
    )
    raise InputError(message)


def dataset_variable(ds: xr.Dataset, variable: str | None = None) -> xr.DataArray:
    """The variable of ``ds`` to predict on, with its polarisation in ``attrs["band"]``.

    ``variable=None`` takes ``"sar"`` where there is one; else, where some variables name
    polarisations (as ``odc.stac.load`` names the bands of a Sentinel-1 item: ``hh``, ``hv``,
    ``vv``, ``vh``), HH, else VV; else the only variable.

    Examples
    --------
    >>> import numpy as np
    >>> ds = xr.Dataset({"vh": ("x", np.ones(2)), "vv": ("x", np.ones(2))})
    >>> da = dataset_variable(ds)
    >>> da.name, da.attrs["band"]
    ('vv', 'vv')
    """
    names = [str(v) for v in ds.data_vars]
    if variable is None:
        variable = _default_variable(names)
    if variable not in names:
        raise InputError(f"variable={variable!r} is not in the Dataset; it has {names}."
                         + did_you_mean(variable, names))
    da = ds[variable]
    if "band" not in da.attrs and polarisation_of(variable):
        da = da.assign_attrs(band=variable)
    return da


def _default_variable(names: list[str]) -> str:
    if "sar" in names:
        return "sar"
    if (pol := choose_polarisation(names)) is not None:
        return str(pol)
    if len(names) == 1:
        return names[0]
    raise InputError(f"the Dataset has variables {names}; choose one with "
                     f"variable=..., e.g. variable={names[0]!r}." if names else
                     "the Dataset has no data variables to predict on.")
