"""Several predictions of one cube as one: ensembles of weights and test-time flips.

``predict(cube, model=[a, b, c])`` runs every weights; ``predict(cube, tta=True)`` runs each
weights on the cube as it is and flipped left-right, up-down and both (the flips are undone on
the output, so every member lies on the input's grid). :func:`combine` averages the members'
probabilities (never their lines: fronts are traced once, from the mean) and keeps each
member's front probability and zones as ``member_front_probability`` and ``member_zones``
(``member``, ..., y, x), from which :func:`xcalving.fronts` traces each member's front the way
it traces the front and measures how far they lie from it (``member_distance_px``, a
confidence signal). Everything stays lazy; the cost is one network
pass per member.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from xcalving.errors import InputError, InputTypeError
from xcalving.inference.execute import zone_argmax

__all__ = ["FLIPS", "MEMBER_VARIABLE", "MEMBER_VARIABLES", "MEMBER_ZONES", "combine", "flip",
           "member_names"]

#: The test-time flips: the dims each reverses.
FLIPS: dict[str, tuple[str, ...]] = {"none": (), "x": ("x",), "y": ("y",), "xy": ("y", "x")}
#: The variable that keeps each member's front probability.
MEMBER_VARIABLE = "member_front_probability"
#: The variable that keeps each member's zones.
MEMBER_ZONES = "member_zones"
#: The per-member variables, by the prediction variable they keep.
MEMBER_VARIABLES = {"front_probability": MEMBER_VARIABLE, "zones": MEMBER_ZONES}


def flip(obj: Any, dims: Sequence[str]) -> Any:
    """``obj`` (DataArray or Dataset) reversed along ``dims``, coordinates and all (lazy).

    Applied twice it gives ``obj`` back, coordinates included, so a prediction of a flipped
    cube flipped back lies exactly on the cube's grid.

    Examples
    --------
    >>> da = xr.DataArray(np.arange(6).reshape(2, 3), dims=("y", "x"),
    ...                   coords={"y": [0, 1], "x": [10, 20, 30]})
    >>> flip(da, ["x"]).x.values.tolist(), flip(flip(da, ["x"]), ["x"]).identical(da)
    ([30, 20, 10], True)
    """
    return obj.isel({dim: slice(None, None, -1) for dim in dims})


def member_names(models: Sequence[Any], tta: bool) -> list[str]:
    """One label a member: the weights (their name, or ``model-i``) and, with ``tta``, the flip.

    Examples
    --------
    >>> member_names(["caffe256", "mine.safetensors"], tta=False)
    ['caffe256', 'mine.safetensors']
    >>> member_names(["caffe256"], tta=True)
    ['caffe256:none', 'caffe256:x', 'caffe256:y', 'caffe256:xy']
    """
    names = [m if isinstance(m, str) else getattr(m, "name", None) or f"model-{i}"
             for i, m in enumerate(models)]
    names = [str(n) for n in names]
    if len(set(names)) < len(names):
        names = [f"{n}-{i}" for i, n in enumerate(names)]
    return [f"{n}:{f}" for n in names for f in FLIPS] if tta else names


def run_members(da: Any, models: Sequence[Any], tta: bool,
                one: Callable[[Any, Any], xr.Dataset]) -> xr.Dataset:
    """Every member's prediction (``one(cube, model)``), flips undone, combined."""
    if len(models) == 0:
        raise InputError("model: an empty list of weights; give one or more (names, paths or "
                         "modules), or None for the default weights.")
    flips = FLIPS if tta else {"none": ()}
    predictions = [flip(one(flip(da, dims), model), dims)
                   for model in models for dims in flips.values()]
    return combine(dict(zip(member_names(models, tta), predictions, strict=True)))


