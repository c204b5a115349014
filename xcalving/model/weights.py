"""The registry of named weights, and turning a ``model=`` argument into something workers load.

One table, :data:`REGISTRY`, lists every weights file the package ships: name, file, sha256 and
metadata. Everything else (names, paths, lookups) is derived from it. A name loads only with a
matching sha256; a user's file is hashed and the hash recorded in the output's attributes.

:func:`model_spec` turns ``model=`` into a small :class:`ModelSpec` on the client (a weights
file's stride comes from its metadata: no network is built there); :func:`build_module` builds
the network from the spec where it runs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xcalving.errors import InputTypeError, UnsafeFileError, WeightsNotFoundError, did_you_mean
from xcalving.scaling import CAFFE_SCALING, Scaling

__all__ = ["REGISTRY", "WeightsRecord", "ModelSpec", "build_module", "list_weights", "model_spec",
           "sha256_file"]

WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class WeightsRecord:
    """One shipped weights file and what it was trained on."""

    name: str
    filename: str
    sha256: str
    description: str
    scaling: Scaling
    pixel_spacing: float | None = None  # metres; None where the training data had none
    licence: str = "Apache-2.0"
    citation: str = ""
    data: str = ""
    training: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def path(self) -> Path:
        """Where the file lies inside the installed package."""
        return WEIGHTS_DIR / self.filename


REGISTRY_FILE = WEIGHTS_DIR / "registry.json"


def _load_registry() -> dict[str, WeightsRecord]:
    """Read the registry file shipped next to the weights (written by scripts/ship_weights.py)."""
    if not REGISTRY_FILE.exists():
        return {}
    entries = json.loads(REGISTRY_FILE.read_text())
    return {name: WeightsRecord(name=name, scaling=Scaling.from_dict(e.pop("scaling")), **e)
            for name, e in entries.items()}


#: Every weights file the package ships, read once from ``weights/registry.json``.
REGISTRY: dict[str, WeightsRecord] = _load_registry()
#: The name ``model=None`` stands for.
DEFAULT_WEIGHTS = "caffe256"


def list_weights() -> list[str]:
    """Names of the registered weights."""
    return sorted(REGISTRY)


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
    path: str | None = None
    state: tuple[dict[str, Any], bytes] | None = field(default=None, repr=False)
    module: Any = field(default=None, repr=False)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for piece in iter(lambda: fh.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()


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
    return _spec_from_file(record.path, record.name, digest, record.scaling,
                           record.pixel_spacing)


def _spec_from_file(path: Path, name: str, digest: str, scaling: Scaling | None = None,
                    pixel_spacing: float | None = None) -> ModelSpec:
    from xcalving.model.checkpoint import network_stride, read_metadata

    meta = read_metadata(path)
    if scaling is None:
        scaling = (Scaling.from_dict(json.loads(meta["xcalving.scaling"]))
                   if "xcalving.scaling" in meta else CAFFE_SCALING)
    if pixel_spacing is None and "xcalving.pixel_spacing" in meta:
        pixel_spacing = float(json.loads(meta["xcalving.pixel_spacing"]))
    stride = network_stride(path)  # checks the tensors against the metadata, loads none
    return ModelSpec(name=name, sha256=digest, scaling=scaling, stride=stride,
                     pixel_spacing=pixel_spacing, path=os.fspath(Path(path).resolve()))


def _spec_from_module(module: Any) -> ModelSpec:
    import torch
    from safetensors.torch import save as to_bytes

    scaling = getattr(module, "xcalving_scaling", None) or CAFFE_SCALING
    spacing = getattr(module, "xcalving_pixel_spacing", None)
    stride = int(getattr(module, "stride", 1))
    name = type(module).__name__
    if hasattr(module, "get_config") and type(module).__name__ == "ASPPUNet":
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
        blob = to_bytes(tensors)
        return ModelSpec(name=name, sha256=hashlib.sha256(blob).hexdigest(), scaling=scaling,
                         stride=stride, pixel_spacing=spacing, state=(module.get_config(), blob))
    clone = copy.deepcopy(module).to("cpu").eval()  # never touch the caller's module
    digest = hashlib.sha256(repr(clone).encode())
    for key, tensor in clone.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().to(torch.float64).numpy().tobytes())
    return ModelSpec(name=name, sha256=digest.hexdigest(), scaling=scaling, stride=stride,
                     pixel_spacing=spacing, module=clone)


def model_spec(model: Any) -> ModelSpec:
    """Resolve ``model=`` (None, a registered name, a path or an ``nn.Module``) to a spec."""
    from torch import nn

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
    if path.exists():
        return _spec_from_file(path, path.name, sha256_file(path))
    known = list_weights()
    raise WeightsNotFoundError(
        f"model: {os.fspath(model)!r} is neither a registered weights name nor an existing file. "
        f"Registered names: {known or 'none yet (trained weights have not shipped)'}."
        + did_you_mean(os.fspath(model), known)
        + " Pass a path to a .safetensors checkpoint (xcalving.model.save_model) or an nn.Module."
    )


def build_module(spec: ModelSpec) -> Any:
    """Build the network a spec describes, on the CPU (callers move it to their device).

    A file is hashed again first: it must be the file :func:`model_spec` hashed.
    """
    if spec.path is not None:
        from xcalving.model.checkpoint import load_model

        digest = sha256_file(spec.path)
        if digest != spec.sha256:
            raise UnsafeFileError(
                f"model: {spec.path} changed since predict() was called (sha256 {digest}, "
                f"expected {spec.sha256}); call predict() again."
            )
        return load_model(spec.path)
    if spec.state is not None:
        from safetensors.torch import load as from_bytes

        from xcalving.model.unet import ASPPUNet

        config, blob = spec.state
        net = ASPPUNet.from_config(config)
        net.load_state_dict(from_bytes(blob))
        return net.eval()
    return spec.module
