"""Reading CaFFe's 8-bit grey PNG files: SAR images, label PNGs as class codes, image shapes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from xcalving.errors import InputError, InputNotFoundError, did_you_mean
from xcalving.zones import FRONT_GREYS, ZONE_GREYS

__all__ = ["read_label"]

_LABELS = {"zones": (ZONE_GREYS, "no data, rock, glacier, ocean"),
           "front": (FRONT_GREYS, "background, front")}


def _read_grey_png(path: str | os.PathLike[str], what: str) -> np.ndarray:
    """Read an 8-bit single-channel PNG fully, turning every decoding failure into InputError."""
    from PIL import Image  # heavy: PIL, loaded on first use

    try:
        with Image.open(path, formats=["PNG"]) as image:
            image.load()  # decode now: a truncated file fails here, not later in a worker
            grey = _grey_pixels(image)
    except FileNotFoundError:
        raise InputNotFoundError(f"{what}: no file at {os.fspath(path)!r}.") from None
    except (OSError, SyntaxError, ValueError) as err:  # PIL's errors for broken/non-PNG files
        raise InputError(
            f"{os.fspath(path)!r} ({what}) is not a readable PNG: {err}. The file is corrupted, "
            "truncated or in another format; copy or download it again."
        ) from err
    if grey is None:
        raise InputError(
            f"{os.fspath(path)!r} ({what}) is not an 8-bit grey PNG (mode {image.mode!r}, "
            "channels that differ, or more than 8 bits); CaFFe files are 8-bit single-channel "
            "grey. Convert it, e.g. PIL.Image.open(p).convert('L').save(p)."
        )
    return grey


def _grey_pixels(image: Any) -> np.ndarray | None:
    """8-bit grey values of a decoded image; ``None`` when it is not grey at 8 bits."""
    if image.mode in ("L", "1"):
        return np.asarray(image.convert("L"))
    if image.mode in ("P", "LA", "RGB", "RGBA"):
        rgb = np.asarray(image.convert("RGB"))
        if (rgb == rgb[..., :1]).all():  # grey stored as colour: every channel agrees
            return np.ascontiguousarray(rgb[..., 0])
    return None


def read_label(path: str | os.PathLike[str], kind: Literal["zones", "front"]) -> np.ndarray:
    """Read a CaFFe label PNG as class codes.

    Parameters
    ----------
    path
        The ``*_zones.png`` or ``*_front.png`` file.
    kind
        ``"zones"``: grey 0/64/127/254 become classes 0 no data, 1 rock, 2 glacier, 3 ocean;
        ``"front"``: grey 0/255 become 0/1.

    Returns
    -------
    numpy.ndarray
        uint8 class codes, same shape as the image.

    Raises
    ------
    InputError
        For any other grey value (never read silently as class 0), naming the file, the values
        and their pixel counts; for a corrupted, truncated or non-PNG file.
    """
    if kind not in _LABELS:
        raise InputError(f"kind must be 'zones' or 'front'; got {kind!r}."
                         + did_you_mean(str(kind), _LABELS))
    return _grey_to_classes(_read_grey_png(path, f"{kind} label"), path, kind)


def _grey_to_classes(grey: np.ndarray, path: str | os.PathLike[str], kind: str) -> np.ndarray:
    greys, meanings = _LABELS[kind]
    lookup = np.full(256, 255, np.uint8)  # 255 marks grey values that are no class
    lookup[list(greys)] = np.arange(len(greys))
    classes = lookup[grey]
    illegal = classes == 255
    if illegal.any():
        values, counts = np.unique(grey[illegal], return_counts=True)
        listed = ", ".join(f"{v} ({c} px)" for v, c in zip(values[:8], counts[:8], strict=True))
        more = f" and {values.size - 8} more values" if values.size > 8 else ""
        raise InputError(
            f"{os.fspath(path)!r}: {kind} label has grey values that are no CaFFe class: "
            f"{listed}{more}; {int(illegal.sum())} pixels in all. Expected only "
            f"{', '.join(map(str, greys))} ({meanings}). Fix the file, e.g. map resampling "
            "artefacts to the nearest legal value."
        )
    return classes


def _image_shape(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(rows, cols) of a PNG from its header, without decoding the pixels."""
    from PIL import Image  # heavy: PIL, loaded on first use

    try:
        with Image.open(path, formats=["PNG"]) as image:
            cols, rows = image.size
    except (OSError, SyntaxError, ValueError) as err:
        raise InputError(f"{os.fspath(path)!r} is not a readable PNG: {err}. Copy or download "
                         "it again.") from err
    return rows, cols


def _read_scene_arrays(row: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SAR, zones and front of one catalog row, checked to share one shape."""
    sar = _read_grey_png(row["image_path"], "SAR image")
    zones = read_label(row["zones_path"], "zones")
    front = read_label(row["front_path"], "front")
    if not sar.shape == zones.shape == front.shape:
        raise InputError(
            f"scene {row['stem']!r}: image {sar.shape}, zones {zones.shape} and front "
            f"{front.shape} differ in shape; the three files of a scene must match pixel for "
            "pixel. Replace the mismatched file."
        )
    return sar, zones, front
