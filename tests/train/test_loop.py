"""Training: end to end on real shipped scenes, resume after a kill, early stopping, DDP."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import xcalving
from xcalving.data.caffe import caffe_to_zarr, shipped_scenes
from xcalving.errors import InputError
from xcalving.model import load_model, read_metadata
from xcalving.testing import write_fixture_tree
from xcalving.train import TrainConfig, train
from xcalving.train.losses import dice_loss


@pytest.fixture(scope="module")
def fixture_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("caffe")
    data_raw = write_fixture_tree(root, n_train=10, shape=(64, 80), seed=3)
    return caffe_to_zarr(data_raw, root / "patches.zarr", window=64, progress=False)


def history(out):
    with open(Path(out) / "history.csv") as fh:
        return list(csv.DictReader(fh))


def test_dice_loss_known_values():
    target = torch.zeros(1, 1, 4, 4)
    target[..., :2, :] = 1
    perfect = torch.where(target > 0, 20.0, -20.0)
    assert float(dice_loss(perfect, target, eps=0)) == pytest.approx(0, abs=1e-6)
    assert float(dice_loss(-perfect, target, eps=0)) == pytest.approx(1, abs=1e-6)


def test_real_scenes_convert_and_train_end_to_end(tmp_path):
    store = caffe_to_zarr(shipped_scenes(), tmp_path / "real.zarr", window=128,
                          pixel_spacing=None, progress=False)
    config = TrainConfig(store=store, out=str(tmp_path / "run"),
                         train_glaciers=["DBE", "JAC", "SI"],
                         val_glaciers=["Jorum"], width=2, aspp_rates=(2,), epochs=2,
                         batch_size=8)
    started = time.perf_counter()
    summary = train(config)
    assert time.perf_counter() - started < 60
    rows = history(config.out)
    assert [int(r["epoch"]) for r in rows] == [1, 2] and summary["epochs"] == 2
    for key in ("loss", "val_loss", "bbox_accuracy", "zone_iou"):
        assert all(np.isfinite(float(r[key])) for r in rows)
    assert (tmp_path / "run" / "curves.png").read_bytes()[:4] == b"\x89PNG"
    best = tmp_path / "run" / "best.safetensors"
    meta = read_metadata(best)
    assert "xcalving.scaling" in meta and "training" in meta
    net = load_model(best)
    assert net.xcalving_scaling.domain == "uint8"
    scene = xcalving.open_cube(store).sar.isel(sample=0).rename(None)
    pred = scene.calving.predict(net, tile=64, overlap=16).compute()
    assert pred.front_probability.shape == scene.shape
    assert summary["stopped"].startswith("epoch budget")


def test_resume_after_a_kill_continues_without_a_gap(fixture_store, tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "xcalving.cli", "train", fixture_store, "--out", str(out),
            "--train-glaciers", "DBE", "JAC", "SI", "Crane", "--val-glaciers", "Jorum",
            "--width", "2", "--epochs", "4", "--batch-size", "4", "--patience", "10"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # history.csv is the last file an epoch writes (after the weights and the resume state)
    finished_epoch = out / "history.csv"
    deadline = time.time() + 120
    while not finished_epoch.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(history(out))
    assert 1 <= done_before < 4, "the kill should land mid-run"
    with pytest.raises(InputError, match="resume"):
        train(TrainConfig(store=fixture_store, out=str(out), width=2, epochs=4))
    finished = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert [int(r["epoch"]) for r in history(out)] == [1, 2, 3, 4]
    assert "stopped after 4 epochs" in finished.stdout
    # a finished run resumed with a larger budget goes on where it stopped
    longer = [a if a != "4" else "5" for a in args]
    subprocess.run([*longer, "--resume"], env=env, check=True, capture_output=True)
    assert [int(r["epoch"]) for r in history(out)] == [1, 2, 3, 4, 5]


def test_early_stopping_on_validation_loss(fixture_store, tmp_path):
    config = TrainConfig(store=fixture_store, out=str(tmp_path / "run"),
                         train_glaciers=["DBE", "JAC"], val_glaciers=["Jorum"], width=2,
                         epochs=20, batch_size=4, lr=1e-12, patience=2, augment=False)
    summary = train(config)
    assert summary["epochs"] == 3 and summary["best_epoch"] == 1
    assert summary["stopped"].startswith("early stopping")
    # DBE and JAC scenes are TerraSAR-X at 7 and 6 m: no one spacing, none recorded
    assert "xcalving.pixel_spacing" not in read_metadata(tmp_path / "run" / "best.safetensors")


def test_weights_record_the_training_spacing(fixture_store, tmp_path):
    """Scenes of one spacing (DBE: "7 m", really 20 m / 3) → the weights state it."""
    from xcalving.model.weights import model_spec

    config = TrainConfig(store=fixture_store, out=str(tmp_path / "run"), train_glaciers=["DBE"],
                         val_glaciers=["Jorum"], width=2, epochs=1, batch_size=4)
    train(config)
    best = tmp_path / "run" / "best.safetensors"
    assert float(read_metadata(best)["xcalving.pixel_spacing"]) == pytest.approx(20 / 3)
    assert model_spec(str(best)).pixel_spacing == pytest.approx(20 / 3)
    assert load_model(best).xcalving_pixel_spacing == pytest.approx(20 / 3)


def test_bad_configuration_is_refused(fixture_store, tmp_path):
    with pytest.raises(InputError, match="lr"):
        TrainConfig(store=fixture_store, out=str(tmp_path), lr=0)
    with pytest.raises(InputError, match="batch_size"):
        TrainConfig(store=fixture_store, out=str(tmp_path), batch_size=0)
    with pytest.raises(InputError, match="glaciers"):
        train(TrainConfig(store=fixture_store, out=str(tmp_path / "r"), val_glaciers=["Nowhere"],
                          width=2, epochs=1))


@pytest.mark.slow
def test_two_process_ddp_with_gloo(fixture_store, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_port=29517", "-m", "xcalving.cli", "train", fixture_store, "--out", str(out),
           "--train-glaciers", "DBE", "JAC", "SI", "Crane", "--val-glaciers", "Jorum", "--width",
           "2", "--epochs", "2", "--batch-size", "2", "--device", "cpu"]
    result = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [int(r["epoch"]) for r in history(out)] == [1, 2]
    assert result.stdout.count("stopped after 2 epochs") == 1  # only rank 0 reports
    assert load_model(out / "best.safetensors").get_config()["width"] == 2


def test_warm_start_begins_from_the_init_weights(fixture_store, tmp_path):
    first = TrainConfig(store=fixture_store, out=str(tmp_path / "a"), width=2, aspp_rates=(2,),
                        epochs=1, batch_size=4, seed=1)
    train(first)
    start = tmp_path / "a" / "best.safetensors"
    # zero learning rate: a warm-started run keeps the init weights exactly, a fresh one does not
    warm = TrainConfig(store=fixture_store, out=str(tmp_path / "b"), width=2, aspp_rates=(2,),
                       epochs=1, batch_size=4, seed=2, lr=1e-30, init=str(start))
    train(warm)
    before, after = load_model(start).state_dict(), load_model(tmp_path / "b" / "best.safetensors")
    for key, value in after.state_dict().items():
        if "running" not in key and "num_batches" not in key:  # BatchNorm statistics move
            torch.testing.assert_close(value, before[key])
    with pytest.raises(InputError, match="init: .* width 4"):
        train(TrainConfig(store=fixture_store, out=str(tmp_path / "c"), width=4,
                          aspp_rates=(2,), epochs=1, init=str(start)))


def test_config_takes_the_aimed_augmentation_and_balance():
    from xcalving.train.config import TrainConfig

    config = TrainConfig(store="s", out="o", augment="aimed", balance=True)
    assert config.augment == "aimed" and config.balance
    with pytest.raises(InputError, match="augment must be one of"):
        TrainConfig(store="s", out="o", augment="strong")
