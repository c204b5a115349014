"""Temporal context: the neighbour rule, the training store and stream, predict's channels."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import xcalving
from xcalving.data.caffe import caffe_to_zarr, shipped_scenes
from xcalving.data.stream import PatchStream
from xcalving.data.synthetic import glacier_cube
from xcalving.errors import InputError, XcalvingWarning
from xcalving.inference.inputs import with_context
from xcalving.model import ASPPUNet, load_model
from xcalving.model.context import (
    NEIGHBOURS,
    fill_context,
    neighbour_indices,
    single_scene_context,
    summarise,
)
from xcalving.scaling import CAFFE_SCALING, fill_value, to_network_input
from xcalving.train import TrainConfig, train

DAY = np.timedelta64(1, "D")


# --- the rule ------------------------------------------------------------------------------------
def test_neighbours_are_the_nearest_other_dates_never_the_date_itself():
    rng = np.random.default_rng(0)
    times = np.datetime64("2020-01-01") + rng.permutation(40).astype(int) * 3 * DAY
    for i, chosen in enumerate(neighbour_indices(times)):
        assert i not in chosen and len(chosen) == NEIGHBOURS
        gap = np.abs(times[chosen] - times[i]).max()
        others = np.delete(np.abs(times - times[i]), i)
        assert (others < gap).sum() < NEIGHBOURS  # nobody nearer was left out


def test_neighbours_depend_on_the_dates_not_on_their_order():
    times = np.array(["2020-01-01", "2020-01-03", "2020-01-05", "2020-01-05", "2020-02-01"],
                     "datetime64[D]")
    perm = np.array([3, 0, 4, 2, 1])
    straight = neighbour_indices(times, 3)
    shuffled = neighbour_indices(times[perm], 3)
    for j, i in enumerate(perm):  # the same dates chosen whatever the order of the cube
        assert sorted(times[perm][shuffled[j]].tolist()) == sorted(times[straight[i]].tolist())


def test_summary_leaves_out_no_data_and_fills_pixels_without_neighbours():
    images = np.full((4, 2, 2), np.nan, np.float32)
    images[0] = 1.0
    images[1] = [[3.0, np.nan], [5.0, np.nan]]
    images[2] = [[5.0, np.nan], [np.nan, np.nan]]
    out = summarise(images, [np.array([1, 2]), np.array([3])])
    assert out[0, 0, 0, 0] == 4.0
    assert out[0, 1, 0, 0] == 1.0 and out[0, 0, 1, 0] == 5.0 and out[0, 1, 1, 0] == 0.0
    assert np.isnan(out[0, :, 0, 1]).all() and np.isnan(out[1]).all()
    filled = fill_context(out, -0.9)
    assert (filled[1, 0] == np.float32(-0.9)).all() and not filled[1, 1].any()


def test_single_scene_context_is_the_scene_and_no_spread():
    image = np.array([[0.5, np.nan]], np.float32)
    ctx = single_scene_context(image, -1.0)
    assert ctx.tolist() == [[[0.5, -1.0]], [[0.0, 0.0]]]


# --- predict -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return ASPPUNet(3, width=4).eval()


@pytest.fixture(scope="module")
def series():
    cube, _ = glacier_cube(9, shape=(96, 80), seed=1)
    return cube.sar


def _front(sar, net, **kw):
    return xcalving.predict(sar, net, tile=64, overlap=16, **kw).front_probability.values


def test_context_channels_match_the_rule_on_the_whole_stack(series):
    x = to_network_input(series.values, "uint8", CAFFE_SCALING)
    fill = fill_value(CAFFE_SCALING)
    import dask.array as dsa

    got = with_context(dsa.from_array(x, chunks=(2, 48, 40)), series.time.values, fill).compute()
    expected = fill_context(summarise(x, neighbour_indices(series.time.values)), fill)
    np.testing.assert_array_equal(got[:, 0], x)
    np.testing.assert_allclose(got[:, 1:], expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("chunks", [{"time": 1}, {"time": 2, "y": 64}, {"time": 4, "x": 64}])
def test_predict_with_context_is_chunk_invariant(net, series, chunks):
    whole = _front(series.chunk({"time": -1}), net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rechunk warnings of the small chunks
        np.testing.assert_array_equal(_front(series.chunk(chunks), net), whole)


def test_context_uses_the_neighbouring_dates(net, series):
    """A scene's output changes when a neighbouring date changes, and not otherwise."""
    base = _front(series, net)
    changed = series.copy(data=series.values.copy())
    changed[4] = changed[4] + 3  # 3 dB brighter
    after = _front(changed, net)
    near = {int(i) for i in np.flatnonzero([4 in n for n in neighbour_indices(series.time.values)])}
    for t in range(series.sizes["time"]):
        assert (np.abs(after[t] - base[t]).max() > 0) == (t in near | {4})


def test_a_single_scene_warns_and_uses_itself(net, series):
    with pytest.warns(XcalvingWarning, match="temporal context"):
        one = _front(series.isel(time=0), net)
    with pytest.warns(XcalvingWarning, match="temporal context"):
        first = _front(series.isel(time=[0]), net)
    np.testing.assert_array_equal(one, first[0])


