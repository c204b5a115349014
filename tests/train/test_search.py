"""xcalving tune: parallel trials on a LocalCluster, pruning, the best written, resume."""

import json

import pandas as pd
import pytest

from xcalving.data.caffe import caffe_to_zarr
from xcalving.errors import InputError
from xcalving.testing import write_fixture_tree
from xcalving.train import TrainConfig

optuna = pytest.importorskip("optuna", reason="pip install 'xcalving[tune]'")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("caffe")
    data_raw = write_fixture_tree(root, n_train=10, shape=(64, 80), seed=5)
    return caffe_to_zarr(data_raw, root / "patches.zarr", window=64, progress=False)


@pytest.mark.slow
def test_parallel_trials_pruning_best_and_resume(store, tmp_path):
    from distributed import Client, LocalCluster

    from xcalving.train import tune

    base = TrainConfig(store=store, out=str(tmp_path / "tune"), train_glaciers=["DBE", "JAC"],
                       val_glaciers=["Jorum"], width=2, aspp_rates=(2,), epochs=2,
                       augment=False)
    diverging = {"lr": 1e-2, "batch_size": 2}
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster):
        result = tune(base, n_trials=4, space={"lr": (1e-5, 1e-2), "batch_size": (2, 8)},
                      enqueue=[{"lr": 1e3, "batch_size": 2}, diverging])
        again = tune(base, n_trials=2, space={"lr": (1e-5, 1e-2), "batch_size": (2, 8)})
    assert result["trials"] == 4 and again["trials"] == 6  # resuming adds trials
    assert result["pruned"] >= 1  # lr = 1000 diverges and is pruned at its first epoch
    trials = pd.read_csv(tmp_path / "tune" / "trials.csv",
                         parse_dates=["datetime_start", "datetime_complete"])
    assert len(trials) == 6
    first = trials.iloc[:4].sort_values("datetime_start")
    overlaps = (first["datetime_start"].iloc[1:].to_numpy()
                < first["datetime_complete"].iloc[:-1].to_numpy())
    assert overlaps.any(), "trials should run in parallel on the two workers"
    best = json.loads((tmp_path / "tune" / "best.json").read_text())
    complete = trials[trials["state"] == "COMPLETE"]
    assert best["val_loss"] == pytest.approx(complete["value"].min())
    assert (tmp_path / "tune" / "search.png").read_bytes()[:4] == b"\x89PNG"


def test_tune_needs_a_cluster_and_a_valid_space(store, tmp_path):
    from xcalving.train import tune

    base = TrainConfig(store=store, out=str(tmp_path / "t"), width=2, epochs=1)
    with pytest.raises(InputError, match="space"):
        tune(base, space={"momentum": (0.1, 0.9)})
    with pytest.raises(InputError, match="Client"):
        tune(base, n_trials=1)


def test_cli_refuses_a_scheduler_and_workers_together(store, tmp_path, capsys):
    from xcalving.cli import main

    args = ["tune", store, "--out", str(tmp_path / "t"), "--workers", "2", "--scheduler",
            "tcp://127.0.0.1:1"]
    assert main(args) == 1
    assert "pass one" in capsys.readouterr().err
