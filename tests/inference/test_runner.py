"""The model contract: what predict needs from a network, and weights files that cannot fool it.

A caller's module is held to the contract on the batches predict gives it anyway: its output's
type, keys and shapes on every batch, its values (NaN, probabilities) on the first batch of
each process. A weights file is checked from its header alone — a regular file, a bounded
header, a plausible config whose network has exactly the stored tensors' shapes — before
anything is allocated for it.
"""

import json
import os
import pickle
import re
import struct
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

import xcalving
from xcalving.errors import InputError, WeightsNotFoundError, XcalvingWarning
from xcalving.model import ASPPUNet, load_model, read_metadata, save_model
from xcalving.model.files import sha256_file
from xcalving.model.weights import model_spec


# --- inputs --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sar() -> xr.DataArray:
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(1, shape=(64, 64), seed=3)
    return cube.sar


def predict(sar: xr.DataArray, model, **kwargs) -> xr.Dataset:
    """Predict and compute: the contract is checked where the windows run."""
    return xcalving.predict(sar, model, tile=32, overlap=8, **kwargs).compute()


def errors_on_model_warnings() -> None:
    """Turn the contract's warnings (they start with "model") into errors, and only them."""
    warnings.filterwarnings("error", message="model", category=XcalvingWarning)


def pointwise(x: torch.Tensor) -> torch.Tensor:
    """Zone logits that depend on the pixel only (the oracle of test_predict)."""
    return torch.cat([x, -x, 2 * x, 0 * x], dim=1)


# Each module has its own class name: the per-process network cache is keyed by the module's
# hash, of which the class is part.
class GoodLogits(nn.Module):
    def forward(self, x):
        return {"front": x - 5.0, "zones": pointwise(x)}


class TupleOut(nn.Module):
    def forward(self, x):
        return x, pointwise(x)


class ZoneKeyTypo(nn.Module):
    def forward(self, x):
        return {"front": x, "zone": pointwise(x)}


class NoChannelAxis(nn.Module):
    def forward(self, x):
        return {"front": x[:, 0], "zones": pointwise(x)}


class ThreeZones(nn.Module):
    def forward(self, x):
        return {"front": x, "zones": pointwise(x)[:, :3]}


class Downsampled(nn.Module):
    def forward(self, x):
        return {"front": x[..., ::4, ::4], "zones": pointwise(x)[..., ::4, ::4]}


class FirstWindowOnly(nn.Module):
    def forward(self, x):
        return {"front": x[:1], "zones": pointwise(x)[:1]}


class ClassLabels(nn.Module):
    def forward(self, x):
        return {"front": x, "zones": pointwise(x).argmax(1, keepdim=True).repeat(1, 4, 1, 1)}


class Probabilities(nn.Module):
    def forward(self, x):
        return {"front": torch.sigmoid(x), "zones": torch.softmax(pointwise(x), dim=1)}


class SoftmaxZonesOnly(nn.Module):
    def forward(self, x):
        return {"front": x - 5.0, "zones": torch.softmax(pointwise(x), dim=1)}


class SigmoidFrontOnly(nn.Module):
    def forward(self, x):
        return {"front": torch.sigmoid(x), "zones": pointwise(x)}


class SomeNaN(nn.Module):
    def forward(self, x):
        front = x.clone()
        front[..., :4, :4] = float("nan")
        return {"front": front, "zones": pointwise(x)}


class AllNaN(nn.Module):
    def forward(self, x):
        return {"front": x * float("nan"), "zones": pointwise(x) * float("nan")}


class ThreeBands(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 1)

    def forward(self, x):
        y = self.conv(x)
        return {"front": y[:, :1], "zones": y[:, 1:]}


# --- the module's output -------------------------------------------------------------------------
CONTRACT = r"The contract: a model is called on a float tensor \(N, 1, H, W\)"


