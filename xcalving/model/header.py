"""The xcalving entries of a weights file's header: written, read and checked against its tensors.

`save_model` stores the network class, its constructor arguments (``xcalving.config``), the
format and package version, and optionally the input scaling and training pixel spacing, as
``xcalving.*`` entries of the safetensors header. Reading them back, everything the header can
tell is checked before a byte of tensor data is read: a plausible config (:data:`CONFIG_LIMITS`),
stored tensor names and shapes equal to those of the network the config describes, a valid
scaling and spacing.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xcalving.errors import InputError, InputTypeError
from xcalving.model.safetensors_file import read_header
from xcalving.model.unet import ASPPUNet
from xcalving.runtime import VERSION
from xcalving.scaling import Scaling

__all__ = ["CONFIG_LIMITS", "FORMAT_VERSION", "MAX_ASPP_RATE", "MAX_ASPP_RATES",
           "checked_network", "header_entries", "network_stride", "weights_facts"]

FORMAT_VERSION = "1"
_PREFIX = "xcalving."
_MODEL_CLASSES: dict[str, type[ASPPUNet]] = {"ASPPUNet": ASPPUNet}
#: Largest sizes a network read from a file may have; far above any useful network, and a
#: header is refused above them before anything, even a memory-free skeleton, is built.
CONFIG_LIMITS = {"in_channels": 64, "width": 1024, "n_zones": 256, "depth": 10}
MAX_ASPP_RATES, MAX_ASPP_RATE = 16, 128


def _check_user_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """Return user metadata as a plain dict, or raise `InputError` when it is not str -> str."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InputError(
            f"save_model: metadata must be a mapping of str to str; got "
            f"{type(metadata).__name__}. Pass e.g. metadata={{'trained_on': 'CaFFe'}}."
        )
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InputError(
                f"save_model: metadata keys and values must be str; got {key!r}: {value!r} "
                f"({type(key).__name__}: {type(value).__name__}). Convert with str() or "
                f"json.dumps()."
            )
        if key.startswith(_PREFIX):
            raise InputError(
                f"save_model: metadata key {key!r} starts with {_PREFIX!r}, which is reserved "
                f"for xcalving's own entries. Rename it, e.g. to {key[len(_PREFIX) :]!r}."
            )
    return dict(metadata)


def header_entries(model: nn.Module, config: Mapping[str, Any], *,
                   metadata: Mapping[str, str] | None, scaling: Scaling | None,
                   pixel_spacing: float | None) -> dict[str, str]:
    """Return the header metadata `save_model` writes for ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        The network (unwrapped from ``torch.compile``).
    config : mapping
        Its ``get_config()``.
    metadata, scaling, pixel_spacing
        As for `save_model`; ``scaling`` and ``pixel_spacing`` default to the model's
        ``xcalving_scaling`` and ``xcalving_pixel_spacing`` attributes where it has them.

    Returns
    -------
    dict of str to str
        The ``xcalving.*`` entries followed by the user's.

    Raises
    ------
    InputError
        If ``metadata`` is not a str -> str mapping with free keys, or ``pixel_spacing`` is not
        a positive number.
    """
    header = {
        f"{_PREFIX}format": FORMAT_VERSION,
        f"{_PREFIX}class": type(model).__name__,
        f"{_PREFIX}config": json.dumps(config),
        f"{_PREFIX}version": VERSION,
        **_check_user_metadata(metadata),
    }
    scaling = scaling or getattr(model, "xcalving_scaling", None)
    if scaling is not None:
        header[f"{_PREFIX}scaling"] = json.dumps(scaling.to_dict())
    pixel_spacing = pixel_spacing or getattr(model, "xcalving_pixel_spacing", None)
    if pixel_spacing is not None:
        if not (isinstance(pixel_spacing, int | float) and pixel_spacing > 0):
            raise InputError(f"save_model: pixel_spacing must be a positive number of metres; "
                             f"got {pixel_spacing!r}.")
        header[f"{_PREFIX}pixel_spacing"] = json.dumps(float(pixel_spacing))
    return header


def _network_class(meta: Mapping[str, str], path: Path, caller: str) -> type[ASPPUNet]:
    """The network class the header names, once its xcalving entries and format are checked."""
    if f"{_PREFIX}config" not in meta or f"{_PREFIX}class" not in meta:
        raise InputError(
            f"{caller}: {str(path)!r} is a safetensors file without xcalving metadata, so the "
            f"network cannot be rebuilt from it. Build the network yourself, load the tensors "
            f"with safetensors.torch.load_file and load_state_dict, then write the file with "
            f"xcalving.model.save_model."
        )
    fmt = meta.get(f"{_PREFIX}format")
    if fmt != FORMAT_VERSION:
        raise InputError(
            f"{caller}: {str(path)!r} has xcalving.format {fmt!r}; this xcalving "
            f"({VERSION}) reads format {FORMAT_VERSION!r}. Upgrade xcalving."
        )
    cls = _MODEL_CLASSES.get(meta[f"{_PREFIX}class"])
    if cls is None:
        raise InputError(
            f"{caller}: {str(path)!r} holds a {meta[f'{_PREFIX}class']!r} network; this "
            f"xcalving knows {sorted(_MODEL_CLASSES)!r}. Upgrade xcalving."
        )
    return cls


