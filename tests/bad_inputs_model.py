"""Bad inputs of the model contract: modules that return the wrong thing, hostile weights files.

Rows of the bad-input matrix (``tests/whole/test_bad_inputs.py`` runs and renders them); kept apart
because they are many. ``cases(Case)`` builds them with the matrix's own row type. A module's
output is checked where the windows run, so those rows compute the prediction.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from test_runner import (  # the same faulty modules the contract tests use
    AllNaN,
    Downsampled,
    FirstWindowOnly,
    NoChannelAxis,
    Probabilities,
    ThreeBands,
    TupleOut,
    ZoneKeyTypo,
    pointwise,
)
from torch import nn


# --- inputs ---------------------------------------------------------------------------------------
def _sar():
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(1, shape=(64, 64), seed=3)
    return cube.sar


def _predict(model) -> object:
    import xcalving

    return xcalving.predict(_sar(), model, tile=32, overlap=8).compute()


class _TupleStride(nn.Module):
    stride = (16, 16)

    def forward(self, x):
        return {"front": x, "zones": pointwise(x)}


def _huge_header(tmp: Path) -> Path:
    """4 kB by hand: a header claiming a network of width 10**6, one tiny tensor."""
    config = json.dumps({"width": 10**6})
    header = {"__metadata__": {"xcalving.format": "1", "xcalving.class": "ASPPUNet",
                               "xcalving.config": config},
              "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    path = tmp / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + bytes(4))
    return path


def _edited_header(tmp: Path) -> Path:
    """A real width-4 file whose config was edited to say width 1024."""
    from safetensors.torch import load_file, save_file

    from xcalving.model import ASPPUNet, read_metadata, save_model

    path = save_model(ASPPUNet(width=4), tmp / "net.safetensors")
    meta = read_metadata(path)
    meta["xcalving.config"] = json.dumps({**json.loads(meta["xcalving.config"]), "width": 1024})
    save_file(load_file(path), tmp / "edited.safetensors", metadata=meta)
    return tmp / "edited.safetensors"


def _two_band_weights(tmp: Path) -> Path:
    from xcalving.model import ASPPUNet, save_model

    return save_model(ASPPUNet(in_channels=2, width=4), tmp / "hh_hv.safetensors")


def _dev_zero() -> str:
    import pytest

    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    return "/dev/zero"


def _fifo(tmp: Path) -> Path:
    import os

    import pytest

    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    os.mkfifo(tmp / "weights.safetensors")
    return tmp / "weights.safetensors"


def cases(Case) -> list:  # noqa: N803  (the row class of the matrix)
    """The rows, built with ``Case(id, area, what, error, builtin, match, run)``."""
    import xcalving

    return [
        Case("model-tuple", "model", "a module returning a tuple ``(front, zones)``",
             "InputError", "ValueError", r"not a dict; return them by name",
             lambda t: _predict(TupleOut())),
        Case("model-keys", "model", "a module returning ``{'front', 'zone'}``", "InputError",
             "ValueError", r"rename 'zone' → 'zones'", lambda t: _predict(ZoneKeyTypo())),
        Case("model-channel-axis", "model", "a module returning ``front`` as (N, H, W)",
             "InputError", "ValueError", r"add the channel axis: front\[:, None\]",
             lambda t: _predict(NoChannelAxis())),
        Case("model-downsampled", "model", "a module returning logits at a quarter of the size",
             "InputError", "ValueError", r"8×8 pixels for 32×32 windows; upsample the logits",
             lambda t: _predict(Downsampled())),
        Case("model-batch", "model", "a module returning one output for a batch of windows",
             "InputError", "ValueError", r"batch size 1 for a batch of.*one output per input",
             lambda t: _predict(FirstWindowOnly())),
        Case("model-probabilities", "model", "a module returning sigmoid/softmax probabilities",
             "InputError", "ValueError", r"probabilities, not logits.*Return the logits",
             lambda t: _predict(Probabilities())),
        Case("model-all-nan", "model", "a module whose logits are all NaN", "InputError",
             "ValueError", r"no finite logits.*Check the weights",
             lambda t: _predict(AllNaN())),
        Case("model-raises", "model", "a module built for three bands", "InputError",
             "ValueError", r"model raised RuntimeError.*wrapped in a module that adapts it",
             lambda t: _predict(ThreeBands())),
        Case("model-stride", "model", "a module whose ``stride`` is a tuple", "InputError",
             "ValueError", r"stride must be the network's downsampling factor",
             lambda t: xcalving.predict(_sar(), _TupleStride(), tile=32, overlap=8)),
        Case("weights-device", "model", "``model='/dev/zero'`` (it would be hashed for ever)",
             "InputError", "ValueError", r"is a character device, not a regular file",
             lambda t: xcalving.predict(_sar(), _dev_zero())),
        Case("weights-fifo", "model", "a named pipe as weights path", "InputError",
             "ValueError", r"named pipe \(FIFO\), not a regular file",
             lambda t: xcalving.predict(_sar(), _fifo(t))),
        Case("weights-directory", "model", "a folder as weights path", "InputError",
             "ValueError", r"is a directory, not a regular file",
             lambda t: xcalving.predict(_sar(), t)),
        Case("weights-implausible", "model", "a 4 kB header claiming ``width=1000000``",
             "InputError", "ValueError", r"implausible network \(width=1000000 \(at most 1024\)\)",
             lambda t: xcalving.predict(_sar(), _huge_header(t))),
        Case("weights-shapes", "model", "a header whose config disagrees with its tensors",
             "InputError", "ValueError",
             r"do not match the network.*width=1024, but the tensors were saved with width=4",
             lambda t: xcalving.predict(_sar(), _edited_header(t))),
        Case("weights-bands", "model", "weights of a network for two bands", "InputError",
             "ValueError", r"in_channels=2 \(predict feeds one band",
             lambda t: xcalving.predict(_sar(), _two_band_weights(t))),
    ]
