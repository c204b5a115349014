"""Pictures: a scene with its zones and front; fronts through time on a map.

Imports matplotlib, so import it only to draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import xarray as xr
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure

from xcalving.errors import InputError
from xcalving.metrics import mean_distance_error
from xcalving.zones import ZONE_COLOURS, ZONE_NAMES

__all__ = ["front_map", "front_panels", "scene", "search_plot", "terminus_plot",
           "training_curves"]


def _extent(da: xr.DataArray) -> list[float]:
    """Extent for imshow (left, right, bottom, top) at pixel edges, in the cube's coordinates."""
    x, y = da["x"].values, da["y"].values
    dx = (x[-1] - x[0]) / max(len(x) - 1, 1)
    dy = (y[-1] - y[0]) / max(len(y) - 1, 1)
    return [x[0] - dx / 2, x[-1] + dx / 2, y[-1] + dy / 2, y[0] - dy / 2]


def _grey(ax: Any, da: xr.DataArray) -> Any:
    """Draw a 2-D scene in grey, stretched to its 2nd-98th percentiles, in its coordinates."""
    values = np.asarray(da.values, float)
    lo, hi = np.nanpercentile(values, [2, 98]) if np.isfinite(values).any() else (0, 1)
    return ax.imshow(values, cmap="gray", vmin=lo, vmax=hi, extent=_extent(da),
                     interpolation="nearest")


def _select(cube: xr.Dataset, time: int | str | Any) -> xr.Dataset:
    if "time" not in cube.dims:
        return cube
    if isinstance(time, int | np.integer):
        if not -cube.sizes["time"] <= time < cube.sizes["time"]:
            raise InputError(f"time: index {time} is outside 0..{cube.sizes['time'] - 1}.")
        return cube.isel(time=int(time))
    return cube.sel(time=time)


