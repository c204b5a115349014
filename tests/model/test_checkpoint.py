"""Contract tests for the segmentation network and its weights files."""

from __future__ import annotations

import json
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from xcalving.errors import InputError, InputTypeError, UnsafeFileError, WeightsNotFoundError
from xcalving.model import ASPPUNet, count_parameters, load_model, read_metadata, save_model
from xcalving.model import unet as unet_module


def _model(**kwargs) -> ASPPUNet:
    """Small, seeded network so tests are fast and reproducible."""
    torch.manual_seed(0)
    kwargs.setdefault("width", 4)
    return ASPPUNet(**kwargs).eval()


def _run(model: ASPPUNet, x: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return model(x)


# --- shapes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "h", "w"), [(1, 500, 700), (1, 37, 53), (1, 1, 1), (2, 40, 24), (2, 1, 90)]
)
def test_output_shapes_for_any_size(n: int, h: int, w: int) -> None:
    out = _run(_model(), torch.randn(n, 1, h, w))
    assert set(out) == {"zones", "front"}
    assert out["zones"].shape == (n, 4, h, w)
    assert out["front"].shape == (n, 1, h, w)
    assert out["zones"].dtype == torch.float32
    assert out["front"].dtype == torch.float32
    assert torch.isfinite(out["zones"]).all()


def test_n_zones_and_in_channels() -> None:
    out = _run(_model(in_channels=3, n_zones=6, depth=2), torch.randn(1, 3, 19, 21))
    assert out["zones"].shape == (1, 6, 19, 21)
    assert out["front"].shape == (1, 1, 19, 21)


def test_stride() -> None:
    assert ASPPUNet(width=4).stride == 16
    assert ASPPUNet(width=4, depth=2).stride == 4


@pytest.mark.parametrize(("h", "w", "mode_h", "mode_w"), [(5, 13, "replicate", "reflect")])
def test_padding_reflects_where_possible(h: int, w: int, mode_h: str, mode_w: str) -> None:
    x = torch.arange(h * w, dtype=torch.float32).reshape(1, 1, h, w)
    padded = unet_module._pad_to_multiple(x, 16)
    assert padded.shape == (1, 1, 16, 16)
    assert torch.equal(padded[..., :h, :w], x)
    # width 13 -> 3 columns reflected; height 5 -> 11 rows only replicate can make
    assert torch.equal(padded[0, 0, 0, 13:], x[0, 0, 0, [11, 10, 9]])
    assert torch.equal(padded[0, 0, 15, :w], x[0, 0, h - 1])


# --- training behaviour -----------------------------------------------------------------------


@pytest.mark.parametrize("image_pooling", [False, True])
def test_gradients_reach_every_parameter(image_pooling: bool) -> None:
    model = _model(image_pooling=image_pooling).train()
    out = model(torch.randn(2, 1, 48, 48))
    (out["zones"].sum() + out["front"].sum()).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name


def test_eval_is_deterministic() -> None:
    model = _model()
    x = torch.randn(1, 1, 64, 80)
    first, second = _run(model, x), _run(model, x)
    assert torch.equal(first["zones"], second["zones"])
    assert torch.equal(first["front"], second["front"])


def test_batchnorm_follows_train_eval_mode() -> None:
    model = _model()
    x = torch.randn(2, 1, 32, 32)
    evaluated = _run(model, x)["zones"]
    trained = _run(model.train(), x)["zones"]
    assert not torch.allclose(evaluated, trained)


@pytest.mark.parametrize("rates", [(), (3,), (1, 2, 3, 4)])
def test_any_number_of_aspp_rates(rates: tuple[int, ...]) -> None:
    out = _run(_model(aspp_rates=rates), torch.randn(1, 1, 33, 47))
    assert out["zones"].shape == (1, 4, 33, 47)


def test_image_pooling_runs() -> None:
    out = _run(_model(image_pooling=True), torch.randn(1, 1, 33, 47))
    assert out["zones"].shape == (1, 4, 33, 47)


# --- tiling consequence of image pooling ------------------------------------------------------

# depth=2 without atrous branches reaches about 22 pixels (measured by perturbing one pixel);
# a 32-pixel margin and a stride-aligned crop offset make the crop interior tile-exact.
_OFFSET, _CROP, _MARGIN = 32, 96, 32


