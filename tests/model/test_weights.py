"""The shipped weights: registered once, hash-checked, self-describing, small, and the default."""

import numpy as np
import pytest
import xarray as xr

import xcalving
from xcalving.model import load_model, read_metadata
from xcalving.model.files import sha256_file
from xcalving.model.registry import DEFAULT_WEIGHTS, REGISTRY
from xcalving.model.weights import model_spec

LIMITS_MB = {"caffe256": 20, "caffe256-nodbe": 10, "demo": 10}


def test_registry_lists_the_shipped_weights():
    assert set(REGISTRY) >= {"caffe256", "demo"}
    assert DEFAULT_WEIGHTS in REGISTRY


@pytest.mark.parametrize("name", sorted(LIMITS_MB))
def test_each_record_matches_its_file(name):
    record = REGISTRY[name]
    assert record.path.stat().st_size <= LIMITS_MB[name] * 1e6
    assert sha256_file(record.path) == record.sha256
    meta = read_metadata(record.path)
    assert meta["licence"] == record.licence and "xcalving.scaling" in meta
    net = load_model(record.path)
    assert net.xcalving_scaling == record.scaling
    # best-epoch weights record their validation; last-epoch weights (nothing chose the epoch)
    # record the held-out scores that chose their recipe, in pixels and metres, instead
    if "weights" in record.training:
        assert record.training["weights"].startswith("last epoch")
        assert record.metrics and all(row["mde_px"] is None or row["mde_px"] > 0
                                      for row in record.metrics)
        assert all(row["mde_m"] is None or row["mde_m"] == pytest.approx(
            row["mde_px"] * row["spacing_m"]) for row in record.metrics)
        assert record.pixel_spacing == 75.0 and record.front_method == "probability"
    else:
        assert record.training["validation"]["val_loss"] > 0
    spec = model_spec(name)
    assert spec.sha256 == record.sha256 and spec.stride == net.stride


def test_caffe_weights_carry_the_attribution():
    record = REGISTRY["caffe256"]
    assert record.licence == "CC-BY-4.0"
    assert "Gourmelon" in record.citation and "10.1594/PANGAEA.940950" in record.citation


def test_model_none_takes_the_default_weights():
    data = xr.DataArray(np.full((64, 64), 120, np.uint8), dims=("y", "x"))
    pred = xcalving.predict(data, tile=64, overlap=0)
    assert pred.attrs["model"] == DEFAULT_WEIGHTS
    assert pred.attrs["model_sha256"] == REGISTRY[DEFAULT_WEIGHTS].sha256


def test_a_file_spec_takes_its_stride_from_the_metadata_without_loading_weights(tmp_path,
                                                                             monkeypatch):
    import torch

    from xcalving.model import ASPPUNet, checkpoint, save_model
    from xcalving.model.weights import build_module

    torch.manual_seed(0)
    path = save_model(ASPPUNet(width=4, depth=2), tmp_path / "net.safetensors")

    def refuse(*args, **kwargs):
        raise AssertionError("model_spec loaded the weights")

    monkeypatch.setattr(checkpoint, "load_file", refuse)
    spec = model_spec(path)
    assert spec.stride == 4 and spec.path is not None
    monkeypatch.undo()
    assert build_module(spec).stride == 4  # where it runs, the network is built from the spec


def test_a_file_whose_tensors_contradict_its_metadata_is_refused_by_model_spec(tmp_path):
    from safetensors.torch import load_file, save_file

    from xcalving.errors import InputError
    from xcalving.model import ASPPUNet, save_model

    path = save_model(ASPPUNet(width=4), tmp_path / "net.safetensors")
    tensors = load_file(path)
    name = next(k for k, t in tensors.items() if t.ndim >= 1 and t.shape[0] > 1)
    tensors[name] = tensors[name][:1].clone()
    save_file(tensors, tmp_path / "bad.safetensors", metadata=read_metadata(path))
    with pytest.raises(InputError, match="do not match the network"):
        model_spec(tmp_path / "bad.safetensors")


@pytest.mark.parametrize(("size", "spacing"),
                         [(256, 20.0), (384, 20.0), (512, 20.0), (256, 40.0), (512, 10.0)])
def test_demo_weights_hold_at_other_scene_sizes_and_spacings(size, spacing):
    # a fjord the demo weights never saw (seed 5003), at their stated spacing in larger scenes, and
    # on native grids of half and twice that spacing: within 3 px, no date missed (measured:
    # 1.7-2.8 px; the previous weights, which learnt "the fjord fills the 256-px scene", gave
    # 6.7 px with a date missed at 384 px, 4.3 px at 512 px and 27.9 px at 10 m)
    import warnings

    import xcalving
    from xcalving.data.synthetic import glacier_cube
    from xcalving.metrics import mean_distance_error

    cube, truth = glacier_cube(2, shape=(size, size), resolution=spacing, seed=5003)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = xcalving.predict(cube.sar, model="demo", tile=256, overlap=64)
        frame = pred.calving.fronts()
    result = mean_distance_error(frame, truth, resolution=spacing)
    assert result.n_no_front == 0
    assert result.mde < 3.0 * spacing
