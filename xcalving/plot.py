"""Pictures: a scene with its zones and front. Imports matplotlib, so import it only to draw."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from xcalving.data.synthetic import ZONE_NAMES
from xcalving.errors import InputError

__all__ = ["ZONE_COLOURS", "scene"]

#: Colours of the zone classes 0..3: no data, rock, glacier, ocean.
ZONE_COLOURS = ("#000000", "#8c6d46", "#dff3ff", "#1d4e89")


def _extent(da: xr.DataArray) -> list[float]:
    """Extent for imshow (left, right, bottom, top) at pixel edges, in the cube's coordinates."""
    x, y = da["x"].values, da["y"].values
    dx = (x[-1] - x[0]) / max(len(x) - 1, 1)
    dy = (y[-1] - y[0]) / max(len(y) - 1, 1)
    return [x[0] - dx / 2, x[-1] + dx / 2, y[-1] + dy / 2, y[0] - dy / 2]


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
    sar = one[variable].values
    lo, hi = np.nanpercentile(sar, [2, 98]) if np.isfinite(sar).any() else (0, 1)
    image = axes[0].imshow(sar, cmap="gray", vmin=lo, vmax=hi, extent=extent,
                           interpolation="nearest")
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