def _crop_vs_full(image_pooling: bool) -> float:
    model = _model(aspp_rates=(), depth=2, image_pooling=image_pooling)
    torch.manual_seed(1)
    # A bright band outside the crop changes the whole-image mean but not the crop's pixels.
    full = torch.randn(1, 1, 160, 160)
    full[..., :, 140:] += 8.0
    crop = full[..., _OFFSET : _OFFSET + _CROP, _OFFSET : _OFFSET + _CROP]
    inner = slice(_MARGIN, _CROP - _MARGIN)
    whole = _run(model, full)["zones"][..., _OFFSET : _OFFSET + _CROP, _OFFSET : _OFFSET + _CROP]
    part = _run(model, crop)["zones"]
    return (whole[..., inner, inner] - part[..., inner, inner]).abs().max().item()


def test_crop_interior_matches_without_image_pooling() -> None:
    assert _crop_vs_full(image_pooling=False) < 1e-5


def test_image_pooling_ties_output_to_window() -> None:
    assert _crop_vs_full(image_pooling=True) > 1e-3


# --- size and documentation -------------------------------------------------------------------


def test_width_16_is_about_a_quarter_of_width_32() -> None:
    ratio = count_parameters(ASPPUNet(width=16)) / count_parameters(ASPPUNet(width=32))
    assert 0.2 < ratio < 0.3


def test_documented_parameter_counts() -> None:
    doc = ASPPUNet.__doc__ or ""
    counts = [int(c.replace(",", "")) for c in re.findall(r"has ([\d,]+)", doc)]
    assert counts == [16_155_845, 4_041_829]
    assert count_parameters(ASPPUNet()) == 16_155_845
    assert count_parameters(ASPPUNet(width=16)) == 4_041_829


def test_default_bottleneck_is_512_channels() -> None:
    project = ASPPUNet().bottleneck[1].project[0]
    assert project.out_channels == 512
    assert project.in_channels == 4 * 512  # 1x1 branch + three atrous rates


# --- bad arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 32, 32), (1, 2, 32, 32), (1, 1, 1, 32, 32), (0, 1, 8, 8)])
def test_bad_input_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match=r"x must have shape \(N, 1, H, W\)") as info:
        _model()(torch.zeros(shape))
    assert str(tuple(shape)) in str(info.value)


