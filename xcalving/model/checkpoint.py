"""Self-describing ``.safetensors`` weights files for xcalving networks.

A weights file holds the state dict and, in the safetensors header, the network class and its
constructor arguments, so `load_model` needs nothing but the path. Pickle-based checkpoints
(``torch.save``) are refused: unpickling can run arbitrary code.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from xcalving.errors import (
    DeviceError,
    InputError,
    InputTypeError,
    UnsafeFileError,
)
from xcalving.model.unet import ASPPUNet
from xcalving.model.weights import check_regular_file
from xcalving.scaling import Scaling

__all__ = ["CONFIG_LIMITS", "MAX_HEADER_BYTES", "count_parameters", "load_model",
           "network_stride", "read_metadata", "save_model", "weights_facts"]

FORMAT_VERSION = "1"
_PREFIX = "xcalving."
_MODEL_CLASSES: dict[str, type[ASPPUNet]] = {"ASPPUNet": ASPPUNet}
_PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".ckpt", ".pkl", ".pickle"})
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80
#: Largest safetensors header read (xcalving's own are a few kB; safetensors allows 100 MB).
MAX_HEADER_BYTES = 16 * 2**20
#: Largest sizes a network read from a file may have; far above any useful network, and a
#: header is refused above them before anything, even a memory-free skeleton, is built.
CONFIG_LIMITS = {"in_channels": 64, "width": 1024, "n_zones": 256, "depth": 10}
MAX_ASPP_RATES, MAX_ASPP_RATE = 16, 128
_CONVERT_HINT = (
    "To convert a checkpoint you trust, load it yourself in a trusted session with "
    "state = torch.load(path, weights_only=True), build the network, call "
    "model.load_state_dict(state) and write it with xcalving.model.save_model(model, "
    "'weights.safetensors')."
)


def _package_version() -> str:
    """Return the installed xcalving version, or ``"0+unknown"`` when run from a bare checkout."""
    try:
        return importlib_metadata.version("xcalving")
    except importlib_metadata.PackageNotFoundError:
        return "0+unknown"


def count_parameters(model: nn.Module) -> int:
    """Return the number of parameters of ``model`` (shared parameters counted once).

    Parameters
    ----------
    model : torch.nn.Module
        Any network.

    Returns
    -------
    int
        Total number of scalar parameters, trainable or not.
    """
    return sum(p.numel() for p in model.parameters())


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


def _check_suffix(path: Path, caller: str) -> None:
    """Raise `InputError` unless ``path`` ends in ``.safetensors``."""
    if path.suffix != ".safetensors":
        raise InputError(
            f"{caller}: path must end in '.safetensors'; got {str(path)!r}. "
            f"Use {str(path.with_suffix('.safetensors'))!r}."
        )


def save_model(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    metadata: Mapping[str, str] | None = None,
    scaling: Scaling | None = None,
    pixel_spacing: float | None = None,
) -> Path:
    """Write ``model`` to one self-describing ``.safetensors`` file.

    Parameters
    ----------
    model : ASPPUNet
        The network; it must have ``get_config()``.
    path : str or os.PathLike
        Destination; must end in ``.safetensors``. Missing parent folders are created.
    metadata : mapping of str to str, optional
        Extra header entries (e.g. training data, licence). Keys may not start with
        ``"xcalving."``.
    scaling : xcalving.scaling.Scaling, optional
        The input scaling the network was trained on (stored as ``xcalving.scaling``; default:
        the model's ``xcalving_scaling`` attribute where it has one). ``predict`` converts input
        to it.
    pixel_spacing : float, optional
        Metres per pixel of the training data (stored as ``xcalving.pixel_spacing``; default:
        the model's ``xcalving_pixel_spacing`` attribute where it has one).
        ``predict(..., resolution="model")`` runs the network at this spacing.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    InputError
        If the suffix is wrong or ``metadata`` is not a str -> str mapping with free keys.
    InputTypeError
        If ``model`` has no ``get_config()``.

    Notes
    -----
    The file is written to a temporary name in the same folder and renamed over ``path``, so
    readers never see a half-written file and an interrupted save leaves the old one intact.
    """
    path = Path(path)
    _check_suffix(path, "save_model")
    # torch.compile wraps the network; its state dict keys and class name would not round-trip.
    model = getattr(model, "_orig_mod", model)
    # getattr, because nn.Module.__getattr__ makes static checkers type the attribute as a Tensor
    get_config = getattr(model, "get_config", None)
    if not isinstance(model, nn.Module) or not callable(get_config):
        raise InputTypeError(
            f"save_model: model must be an xcalving network with get_config(), such as "
            f"ASPPUNet; got {type(model).__name__}. Save other modules with "
            f"safetensors.torch.save_file(model.state_dict(), path)."
        )
    header = {
        f"{_PREFIX}format": FORMAT_VERSION,
        f"{_PREFIX}class": type(model).__name__,
        f"{_PREFIX}config": json.dumps(get_config()),
        f"{_PREFIX}version": _package_version(),
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
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    _atomic_save(tensors, path, header)
    return path


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, header: dict[str, str]) -> None:
    """Write ``tensors`` to a temporary file next to ``path`` and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    # Creating the file ourselves (rather than with tempfile) gives it umask-based permissions
    # instead of 0600, so the renamed file looks like any other file the user writes.
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        save_file(tensors, tmp, metadata=header)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    """Return whether ``head`` starts like a safetensors file of ``size`` bytes.

    A safetensors file is an 8-byte little-endian header length followed by a JSON object. This
    is checked before the pickle signature because the first length byte can be 0x80 too.
    """
    if len(head) < 9:
        return False
    header_len = int.from_bytes(head[:8], "little")
    return 8 + header_len <= size and head[8:9] == b"{"


def _check_file(path: str | os.PathLike[str], caller: str) -> Path:
    """Return ``path`` if it is an existing safetensors file, else raise the right error."""
    path = Path(path)
    size = check_regular_file(path, caller).st_size
    with open(path, "rb") as handle:
        head = handle.read(16)
    safetensors_like = _looks_like_safetensors(head, size)
    pickled = head.startswith(_ZIP_MAGIC) or (head[:1] == bytes([_PICKLE_PROTO]))
    if path.suffix.lower() in _PICKLE_SUFFIXES or (pickled and not safetensors_like):
        raise UnsafeFileError(
            f"{caller}: {str(path)!r} looks like a pickle or torch.save() checkpoint. xcalving "
            f"reads .safetensors files only, because loading a pickle file can run arbitrary "
            f"code. {_CONVERT_HINT}"
        )
    if not safetensors_like:
        raise InputError(
            f"{caller}: {str(path)!r} is not a safetensors file (unexpected header). Pass a "
            f"file written by xcalving.model.save_model."
        )
    header_len = int.from_bytes(head[:8], "little")
    if header_len > MAX_HEADER_BYTES:
        raise InputError(
            f"{caller}: {str(path)!r} has a safetensors header of {header_len:,} bytes; xcalving "
            f"reads headers of at most {MAX_HEADER_BYTES:,} bytes (its own are a few kB). The "
            f"file is damaged or not a weights file; rewrite it with xcalving.model.save_model."
        )
    return path


def _read_header(path: str | os.PathLike[str],
                 caller: str) -> tuple[Path, dict[str, str], dict[str, tuple[int, ...]]]:
    """The checked path, header metadata and stored tensor shapes; reads no tensor data."""
    path = _check_file(path, caller)
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = dict(handle.metadata() or {})
            shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except SafetensorError as err:
        raise InputError(
            f"{caller}: {str(path)!r} is not a valid safetensors file ({err}). Rewrite it "
            f"with xcalving.model.save_model."
        ) from err
    return path, meta, shapes


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """Return the header metadata of a ``.safetensors`` file without loading its tensors.

    Parameters
    ----------
    path : str or os.PathLike
        A safetensors file.

    Returns
    -------
    dict of str to str
        The header metadata; empty when the file has none.

    Raises
    ------
    WeightsNotFoundError
        If there is no file at ``path``.
    UnsafeFileError
        If the file is a pickle or ``torch.save()`` checkpoint.
    InputError
        If ``path`` is not a regular file (a directory, device or pipe) or not a valid
        safetensors file, or its header is larger than :data:`MAX_HEADER_BYTES`.
    """
    return _read_header(path, "read_metadata")[1]


def _config_from_metadata(meta: Mapping[str, str], path: Path,
                          caller: str) -> tuple[type[ASPPUNet], dict[str, Any]]:
    """The network class and constructor arguments the xcalving header entries describe."""
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
            f"({_package_version()}) reads format {FORMAT_VERSION!r}. Upgrade xcalving."
        )
    cls = _MODEL_CLASSES.get(meta[f"{_PREFIX}class"])
    if cls is None:
        raise InputError(
            f"{caller}: {str(path)!r} holds a {meta[f'{_PREFIX}class']!r} network; this "
            f"xcalving knows {sorted(_MODEL_CLASSES)!r}. Upgrade xcalving."
        )
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

    Order matters for hostile files: the header is bounded (:data:`MAX_HEADER_BYTES`), the
    config is checked for plausible sizes (:data:`CONFIG_LIMITS`), the skeleton costs no
    memory, and every stored tensor's name and shape (read from the header, not the data) must
    be the skeleton's. Whatever is built from it afterwards is as large as the file, no larger.
    """
    path, meta, stored = _read_header(path, caller)
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


def _check_device(device: str | torch.device) -> torch.device:
    """Return ``device`` as a `torch.device`, or raise when it is malformed or absent."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InputError(
            f"load_model: device must be a torch device such as 'cpu' or 'cuda:0'; got {device!r}."
        ) from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            f"load_model: device {device!r} requested but CUDA is not available. Use device='cpu'."
        )
    return dev


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
    skeleton, meta, checked = _checked_skeleton(path, caller)
    return ({**skeleton.get_config(), "stride": skeleton.stride},
            _scaling_from_metadata(meta, checked, caller),
            _spacing_from_metadata(meta, checked, caller))


