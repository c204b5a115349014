"""Self-describing ``.safetensors`` weights files for xcalving networks.

A weights file holds the state dict and, in the safetensors header, the network class and its
constructor arguments, so `load_model` needs nothing but the path. Pickle-based checkpoints
(``torch.save``) are refused: unpickling can run arbitrary code.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from xcalving.errors import (
    DeviceError,
    InputError,
    InputTypeError,
    UnsafeFileError,
    WeightsNotFoundError,
)
from xcalving.model.unet import ASPPUNet
from xcalving.scaling import Scaling

__all__ = ["count_parameters", "load_model", "network_stride", "read_metadata", "save_model"]

FORMAT_VERSION = "1"
_PREFIX = "xcalving."
_MODEL_CLASSES: dict[str, type[ASPPUNet]] = {"ASPPUNet": ASPPUNet}
_PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".ckpt", ".pkl", ".pickle"})
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80
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
    if not path.exists():
        raise WeightsNotFoundError(
            f"{caller}: no weights file at {str(path)!r}. Check the path, or write one with "
            f"xcalving.model.save_model(model, path)."
        )
    if not path.is_file():
        raise InputError(f"{caller}: {str(path)!r} is not a file; pass the .safetensors file.")
    with open(path, "rb") as handle:
        head = handle.read(16)
    safetensors_like = _looks_like_safetensors(head, path.stat().st_size)
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
    return path


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
        If the file is not a valid safetensors file.
    """
    path = _check_file(path, "read_metadata")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except SafetensorError as err:
        raise InputError(
            f"read_metadata: {str(path)!r} is not a valid safetensors file ({err}). Rewrite it "
            f"with xcalving.model.save_model."
        ) from err


def _model_from_metadata(meta: Mapping[str, str], path: Path) -> ASPPUNet:
    """Build the (untrained) network that the xcalving header entries of ``path`` describe."""
    if f"{_PREFIX}config" not in meta or f"{_PREFIX}class" not in meta:
        raise InputError(
            f"load_model: {str(path)!r} is a safetensors file without xcalving metadata, so the "
            f"network cannot be rebuilt from it. Build the network yourself, load the tensors "
            f"with safetensors.torch.load_file and load_state_dict, then write the file with "
            f"xcalving.model.save_model."
        )
    fmt = meta.get(f"{_PREFIX}format")
    if fmt != FORMAT_VERSION:
        raise InputError(
            f"load_model: {str(path)!r} has xcalving.format {fmt!r}; this xcalving "
            f"({_package_version()}) reads format {FORMAT_VERSION!r}. Upgrade xcalving."
        )
    cls = _MODEL_CLASSES.get(meta[f"{_PREFIX}class"])
    if cls is None:
        raise InputError(
            f"load_model: {str(path)!r} holds a {meta[f'{_PREFIX}class']!r} network; this "
            f"xcalving knows {sorted(_MODEL_CLASSES)!r}. Upgrade xcalving."
        )
    try:
        config = json.loads(meta[f"{_PREFIX}config"])
    except json.JSONDecodeError as err:
        raise InputError(
            f"load_model: {str(path)!r} has an unreadable xcalving.config ({err})."
        ) from err
    return cls.from_config(config)


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


def load_model(path: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> ASPPUNet:
    """Load a network written by `save_model`.

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
        If the file lacks xcalving metadata or its tensors do not match the network.
    DeviceError
        If ``device`` is a CUDA device and CUDA is not available.
    """
    dev = _check_device(device)
    meta = read_metadata(path)
    path = Path(path)
    model = _model_from_metadata(meta, path)
    state = load_file(str(path), device="cpu")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise InputError(
            f"load_model: the tensors in {str(path)!r} do not match the network described by "
            f"its metadata ({err}). The file is damaged or was edited; rewrite it with "
            f"save_model."
        ) from err
    if f"{_PREFIX}scaling" in meta:  # predict() converts input to what the network was trained on
        scaling = Scaling.from_dict(json.loads(meta[f"{_PREFIX}scaling"]))
        object.__setattr__(model, "xcalving_scaling", scaling)  # a plain attribute, not a module
    if f"{_PREFIX}pixel_spacing" in meta:
        spacing = float(json.loads(meta[f"{_PREFIX}pixel_spacing"]))
        object.__setattr__(model, "xcalving_pixel_spacing", spacing)
    return model.to(dev).eval()


def network_stride(path: str | os.PathLike[str]) -> int:
    """Return the stride of the network in a weights file, without loading its weights.

    The network is built from the file's metadata on torch's ``meta`` device (no memory, no
    initialisation), and the names and shapes of the stored tensors are checked against it, as
    `load_model` would, so a damaged file fails here rather than later on a worker.

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
        If the file lacks xcalving metadata or its tensors do not match the network.
    """
    meta = read_metadata(path)
    path = Path(path)
    with torch.device("meta"):
        skeleton = _model_from_metadata(meta, path)
    expected = {key: tuple(t.shape) for key, t in skeleton.state_dict().items()}
    with safe_open(str(path), framework="pt") as handle:
        stored = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    if stored != expected:
        wrong = sorted(set(stored) ^ set(expected)
                       | {k for k in set(stored) & set(expected) if stored[k] != expected[k]})
        raise InputError(
            f"model: the tensors in {str(path)!r} do not match the network described by its "
            f"metadata (names or shapes differ: {wrong[:3]}). The file is damaged or was "
            f"edited; rewrite it with save_model."
        )
    return skeleton.stride