@pytest.mark.parametrize("module, match", [
    (TupleOut(), r"returned a tuple \[\(\d+, 1, 32, 32\), \(\d+, 4, 32, 32\)\], not a dict; "
                 r"return them by name"),
    (ZoneKeyTypo(), r"keys \['front', 'zone'\], without \['zones'\] \(rename 'zone' → 'zones'\)"),
    (NoChannelAxis(), r"'front' has shape \(\d+, 32, 32\), not \(N, 1, H, W\) \(add the channel "
                      r"axis: front\[:, None\]\)"),
    (ThreeZones(), r"'zones' has 3 channels, not 4"),
    (Downsampled(), r"'front' is 8×8 pixels for 32×32 windows; upsample the logits"),
    (FirstWindowOnly(), r"'front' has batch size 1 for a batch of \d+ windows; return one output "
                        r"per input window"),
    (ClassLabels(), r"'zones' has dtype torch.int64; return float logits, not class labels"),
], ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else "")
def test_an_output_that_breaks_the_contract_is_one_error_naming_it(sar, module, match):
    with pytest.raises(InputError, match=match) as info:
        predict(sar, module)
    assert re.search(CONTRACT, str(info.value))
    assert str(info.value).count("The contract") == 1


def test_every_fault_of_an_output_is_named_in_the_one_error(sar):
    class ManyFaults(nn.Module):
        def forward(self, x):
            return {"front": x[:, 0], "zones": pointwise(x)[:1, :3, ::2, ::2]}

    with pytest.raises(InputError) as info:
        predict(sar, ManyFaults())
    message = str(info.value)
    for part in ("'front' has shape", "'zones' has 3 channels", "'zones' has batch size 1",
                 "'zones' is 16×16 pixels"):
        assert part in message


@pytest.mark.parametrize("module", [Probabilities(), SoftmaxZonesOnly()],
                         ids=["sigmoid-and-softmax", "softmax"])
def test_probabilities_in_place_of_logits_are_refused(sar, module):
    with pytest.raises(InputError, match=r"returned probabilities, not logits.*Return the "
                                         r"logits: remove the final softmax/sigmoid"):
        predict(sar, module)


def test_a_front_in_zero_one_warns_but_runs(sar):
    with pytest.warns(XcalvingWarning, match=r"'front' output lies in \[0, 1\].*return its "
                                             r"input \(the logits\)"):
        pred = predict(sar, SigmoidFrontOnly())
    assert np.isfinite(pred.front_probability.values[np.isfinite(sar.values)]).all()


def test_nan_logits_warn_once_and_come_out_as_no_data(sar):
    with pytest.warns(XcalvingWarning, match="NaN or Inf logits") as record:
        pred = predict(sar, SomeNaN())
    assert sum("NaN or Inf" in str(w.message) for w in record) == 1
    front = pred.front_probability.values
    assert np.isnan(front[np.isfinite(sar.values)]).any() and not np.isnan(front).all()
    assert (pred.zones.values[np.isnan(front)] == 0).all()


