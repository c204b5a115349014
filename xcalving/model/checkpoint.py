"""Self-describing ``.safetensors`` weights files for xcalving networks: save and load.

A weights file holds the state dict and, in the safetensors header, the network class and its
constructor arguments, so `load_model` needs nothing but the path. Pickle-based checkpoints
(``torch.save``) are refused: unpickling can run arbitrary code.

The safe reading of a file's header lives in :mod:`xcalving.model.safetensors_file`; writing
and checking the xcalving entries of the header (plausible config, tensor shapes, scaling,
spacing) in :mod:`xcalving.model.header`. Their public names are re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file, save
from torch import nn

from xcalving.atomic import write_bytes
from xcalving.errors import DeviceError, InputError, InputTypeError
from xcalving.model.header import (
    CONFIG_LIMITS,
    checked_network,
    header_entries,
    network_stride,
    weights_facts,
)
from xcalving.model.safetensors_file import MAX_HEADER_BYTES, read_header
from xcalving.model.unet import ASPPUNet
from xcalving.scaling import Scaling

__all__ = ["CONFIG_LIMITS", "MAX_HEADER_BYTES", "count_parameters", "load_model",
           "network_stride", "read_metadata", "save_model", "weights_facts"]


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
    header = header_entries(model, get_config(), metadata=metadata, scaling=scaling,
                            pixel_spacing=pixel_spacing)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_tensors(tensors, path, header)
    return path


def save_tensors(tensors: dict[str, torch.Tensor], path: Path, header: dict[str, str]) -> None:
    """Write ``tensors`` beside ``path``, check size and sha256, then move it into place.

    :func:`xcalving.atomic.write_bytes`: a second run writing ``path`` is refused, and a write
    that stops short (a full disk) never replaces a good file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, save(tensors, metadata=header), what="save_model")


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
    return read_header(path, "read_metadata")[1]


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
    skeleton, path, scaling, spacing = checked_network(path, "load_model")
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