def test_resampled_prediction_with_context_is_chunk_invariant(net, series):
    spacing = float(abs(series.x[1] - series.x[0]))
    whole = _front(series.chunk({"time": -1}), net, resolution=2 * spacing)
    parts = _front(series.chunk({"time": 2}), net, resolution=2 * spacing)
    assert whole.shape == series.shape and np.isfinite(whole).all()
    np.testing.assert_allclose(parts, whole, atol=1e-6)


def test_context_weights_need_the_scenes_along_one_dim(net, series):
    stacked = series.expand_dims(orbit=["a", "b"]).rename(orbit="scene")
    with pytest.raises(InputError, match=r"\(time, y, x\)"):
        xcalving.predict(stacked, net, tile=64, overlap=16)


def test_networks_of_other_input_counts_are_refused(series):
    with pytest.raises(InputError, match="in_channels=2"):
        xcalving.predict(series, ASPPUNet(2, width=4).eval(), tile=64, overlap=16)


# --- training ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("context")
    return caffe_to_zarr(shipped_scenes(), root / "p.zarr", window=128, pixel_spacing=None,
                         progress=False, context=True)


def test_store_holds_each_scenes_context_from_its_own_glacier(store):
    cube = xcalving.open_cube(store).load()
    jorum = cube.sel(sample=(cube.glacier == "Jorum") & (cube.row == 0) & (cube.col == 0))
    grey = jorum.sar.values.astype(np.float32)
    grey[grey == 0] = np.nan
    expected = summarise(grey, neighbour_indices(pd.to_datetime(jorum.date.values).to_numpy()))
    np.testing.assert_allclose(jorum.ctx_median.values, np.nan_to_num(np.rint(expected[:, 0])),
                               atol=1)
    np.testing.assert_allclose(jorum.ctx_spread.values, np.nan_to_num(np.rint(expected[:, 1])),
                               atol=1)


def test_stream_feeds_three_channels_and_sometimes_the_single_scene(store):
    plain = next(iter(PatchStream(store, glaciers="Jorum", context=True, shuffle=False)))
    assert plain["image"].shape == (3, 128, 128)
    assert plain["image"][2].abs().sum() > 0  # the spread is there
    stream = PatchStream(store, augment=True, context=True, seed=3)
    singles = [bool(item["image"][2].abs().sum() == 0) for item in stream]
    assert 0 < sum(singles) < len(singles) / 3


def test_stream_context_needs_a_store_with_context(tmp_path):
    plain = caffe_to_zarr(shipped_scenes(), tmp_path / "p.zarr", window=128,
                          pixel_spacing=None, progress=False)
    with pytest.raises(InputError, match="context=True"):
        PatchStream(plain, context=True)


@pytest.mark.filterwarnings("ignore:the weights .* state no pixel spacing")
def test_training_with_context_gives_three_channel_weights_predict_runs(store, tmp_path, series):
    config = TrainConfig(store=store, out=str(tmp_path / "run"), train_glaciers=["Jorum", "SI"],
                         val_glaciers=["DBE"], width=4, epochs=1, batch_size=8, context=True)
    train(config)
    weights = next((tmp_path / "run" / "checkpoints").glob("epoch_*.safetensors"))
    assert load_model(weights).get_config()["in_channels"] == 3
    out = xcalving.predict(series, str(weights), tile=64, overlap=16)
    assert np.isfinite(out.front_probability.values).all()


# --- fine-tuning ---------------------------------------------------------------------------------
def test_finetune_of_context_weights_trains_with_the_scenes_own_series(tmp_path):
    from xcalving.adapt import finetune
    from xcalving.adapt.prepare import LabelledScene, Windows, add_context
    from xcalving.testing import write_fixture_tree

    torch.manual_seed(0)
    base = xcalving.model.save_model(ASPPUNet(3, width=4), tmp_path / "base.safetensors",
                                     scaling=CAFFE_SCALING)
    tree = write_fixture_tree(tmp_path / "caffe", n_train=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XcalvingWarning)
        result = finetune(base, tree, out=tmp_path / "a.safetensors", caffe_spacing=None,
                          max_steps=2, batch_size=2, window=64, progress=False)
    assert load_model(result.path).get_config()["in_channels"] == 3
    assert result.facts["scores"]["after"]["scenes"] == 3

    rng = np.random.default_rng(0)
    scenes = [LabelledScene(f"s{i}", f"2020-01-0{i + 1}",
                            rng.integers(1, 255, (40, 40), dtype=np.uint8),
                            np.full((40, 40), 2, np.uint8), np.zeros((40, 40), np.uint8), None,
                            (0, 40, 0, 40), "test") for i in range(3)]
    lonely = LabelledScene("alone", None, scenes[0].grey, scenes[0].zones, scenes[0].front,
                           None, (0, 40, 0, 40), "test")
    add_context([*scenes, lonely], series=lambda s: "")
    expected = summarise(np.stack([s.grey for s in scenes[1:]]).astype(np.float32),
                         [np.array([0, 1])])[0]
    np.testing.assert_allclose(scenes[0].context, np.rint(expected), atol=1)
    assert lonely.context is None
    batch = Windows([*scenes, lonely], 32, CAFFE_SCALING, context=True).batch(6)
    assert batch["image"].shape == (6, 3, 32, 32)