def test_nan_output_where_the_input_has_no_data_is_not_reported(sar):
    class MinMaxScaled(nn.Module):
        """Scales each window to [0, 1]: a constant (all no data) window gives NaN."""

        def forward(self, x):
            low, high = x.amin((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
            z = 10 * (x - low) / (high - low) - 5
            return {"front": z, "zones": pointwise(z)}

    values = sar.values.copy()
    values[..., :32] = np.nan  # the first column of windows (x 0..31) sees no data at all
    with warnings.catch_warnings():
        errors_on_model_warnings()
        pred = predict(sar.copy(data=values), MinMaxScaled())
    front = pred.front_probability.values
    assert np.isnan(front[..., :32]).all()
    assert np.isfinite(front[np.isfinite(values)]).all()


def test_a_model_with_no_finite_logits_is_refused(sar):
    with pytest.raises(InputError, match=r"no finite logits \(all NaN or Inf\).*Check the "
                                         r"weights"):
        predict(sar, AllNaN())


def test_an_exception_in_the_callers_module_names_the_contract(sar):
    with pytest.raises(InputError, match=r"model raised RuntimeError \(.*3 channels.*\) when "
                                         r"predict called it on a batch of shape \(\d+, 1, 32, "
                                         r"32\).*wrapped in a module that adapts it") as info:
        predict(sar, ThreeBands())
    assert isinstance(info.value.__cause__, RuntimeError)


def test_the_error_survives_pickling_as_a_distributed_worker_sends_it(sar):
    with pytest.raises(InputError) as info:
        predict(sar, TupleOut())
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is InputError and str(again) == str(info.value)


def test_values_are_checked_once_per_model_and_process(sar, monkeypatch):
    from xcalving.inference import runner

    calls = []
    original = runner._value_stats

    def counting(*args):
        calls.append(1)
        return original(*args)

    class CountedLogits(nn.Module):
        def forward(self, x):
            return {"front": x - 5.0, "zones": pointwise(x)}

    monkeypatch.setattr(runner, "_value_stats", counting)
    module = CountedLogits()
    predict(sar, module, batch_size=1)  # nine windows, nine batches
    predict(sar, module, batch_size=1)
    assert len(calls) == 1


def test_a_redefined_module_is_not_served_from_the_cache(sar):
    """A notebook fixes its ``Net`` after the probabilities error and runs predict again."""
    source = ("import torch\nfrom torch import nn\nclass Net(nn.Module):\n"
              "    def forward(self, x):\n"
              "        z = torch.cat([x, -x, 2 * x, 0 * x], dim=1)\n"
              "        return {'front': x - 5.0, 'zones': %s}\n")
    broken, fixed = {"__name__": "__main__"}, {"__name__": "__main__"}
    exec(source % "torch.softmax(z, dim=1)", broken)  # noqa: S102  (two versions of a class)
    exec(source % "z", fixed)  # noqa: S102
    with pytest.raises(InputError, match="probabilities"):
        predict(sar, broken["Net"]())
    assert model_spec(broken["Net"]()).sha256 != model_spec(fixed["Net"]()).sha256
    predict(sar, fixed["Net"]())


@pytest.mark.parametrize("stride", [0, 2.5, "16", True])
def test_a_bad_stride_attribute_is_refused(sar, stride):
    module = GoodLogits()
    module.stride = stride
    with pytest.raises(InputError, match=r"GoodLogits\.stride must be the network's "
                                         r"downsampling factor"):
        xcalving.predict(sar, module, tile=32, overlap=8)


# --- positive controls ---------------------------------------------------------------------------
def test_a_correct_module_and_the_real_network_run_without_a_warning(sar, tmp_path):
    torch.manual_seed(0)
    net = ASPPUNet(width=4).eval()
    path = save_model(net, tmp_path / "net.safetensors")
    with warnings.catch_warnings():
        errors_on_model_warnings()
        custom = predict(sar, GoodLogits())
        by_module = predict(sar, net)
        by_path = predict(sar, path)
    assert np.isfinite(custom.front_probability.values[np.isfinite(sar.values)]).all()
    np.testing.assert_allclose(by_path.front_probability.values,
                               by_module.front_probability.values, rtol=1e-6, atol=1e-6)


def test_a_symlink_to_a_weights_file_is_a_weights_file(tmp_path):
    path = save_model(ASPPUNet(width=4), tmp_path / "net.safetensors")
    (tmp_path / "link.safetensors").symlink_to(path)
    assert model_spec(tmp_path / "link.safetensors").sha256 == sha256_file(path)


# --- networks predict cannot feed ----------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [({"in_channels": 2}, r"in_channels=2 \(predict feeds "
                                                                 r"one band"),
                                           ({"n_zones": 3}, r"n_zones=3 \(predict reads 4")])
def test_a_network_of_other_bands_or_zones_is_refused_before_anything_runs(sar, tmp_path,
                                                                          kwargs, match):
    net = ASPPUNet(width=4, **kwargs)
    path = save_model(net, tmp_path / "net.safetensors")
    for model in (net, path):
        with pytest.raises(InputError, match=match):
            xcalving.predict(sar, model, tile=32, overlap=8)  # not computed: refused up front


# --- weights files -------------------------------------------------------------------------------
def finishes_within(seconds: float, call) -> BaseException | None:
    """Run ``call`` in a thread; fail unless it ends within ``seconds``; return what it raised."""
    outcome: list[BaseException | None] = []

    def target():
        try:
            call()
            outcome.append(None)
        except BaseException as err:  # noqa: BLE001  (handed back to the test)
            outcome.append(err)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still running after {seconds} s"
    return outcome[0]


