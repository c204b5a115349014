"""From zones or front probability to calving-front polylines in map coordinates.

The numpy core (:func:`~xcalving.zones.front_from_zones`,
:func:`~xcalving.vector.tracing.front_from_probability`,
:func:`~xcalving.vector.tracing.trace_lines`) works on one 2-D scene; :func:`fronts` maps it over
the scenes of a prediction Dataset, in one Dask pass, and returns a GeoDataFrame indexed by scene.
Front files (``write_fronts``, ``read_fronts``, ``check_fronts_path``) live in
:mod:`xcalving.vector.files`.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from xcalving.errors import InputError, XcalvingWarning
from xcalving.grid import attrs_spacing, pixel_spacing, transform
from xcalving.inference.members import MEMBER_VARIABLES
from xcalving.metrics import check_threshold
from xcalving.vector.confidence import SERIES_COLUMNS, assess_fronts, with_margin
from xcalving.vector.qc import grid_id
from xcalving.vector.regions import REGION_VARIABLE, region_mask
from xcalving.vector.rows import compute_rows
from xcalving.zones import MIN_LENGTH_M, check_ocean_rule

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["COLUMNS", "DEFAULT_METHOD", "fronts", "label_fronts"]

#: Prediction attributes copied into every row (where they are strings): scene and model.
ROW_ATTRS = ("glacier", "satellite", "sensor", "platform", "model", "model_sha256")
#: The columns computed for each scene, then over the series (:mod:`xcalving.vector.confidence`,
#: :mod:`xcalving.vector.qc`); coordinates of these names are not copied.
ROW_COLUMNS = ("geometry", "length_m", "length_px", "mean_probability", "n_segments", "n_pixels",
               "longest_share", "head_distance_px", "side_margin", "member_distance_px")
COLUMNS = ROW_COLUMNS + SERIES_COLUMNS
_NEEDS = {"zones": "zones", "probability": "front_probability", "gated": "front_probability"}
#: The front method where neither the call nor the prediction names one.
DEFAULT_METHOD = "zones"


# --- the xarray / GeoDataFrame shell -------------------------------------------------------------
def _grid(ds: Any) -> tuple[Any, float | None, str]:
    """The affine transform (None without a CRS), metres per pixel (None if unknown) and why not.

    Both come from the coordinates (:mod:`xcalving.grid`), never from a cached GeoTransform;
    without a CRS, the ``pixel_spacing`` attribute gives the spacing.
    """
    # heavy: rioxarray, loaded on first use
    import rioxarray  # noqa: F401

    if ds.rio.crs is None:
        spacing = attrs_spacing(ds)
        why = "" if spacing is not None else "no CRS and no 'pixel_spacing' attribute"
        return None, spacing, why
    affine = transform(ds, what="fronts")  # lines need a regular grid: else an error
    try:
        return affine, pixel_spacing(ds, what="fronts"), ""
    except InputError as err:  # e.g. a lon/lat grid: lines are still drawn, lengths are not
        return affine, None, str(err)


def _min_pixels(spacing: float | None, min_length: float, min_length_px: float | None,
                why: str) -> float:
    if min_length_px is not None:
        return float(min_length_px)
    if spacing is None:
        warnings.warn(
            f"fronts: the pixel spacing is unknown ({why}), so no front piece is dropped for "
            "being short; pass min_length_px=... to set the rule.",
            XcalvingWarning, stacklevel=3,
        )
        return 0.0
    return min_length / spacing


def _with_region(ds: Any, names: list[str], region: Any, lead: str | None) -> tuple[Any, list[str]]:
    """``ds`` with the region mask as a variable on the scene dims, where there is a region."""
    mask = region_mask(ds, region, lead)
    if mask is None:
        return ds.drop_vars(REGION_VARIABLE, errors="ignore"), names
    mask, _ = xr.broadcast(mask, ds[names[0]])
    return ds.assign({REGION_VARIABLE: mask.transpose(*ds[names[0]].dims)}), \
        [*names, REGION_VARIABLE]


def _method(ds: Any, method: str | None) -> str:
    """The front method asked for, else the one the prediction records, else the default."""
    if method is not None:
        return method
    recorded = getattr(ds, "attrs", {}).get("front_method")
    if recorded in _NEEDS and _NEEDS[recorded] in ds:
        return str(recorded)
    return DEFAULT_METHOD


def _check_fronts_input(ds: Any, method: str) -> tuple[list[str], str | None]:
    """The variables ``fronts`` reads (the one ``method`` needs first) and the scene dim."""
    if not isinstance(ds, xr.Dataset):
        raise InputError(
            f"ds must be a prediction Dataset (from predict()); got {type(ds).__name__}."
        )
    if method not in _NEEDS:
        raise InputError(f"method must be one of {list(_NEEDS)}; got {method!r}.")
    need = _NEEDS[method]
    if need not in ds:
        raise InputError(
            f"method={method!r} needs ds[{need!r}], which is missing (ds has "
            f"{list(ds.data_vars)}). Use method={'probability' if method == 'zones' else 'zones'!r}"
            " or pass the output of predict()."
        )
    lead = _scene_dim(ds[need], need)
    names = [need]
    for other in ("zones", "front_probability"):  # for the confidence signals
        if other != need and other in ds and set(ds[other].dims) == set(ds[need].dims):
            names.append(other)
    for member in MEMBER_VARIABLES.values():  # an ensemble's members: the disagreement signal
        var = ds.get(member)
        if var is not None and set(var.dims) == {"member", *ds[need].dims}:
            names.append(member)
    return names, lead


def _scene_dim(var: Any, name: str) -> str | None:
    """The one dim besides y and x (time, date, ...), or None for a single scene."""
    dims = tuple(str(d) for d in var.dims)
    other = [d for d in dims if d not in ("y", "x")]
    if "y" not in dims or "x" not in dims:
        fix = f"ds.rename({{{other[-2]!r}: 'y', {other[-1]!r}: 'x'}})" if len(other) >= 2 \
            else "ds.rename(...)"
        raise InputError(f"ds must have dims (time,) y, x: ds[{name!r}] has dims {dims}. Name "
                         f"the spatial dims y and x, e.g. {fix}.")
    if len(other) > 1:
        extra = next((d for d in other if d != "time"), other[0])
        raise InputError(
            f"ds must have dims (time,) y, x: one scene dim of any name (time, date, ...) or "
            f"none, then y and x; ds[{name!r}] has dims {dims}. Select along {extra!r}, e.g. "
            f"ds.isel({extra}=0)."
        )
    return other[0] if other else None


def _with_scene_dim(ds: Any, lead: str | None) -> tuple[Any, str]:
    """``ds`` with a scene dim: a single scene gets one, named after its scalar date if any."""
    if lead is not None:
        return ds, lead
    name = "time"
    if "time" not in ds.coords:
        dated = [str(n) for n, c in ds.coords.items()
                 if c.ndim == 0 and np.issubdtype(c.dtype, np.datetime64)]
        name = dated[0] if len(dated) == 1 else name
    return ds.expand_dims(name), name


def _index(scenes: Any, lead: str) -> Any:
    """The frame's index: the scene dim's coordinate (a DatetimeIndex for dates)."""
    if lead in scenes.coords:
        return pd.Index(scenes[lead].values, name=lead)
    if lead == "time":
        return pd.DatetimeIndex([pd.NaT] * scenes.sizes[lead], name=lead)
    return pd.RangeIndex(scenes.sizes[lead], name=lead)


def _plain(values: np.ndarray) -> bool:
    """Whether values can be a column of any front file: numbers, dates or strings."""
    if values.dtype.kind in "biufMmU":
        return True
    return values.dtype.kind == "O" and all(v is None or isinstance(v, str)
                                            for v in values.ravel())


def _scene_columns(scenes: Any, lead: str) -> dict[str, Any]:
    """Columns: coordinates with one value a scene, then scene and model attributes.

    Coordinates along the scene dim and scalar ones (but ``spatial_ref``) whose values are
    numbers, dates or strings; attributes are :data:`ROW_ATTRS`.
    """
    columns: dict[str, Any] = {}
    for name, coord in scenes.coords.items():
        along = coord.dims == (lead,) and name != lead
        scalar = coord.ndim == 0 and name != "spatial_ref"
        if (along or scalar) and name not in COLUMNS and _plain(np.asarray(coord.values)):
            columns[str(name)] = coord.values if along else coord.values[()]
    for key in ROW_ATTRS:
        value = scenes.attrs.get(key)
        if isinstance(value, str) and key not in columns:
            columns[key] = value
    return columns


def fronts(
    ds: xr.Dataset,
    *,
    method: Literal["zones", "probability", "gated"] | None = None,
    min_length: float = MIN_LENGTH_M,
    min_length_px: float | None = None,
    threshold: float = 0.5,
    region: Any = None,
    ocean: Literal["largest", "all"] = "largest",
) -> gpd.GeoDataFrame:
    """Calving fronts as vector lines in the cube's CRS, one row a scene.

    Parameters
    ----------
    ds
        A prediction Dataset with ``zones`` and/or ``front_probability`` on dims
        (scene, y, x), the scene dim of any name (``time``, ``date``, ...), or (y, x) for a
        single scene.
    method
        ``"zones"``: CaFFe's post-processing of the zone map
        (:func:`~xcalving.zones.front_from_zones`); ``"probability"``: threshold, skeletonize and
        keep the longest paths of the front probability
        (:func:`~xcalving.vector.tracing.front_from_probability`); ``"gated"``: the front
        probability with hysteresis thresholds, its pieces kept where the zones' glacier–ocean
        boundary runs and by probability mass (:func:`~xcalving.vector.tracing.front_from_head`).
        ``None`` (default): the method the weights' folds chose, which ``predict`` records in
        ``ds.attrs["front_method"]``; ``"zones"`` where the prediction names none.
    min_length
        Front pieces of at most this many metres (÷ the pixel spacing) are dropped; CaFFe uses
        750 m.
    min_length_px
        The same rule in pixels; it wins over ``min_length`` and is needed where the pixel
        spacing in metres is unknown (see :func:`xcalving.grid.pixel_spacing`; without a CRS,
        the ``pixel_spacing`` attribute gives it).
    threshold
        Probability above which a pixel is front (``method="probability"``).
    region
        Where fronts are looked for (:mod:`xcalving.vector.regions`): a boolean DataArray on the
        grid (``(y, x)`` or with the scene dim), shapely geometries or a GeoDataFrame (reprojected
        to the cube's CRS), a box ``(xmin, ymin, xmax, ymax)`` in the cube's coordinates, or
        the name of a variable of ``ds``. ``None`` (default) uses ``ds["front_region"]`` where
        ``ds`` has it (the CaFFe readers attach one: CaFFe's scoring box), else the whole scene;
        ``False`` always uses the whole scene. A zone map marks every glacier–ocean contact,
        the ice along the fjord's sides and a neighbour's front included: a region keeps the
        one glacier you study.
    ocean
        ``"largest"`` (default, CaFFe's rule): only the largest ocean body gives fronts, islands
        and icebergs in it become ocean; ``"all"``: every ocean body gives fronts, for scenes
        that hold several glaciers in fjords that do not meet (``method="zones"``).

    Returns
    -------
    geopandas.GeoDataFrame
        Indexed by the scene dim's coordinate, named after it (a DatetimeIndex for dates; a
        single scene takes its scalar ``time``, or NaT), one row per scene (an empty geometry
        where no front was found), with a (Multi)LineString through pixel centres in map
        coordinates, ``length_m``, ``length_px``, ``mean_probability`` (of the front pixels),
        ``n_segments``, ``n_pixels``; the confidence signals ``longest_share``,
        ``head_distance_px``, ``side_margin`` (per scene; ``side_margin`` reads
        ``zone_probability`` where ``ds`` has it), ``sinuosity``, ``neighbour_distance_px``
        and ``grid_id`` (over the series), ``confidence`` in [0, 1]
        (:mod:`xcalving.vector.confidence`) and the QC flags ``outlier`` (bool) and ``qc_reason``
        (:func:`xcalving.vector.qc.flag_outliers` with its defaults: flagged, never dropped); then a
        column for each coordinate with one value a
        scene (along the scene dim, or scalar: e.g. ``stem``, ``platform``; numbers, dates or
        strings) and for the attributes
        ``glacier``, ``satellite``, ``sensor``, ``platform``, ``model`` and ``model_sha256``
        where ``ds`` has them (:func:`xcalving.predict` records the last two). Without a CRS
        the coordinates are pixels (x = column + 0.5, y = row + 0.5), a warning says so and
        ``attrs["georeference"]`` too.

    Raises
    ------
    InputError
        A Dataset without the variable ``method`` needs, without ``y``/``x`` dims or with more
        than one other dim; coordinates that are not a regular grid: not monotonic, repeated,
        unevenly spaced, or a single pixel along ``y`` or ``x`` (see
        :func:`xcalving.grid.transform`).

    Notes
    -----
    This is where numbers are computed, in one pass: every scene is one task of one Dask
    graph that holds all the variables it reads, so each block of a lazy prediction is
    computed once (the network runs as often as for ``ds.compute()``). A lazy prediction is
    recomputed by every call that computes it, so compute it once:

    * fronts only: ``xcalving.fronts(pred)`` on the lazy prediction — one pass;
    * the prediction too: ``xcalving.write_cube(pred, "pred.zarr")``, then
      ``xcalving.fronts(xcalving.open_cube("pred.zarr"))`` — one pass, and the stored
      prediction is read, not recomputed. Calling ``fronts`` on the same lazy ``pred`` after
      ``pred.to_zarr(...)`` runs the network a second time.

    The transform and the pixel spacing come from the ``y``/``x`` coordinates
    (:mod:`xcalving.grid`), never from a cached GeoTransform, so ascending or descending axes,
    decimated (``isel(y=slice(None, None, 2))``), coarsened and reprojected predictions all
    give fronts in the right place, with ``length_m`` and the ``min_length`` rule in metres of
    the actual spacing. On a geographic (lon/lat) CRS the lines are drawn in degrees, but a
    warning says that the spacing in metres is unknown: ``length_m`` is NaN and no piece is
    dropped for being short; reproject first, e.g.
    ``ds.rio.reproject(ds.rio.estimate_utm_crs())`` (nearest, the default, keeps zone classes).

    Examples
    --------
    >>> from xcalving.data.synthetic import glacier_cube
    >>> cube, truth = glacier_cube(2, shape=(192, 192), resolution=25.0, seed=7)
    >>> frame = fronts(cube[["zones"]])
    >>> frame.crs.to_epsg(), len(frame), bool((frame["length_m"] > 750).all())
    (3031, 2, True)
    >>> flipped = fronts(cube[["zones"]].sortby("y"))  # ascending y: the same lines
    >>> bool(flipped.geometry.geom_equals(frame.geometry).all())
    True
    >>> fronts(cube[["zones"]].rename(time="date")).index.name  # any name of the scene dim
    'date'
    """
    import geopandas as gpd  # heavy: geopandas, loaded on first use

    threshold = check_threshold(threshold)
    chosen = _method(ds, method)
    names, lead = _check_fronts_input(ds, chosen)
    check_ocean_rule(ocean)  # before any work
    ds, names = _with_region(ds, names, region, lead)
    transform, spacing, why = _grid(ds)
    min_pixels = _min_pixels(spacing, min_length, min_length_px, why)
    if spacing is None and transform is not None and min_length_px is not None:
        warnings.warn(f"fronts: length_m is NaN: {why}", XcalvingWarning, stacklevel=2)
    ds, names = with_margin(ds, names)
    scenes, dim = _with_scene_dim(ds[names], lead)
    rows = compute_rows(scenes, dim, names, method=chosen, min_pixels=min_pixels,
                         threshold=threshold, ocean=ocean, transform=transform, spacing=spacing)
    table = pd.DataFrame(rows, columns=list(ROW_COLUMNS))
    table.index = _index(scenes, dim)
    crs = ds.rio.crs if transform is not None else None
    frame = gpd.GeoDataFrame(table, geometry="geometry", crs=crs)
    frame["grid_id"] = grid_id(crs, transform, (ds.sizes["y"], ds.sizes["x"]))
    frame.attrs.update(method=chosen, min_length_px=min_pixels, ocean=ocean,
                       region=REGION_VARIABLE in names,
                       pixel_size=1.0 if transform is None else
                       float(np.sqrt(abs(transform.a * transform.e - transform.b * transform.d))))
    frame = assess_fronts(frame)[list(COLUMNS)]
    for name, values in _scene_columns(scenes, dim).items():
        frame[name] = values
    if transform is None:
        warnings.warn("fronts: the Dataset has no CRS; front coordinates are pixels.",
                      XcalvingWarning, stacklevel=2)
        frame.attrs["georeference"] = "none: x = column + 0.5, y = row + 0.5 (pixels)"
    return frame


def label_fronts(front: xr.DataArray) -> gpd.GeoDataFrame:
    """Labelled one-pixel fronts (a 0/1 raster such as CaFFe's ``front``) as lines, a row a scene.

    Each scene's labelled pixels are skeletonised and traced like a predicted front
    (:func:`fronts` with ``method="probability"``, no length rule, no region), so predicted and
    labelled fronts can be drawn and compared as lines on one map.

    Examples
    --------
    >>> from xcalving.data.synthetic import glacier_cube
    >>> cube, _ = glacier_cube(2, shape=(96, 96), resolution=25.0, seed=3)
    >>> labelled = label_fronts(cube.front)
    >>> len(labelled), bool((labelled.length_m > 0).all())
    (2, True)
    """
    ds = (front.fillna(0) > 0).astype("float32").to_dataset(name="front_probability")
    ds.attrs = {k: v for k, v in front.attrs.items() if k == "pixel_spacing"}
    frame = fronts(ds, method="probability", threshold=0.5, min_length_px=0, region=False)
    return frame[["geometry", "length_m"]]
