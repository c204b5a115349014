"""Turning a ``model=`` argument into something workers load, and building it there.

:func:`model_spec` turns ``model=`` (a name of :data:`~xcalving.model.registry.REGISTRY`, a path,
a module) into a small :class:`ModelSpec` on the client (a weights file's stride comes from its
metadata: no network is built there); :func:`build_module` builds the network from the spec
where it runs. A name loads only with a matching sha256; a user's file is hashed and the hash
recorded in the output's attributes.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as from_bytes
from safetensors.torch import save as to_bytes
from torch import nn

from xcalving.errors import (
    InputError,
    InputTypeError,
    UnsafeFileError,
    WeightsNotFoundError,
    did_you_mean,
)
from xcalving.model.checkpoint import load_model
from xcalving.model.context import CONTEXT_CHANNELS
from xcalving.model.files import sha256_file
from xcalving.model.header import weights_facts
from xcalving.model.registry import DEFAULT_WEIGHTS, REGISTRY, WeightsRecord, list_weights
from xcalving.model.unet import ASPPUNet
from xcalving.scaling import CAFFE_SCALING, Scaling
from xcalving.zones import ZONE_NAMES

__all__ = ["ModelSpec", "build_module", "model_spec"]


@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to build the network: small, hashable by ``sha256``, never a pickle file.

    Exactly one of ``path`` (load from disk on the worker, hash checked), ``state`` (an ASPPUNet's
    config and safetensors bytes, travelling once per worker inside the graph) and ``module`` (any
    other ``nn.Module``, a deep copy, travelling the same way) is set.
    """

    name: str
    sha256: str
    scaling: Scaling
    stride: int = 1
    pixel_spacing: float | None = None  # metres per pixel of the training data, where known
    front_method: str | None = None  # the front method chosen for registered weights
    in_channels: int = 1  # 3: the scene and its temporal context (xcalving.model.context)
    spacing_range: tuple[float, float] | None = None  # where registered weights were measured
    resolution_model: str = "unmeasured"  # whether resolution="model" helps them, measured
    path: str | None = None
    state: tuple[dict[str, Any], bytes] | None = field(default=None, repr=False)
    module: Any = field(default=None, repr=False)


def _spec_from_record(record: WeightsRecord) -> ModelSpec:
    if not record.path.exists():
        raise WeightsNotFoundError(
            f"model: the registered weights {record.name!r} should be at {record.path}, which is "
            "missing; reinstall xcalving."
        )
    digest = sha256_file(record.path)
    if digest != record.sha256:
        raise UnsafeFileError(
            f"model: {record.path} does not match the sha256 registered for {record.name!r} "
            f"(expected {record.sha256}, got {digest}); the file is corrupt or was replaced. "
            "Reinstall xcalving."
        )
    spec = _spec_from_file(record.path, record.name, digest, record.scaling,
                           record.pixel_spacing)
    return dataclasses.replace(spec, front_method=record.front_method,
                               spacing_range=record.spacing_range,
                               resolution_model=record.resolution_model)


def _spec_from_file(path: Path, name: str, digest: str | None = None,
                    scaling: Scaling | None = None,
                    pixel_spacing: float | None = None) -> ModelSpec:
    """A file's spec: its header checked (no tensor read, no network built), then hashed."""
    config, stored_scaling, stored_spacing = weights_facts(path)  # regular file, sane header
    _check_predictable(config, repr(os.fspath(path)))
    scaling = scaling or stored_scaling or CAFFE_SCALING
    if pixel_spacing is None:
        pixel_spacing = stored_spacing
    return ModelSpec(name=name, sha256=digest or sha256_file(path), scaling=scaling,
                     stride=config["stride"], pixel_spacing=pixel_spacing,
                     in_channels=config["in_channels"], path=os.fspath(Path(path).resolve()))


def _check_predictable(config: dict[str, Any], what: str) -> None:
    """Refuse an ASPPUNet that predict cannot feed or read: one input band, four zones."""
    problems = []
    if config["in_channels"] not in (1, CONTEXT_CHANNELS):
        problems.append(f"in_channels={config['in_channels']} (predict feeds one band of SAR "
                        f"backscatter, or {CONTEXT_CHANNELS} with temporal context)")
    if config["n_zones"] != len(ZONE_NAMES):
        problems.append(f"n_zones={config['n_zones']} (predict reads {len(ZONE_NAMES)} zone "
                        f"classes: {', '.join(ZONE_NAMES)})")
    if problems:
        raise InputError(
            f"model: {what} is a network with {' and '.join(problems)}, which predict cannot "
            "use. Pass weights trained on one band (or one band and its temporal context) with "
            "four zone classes, e.g. "
            f"model={DEFAULT_WEIGHTS!r}."
        )