def _not_regular(tmp_path: Path, kind: str) -> Path:
    if kind == "directory":
        return tmp_path
    if kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no named pipes here")
        os.mkfifo(tmp_path / "weights.safetensors")
        return tmp_path / "weights.safetensors"
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    return Path("/dev/zero")


@pytest.mark.parametrize("kind, words", [("device", "a character device"),
                                         ("fifo", r"a named pipe \(FIFO\)"),
                                         ("directory", "a directory")])
@pytest.mark.parametrize("call", [model_spec, sha256_file, load_model, read_metadata],
                         ids=lambda f: f.__name__)
def test_a_path_that_is_not_a_regular_file_is_refused_at_once(tmp_path, kind, words, call):
    path = _not_regular(tmp_path, kind)
    err = finishes_within(5, lambda: call(path))
    assert isinstance(err, InputError), err
    assert re.search(rf"{words}, not a regular file; pass the path of a \.safetensors", str(err))


def test_a_missing_path_is_weights_not_found(tmp_path):
    for call in (sha256_file, load_model, model_spec):
        with pytest.raises(WeightsNotFoundError):
            call(tmp_path / "none.safetensors")


def fake_weights(path: Path, config, tensors=(("w", (1,)),), *, pad: int = 0,
                 extra: dict | None = None) -> Path:
    """A safetensors file written by hand: 8-byte header length, JSON header, data."""
    meta = {"xcalving.format": "1", "xcalving.class": "ASPPUNet",
            "xcalving.config": config if isinstance(config, str) else json.dumps(config),
            **(extra or {})}
    header: dict = {"__metadata__": meta}
    offset = 0
    for name, shape in tensors:
        size = 4 * int(np.prod(shape))
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset,
                                                                               offset + size]}
        offset += size
    blob = json.dumps(header).encode() + b" " * pad
    blob += b" " * (-len(blob) % 8)
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + bytes(offset))
    return path


def edited_weights(tmp_path: Path, **changes) -> Path:
    """A real file whose config says something else than its tensors."""
    from safetensors.torch import load_file, save_file

    path = save_model(ASPPUNet(width=4), tmp_path / "net.safetensors")
    meta = read_metadata(path)
    meta["xcalving.config"] = json.dumps({**json.loads(meta["xcalving.config"]), **changes})
    save_file(load_file(path), tmp_path / "edited.safetensors", metadata=meta)
    return tmp_path / "edited.safetensors"


@pytest.mark.parametrize("config, match", [
    ({"width": 10**6}, r"width=1000000 \(at most 1024\)"),
    ({"depth": 40}, r"depth=40 \(at most 10\)"),
    ({"aspp_rates": list(range(1, 100))}, r"99 aspp_rates \(at most 16\)"),
    ({"aspp_rates": [10**9]}, r"each at most 128"),
    ({"in_channels": 10**5, "n_zones": 10**5}, r"in_channels=100000.*n_zones=100000"),
])
def test_an_implausible_config_is_refused_before_anything_is_built(tmp_path, config, match):
    path = fake_weights(tmp_path / "huge.safetensors", config)
    assert path.stat().st_size < 4096
    for call in (model_spec, load_model):
        err = finishes_within(5, lambda call=call: call(path))
        assert isinstance(err, InputError), err
        assert re.search(rf"describes an implausible network \(.*{match}.*\); it was not built",
                         str(err))


def test_an_unreadable_config_is_an_input_error(tmp_path):
    for config, match in [('{"depth": ' + "9" * 5000 + "}", "unreadable xcalving.config"),
                          ("[1, 2]", "not a JSON object"), ('{"width": "wide"}', "width must "
                                                                                 "be an integer")]:
        with pytest.raises(InputError, match=match):
            model_spec(fake_weights(tmp_path / "bad.safetensors", config))


