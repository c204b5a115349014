"""Model cards, the README's weights table, and the honest-defaults warnings of predict."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from xcalving.errors import WeightsNotFoundError, XcalvingWarning
from xcalving.model.cards import UNKNOWN_SPACING, card, weights_table
from xcalving.model.registry import REGISTRY

README = Path(__file__).resolve().parents[2] / "README.md"
SECTIONS = ("## In short", "## Recipe", "## Evaluation", "## Known failure modes", "## Licence")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registered_weights_has_a_complete_card(name: str) -> None:
    text = card(name)
    assert text.startswith(f"# {name}\n")
    for heading in (*SECTIONS, "**Data**", "**Pixel spacing**", "**Compute**", "**Licence**"):
        assert heading in text, f"card {name!r} lacks {heading}"
    record = REGISTRY[name]
    assert record.sha256 in text
    if record.pixel_spacing is None:
        assert UNKNOWN_SPACING in text


def test_unknown_card_names_the_registered_ones() -> None:
    with pytest.raises(WeightsNotFoundError, match="demo"):
        card("dmeo")


def test_readme_weights_table_is_the_cards_table() -> None:
    assert weights_table() in README.read_text(), (
        "README's weights table is stale: paste xcalving.model.cards.weights_table()")


def _cube(resolution: float, size: int = 64):
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(1, shape=(size, size), resolution=resolution, seed=2)
    return cube.sar


@pytest.fixture
def fresh_warnings(monkeypatch):
    from xcalving.inference import resample

    monkeypatch.setattr(resample, "_WARNED", set())


def _messages(da, model) -> list[str]:
    import xcalving

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        xcalving.predict(da, model, tile=64, overlap=16)
    return [str(w.message) for w in caught if issubclass(w.category, XcalvingWarning)]


def test_spacing_outside_the_measured_range_warns_once_with_the_measured_advice(fresh_warnings):
    """demo holds on 10-40 m and resolution='model' made it worse: the warning says so."""
    far = _messages(_cube(80.0), "demo")
    assert len(far) == 1 and "10-40 m" in far[0] and "80 m" in far[0]
    assert "measured to make them worse" in far[0] and "pass resolution='model'" not in far[0]
    assert _messages(_cube(80.0), "demo") == []  # once per weights and spacing
    assert _messages(_cube(20.0), "demo") == []  # the weights' own spacing: nothing to say
    assert _messages(_cube(40.0), "demo") == []  # inside the measured range


def test_unmeasured_weights_of_a_known_spacing_are_not_told_to_resample(fresh_warnings, tmp_path):
    import torch

    from xcalving.model import ASPPUNet, save_model

    torch.manual_seed(0)
    path = save_model(ASPPUNet(width=4).eval(), tmp_path / "net.safetensors", pixel_spacing=20.0)
    said = _messages(_cube(80.0), str(path))
    assert len(said) == 1 and "unmeasured" in said[0] and "4.0x" in said[0]
    assert _messages(_cube(25.0), str(path)) == []  # within 1.5x of its spacing


def test_weights_of_unknown_spacing_on_a_metric_cube_warn(fresh_warnings, tmp_path):
    import torch

    from xcalving.model import ASPPUNet, save_model

    torch.manual_seed(0)
    net = ASPPUNet(width=4).eval()
    assert not any("pixel spacing" in m for m in _messages(_cube(20.0), net))  # a module: quiet
    path = save_model(net, tmp_path / "net.safetensors")  # a weights file without a spacing
    said = _messages(_cube(20.0), str(path))
    assert any(re.search(r"state no pixel spacing.*resolution=<metres>", m) for m in said)


def test_meta_is_the_structured_card(fresh_warnings):
    """Cards as data: the record's meta is plain JSON and the Markdown card shows its facts."""
    import json

    for name, record in REGISTRY.items():
        meta = record.meta
        json.dumps(meta)  # plain data
        assert meta["sha256"] == record.sha256 and meta["licence"] == record.licence
        text = card(name)
        assert f"method={record.front_method!r}" in text
        for metric in meta["metrics"]:
            if metric.get("mde_px") is not None:
                assert f"{metric['mde_px']:.1f}" in text