def combine(predictions: Sequence[xr.Dataset] | Mapping[str, xr.Dataset]) -> xr.Dataset:
    """The ensemble of predictions of one cube: mean probabilities, zones from their mean.

    Parameters
    ----------
    predictions
        Datasets from :func:`xcalving.predict` on the same grid (compared by coordinates,
        never by position), each with ``front_probability``; a mapping names the members.

    Returns
    -------
    xarray.Dataset
        ``front_probability`` the members' mean; where every member has ``zone_probability``,
        its mean and ``zones`` its arg-max (0 where no data), else the first member's
        ``zones``; :data:`MEMBER_VARIABLE` (``member``, ..., y, x) every member's front
        probability and, where every member has zones, :data:`MEMBER_ZONES` its zones.
        Attributes are the first member's, with ``members`` (the labels, comma-separated)
        and ``front_method`` only where every member agrees on it.
    """
    named = _named(predictions)
    try:
        aligned = xr.align(*named.values(), join="exact")
    except ValueError as err:
        raise InputError("predictions: the members are not on one grid (their coordinates "
                         f"differ: {err}); predict every member on the same cube.") from err
    # object dtype: Zarr v3 stores variable-length strings without an "unstable dtype" warning
    members = xr.DataArray(np.array(list(named), dtype=object), dims="member", name="member")
    front = xr.concat([ds["front_probability"] for ds in aligned], members)
    first = aligned[0]
    out = first.drop_vars([v for v in first.data_vars])
    out["front_probability"] = front.mean("member", skipna=False)
    out["front_probability"].attrs = first["front_probability"].attrs
    out["front_probability"].encoding = dict(first["front_probability"].encoding)
    out[MEMBER_VARIABLE] = front.assign_attrs(
        long_name="calving front probability of each member", units="1")
    out = out.assign(_zones(aligned, members))
    if all("zones" in ds for ds in aligned):
        out[MEMBER_ZONES] = xr.concat([ds["zones"] for ds in aligned], members).assign_attrs(
            aligned[0]["zones"].attrs, long_name="zones of each member")
    out.attrs = _attrs(aligned, list(named))
    return out


def _named(predictions: Any) -> dict[str, xr.Dataset]:
    if isinstance(predictions, xr.Dataset):  # a Mapping too: one prediction, not several
        raise InputTypeError("predictions must be a list or dict of Datasets from "
                             "xcalving.predict; got one Dataset. Pass [pred] or {name: pred}.")
    if isinstance(predictions, Mapping):
        named = {str(k): v for k, v in predictions.items()}
    elif isinstance(predictions, Sequence) and not isinstance(predictions, str):
        named = {f"member-{i}": ds for i, ds in enumerate(predictions)}
    else:
        raise InputTypeError(f"predictions must be a list or dict of Datasets from "
                             f"xcalving.predict; got {type(predictions).__name__}.")
    for name, ds in named.items():
        if not isinstance(ds, xr.Dataset) or "front_probability" not in ds:
            raise InputError(f"predictions[{name!r}] is not a prediction with "
                             "front_probability (a Dataset from xcalving.predict).")
    if not named:
        raise InputError("predictions: none given; combine needs one or more.")
    return named


def _zones(aligned: Sequence[xr.Dataset], members: xr.DataArray) -> dict[str, xr.DataArray]:
    """Mean zone probabilities and their arg-max, or the first member's zones."""
    first = aligned[0]
    if not all("zone_probability" in ds for ds in aligned):
        return {"zones": first["zones"]} if "zones" in first else {}
    mean = xr.concat([ds["zone_probability"] for ds in aligned], members).mean(
        "member", skipna=False).assign_attrs(first["zone_probability"].attrs)
    mean.encoding = dict(first["zone_probability"].encoding)
    zones = xr.apply_ufunc(_zones_of_mean, mean, input_core_dims=[["zone"]],
                           dask="parallelized", output_dtypes=[np.uint8])
    return {"zone_probability": mean,
            "zones": zones.assign_attrs(first["zones"].attrs) if "zones" in first else zones}


def _zones_of_mean(probs: np.ndarray) -> np.ndarray:
    """Predict's arg-max rule on (..., zone) probabilities: 0 where they are NaN."""
    planes = np.moveaxis(probs, -1, 0)
    return zone_argmax(planes, np.isnan(planes[0]))


def _attrs(aligned: Sequence[xr.Dataset], names: list[str]) -> dict[str, Any]:
    attrs = dict(aligned[0].attrs)
    methods = {ds.attrs.get("front_method") for ds in aligned}
    attrs.pop("front_method", None)
    if len(methods) == 1 and None not in methods:
        attrs["front_method"] = methods.pop()
    attrs["members"] = ",".join(names)
    return attrs