@pytest.mark.parametrize("changes, hint", [
    ({"width": 1024}, r"width=1024, but the tensors were saved with width=4"),
    ({"depth": 3}, r"depth=3, tensors 4"),
    ({"n_zones": 5}, r"n_zones=5, tensors 4"),
    ({"aspp_rates": [6]}, r"tensors missing|unexpected tensors"),
])
def test_a_header_whose_shapes_disagree_with_its_config_is_refused(tmp_path, changes, hint):
    path = edited_weights(tmp_path, **changes)
    for call in (model_spec, load_model):
        with pytest.raises(InputError, match=rf"do not match the network described by its "
                                             rf"metadata.*{hint}"):
            call(path)


def test_a_large_header_is_refused_unread(tmp_path):
    from xcalving.model.safetensors_file import MAX_HEADER_BYTES

    path = fake_weights(tmp_path / "big.safetensors", {"width": 4}, pad=MAX_HEADER_BYTES)
    with pytest.raises(InputError, match=r"header of [\d,]+ bytes; xcalving reads headers of at "
                                         r"most"):
        read_metadata(path)


@pytest.mark.parametrize("entry, match", [
    ({"xcalving.scaling": json.dumps({"domain": "db", "mean": 0, "std": 0, "fill": 0})},
     r"std a finite number > 0"),
    ({"xcalving.scaling": "{"}, "unreadable xcalving.scaling"),
    ({"xcalving.pixel_spacing": "-20"}, r"pixel_spacing '-20'; it must be a positive number"),
])
def test_a_bad_scaling_or_spacing_in_the_header_is_refused(tmp_path, entry, match):
    from safetensors.torch import load_file, save_file

    path = save_model(ASPPUNet(width=4), tmp_path / "net.safetensors")
    save_file(load_file(path), tmp_path / "bad.safetensors",
              metadata={**read_metadata(path), **entry})
    for call in (model_spec, load_model):
        with pytest.raises(InputError, match=match):
            call(tmp_path / "bad.safetensors")


_MEMORY_PROBE = """
import resource, sys, time
from xcalving.errors import InputError
from xcalving.model import load_model
from xcalving.model.weights import model_spec
load_model(sys.argv[1])  # warm up torch's lazy initialisation on a valid file
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
for path in sys.argv[2:]:
    for call in (model_spec, load_model):
        try:
            call(path)
        except InputError:
            continue
        raise SystemExit(f"{call.__name__} accepted {path}")
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(grown / 1024, time.perf_counter() - start)
"""


def test_hostile_headers_allocate_nothing(tmp_path):
    """4 kB files claiming a network of gigabytes: refused with the peak memory unchanged.

    In a fresh process, so that the peak resident size is this test's. ``width=128`` is
    plausible, so only the comparison with the stored shapes stops it: building it on the CPU,
    as load_model did, would take 1 GB.
    """
    pytest.importorskip("resource")
    valid = save_model(ASPPUNet(width=4), tmp_path / "valid.safetensors")
    files = [fake_weights(tmp_path / "huge.safetensors", {"width": 10**6}),
             fake_weights(tmp_path / "plausible.safetensors",
                          {"width": 128, "aspp_rates": [6] * 16}),
             edited_weights(tmp_path, width=128)]
    assert all(f.stat().st_size < 2**21 for f in files)  # the claims: 1 GB and more
    done = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(valid), *map(str, files)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    grown_mib, seconds = map(float, done.stdout.split())
    assert grown_mib < 64, f"peak memory grew by {grown_mib:.0f} MiB"
    assert seconds < 10


def test_a_checked_file_still_loads_everything(tmp_path):
    torch.manual_seed(1)
    net = ASPPUNet(width=4, depth=2, aspp_rates=(2,)).eval()
    loaded = load_model(save_model(net, tmp_path / "net.safetensors"))
    for (key, a), (_, b) in zip(net.state_dict().items(), loaded.state_dict().items(),
                                strict=True):
        assert torch.equal(a, b), key
    x = torch.randn(1, 1, 20, 20)
    with torch.no_grad():
        assert torch.equal(net(x)["front"], loaded(x)["front"])


def test_the_check_is_quick(tmp_path):
    path = save_model(ASPPUNet(width=4), tmp_path / "net.safetensors")
    model_spec(path)
    start = time.perf_counter()
    model_spec(path)
    assert time.perf_counter() - start < 1.0