def load_model(path: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> ASPPUNet:
    """Load a network written by `save_model`.

    The header is checked first, without reading tensor data (see `weights_facts`): a file
    whose metadata describes another network than its tensors, or an implausibly large one, is
    refused before any memory is allocated for it.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.safetensors`` file written by `save_model`.
    device : str or torch.device, default "cpu"
        Where to put the weights.

    Returns
    -------
    ASPPUNet
        The network in ``eval()`` mode with every weight loaded (strict).

    Raises
    ------
    WeightsNotFoundError
        If there is no file at ``path``.
    UnsafeFileError
        If the file is a pickle or ``torch.save()`` checkpoint, which could run code.
    InputError
        If ``path`` is not a regular file, the file lacks xcalving metadata, describes an
        implausible network, or its tensors do not match the network.
    DeviceError
        If ``device`` is a CUDA device and CUDA is not available.
    """
    dev = _check_device(device)
    skeleton, meta, path = _checked_skeleton(path, "load_model")
    scaling = _scaling_from_metadata(meta, path, "load_model")
    spacing = _spacing_from_metadata(meta, path, "load_model")
    model = skeleton.to_empty(device="cpu")  # every entry is overwritten by the strict load
    state = load_file(str(path), device="cpu")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise InputError(
            f"load_model: the tensors in {str(path)!r} do not match the network described by "
            f"its metadata ({err}). The file is damaged or was edited; rewrite it with "
            f"save_model."
        ) from err
    if scaling is not None:  # predict() converts input to what the network was trained on
        object.__setattr__(model, "xcalving_scaling", scaling)  # a plain attribute, not a module
    if spacing is not None:
        object.__setattr__(model, "xcalving_pixel_spacing", spacing)
    return model.to(dev).eval()


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