def test_bad_input_type_and_dtype() -> None:
    with pytest.raises(InputTypeError, match="x must be a torch.Tensor"):
        _model()([[1.0]])
    with pytest.raises(InputError, match="x must be a floating-point"):
        _model()(torch.zeros(1, 1, 8, 8, dtype=torch.int64))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"width": 0}, "width"),
        ({"depth": 0}, "depth"),
        ({"n_zones": 1}, "n_zones"),
        ({"in_channels": 0}, "in_channels"),
        ({"width": 2.5}, "width"),
        ({"aspp_rates": (6, 0)}, "aspp_rates"),
        ({"aspp_rates": (6, 1.5)}, "aspp_rates"),
        ({"aspp_rates": 6}, "aspp_rates"),
        ({"image_pooling": "yes"}, "image_pooling"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(InputError, match=name):
        ASPPUNet(**kwargs)


# --- config -----------------------------------------------------------------------------------


def test_config_round_trip() -> None:
    model = ASPPUNet(2, width=4, aspp_rates=(2, 4), image_pooling=True, n_zones=3, depth=3)
    cfg = model.get_config()
    assert cfg == model.config
    assert cfg == {
        "in_channels": 2,
        "width": 4,
        "aspp_rates": [2, 4],
        "image_pooling": True,
        "n_zones": 3,
        "depth": 3,
    }
    assert json.loads(json.dumps(cfg)) == cfg
    assert ASPPUNet.from_config(cfg).get_config() == cfg


def test_config_is_a_copy() -> None:
    model = ASPPUNet(width=4)
    model.config["aspp_rates"].append(99)
    assert model.config["aspp_rates"] == [6, 12, 18]


def test_from_config_rejects_unknown_keys() -> None:
    with pytest.raises(InputError, match="widht") as info:
        ASPPUNet.from_config({"widht": 4})
    assert "in_channels" in str(info.value)
    assert "Did you mean 'width'" in str(info.value)


# --- weights files ----------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path) -> None:
    model = _model(aspp_rates=(2,), depth=3)
    # Non-default BatchNorm statistics, so the buffers are proven to travel too.
    with torch.no_grad():
        model.train()(torch.randn(2, 1, 32, 32))
    model.eval()
    path = save_model(model, tmp_path / "net.safetensors")
    assert path == tmp_path / "net.safetensors"
    loaded = load_model(path)
    assert isinstance(loaded, ASPPUNet)
    assert not loaded.training
    assert loaded.get_config() == model.get_config()
    x = torch.randn(1, 1, 37, 29)
    before, after = _run(model, x), _run(loaded, x)
    assert torch.equal(before["zones"], after["zones"])
    assert torch.equal(before["front"], after["front"])


def test_metadata_round_trip(tmp_path) -> None:
    model = _model(depth=2)
    path = save_model(model, str(tmp_path / "net.safetensors"), metadata={"trained_on": "CaFFe"})
    meta = read_metadata(path)
    assert meta["trained_on"] == "CaFFe"
    assert meta["xcalving.format"] == "1"
    assert meta["xcalving.class"] == "ASPPUNet"
    assert json.loads(meta["xcalving.config"]) == model.get_config()
    assert meta["xcalving.version"]


def test_atomic_write_leaves_only_the_file(tmp_path) -> None:
    model = _model(depth=2)
    save_model(model, tmp_path / "net.safetensors")
    save_model(model, tmp_path / "net.safetensors")  # overwriting goes through the same path
    assert [p.name for p in tmp_path.iterdir()] == ["net.safetensors"]


@pytest.mark.parametrize(
    "metadata",
    [{"a": 1}, {1: "a"}, {"xcalving.config": "{}"}, ["a", "b"]],
)
def test_save_rejects_bad_metadata(tmp_path, metadata) -> None:
    with pytest.raises(InputError, match="metadata"):
        save_model(_model(depth=2), tmp_path / "net.safetensors", metadata=metadata)
    assert list(tmp_path.iterdir()) == []


def test_save_rejects_bad_suffix_and_model(tmp_path) -> None:
    with pytest.raises(InputError, match=r"net\.safetensors"):
        save_model(_model(depth=2), tmp_path / "net.pt")
    with pytest.raises(InputTypeError, match="get_config"):
        save_model(torch.nn.Linear(2, 2), tmp_path / "net.safetensors")


@pytest.mark.parametrize("name", ["x.safetensors", "x.pt"])
def test_load_refuses_torch_save_files(tmp_path, name: str) -> None:
    path = tmp_path / name
    torch.save(_model(depth=2).state_dict(), path)
    with pytest.raises(UnsafeFileError, match="weights_only=True"):
        load_model(path)


def test_load_refuses_legacy_pickle(tmp_path) -> None:
    path = tmp_path / "x.safetensors"
    torch.save({"w": torch.zeros(2)}, path, _use_new_zipfile_serialization=False)
    assert path.read_bytes()[:1] == b"\x80"
    with pytest.raises(UnsafeFileError, match="run arbitrary code"):
        read_metadata(path)


def test_load_missing_file(tmp_path) -> None:
    path = tmp_path / "missing.safetensors"
    with pytest.raises(WeightsNotFoundError, match="missing.safetensors") as info:
        load_model(path)
    assert isinstance(info.value, FileNotFoundError)


def test_load_without_xcalving_metadata(tmp_path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, path)
    with pytest.raises(InputError, match="without xcalving metadata"):
        load_model(path)


def test_load_not_safetensors(tmp_path) -> None:
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"not a weights file at all")
    with pytest.raises(InputError, match="not a safetensors file"):
        load_model(path)


def test_safetensors_header_starting_with_0x80_is_not_taken_for_pickle(tmp_path) -> None:
    # The first byte of a safetensors file is the low byte of its header length, so a genuine
    # file can start with the pickle protocol byte; content sniffing must not refuse it.
    model = _model(depth=2)
    path = tmp_path / "net.safetensors"
    for pad in range(0, 400, 8):
        save_model(model, path, metadata={"pad": "p" * pad})
        if path.read_bytes()[:1] == b"\x80":
            break
    else:
        pytest.fail("no padding gave a header length with low byte 0x80")
    assert read_metadata(path)["pad"]
    assert load_model(path).get_config() == model.get_config()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside torch._dynamo
def test_save_unwraps_torch_compile(tmp_path) -> None:
    model = _model(depth=2)
    path = save_model(torch.compile(model), tmp_path / "net.safetensors")
    x = torch.randn(1, 1, 12, 12)
    assert torch.equal(_run(load_model(path), x)["front"], _run(model, x)["front"])


@settings(max_examples=12, deadline=None)
@given(h=st.integers(1, 70), w=st.integers(1, 70), depth=st.integers(1, 3))
def test_any_height_and_width(h: int, w: int, depth: int) -> None:
    model = _model(depth=depth, aspp_rates=(2,))
    out = _run(model, torch.randn(1, 1, h, w))
    assert out["zones"].shape == (1, 4, h, w)
    assert out["front"].shape == (1, 1, h, w)