def _spec_from_module(module: Any) -> ModelSpec:
    scaling = getattr(module, "xcalving_scaling", None) or CAFFE_SCALING
    spacing = getattr(module, "xcalving_pixel_spacing", None)
    stride = _module_stride(module)
    name = type(module).__name__
    if hasattr(module, "get_config") and type(module).__name__ == "ASPPUNet":
        _check_predictable(module.get_config(), "the ASPPUNet passed")
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
        blob = to_bytes(tensors)
        return ModelSpec(name=name, sha256=hashlib.sha256(blob).hexdigest(), scaling=scaling,
                         stride=stride, pixel_spacing=spacing,
                         in_channels=module.get_config()["in_channels"],
                         state=(module.get_config(), blob))
    clone = copy.deepcopy(module).to("cpu").eval()  # never touch the caller's module
    digest = hashlib.sha256(repr(clone).encode())
    _hash_code(clone, digest)
    for key, tensor in clone.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().to(torch.float64).numpy().tobytes())
    return ModelSpec(name=name, sha256=digest.hexdigest(), scaling=scaling, stride=stride,
                     pixel_spacing=spacing, module=clone)


def _module_stride(module: Any) -> int:
    """A module's ``stride`` attribute (1 without one), checked: window sizes depend on it."""
    stride = getattr(module, "stride", 1)
    if isinstance(stride, bool) or not isinstance(stride, int) or not 1 <= stride <= 2**12:
        raise InputError(
            f"model: {type(module).__name__}.stride must be the network's downsampling factor, "
            f"an integer from 1 to 4096 (predict pads windows to multiples of it); got "
            f"{stride!r}. Remove the attribute or make it an int."
        )
    return stride


def _hash_code(module: Any, digest: Any) -> None:
    """Add the code of the module's own classes to ``digest`` (torch's classes are skipped).

    Two versions of a class with one name and no weights (a notebook's redefined ``Net``) have
    the same ``repr`` and state: without their code they would share a hash, and so the
    process's network cache would serve the old version.
    """
    seen: set[type] = set()
    for sub in module.modules():
        for cls in type(sub).__mro__:
            if cls in seen or cls.__module__.split(".")[0] in ("torch", "builtins"):
                continue
            seen.add(cls)
            digest.update(cls.__qualname__.encode())
            for _, member in sorted(vars(cls).items()):
                func = getattr(member, "__func__", getattr(member, "fget", member))
                if inspect.isfunction(func):
                    digest.update(_code_bytes(func.__code__))


def _code_bytes(code: Any) -> bytes:
    """Bytecode, names and constants of a code object, the same in every process.

    (``marshal`` output is not: it depends on reference counts; frozensets are sorted because
    their order depends on string hashing.)
    """
    parts = [code.co_code, repr((code.co_names, code.co_varnames)).encode()]
    for const in code.co_consts:
        if inspect.iscode(const):
            parts.append(_code_bytes(const))
        else:
            parts.append(repr(sorted(map(repr, const)) if isinstance(const, frozenset)
                              else const).encode())
    return b"\0".join(parts)


def model_spec(model: Any) -> ModelSpec:
    """Resolve ``model=`` (None, a registered name, a path or an ``nn.Module``) to a spec."""
    if model is None:
        model = DEFAULT_WEIGHTS
    if isinstance(model, nn.Module):
        return _spec_from_module(model)
    if not isinstance(model, str | os.PathLike):
        raise InputTypeError(
            f"model must be a weights name ({', '.join(list_weights()) or 'none shipped yet'}), "
            f"a path to a .safetensors checkpoint or a torch nn.Module; got {type(model).__name__}."
        )
    if isinstance(model, str) and model in REGISTRY:
        return _spec_from_record(REGISTRY[model])
    path = Path(model)
    if _exists(path):
        return _spec_from_file(path, path.name)
    known = list_weights()
    raise WeightsNotFoundError(
        f"model: {os.fspath(model)!r} is neither a registered weights name nor an existing file. "
        f"Registered names: {known or 'none yet (trained weights have not shipped)'}."
        + did_you_mean(os.fspath(model), known)
        + " Pass a path to a .safetensors checkpoint (xcalving.model.save_model) or an nn.Module."
    )


def _exists(path: Path) -> bool:
    """Whether anything (a file, a directory, a device) is at ``path``; False for bad names."""
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long, or with a NUL byte
        return False


def build_module(spec: ModelSpec) -> Any:
    """Build the network a spec describes, on the CPU (callers move it to their device).

    A file is hashed again first: it must be the file :func:`model_spec` hashed.
    """
    if spec.path is not None:
        digest = sha256_file(spec.path)
        if digest != spec.sha256:
            raise UnsafeFileError(
                f"model: {spec.path} changed since predict() was called (sha256 {digest}, "
                f"expected {spec.sha256}); call predict() again."
            )
        return load_model(spec.path)
    if spec.state is not None:
        config, blob = spec.state
        net = ASPPUNet.from_config(config)
        net.load_state_dict(from_bytes(blob))
        return net.eval()
    return spec.module
