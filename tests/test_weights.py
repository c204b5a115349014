"""The shipped weights: registered once, hash-checked, self-describing, small, and the default."""

import numpy as np
import pytest
import xarray as xr

import xcalving
from xcalving.model import load_model, read_metadata
from xcalving.model.weights import DEFAULT_WEIGHTS, REGISTRY, model_spec, sha256_file

LIMITS_MB = {"caffe256": 20, "demo": 10}


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