def _config_from_metadata(meta: Mapping[str, str], path: Path,
                          caller: str) -> tuple[type[ASPPUNet], dict[str, Any]]:
    """The network class and constructor arguments the xcalving header entries describe."""
    cls = _network_class(meta, path, caller)
    try:
        config = json.loads(meta[f"{_PREFIX}config"])
    except ValueError as err:  # JSONDecodeError, or an integer of thousands of digits
        raise InputError(
            f"{caller}: {str(path)!r} has an unreadable xcalving.config ({err})."
        ) from err
    if not isinstance(config, dict):
        raise InputError(
            f"{caller}: {str(path)!r} has an xcalving.config that is not a JSON object (got "
            f"{type(config).__name__}); rewrite the file with xcalving.model.save_model."
        )
    _check_plausible(config, path, caller)
    return cls, config


def _check_plausible(config: Mapping[str, Any], path: Path, caller: str) -> None:
    """Refuse a config whose sizes no real network has, before anything is built from it.

    Even on torch's ``meta`` device, a skeleton of depth 10**6 or with 10**5 ASPP branches takes
    unbounded time and memory; the limits are far above any useful network.
    """
    absurd = [f"{key}={config[key]!r} (at most {limit})" for key, limit in CONFIG_LIMITS.items()
              if _int_above(config.get(key), limit)]
    rates = config.get("aspp_rates")
    if isinstance(rates, list) and len(rates) > MAX_ASPP_RATES:
        absurd.append(f"{len(rates)} aspp_rates (at most {MAX_ASPP_RATES})")
    elif isinstance(rates, list) and any(_int_above(rate, MAX_ASPP_RATE) for rate in rates):
        absurd.append(f"aspp_rates={rates!r} (each at most {MAX_ASPP_RATE})")
    if absurd:
        raise InputError(
            f"{caller}: {str(path)!r} describes an implausible network ({', '.join(absurd)}); "
            f"it was not built. The header was damaged or written by hand: rewrite the file "
            f"with xcalving.model.save_model."
        )


def _int_above(value: Any, limit: int) -> bool:
    """Whether ``value`` is an int (not a bool) larger than ``limit``."""
    return isinstance(value, int) and not isinstance(value, bool) and value > limit


def _mismatch_message(skeleton: ASPPUNet, stored: Mapping[str, tuple[int, ...]],
                      path: Path, caller: str) -> str | None:
    """Why the stored tensors do not fit the network of the metadata, or None when they do."""
    expected = {key: tuple(t.shape) for key, t in skeleton.state_dict().items()}
    if stored == expected:
        return None
    missing, extra = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    shapes = [f"{key}: file {stored[key]}, config {expected[key]}"
              for key in expected if key in stored and stored[key] != expected[key]]
    parts = ([f"shapes differ ({'; '.join(shapes[:3])})"] if shapes else []) + (
        [f"{len(missing)} tensors missing (e.g. {missing[:2]})"] if missing else []) + (
        [f"{len(extra)} unexpected tensors (e.g. {extra[:2]})"] if extra else [])
    return (
        f"{caller}: the tensors in {str(path)!r} do not match the network described by its "
        f"metadata ({skeleton.get_config()}): {'; '.join(parts)}.{_config_hint(skeleton, stored)}"
        f" The file is damaged or was edited; rewrite it with save_model."
    )


def _config_hint(skeleton: ASPPUNet, stored: Mapping[str, tuple[int, ...]]) -> str:
    """Which config entries the stored tensors contradict, read off the first and last convs."""
    config, hints = skeleton.get_config(), []
    first, zones = stored.get("encoders.0.0.0.weight"), stored.get("zones_head.weight")
    if first is not None and len(first) == 4 and first[0] != config["width"]:
        hints.append(f"width={config['width']}, but the tensors were saved with width={first[0]}")
    if first is not None and len(first) == 4 and first[1] != config["in_channels"]:
        hints.append(f"in_channels={config['in_channels']}, tensors {first[1]}")
    if zones is not None and zones and zones[0] != config["n_zones"]:
        hints.append(f"n_zones={config['n_zones']}, tensors {zones[0]}")
    depth = len({key.split(".")[1] for key in stored if key.startswith("encoders.")})
    if depth and depth != config["depth"]:
        hints.append(f"depth={config['depth']}, tensors {depth}")
    return f" The metadata says {'; '.join(hints)}." if hints else ""


