"""Fine-tuning on a handful of labelled scenes: every data kind, the card, Ctrl-C, budgets.

Tiny on purpose: a width-4 base, 64–96 px scenes, a few steps each.
"""

from __future__ import annotations

import argparse
import json
import re
import time
import warnings
from pathlib import Path

import bad_inputs_finetune
import numpy as np
import pytest
import torch
from test_bad_inputs import Case

from xcalving.errors import XcalvingWarning
from xcalving.model import ASPPUNet, load_model, read_metadata, save_model
from xcalving.scaling import CAFFE_SCALING

FAST = {"max_steps": 2, "batch_size": 2, "progress": False}


@pytest.fixture
def base(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_model(ASPPUNet(width=4), tmp_path / "base.safetensors", scaling=CAFFE_SCALING)


@pytest.fixture
def caffe_tree(tmp_path: Path) -> Path:
    from xcalving.testing import write_fixture_tree

    return write_fixture_tree(tmp_path / "caffe", n_train=3)


@pytest.fixture(scope="module")
def cube():
    from xcalving.data.synthetic import glacier_cube

    return glacier_cube(3, shape=(96, 96), seed=1)


def _geotiffs(tmp_path: Path, cube) -> tuple[str, object]:
    data, fronts = cube
    for k in range(data.sizes["time"]):
        data.sar.isel(time=k).rio.to_raster(tmp_path / f"S1_{str(data.time.values[k])[:10]}.tif")
    lines = fronts.reset_index().rename(columns={"time": "date"})
    lines["date"] = lines["date"].dt.strftime("%Y-%m-%d")
    return str(tmp_path / "S1_*.tif"), lines


def _polygons(cube, days: int):
    import geopandas as gpd
    import shapely
    from rasterio.features import shapes

    from xcalving.zones import ZONE_NAMES

    data, _ = cube
    rows = []
    for k in range(days):
        zones = data.zones.isel(time=k).values.astype(np.uint8)
        for geom, value in shapes(zones, transform=data.rio.transform()):
            rows.append({"geometry": shapely.geometry.shape(geom),
                         "class": ZONE_NAMES[int(value)],
                         "date": str(data.time.values[k])[:10]})
    return gpd.GeoDataFrame(rows, crs=data.rio.crs)


def _finetune(base, data, out, **kwargs):
    from xcalving.adapt import finetune

    return finetune(base, data, out=out, **{**FAST, **kwargs})


def _predicts(path: Path) -> None:
    import xcalving
    from xcalving.data.synthetic import glacier_cube

    sar = glacier_cube(1, shape=(64, 64), seed=5)[0].sar
    with warnings.catch_warnings():  # a base of unknown spacing on a 20 m grid: warned, fine
        warnings.simplefilter("ignore", XcalvingWarning)
        pred = xcalving.predict(sar, str(path), tile=64, overlap=0).compute()
    assert pred.zones.shape == (1, 64, 64)
    assert np.isfinite(pred.front_probability.values).any()


# --- every data kind -----------------------------------------------------------------------------
def test_caffe_tree(base, caffe_tree, tmp_path):
    from xcalving.model.files import sha256_file

    result = _finetune(base, caffe_tree, tmp_path / "a.safetensors", caffe_spacing=None)
    assert load_model(result.path).get_config()["width"] == 4
    _predicts(result.path)
    facts = json.loads(read_metadata(result.path)["finetune"])
    assert facts == result.facts
    assert facts["base"] == {"name": "base.safetensors", "sha256": sha256_file(base),
                             "scaling": CAFFE_SCALING.to_dict(), "pixel_spacing": None}
    assert [s["date"] for s in facts["scenes"]] == ["2011-11-13", "2011-11-25", "2011-12-07"]
    assert facts["labels"] == "zones+front" and facts["training"]["steps"] == 2
    assert facts["recipe"]["trainable"] == "all" and facts["recipe"]["augment"] == "heavy"
    for when in ("before", "after"):
        assert facts["scores"][when]["scenes"] == 3
        assert 0 <= facts["scores"][when]["zone_iou"] <= 1
    card = result.card()
    assert "not held-out" in card and sha256_file(base) in card
    assert "DBE_2011-11-13_TSX_7_1_034" in card and "| MDE, front from zones (px) |" in card


def test_caffe_any_split_name_and_catalog(base, caffe_tree, tmp_path):
    from xcalving.data.caffe import open_caffe

    for kind in ("sar_images", "zones", "fronts"):
        (caffe_tree / kind / "train").rename(caffe_tree / kind / "my_glacier")
    result = _finetune(base, caffe_tree.parent, tmp_path / "a.safetensors", caffe_spacing=None,
                       score=False)
    assert len(result.facts["scenes"]) == 3
    catalog = open_caffe(write_tree(tmp_path), pixel_spacing=None)
    result = _finetune(base, catalog.iloc[:2], tmp_path / "b.safetensors", score=False)
    assert [s["name"] for s in result.facts["scenes"]] == catalog["stem"][:2].tolist()


def write_tree(tmp_path: Path) -> Path:
    from xcalving.testing import write_fixture_tree

    return write_fixture_tree(tmp_path / "other", n_train=2)


def test_zarr_cube_keeps_scaling_and_spacing(base, cube, tmp_path):
    import xcalving

    store = xcalving.write_cube(cube[0], tmp_path / "cube.zarr")
    spaced = save_model(load_model(base), tmp_path / "b20.safetensors", pixel_spacing=20.0)
    result = _finetune(spaced, store, tmp_path / "a.safetensors")
    meta = read_metadata(result.path)
    assert json.loads(meta["xcalving.scaling"]) == CAFFE_SCALING.to_dict()
    assert json.loads(meta["xcalving.pixel_spacing"]) == 20.0
    assert result.facts["scores"]["after"]["mde_zones_m"] is not None
    assert [s["date"] for s in result.facts["scenes"]] == ["2019-01-01", "2019-01-13",
                                                          "2019-01-25"]


@pytest.mark.parametrize("spacing", [40.0, 10.0])
def test_cube_resampled_to_the_base_spacing(base, cube, tmp_path, spacing):
    from xcalving.adapt.prepare import prepare_scenes
    from xcalving.adapt.sources import read_scenes

    spaced = save_model(load_model(base), tmp_path / "b.safetensors", pixel_spacing=spacing)
    result = _finetune(spaced, cube[0], tmp_path / "a.safetensors", score=False)
    side = round(96 * 20.0 / spacing)  # 96 px at 20 m
    assert result.facts["scenes"][0]["shape"] == [side, side]
    assert result.facts["pixel_spacing"] == spacing
    (scene, *_), _ = prepare_scenes(read_scenes(cube[0]), target=spacing)
    truth = cube[0].front.values[0].sum()
    assert 0.5 * truth * 20 / spacing < scene.front.sum() < 2 * truth * 20 / spacing  # still thin
    assert set(np.unique(scene.zones)) <= {0, 1, 2, 3}


def test_cube_with_raster_labels_on_its_grid(base, cube, tmp_path):
    result = _finetune(base, cube[0][["sar"]], tmp_path / "a.safetensors", score=False,
                       labels=cube[0][["zones", "front"]].isel(time=[0, 2]))
    assert [s["date"] for s in result.facts["scenes"]] == ["2019-01-01", "2019-01-25"]
    assert result.facts["labels"] == "zones+front"


def test_geotiff_front_lines_only_train_the_front_head(base, cube, tmp_path):
    scenes, lines = _geotiffs(tmp_path, cube)
    lines.iloc[:2].to_crs(4326).to_file(tmp_path / "labels.gpkg", layer="fronts")
    result = _finetune(base, scenes, tmp_path / "a.safetensors", labels=tmp_path / "labels.gpkg",
                       max_steps=3)
    before, after = load_model(base), load_model(result.path)
    assert torch.equal(before.zones_head.weight, after.zones_head.weight)
    assert torch.equal(before.zones_head.bias, after.zones_head.bias)
    assert not torch.equal(before.front_head.weight, after.front_head.weight)
    facts = result.facts
    assert facts["labels"] == "front" and facts["recipe"]["front_only"]
    assert [s["name"] for s in facts["scenes"]] == ["S1_2019-01-01.tif", "S1_2019-01-13.tif"]
    assert any("method='probability'" in note for note in facts["notes"])
    assert facts["scores"]["after"]["zone_iou"] is None  # no zone was labelled
    assert "zone head frozen" in result.card()


def test_geotiff_with_zone_polygons(base, cube, tmp_path):
    scenes, lines = _geotiffs(tmp_path, cube)
    lines.iloc[:2].to_file(tmp_path / "labels.gpkg", layer="fronts")
    _polygons(cube, 2).to_file(tmp_path / "labels.gpkg", layer="zones")
    result = _finetune(base, scenes, tmp_path / "a.safetensors", labels=tmp_path / "labels.gpkg")
    assert result.facts["labels"] == "zones+front" and not result.facts["recipe"]["front_only"]
    assert not torch.equal(load_model(base).zones_head.weight,
                           load_model(result.path).zones_head.weight)


@pytest.mark.parametrize("trainable", ["all", "decoder", "heads"])
def test_what_trains_and_batchnorm_statistics_stay(base, caffe_tree, tmp_path, trainable):
    result = _finetune(base, caffe_tree, tmp_path / "a.safetensors", caffe_spacing=None,
                       trainable=trainable, score=False)
    before, after = load_model(base).state_dict(), load_model(result.path).state_dict()
    changed = {k.split(".")[0] for k in before
               if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
               and not torch.equal(before[k], after[k])}
    expected = {"all": {"encoders", "bottleneck", "upsamplers", "decoders", "zones_head",
                        "front_head"},
                "decoder": {"upsamplers", "decoders", "zones_head", "front_head"},
                "heads": {"zones_head", "front_head"}}[trainable]
    assert changed == expected
    for key in before:  # BatchNorm keeps the base's statistics whatever trains
        if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert torch.equal(before[key], after[key]), key
    assert trainable in result.card() and "the base's statistics, frozen" in result.card()


def test_batchnorm_adapt_re_estimates_the_statistics(base, caffe_tree, tmp_path):
    result = _finetune(base, caffe_tree, tmp_path / "a.safetensors", caffe_spacing=None,
                       batchnorm="adapt", score=False)
    before, after = load_model(base).state_dict(), load_model(result.path).state_dict()
    stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
    assert stats and all(not torch.equal(before[k], after[k]) for k in stats)
    assert result.facts["recipe"]["batchnorm"] == "adapt"
    assert "statistics re-estimated on the labelled scenes" in result.card()


def test_replay_mixes_scenes_of_other_glaciers_into_training(base, caffe_tree, tmp_path):
    from xcalving.testing import write_fixture_tree

    # five scenes named DBE, JAC, Jorum, SI, Crane: the first three are the adapted glaciers
    other = write_fixture_tree(tmp_path / "other", seed=7, n_train=5)
    result = _finetune(base, caffe_tree, tmp_path / "a.safetensors", caffe_spacing=None,
                       replay=other, replay_share=0.5, score=False)
    assert len(result.facts["replay"]) == 2 and len(result.facts["scenes"]) == 3
    assert {r["name"].split("_")[0] for r in result.facts["replay"]} == {"SI", "Crane"}
    assert result.facts["recipe"]["replay_share"] == 0.5
    assert "**Replay**: 50% of the windows from 2 labelled scenes replayed" in result.card()
    from xcalving.data.caffe import shipped_scenes  # the CaFFe scenes shipped for caffe256

    shipped = _finetune(base, caffe_tree, tmp_path / "c.safetensors", caffe_spacing=None,
                        replay=shipped_scenes(), score=False)
    # never a scene of a glacier being adapted: the fixture's scenes are named DBE, JAC, Jorum
    assert len(shipped.facts["replay"]) == _shipped_outside(caffe_tree) > 0
    assert {tuple(r["shape"]) for r in shipped.facts["replay"]} == {(256, 256)}  # not resampled
    plain = _finetune(base, caffe_tree, tmp_path / "b.safetensors", caffe_spacing=None,
                      score=False)
    assert plain.facts["replay"] == [] and "Replay" not in plain.card()
    assert plain.facts["recipe"]["replay_share"] == 0.0


def _shipped_outside(tree) -> int:
    """Shipped CaFFe scenes of glaciers other than those named in ``tree``."""
    from xcalving.adapt.base import scene_glaciers
    from xcalving.data.caffe import open_caffe, shipped_scenes

    adapted = scene_glaciers(list(open_caffe(tree)["stem"]))
    assert adapted  # the fixture names its scenes after CaFFe glaciers
    return int((~open_caffe(shipped_scenes(), pixel_spacing=None)["glacier"].isin(adapted)).sum())


def test_replay_never_holds_the_glacier_being_adapted(tmp_path):
    from xcalving.data.caffe import open_caffe, shipped_scenes

    catalog = open_caffe(shipped_scenes(), pixel_spacing=None)
    dbe = catalog[catalog["glacier"] == "DBE"].head(2)
    result = _finetune("demo", dbe, tmp_path / "a.safetensors", score=False,
                       replay=shipped_scenes())
    replayed = [r["name"] for r in result.facts["replay"]]
    assert replayed and not any(name.startswith("DBE_") for name in replayed)
    assert len(replayed) == 21 - int((catalog["glacier"] == "DBE").sum())


def test_replay_auto_uses_what_a_registered_base_names(caffe_tree, tmp_path):
    import shutil

    from xcalving.model.registry import REGISTRY

    auto = _finetune("caffe256", caffe_tree, tmp_path / "a.safetensors", caffe_spacing=None,
                     score=False)
    assert REGISTRY["caffe256"].replay == "shipped-caffe256"
    assert len(auto.facts["replay"]) == _shipped_outside(caffe_tree)
    assert auto.facts["recipe"]["replay_share"] == 0.25
    off = _finetune("caffe256", caffe_tree, tmp_path / "b.safetensors", caffe_spacing=None,
                    score=False, replay=None)
    assert off.facts["replay"] == []
    nodbe = _finetune("caffe256-nodbe", caffe_tree, tmp_path / "c.safetensors",
                      caffe_spacing=None, score=False)  # its held-out glacier is shipped too
    assert nodbe.facts["replay"] == []
    namesake = tmp_path / "caffe256"  # a user's file of that name is not the registered one
    shutil.copy(REGISTRY["demo"].path, namesake)
    other = _finetune(namesake, caffe_tree, tmp_path / "d.safetensors", caffe_spacing=None,
                      score=False)
    assert other.facts["replay"] == []


def test_replayed_windows_come_in_the_share_asked(caffe_tree, tmp_path):
    from xcalving.adapt.prepare import Windows, prepare_scenes
    from xcalving.adapt.sources import read_scenes
    from xcalving.testing import write_fixture_tree

    own, _ = prepare_scenes(read_scenes(caffe_tree, caffe_spacing=None), target=None)
    other = write_fixture_tree(tmp_path / "other", seed=7, n_train=2)
    replay, _ = prepare_scenes(read_scenes(other, caffe_spacing=None), target=None)
    windows = Windows(own, 64, CAFFE_SCALING, replay=replay, replay_share=0.3, seed=1)
    draws = [windows._draw() for _ in range(4000)]
    replayed = np.mean([k >= len(own) for k in draws])
    assert abs(replayed - 0.3) < 0.03
    assert {windows._scene(k).name for k in draws} == {s.name for s in own + replay}
    alone = Windows(own, 64, CAFFE_SCALING, replay_share=0.3, seed=1)  # nothing to replay
    assert max(alone._draw() for _ in range(200)) < len(own)


def test_labels_reprojected_onto_the_scene_grid(cube, tmp_path):
    from xcalving.adapt.labels import apply_labels
    from xcalving.adapt.sources import read_scenes

    scenes, lines = _geotiffs(tmp_path, cube)
    native = apply_labels(read_scenes(scenes), lines)
    moved = apply_labels(read_scenes(scenes), lines.to_crs(4326))
    for a, b in zip(native, moved, strict=True):
        assert a.front.sum() > 20 and abs(int(a.front.sum()) - int(b.front.sum())) <= 3
        near = np.argwhere(a.front)
        far = np.argwhere(b.front)
        gap = np.abs(near[:, None, :] - far[None, :, :]).max(-1).min(1)
        assert gap.max() <= 1  # every pixel of the line within a pixel of the reprojected one
    data, _ = cube
    truth = data.front.isel(time=0).values.astype(bool)
    assert (native[0].front.astype(bool) & truth).sum() > 0.3 * truth.sum()


def test_large_scene_is_cropped_to_its_labels(tmp_path):
    import shapely

    from xcalving.adapt.labels import MARGIN_PX, apply_labels
    from xcalving.adapt.sources import read_scenes
    from xcalving.data.synthetic import glacier_cube

    data, fronts = glacier_cube(1, shape=(448, 448), seed=2)
    data.sar.isel(time=0).rio.to_raster(tmp_path / "S1_2019-01-01.tif")
    line = fronts.geometry.iloc[0]
    x, y = line.interpolate(0.5, normalized=True).coords[0]
    piece = line.intersection(shapely.box(x - 400, y - 400, x + 400, y + 400))  # 40 px across
    labels = fronts.iloc[:1].set_geometry([piece]).reset_index().rename(columns={"time": "date"})
    (scene,) = apply_labels(read_scenes(str(tmp_path / "S1_2019-01-01.tif")), labels)
    assert scene.values.shape[0] <= 40 + 2 * MARGIN_PX + 2 < 448
    col = round((scene.transform.c - data.rio.transform().c) / 20)
    row = round((data.rio.transform().f - scene.transform.f) / 20)
    rows, cols = scene.values.shape
    np.testing.assert_array_equal(scene.values, data.sar.values[0, row:row + rows, col:col + cols])
    truth = data.front.values[0, row:row + rows, col:col + cols].astype(bool)
    assert (scene.front.astype(bool) & truth).sum() > 0.3 * scene.front.sum()


def test_parquet_labels_and_geoparquet_partial_zones(base, cube, tmp_path):
    import geopandas as gpd

    scenes, lines = _geotiffs(tmp_path, cube)
    ocean = _polygons(cube, 1)
    ocean = ocean[ocean["class"] == "ocean"]
    gpd.pd.concat([lines.iloc[:1], ocean], ignore_index=True).pipe(
        gpd.GeoDataFrame, crs=lines.crs).to_parquet(tmp_path / "labels.parquet")
    result = _finetune(base, scenes, tmp_path / "a.safetensors",
                       labels=tmp_path / "labels.parquet", score=False)
    assert result.facts["labels"] == "partial zones+front"
    assert any("labelled in part" in note for note in result.facts["notes"])


# --- budgets, Ctrl-C -----------------------------------------------------------------------------
def test_ctrl_c_keeps_the_last_completed_step(base, caffe_tree, tmp_path, monkeypatch):
    seen: list[dict] = []

    def stop(info: dict) -> None:
        seen.append(info)
        if info["step"] == 4:
            raise KeyboardInterrupt

    result = _finetune(base, caffe_tree, tmp_path / "a.safetensors", caffe_spacing=None,
                       max_steps=50, callback=stop, score=False)
    run = result.facts["training"]
    assert result.interrupted and run["interrupted"] and run["steps"] == 4
    assert run["final_loss"] == pytest.approx(seen[-1]["ema_loss"], abs=1e-5)
    kept = load_model(result.path).state_dict()
    assert not torch.equal(load_model(base).decoders[0][0][0].weight,
                           kept["decoders.0.0.0.weight"])
    assert "interrupted by Ctrl-C" in result.card()
    # the same run stopped normally after step 4 ends on the same weights: step 4's were kept
    from xcalving.adapt import loop

    monkeypatch.setattr(loop, "_stop_reason", lambda step, *_: "stop" if step == 4 else None)
    four = _finetune(base, caffe_tree, tmp_path / "b.safetensors", caffe_spacing=None,
                     max_steps=50, score=False)
    for key, value in load_model(four.path).state_dict().items():
        torch.testing.assert_close(kept[key], value)
    assert [round(s["lr"], 12) for s in seen] == sorted(round(s["lr"], 12) for s in seen)[::-1]


def test_interrupted_run_is_not_scored_after(base, caffe_tree, tmp_path):
    def stop(info: dict) -> None:
        raise KeyboardInterrupt

    result = _finetune(base, caffe_tree, tmp_path / "a.safetensors", caffe_spacing=None,
                       callback=stop)
    assert result.facts["scores"]["after"] is None and result.facts["scores"]["before"]
    assert result.facts["training"]["steps"] == 1


def test_interrupt_before_any_step_raises(base, caffe_tree, tmp_path, monkeypatch):
    from xcalving.adapt import prepare

    def interrupted(self, n):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare.Windows, "batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _finetune(base, caffe_tree, tmp_path / "a.safetensors", caffe_spacing=None, score=False)
    assert not (tmp_path / "a.safetensors").exists()


def test_max_minutes_is_respected(base, caffe_tree, tmp_path):
    started = time.perf_counter()
    result = _finetune(base, caffe_tree, tmp_path / "a.safetensors", caffe_spacing=None,
                       max_steps=None, max_minutes=0.02, score=False)
    assert time.perf_counter() - started < 15
    run = result.facts["training"]
    assert run["steps"] >= 1 and "time budget of 0.02 min" in run["stopped"]


# --- the edges: the bar's budget, empty scenes, dates read two ways, where out may go ------------
class _Bar:
    """A progress bar that records its ``total`` after every step."""

    bars: list[_Bar] = []

    def __init__(self, total=None, **kwargs):
        self.total, self.n, self.totals = total, 0, []
        _Bar.bars.append(self)

    def update(self, n=1):
        self.n += n

    def set_postfix(self, **kwargs):
        self.totals.append(self.total)

    def refresh(self):
        pass

    def close(self):
        pass


@pytest.mark.parametrize("budget", ["steps", "minutes", "minutes only"])
def test_the_bar_counts_to_whichever_budget_ends_first(base, caffe_tree, tmp_path, monkeypatch,
                                                       budget):
    from xcalving import _progress

    monkeypatch.setattr(_progress, "tqdm_class", lambda: _Bar)
    _Bar.bars.clear()
    steps = {"steps": 3, "minutes": 1000, "minutes only": None}[budget]
    minutes = 10.0 if budget == "steps" else 0.03
    result = _finetune(base, caffe_tree, tmp_path / "a.safetensors", caffe_spacing=None,
                       max_steps=steps, max_minutes=minutes, score=False, progress=True)
    (bar,) = _Bar.bars
    done = result.facts["training"]["steps"]
    assert bar.n == done and bar.total == done  # the bar ends full, whichever budget ended it
    if budget == "steps":
        assert bar.totals == [3] * 3
    else:  # the time budget ends first: the total follows it, never the 1000 steps
        assert all(total is not None and total < 1000 for total in bar.totals)
        assert abs(bar.totals[-1] - done) <= 1


def test_expected_steps_follow_the_budget_that_ends_first():
    from xcalving.adapt.loop import expected_steps

    assert expected_steps(10, 1000, elapsed=5.0, left=20.0) == 50  # the time ends first
    assert expected_steps(10, 30, elapsed=5.0, left=20.0) == 30  # the steps end first
    assert expected_steps(10, None, elapsed=5.0, left=-1.0) == 10
    assert expected_steps(0, 1000, elapsed=0.0, left=600.0) == 1000
    assert expected_steps(0, None, elapsed=0.0, left=600.0) is None


def test_a_scene_without_a_valid_pixel_is_refused_by_name(base, cube, tmp_path):
    from xcalving.errors import InputError

    data = cube[0].copy(deep=True)
    data["sar"][1] = np.nan
    with pytest.raises(InputError, match=r"scene '2019-01-13' has no valid pixel"):
        _finetune(base, data, tmp_path / "a.safetensors")
    assert not (tmp_path / "a.safetensors").exists()


@pytest.mark.parametrize("written, day", [("13/01/2019", "2019-01-13"),
                                          ("01/13/2019", "2019-01-13"),
                                          ("2019/01/13", "2019-01-13"),
                                          ("01/01/2019", "2019-01-01"),
                                          ("2019-01-13T10:21:00", "2019-01-13")])
def test_dates_that_read_one_way_pair_labels_with_their_scene(cube, tmp_path, written, day):
    from xcalving.adapt.labels import apply_labels
    from xcalving.adapt.sources import read_scenes

    scenes, lines = _geotiffs(tmp_path, cube)
    lines = lines.iloc[:2].assign(date=["2030-01-01", written])  # the first matches no scene
    with pytest.warns(XcalvingWarning, match="2030-01-01"):
        (scene,) = apply_labels(read_scenes(scenes), lines)
    assert scene.date == day


@pytest.mark.parametrize("written, readings", [
    ("01/02/2019", "2019-02-01 or 2019-01-02"), ("05.03.2019", "2019-03-05 or 2019-05-03"),
    ("01/02/19", "a two-digit year")])
def test_a_date_that_reads_two_ways_is_refused_with_the_iso_form(cube, tmp_path, written,
                                                                 readings):
    from xcalving.adapt.labels import apply_labels
    from xcalving.adapt.sources import read_scenes
    from xcalving.errors import InputError

    scenes, lines = _geotiffs(tmp_path, cube)
    lines = lines.assign(date=[written] + list(lines["date"][1:]))
    with pytest.raises(InputError, match=re.escape(f"{written!r}") + ".*" + readings
                       + ".*YYYY-MM-DD"):
        apply_labels(read_scenes(scenes), lines)


def test_day_first_and_month_first_dates_in_one_column_are_refused(cube, tmp_path):
    from xcalving.adapt.labels import apply_labels
    from xcalving.adapt.sources import read_scenes
    from xcalving.errors import InputError

    scenes, lines = _geotiffs(tmp_path, cube)
    lines = lines.assign(date=["13/01/2019", "01/25/2019", "2019-01-01"])
    with pytest.raises(InputError, match=r"day first.*'13/01/2019'.*month first.*'01/25/2019'"):
        apply_labels(read_scenes(scenes), lines)


def test_out_may_never_lie_inside_the_installed_package(base, cube, tmp_path):
    import os

    import xcalving
    from xcalving.errors import UnsafeTargetError

    package = Path(xcalving.__file__).resolve().parent
    link = tmp_path / "link"
    link.symlink_to(package / "data", target_is_directory=True)
    targets = [package / "mine.safetensors", link / "mine.safetensors",
               Path(os.path.relpath(package, Path.cwd())) / "x.safetensors"]
    try:
        for out in targets:
            for overwrite in (False, True):
                with pytest.raises(UnsafeTargetError,
                                   match=r"out: .* inside the installed xcalving"):
                    _finetune(base, cube[0], out, overwrite=overwrite)
    finally:  # were the rule ever broken, leave no file in the package
        written = [p for p in (package / "mine.safetensors", package / "data" / "mine.safetensors",
                               package / "x.safetensors") if p.exists()]
        for path in written:
            path.unlink()
    assert not written


# --- the command line ----------------------------------------------------------------------------
def _cli(argv: list[str]) -> int:
    from xcalving.cli.finetune import add_finetune

    parser = argparse.ArgumentParser(prog="xcalving")
    add_finetune(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.run(args))


def test_cli(base, caffe_tree, tmp_path, capsys):
    out = tmp_path / "cli.safetensors"
    code = _cli(["finetune", str(base), str(caffe_tree), "--out", str(out), "--max-steps", "1",
                 "--batch-size", "1", "--caffe-spacing", "unknown", "--no-score"])
    assert code == 0 and out.is_file()
    text = capsys.readouterr().out
    assert "Fine-tuned from `base.safetensors` on 3 labelled scenes" in text
    assert "Scores not computed: score=False" in text
    from xcalving.adapt import finetune_card

    assert finetune_card(out) in text
    from xcalving.cli import main

    assert main(["weights", str(out)]) == 0  # the card is read back from the file
    assert capsys.readouterr().out == finetune_card(out)
    assert main(["weights", str(base)]) == 1  # not a fine-tuned file: one clear line
    assert "is not a fine-tuned weights file" in capsys.readouterr().err


def test_cli_geotiff_list_with_labels(base, cube, tmp_path):
    scenes, lines = _geotiffs(tmp_path, cube)
    lines.to_file(tmp_path / "labels.gpkg")
    files = sorted(str(p) for p in tmp_path.glob("S1_*.tif"))
    code = _cli(["finetune", str(base), *files, "--labels", str(tmp_path / "labels.gpkg"),
                 "--out", str(tmp_path / "cli.safetensors"), "--max-steps", "1", "--no-score"])
    assert code == 0


# --- bad inputs: the matrix's own rows (tests/whole/test_bad_inputs.py) -------------------------
CASES = bad_inputs_finetune.cases(Case)


def test_enough_bad_input_rows():
    assert len(CASES) >= 6 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    import builtins

    import xcalving.errors as errors

    expected = getattr(errors, case.error, None) or getattr(builtins, case.error)
    with pytest.warns() if case.id == "finetune-no-labelled-scene" else _nothing():
        with pytest.raises(expected, match=case.match) as info:
            case.run(tmp_path)
    assert isinstance(info.value, getattr(builtins, case.builtin))
    assert not (tmp_path / "out.safetensors").exists() or case.id == "finetune-out-exists"
    assert re.search(case.match, str(info.value))


class _nothing:  # noqa: N801  (a context manager used like a function)
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_card_of_plain_weights_is_refused():
    from xcalving.adapt import finetune_card
    from xcalving.errors import InputError
    from xcalving.model.registry import REGISTRY

    with pytest.raises(InputError, match="not a fine-tuned weights file"):
        finetune_card(REGISTRY["demo"].path)