def scene(cube: xr.Dataset, *, time: int | str | Any = 0, variable: str = "sar") -> Figure:
    """Draw one scene: backscatter with its front, and the zones with their front.

    Parameters
    ----------
    cube
        Dataset with ``variable`` (backscatter in dB) and optionally ``zones`` and ``front``.
    time
        Index or label of the scene to draw, when the cube has a ``time`` dimension.
    variable
        Name of the backscatter variable.

    Returns
    -------
    matplotlib.figure.Figure
        Not attached to pyplot: save it with ``fig.savefig(path)``.
    """
    if variable not in cube:
        raise InputError(
            f"variable: {variable!r} is not in the cube; it has {list(cube.data_vars)}."
        )
    one = _select(cube, time).compute()
    panels = 2 if "zones" in one else 1
    fig = Figure(figsize=(5.2 * panels, 5.0), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    extent = _extent(one[variable])
    image = _grey(axes[0], one[variable])
    fig.colorbar(image, ax=axes[0], shrink=0.8, label=one[variable].attrs.get("units", ""))
    axes[0].set_title(f"{variable}" + (f" — {np.datetime_as_string(one.time.values, 'D')}"
                                       if "time" in one.coords else ""))
    if panels == 2:
        zones = axes[1].imshow(one["zones"].values, cmap=ListedColormap(ZONE_COLOURS), vmin=-0.5,
                               vmax=3.5, extent=extent, interpolation="nearest")
        bar = fig.colorbar(zones, ax=axes[1], shrink=0.8, ticks=range(4))
        bar.ax.set_yticklabels(ZONE_NAMES)
        axes[1].set_title("zones and front")
    if "front" in one:
        rows, cols = np.nonzero(one["front"].values)
        xs, ys = one["x"].values[cols], one["y"].values[rows]
        for ax in axes:
            ax.scatter(xs, ys, s=0.6, c="#ff2a2a", linewidths=0)
    for ax in axes:
        ax.set_xlabel(f"x [{one['x'].attrs.get('units', 'pixel')}]")
        ax.set_ylabel(f"y [{one['y'].attrs.get('units', 'pixel')}]")
        ax.ticklabel_format(style="plain", useOffset=False)
        ax.tick_params(labelsize=7)
    return fig


def _nice_length(span: float) -> float:
    """A round scale-bar length of about a fifth of ``span``."""
    target = span / 5
    power = 10 ** np.floor(np.log10(target))
    return float(max(m for m in (1, 2, 5) if m * power <= target) * power)


def _scale_bar(ax: Any, units: str) -> None:
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    length = _nice_length(abs(x1 - x0))
    left, bottom = min(x0, x1) + 0.05 * abs(x1 - x0), min(y0, y1) + 0.06 * abs(y1 - y0)
    ax.plot([left, left + length], [bottom, bottom], color="white", lw=4, solid_capstyle="butt")
    ax.plot([left, left + length], [bottom, bottom], color="black", lw=2, solid_capstyle="butt")
    label = f"{length / 1000:g} km" if units == "metre" and length >= 1000 else \
        f"{length:g} {'m' if units == 'metre' else units}"
    ax.text(left + length / 2, bottom + 0.02 * abs(y1 - y0), label, ha="center", va="bottom",
            fontsize=8, color="black", bbox={"facecolor": "white", "alpha": 0.7, "lw": 0})


def front_map(fronts: Any, background: xr.DataArray | None = None, *, ax: Any = None,
              cmap: str = "plasma", title: str | None = None, labels: Any = None) -> Any:
    """Draw fronts coloured by date over a scene, with a date colour bar and a scale bar.

    Parameters
    ----------
    fronts
        GeoDataFrame indexed by time (from :func:`xcalving.fronts`). Fronts flagged by the QC
        (an ``outlier`` column, :mod:`xcalving.vector.qc`) are drawn dashed in grey, labelled
        "flagged (QC)".
    background
        A 2-D scene (y, x) to draw underneath in grey, e.g. ``cube.sar.isel(time=-1)``.
    ax
        Matplotlib Axes to draw into; a new Figure (not attached to pyplot) when None.
    cmap
        Colour map of the dates.
    title
        Axes title (default: the number of dates).
    labels
        Labelled fronts to draw beside the predicted ones (a GeoDataFrame of lines, e.g.
        :func:`xcalving.vector.api.label_fronts`), cyan and dotted, labelled "labelled front".

    Returns
    -------
    matplotlib.axes.Axes
        Axes in the CRS's units; ``ax.figure.savefig(path)`` writes it.
    """
    if ax is None:
        ax = Figure(figsize=(7.5, 6.5), layout="constrained").add_subplot()
    if background is not None:
        _grey(ax, background)
    times = mdates.date2num(fronts.index.to_pydatetime())
    norm = Normalize(times.min(), max(times.max(), times.min() + 1))
    colours = ScalarMappable(norm=norm, cmap=cmap)
    flagged = _flagged(fronts)
    labelled = False
    for t, geom, bad in zip(times, fronts.geometry, flagged, strict=True):
        for part in _parts(geom):
            xs, ys = part.xy
            if bad:
                ax.plot(xs, ys, color="0.55", lw=1.0, ls="--",
                        label="_" if labelled else "flagged (QC)")
                labelled = True
            else:
                ax.plot(xs, ys, color=colours.to_rgba(t), lw=1.6)
    if labels is not None:
        labelled = _draw_labels(ax, labels) or labelled
    if labelled:
        ax.legend(loc="upper right", fontsize=8)
    bar = ax.figure.colorbar(colours, ax=ax, shrink=0.8, label="date")
    bar.ax.yaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    units = _crs_units(fronts)
    ax.set_xlabel(f"x [{units}]")
    ax.set_ylabel(f"y [{units}]")
    ax.set_aspect("equal")
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.tick_params(labelsize=7)
    _scale_bar(ax, units)
    ax.set_title(title or f"calving fronts, {len(fronts)} dates")
    return ax


def front_panels(sar: xr.DataArray, fronts: Any, labels: Any = None, *, ncols: int = 4,
                 resolution: float | None = None, max_panels: int = 16) -> Figure:
    """One panel a date: the scene, its predicted front (red) and its labelled front (cyan).

    Look at these, not only at a pooled mean: a stray piece far away or a front on the fjord
    wall shows at once. With ``labels`` and ``resolution`` (the sampling step in CRS units),
    each title gives that date's MDE (:func:`xcalving.metrics.mean_distance_error`).

    Parameters
    ----------
    sar
        The scenes (time, y, x), on the fronts' grid.
    fronts, labels
        GeoDataFrames indexed by time (labels: e.g. :func:`xcalving.vector.api.label_fronts`).
    ncols, max_panels
        Panels a row; the first ``max_panels`` dates are drawn.
    resolution
        Where given with ``labels``, each panel's title has its MDE in CRS units.
    """
    times = list(fronts.index[:max_panels])
    nrows = max(1, -(-len(times) // ncols))
    figure = Figure(figsize=(3.2 * ncols, 3.2 * nrows), layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    for k, time in enumerate(times):
        label = None if labels is None else labels.iloc[[k]]
        _panel(axes[k], sar.isel(time=k), fronts.iloc[[k]], label, resolution, str(time)[:10])
    for ax in axes[len(times):]:
        ax.set_axis_off()
    return figure


def _panel(ax: Any, sar: xr.DataArray, front: Any, label: Any, resolution: float | None,
           title: str) -> None:
    """One date of :func:`front_panels`."""
    _grey(ax, sar)
    if label is not None:
        _draw_labels(ax, label)
        if resolution is not None:
            one = mean_distance_error(front, label, resolution=resolution)
            title += f": {one.mde:.0f}" if one.n_scored else ": no front"
    for part in _parts(front.geometry.iloc[0]):
        ax.plot(*part.xy, color="red", lw=1.2)
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


def _parts(geom: Any) -> list[Any]:
    """The non-empty lines of a (Multi)LineString, or none."""
    if geom is None or geom.is_empty:
        return []
    return [part for part in getattr(geom, "geoms", [geom]) if not part.is_empty]


def _draw_labels(ax: Any, labels: Any) -> bool:
    """Labelled fronts, cyan and dotted, with one legend entry; whether any was drawn."""
    drawn = False
    for geom in labels.geometry:
        for part in _parts(geom):
            xs, ys = part.xy
            ax.plot(xs, ys, color="cyan", lw=1.2, ls=":",
                    label="_" if drawn else "labelled front")
            drawn = True
    return drawn


def _flagged(table: Any) -> np.ndarray:
    """The QC's ``outlier`` column as bools (all False without one)."""
    if "outlier" not in getattr(table, "columns", ()):
        return np.zeros(len(table), bool)
    return np.asarray(table["outlier"].fillna(False), bool)


def _crs_units(fronts: Any) -> str:
    if fronts.crs is None:
        return "pixel"
    axis = fronts.crs.axis_info[0] if fronts.crs.axis_info else None
    return axis.unit_name if axis is not None else "unknown"


def terminus_plot(change: Any, *, column: str = "position_m", title: str | None = None) -> Figure:
    """Terminus position (or change) against time, with the dates that have none marked.

    Parameters
    ----------
    change
        The table of :func:`xcalving.vector.change.terminus_change`, indexed by date.
    column
        ``"position_m"`` (default) or ``"change_m"``.
    title
        Axes title (default: the number of dates with a position).

    Returns
    -------
    matplotlib.figure.Figure
        Not attached to pyplot. Dates whose front does not cross the box (NaN) are red crosses
        along the bottom of the axes, labelled "no position"; dates flagged by the QC (the
        ``outlier`` column) are grey open circles off the line, labelled "flagged (QC)", their
        ``qc_reason`` next to them.

    Examples
    --------
    >>> import pandas as pd
    >>> change = pd.DataFrame({"position_m": [3000.0, float("nan"), 2409.0]},
    ...                       index=pd.date_range("2020-01-01", periods=3, freq="180D"))
    >>> fig = terminus_plot(change)
    >>> [line.get_label() for line in fig.axes[0].lines]
    ['position_m', 'no position']
    """
    if column not in getattr(change, "columns", ()):
        raise InputError(f"column: {column!r} is not in the table; it has "
                         f"{list(getattr(change, 'columns', []))} (terminus_change's output).")
    values = np.asarray(change[column], float)
    positions = np.asarray(change["position_m"], float) if "position_m" in change.columns \
        else values
    flagged = _flagged(change) & np.isfinite(positions)  # flagged dates that have a position
    valid = np.isfinite(values) & ~flagged
    missing = ~np.isfinite(positions)
    fig = Figure(figsize=(7.5, 4.0), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(change.index[valid], values[valid], "o-", ms=4, color="C0", label=column)
    if flagged.any():
        _mark_flagged(ax, change, _flagged_values(values, positions, flagged), flagged)
    if missing.any():
        # x in dates, y in axes fractions: along the bottom, whatever the positions' range
        ax.plot(change.index[missing], np.full(int(missing.sum()), 0.04), "x", ms=7, mew=1.5,
                color="#d62728", linestyle="none", label="no position",
                transform=ax.get_xaxis_transform())
    if missing.any() or flagged.any():
        ax.legend(loc="best", fontsize=8)
    if np.issubdtype(np.asarray(change.index).dtype, np.datetime64):
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlabel(change.index.name or "date")
    ax.set_ylabel({"position_m": "terminus position from the box's upstream edge [m]",
                   "change_m": "change since the first date [m]"}.get(column, column))
    ax.grid(alpha=0.3)
    ax.set_title(title or f"terminus {column.removesuffix('_m')}, {int(valid.sum())} of "
                 f"{len(values)} dates")
    return fig


def _flagged_values(values: np.ndarray, positions: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """Where to draw flagged dates: their value, else their position less the first kept one.

    The change is NaN at flagged dates; drawn there, it is where the date would have been.
    """
    offset = (positions - values)[np.isfinite(positions - values)]
    shifted = positions - offset[0] if offset.size else positions
    return np.where(np.isfinite(values), values, shifted)[flagged]


def _mark_flagged(ax: Any, change: Any, y: np.ndarray, flagged: np.ndarray) -> None:
    """Flagged dates: grey open circles off the line, their ``qc_reason`` beside them."""
    x = change.index[flagged]
    ax.plot(x, y, "o", ms=6, mfc="none", mec="0.45", linestyle="none", label="flagged (QC)")
    reasons = change["qc_reason"].to_numpy()[flagged] if "qc_reason" in change.columns else []
    for xi, yi, reason in zip(x, y, reasons, strict=False):
        if np.isfinite(yi) and reason:
            ax.annotate(str(reason), (xi, yi), xytext=(4, 4), textcoords="offset points",
                        fontsize=7, color="0.35")


def training_curves(history: Sequence[Mapping[str, Any]]) -> Figure:
    """Loss and validation loss, and bounding-box accuracy, per epoch (as GlacierDL showed them).

    Parameters
    ----------
    history
        One mapping per epoch with ``epoch``, ``loss``, ``val_loss`` and ``bbox_accuracy``.
    """
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot(epochs, [h["loss"] for h in history], "o-", ms=3, label="training loss")
    left.plot(epochs, [h["val_loss"] for h in history], "o-", ms=3, label="validation loss")
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.legend()
    right.plot(epochs, [h["bbox_accuracy"] for h in history], "o-", ms=3, color="C2")
    right.set_xlabel("epoch")
    right.set_ylabel("bounding-box accuracy (validation)")
    right.set_ylim(0, 1)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return fig


def search_plot(trials: Any) -> Figure:
    """Learning rate × batch size of every tuning trial, coloured by validation loss.

    Parameters
    ----------
    trials
        ``study.trials_dataframe()``: columns ``params_lr``, ``params_batch_size``, ``value``
        and ``state``; pruned and failed trials are drawn as crosses.
    """
    fig = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    done = trials[trials["state"] == "COMPLETE"]
    other = trials[trials["state"] != "COMPLETE"]
    points = ax.scatter(done["params_lr"], done["params_batch_size"], c=done["value"],
                        cmap="viridis_r", s=60, edgecolors="black", label="complete")
    if len(other):
        ax.scatter(other["params_lr"], other["params_batch_size"], marker="x", c="red", s=50,
                   label="pruned or failed")
    if len(done):
        fig.colorbar(points, ax=ax, label="validation loss (best epoch)")
    ax.set_xscale("log")
    ax.set_yscale("log", base=2)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("batch size")
    ax.legend(loc="best", fontsize=8)
    ax.set_title(f"{len(trials)} trials")
    return fig
