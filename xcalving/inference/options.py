"""Predict's options: their one set of defaults, and their checks.

:class:`PredictOptions` is built and checked once per :func:`~xcalving.predict` call and passed
down the flow whole; ``xcalving.predict`` and the ``.calving`` accessors take their defaults
from its fields. What needs the network (the stride) is checked by :func:`check_tile` once the
model is known. What is stored is chosen here too: ``dtype`` (probabilities packed to uint8 or
kept float32 on disk) and ``outputs`` (which variables the Dataset holds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xcalving.budget import (
    DEFAULT_MAX_PIXELS,
    check_budget,
    check_max_pixels,
    check_refinement,
    window_pixels,
)
from xcalving.errors import InputError, InputTypeError, did_you_mean
from xcalving.runtime import check_precision

__all__ = ["DTYPES", "OUTPUTS", "PredictOptions", "check_tile", "check_work"]

#: The variables predict can return, in the Dataset's order; ``zones`` is always computed from
#: the blended zone probabilities, whether or not ``zone_probability`` is returned.
OUTPUTS = ("front_probability", "zone_probability", "zones")
#: How probabilities are stored: ``uint8`` (CF-packed, 1/254 steps) or ``float32``.
DTYPES = ("uint8", "float32")


@dataclass(frozen=True)
class PredictOptions:
    """The options of one prediction; see :func:`xcalving.predict` for what each means.

    The field defaults are predict's defaults (the accessors read them from here). Building one
    checks the options' types, the precision and the resolution; the windows are checked
    against the network by :func:`check_tile`.

    Examples
    --------
    >>> PredictOptions().tile, PredictOptions.overlap
    (512, 128)
    >>> PredictOptions().outputs, PredictOptions(outputs="all", dtype=np.float32).dtype
    (('front_probability', 'zones'), 'float32')
    >>> PredictOptions(precision="half")
    Traceback (most recent call last):
    ...
    xcalving.errors.InputError: precision must be 'auto', 'fp32', 'bf16' or 'fp16'; got 'half'.
    """

    tile: int = 512
    overlap: int = 128
    batch_size: int = 8
    device: str = "auto"
    precision: str = "auto"
    band: Any = None
    #: What the values are; ``"auto"`` until predict has read the input's metadata.
    scaling: str = "auto"
    resolution: float | str | None = None
    #: Storage of the probabilities: ``"uint8"`` packs them (the Dataset stays float32).
    dtype: str = "uint8"
    #: The variables returned: any of :data:`OUTPUTS`, or ``"all"``.
    outputs: Sequence[str] = ("front_probability", "zones")
    #: Pixels the windows may feed the network (:mod:`xcalving.budget`); None: no budget.
    max_pixels: float | None = DEFAULT_MAX_PIXELS
    #: Test-time flips: each weights also runs on the cube flipped (x, y, both), mean taken.
    tta: bool = False

    def __post_init__(self) -> None:
        _check_whole_numbers(tile=self.tile, overlap=self.overlap, batch_size=self.batch_size)
        check_precision(self.precision)
        _check_resolution(self.resolution)
        object.__setattr__(self, "max_pixels", check_max_pixels(self.max_pixels))
        if not isinstance(self.tta, bool | np.bool_):
            raise InputTypeError(f"tta must be True or False; got {self.tta!r}.")
        object.__setattr__(self, "tta", bool(self.tta))
        # frozen: the checked, normalised forms replace what was given
        object.__setattr__(self, "dtype", _check_dtype(self.dtype))
        object.__setattr__(self, "outputs", _check_outputs(self.outputs))


def check_tile(tile: int, overlap: int, stride: int, batch_size: int) -> None:
    """Validate the window arguments against the network stride."""
    _check_whole_numbers(tile=tile, overlap=overlap, batch_size=batch_size)
    if tile < stride or tile % stride:
        good = max(stride, int(round(tile / stride)) * stride)
        raise InputError(
            f"tile={tile} is not a multiple of the network stride {stride}: windows must divide "
            f"evenly through its {int(math.log2(stride)) if stride > 1 else 0} poolings. "
            f"Use tile={good}."
        )
    if not 0 <= overlap < tile:
        raise InputError(
            f"overlap={overlap} must be >= 0 and smaller than tile={tile}; "
            f"e.g. overlap={tile // 4}."
        )
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1; got {batch_size}.")


def check_work(sizes: Mapping[Any, int], spacings: tuple[float, float] | None,
               options: PredictOptions) -> None:
    """Refuse a prediction whose windows would feed the network more than ``max_pixels``.

    ``sizes`` are the input's dim sizes and ``spacings`` the (network, input) pixel spacings
    where the input is resampled; counted from metadata, before anything is built or computed.
    """
    scale = 1.0
    if spacings is not None:
        check_refinement(spacings[0], spacings[1], options.max_pixels)
        scale = spacings[1] / spacings[0]
    scenes = math.prod(n for d, n in sizes.items() if d not in ("y", "x"))
    ny, nx = (max(1, round(sizes[d] * scale)) for d in ("y", "x"))
    pixels = scenes * window_pixels(ny, options.tile, options.overlap) * \
        window_pixels(nx, options.tile, options.overlap)
    where = "" if spacings is None else f" at resolution={spacings[0]:g} m"
    check_budget(pixels, options.max_pixels, what="predict",
                 detail=f"{scenes} scene(s) of {ny} x {nx} px{where}, in windows of "
                        f"{options.tile} px overlapping by {options.overlap}",
                 fix="Select fewer scenes or a smaller area first (da.isel(time=..., "
                     "y=slice(...), x=slice(...))), or check resolution=.")


def _check_whole_numbers(**values: Any) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise InputError(f"{name} must be a whole number; got {value!r}.")


def _check_resolution(resolution: Any) -> None:
    if resolution is None or (isinstance(resolution, str) and resolution == "model"):
        return
    if isinstance(resolution, str | bool) or not isinstance(resolution, int | float | np.number):
        raise InputError(f"resolution must be None, 'model' or a number of metres; got "
                         f"{resolution!r}.")
    if not np.isfinite(resolution) or resolution <= 0:
        raise InputError(f"resolution must be a positive number of metres; got {resolution!r}.")


def _check_dtype(dtype: Any) -> str:
    """``dtype`` as one of :data:`DTYPES` (a name, a numpy dtype or type)."""
    try:  # None and bools are not dtypes here (numpy reads None as float64)
        name = None if dtype is None or isinstance(dtype, bool) else np.dtype(dtype).name
    except TypeError:
        name = None
    if name in DTYPES:
        return str(name)
    message = (f"dtype must be 'uint8' (probabilities packed in 1/254 steps, the default) or "
               f"'float32'; got {dtype!r}." + did_you_mean(str(dtype), DTYPES))
    raise InputError(message)


def _check_outputs(outputs: Any) -> tuple[str, ...]:
    """``outputs`` as a tuple of names from :data:`OUTPUTS`, in the Dataset's order."""
    if isinstance(outputs, str):
        outputs = OUTPUTS if outputs == "all" else (outputs,)
    try:
        names = list(outputs)
    except TypeError:
        names = None
    if names is None or not all(isinstance(n, str) for n in names):
        message = (f"outputs must be a name or a sequence of names from {list(OUTPUTS)} "
                   f"(or 'all'); got {outputs!r}.")
        raise InputTypeError(message)
    for name in names:
        if name not in OUTPUTS:
            message = (f"outputs: {name!r} is not an output; choose from {list(OUTPUTS)} "
                       "(or outputs='all')." + did_you_mean(name, OUTPUTS))
            raise InputError(message)
    if not names:
        message = (f"outputs is empty: name at least one of {list(OUTPUTS)}, e.g. "
                   "outputs=('front_probability', 'zones').")
        raise InputError(message)
    return tuple(n for n in OUTPUTS if n in names)
