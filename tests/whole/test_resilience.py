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
    # float32 storage: the store must hold exactly what memory does
    undisturbed = xcalving.open_cube(store).sar.calving.predict(
        SlowPointwise(), tile=32, overlap=8, scaling="none", dtype="float32").compute()
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        pred = xcalving.open_cube(store).sar.calving.predict(SlowPointwise(), tile=32, overlap=8,
                                                             scaling="none", dtype="float32")
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
    for var in undisturbed.data_vars:
        np.testing.assert_array_equal(result[var].values, undisturbed[var].values)


class Pointwise(nn.Module):
    """A stand-in network that costs next to nothing: the logits are the input, not copied."""

    def forward(self, x):
        return {"front": x, "zones": x.expand(-1, 4, -1, -1)}  # a view: no 4-channel copy


@pytest.mark.slow
def test_a_cube_larger_than_worker_memory_streams_through(tmp_path):
    """A lazy cube 2.5x a worker's memory limit is predicted to Zarr; the worker never restarts.

    One worker process (two threads) with a 896 MiB limit: Dask pauses it at 80 % and its nanny
    kills and restarts it at 95 %. Spilling to disk is switched off, so nothing but predict's
    streaming (each block read, predicted and written, then dropped) can keep memory down. The
    cube, 2.25 GiB of float32 made lazily block by block (about 12 GiB of outputs), could never be
    held at once. The limit sits just above what an idle worker with torch loaded needs (about
    400 MiB) plus two blocks in flight, so the cube need not be large to dwarf it.
    """
    import dask
    import dask.array as dsa
    import xarray as xr
    from distributed import Client, LocalCluster

    limit = 896 * 2**20
    scenes, side = 576, 1024
    data = dsa.full((scenes, side, side), -12.0, dtype=np.float32, chunks=(1, side, side))
    data = data + dsa.arange(scenes, chunks=1, dtype=np.float32)[:, None, None] * 0.01
    sar = xr.DataArray(data, dims=("time", "y", "x"), attrs={"units": "dB"})
    assert sar.nbytes >= 2.5 * limit
    no_spill = {"distributed.worker.memory.target": False,
                "distributed.worker.memory.spill": False}
    with dask.config.set(no_spill), LocalCluster(
            n_workers=1, threads_per_worker=2, memory_limit=limit,
            dashboard_address=None) as cluster, Client(cluster) as client:
        before = client.run(os.getpid)
        pred = xcalving.predict(sar, Pointwise(), tile=side, overlap=0, batch_size=1)
        pred.to_zarr(tmp_path / "pred.zarr", consolidated=False, zarr_format=3)
        assert client.run(os.getpid) == before  # the same worker process did all the work
        # the worker's own RSS samples (every 0.5 s); ru_maxrss would count the forked parent
        peak = max(client.run(lambda dask_worker: max(dask_worker.monitor.quantities["memory"]))
                   .values())
        samples = sum(client.run(lambda dask_worker: len(dask_worker.monitor.quantities["memory"]))
                      .values())
        logs = [line for source in (client.get_worker_logs(),
                                    client.get_worker_logs(nanny=True))
                for lines in source.values() for _, line in lines]
    print(f"worker peak RSS {peak / 2**20:.0f} MiB of a {limit / 2**20:.0f} MiB limit "
          f"({samples} samples)")
    assert peak < 0.8 * limit  # never reached the pause threshold
    assert not [line for line in logs if "paus" in line.lower() or "restart" in line.lower()
                or "exceeded" in line.lower()], logs
    out = xcalving.open_cube(tmp_path / "pred.zarr")
    assert out.front_probability.shape == (scenes, side, side)
    first, last = (out.front_probability.isel(time=t).values for t in (0, -1))
    assert np.allclose(last, last[0, 0]) and 0 < first[0, 0] < last[0, 0] < 1


@pytest.mark.slow
def test_killing_xcalving_predict_then_resume_equals_an_uninterrupted_run(tmp_path):
    """A hard stop (SIGKILL) of `xcalving predict` partway; `--resume` finishes the store.

    Zarr writes each chunk file atomically (a temporary file renamed into place), so a killed
    run leaves whole chunks or none; --resume computes only the blocks with a chunk missing.
    """
    import signal
    import subprocess
    import sys

    from xcalving.cli import main
    from xcalving.data.synthetic import glacier_cube
    from xcalving.model import ASPPUNet, save_model

    scenes = 16
    cube, _ = glacier_cube(scenes, shape=(256, 256), seed=9)
    store = str(xcalving.write_cube(cube[["sar"]].chunk({"time": 1}), tmp_path / "cube.zarr"))
    torch.manual_seed(0)
    weights = str(save_model(ASPPUNet(width=16), tmp_path / "net.safetensors"))
    common = ["--model", weights, "--tile", "128", "--overlap", "32"]
    part, whole = tmp_path / "part.zarr", tmp_path / "whole.zarr"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "xcalving.cli", "predict", store, "--out",
                             str(part), *common], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    # the run fills a resumable sibling, moved to part.zarr only when complete
    chunks = tmp_path / ".part.zarr.xcalving-partial" / "front_probability" / "c"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if chunks.exists() and sum(1 for p in chunks.rglob("*") if p.is_file()) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be stopped"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sum(1 for p in chunks.rglob("*") if p.is_file())
    print(f"killed after {done} of {scenes} blocks")
    assert 3 <= done < scenes
    assert not part.exists()  # an unfinished prediction is never where a finished one goes
    assert main(["predict", store, "--out", str(part), *common, "--resume"]) == 0
    assert main(["predict", store, "--out", str(whole), *common]) == 0
    a, b = xcalving.open_cube(whole), xcalving.open_cube(part)
    for var in a.data_vars:
        np.testing.assert_array_equal(a[var].values, b[var].values)
    assert b.rio.crs == a.rio.crs
    # and without --resume or --overwrite the finished store is never touched
    assert main(["predict", store, "--out", str(part), *common]) == 1
