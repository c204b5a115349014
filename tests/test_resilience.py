"""Failures lose nothing: a worker killed in the middle of predict(...).to_zarr(...)."""

import os
import time

import numpy as np
import pytest
import torch
from torch import nn

import xcalving


class SlowPointwise(nn.Module):
    """A pointwise 'network' that takes its time, so that a worker can die mid-run."""

    def forward(self, x):
        time.sleep(0.15)
        return {"front": x, "zones": torch.cat([x, -x, 2 * x, 0 * x], dim=1)}


@pytest.mark.slow
def test_killing_a_worker_mid_write_changes_nothing(small_cube, tmp_path):
    from distributed import Client, LocalCluster
    from distributed.comm.core import CommClosedError

    cube, _ = small_cube
    store = xcalving.write_cube(cube.chunk({"time": 1}), tmp_path / "cube.zarr")
    undisturbed = xcalving.open_cube(store).sar.calving.predict(
        SlowPointwise(), tile=32, overlap=8, scaling="none").compute()
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        pred = xcalving.open_cube(store).sar.calving.predict(SlowPointwise(), tile=32, overlap=8,
                                                             scaling="none")
        job = client.compute(pred.to_zarr(tmp_path / "pred.zarr", consolidated=False,
                                          zarr_format=3, compute=False))
        deadline = time.time() + 60
        while not any(client.processing().values()) and time.time() < deadline:
            time.sleep(0.05)
        assert not job.done(), "the run ended before a worker could be killed"
        victim = next(w for w, tasks in client.processing().items() if tasks)
        with pytest.raises(CommClosedError):  # the worker dies before it can answer
            client.run(os._exit, 1, workers=[victim])  # ... and its nanny starts a new one
        job.result(timeout=120)
        assert victim not in client.scheduler_info()["workers"]
    result = xcalving.open_cube(tmp_path / "pred.zarr")
    for var in ("front_probability", "zone_probability", "zones"):
        np.testing.assert_array_equal(result[var].values, undisturbed[var].values)