def _checked_skeleton(path: str | os.PathLike[str],
                      caller: str) -> tuple[ASPPUNet, dict[str, str], Path]:
    """The network a weights file describes, on torch's ``meta`` device, checked against it.

    Order matters for hostile files: the header is bounded (``MAX_HEADER_BYTES``), the config
    is checked for plausible sizes (:data:`CONFIG_LIMITS`), the skeleton costs no memory, and
    every stored tensor's name and shape (read from the header, not the data) must be the
    skeleton's. Whatever is built from it afterwards is as large as the file, no larger.
    """
    path, meta, stored = read_header(path, caller)
    cls, config = _config_from_metadata(meta, path, caller)
    try:
        with torch.device("meta"):
            skeleton = cls.from_config(config)
    except (InputError, InputTypeError) as err:
        raise InputError(
            f"{caller}: {str(path)!r} has an invalid xcalving.config: {err} Rewrite the file "
            f"with xcalving.model.save_model."
        ) from err
    message = _mismatch_message(skeleton, stored, path, caller)
    if message is not None:
        raise InputError(message)
    return skeleton, meta, path


def _scaling_from_metadata(meta: Mapping[str, str], path: Path, caller: str) -> Scaling | None:
    """The input scaling a weights file records, checked, or None when it records none."""
    text = meta.get(f"{_PREFIX}scaling")
    if text is None:
        return None
    try:
        scaling = Scaling.from_dict(json.loads(text))
        valid = (scaling.domain in ("uint8", "db") and math.isfinite(scaling.mean)
                 and math.isfinite(scaling.std) and scaling.std > 0
                 and math.isfinite(scaling.fill))
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise InputError(f"{caller}: {str(path)!r} has an unreadable xcalving.scaling "
                         f"({type(err).__name__}: {err}); rewrite the file with "
                         f"xcalving.model.save_model(..., scaling=...).") from err
    if not valid:
        raise InputError(
            f"{caller}: {str(path)!r} records xcalving.scaling {scaling.to_dict()}; the domain "
            f"must be 'uint8' or 'db', the mean and fill finite and the std a finite number > "
            f"0. Rewrite the file with xcalving.model.save_model(..., scaling=...)."
        )
    return scaling


def _spacing_from_metadata(meta: Mapping[str, str], path: Path, caller: str) -> float | None:
    """The training pixel spacing (metres) a weights file records, checked, or None."""
    text = meta.get(f"{_PREFIX}pixel_spacing")
    if text is None:
        return None
    try:
        spacing = float(json.loads(text))
    except (ValueError, TypeError) as err:
        spacing = math.nan
        cause: Exception | None = err
    else:
        cause = None
    if not (math.isfinite(spacing) and spacing > 0):
        raise InputError(
            f"{caller}: {str(path)!r} records xcalving.pixel_spacing {text!r}; it must be a "
            f"positive number of metres. Rewrite the file with xcalving.model.save_model(..., "
            f"pixel_spacing=...)."
        ) from cause
    return spacing


def checked_network(path: str | os.PathLike[str], caller: str
                    ) -> tuple[ASPPUNet, Path, Scaling | None, float | None]:
    """Check a weights file's header against its tensor shapes; return what it describes.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.safetensors`` file written by `save_model`.
    caller : str
        The argument or function named in error messages.

    Returns
    -------
    skeleton : ASPPUNet
        The network the header describes, on torch's ``meta`` device (no memory).
    path : pathlib.Path
        ``path``, checked.
    scaling : Scaling or None
        The input scaling the network was trained on, where the file records it.
    pixel_spacing : float or None
        Metres per pixel of the training data, where the file records it.

    Raises
    ------
    InputError
        If the file lacks xcalving metadata, describes an implausible network, its tensors do
        not match the network, or its scaling or pixel spacing is invalid.
    """
    skeleton, meta, checked = _checked_skeleton(path, caller)
    return (skeleton, checked, _scaling_from_metadata(meta, checked, caller),
            _spacing_from_metadata(meta, checked, caller))


def weights_facts(path: str | os.PathLike[str],
                  caller: str = "model") -> tuple[dict[str, Any], Scaling | None, float | None]:
    """Check a weights file without loading its tensors; return its config, scaling and spacing.

    Everything `load_model` would check that the header can tell is checked here: a regular
    file, a bounded header, xcalving metadata, a plausible config, stored tensor names and
    shapes equal to those of the network the config describes, and a valid scaling and pixel
    spacing. The network is built on torch's ``meta`` device only (no memory).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.safetensors`` file written by `save_model`.
    caller : str, default "model"
        The argument or function named in error messages.

    Returns
    -------
    config : dict
        The network's complete constructor arguments (``ASPPUNet.get_config()``) plus
        ``"stride"``.
    scaling : Scaling or None
        The input scaling the network was trained on, where the file records it.
    pixel_spacing : float or None
        Metres per pixel of the training data, where the file records it.
    """
    skeleton, _, scaling, spacing = checked_network(path, caller)
    return {**skeleton.get_config(), "stride": skeleton.stride}, scaling, spacing


def network_stride(path: str | os.PathLike[str]) -> int:
    """Return the stride of the network in a weights file, without loading its weights.

    The file is checked as `weights_facts` checks it, so a damaged file fails here rather than
    later on a worker.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.safetensors`` file written by `save_model`.

    Returns
    -------
    int
        The factor the network downsamples by; window sizes must be multiples of it.

    Raises
    ------
    InputError
        If the file lacks xcalving metadata, describes an implausible network, or its tensors
        do not match the network.
    """
    return _checked_skeleton(path, "model")[0].stride
