"""GPU: predict under dask-cuda's LocalCUDACluster agrees with the CPU within bf16 tolerance.

Skipped where torch sees no CUDA GPU (see conftest.py). benchmarks/README.md records when and on
which GPU it last ran.
"""

import numpy as np
import pytest
import torch

import xcalving
from xcalving.model import ASPPUNet

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return ASPPUNet(width=8).eval()


def test_local_cuda_cluster_matches_cpu(net, small_cube, tmp_path):
    dask_cuda = pytest.importorskip("dask_cuda", reason="pip install 'xcalving[cuda]'")
    from distributed import Client

    cube, _ = small_cube
    store = xcalving.write_cube(cube, tmp_path / "c.zarr")
    cpu = xcalving.open_cube(store).calving.predict(net, tile=64, overlap=16,
                                                    device="cpu").compute()
    with dask_cuda.LocalCUDACluster(n_workers=1) as cluster, Client(cluster) as client:
        gpu = xcalving.open_cube(store).calving.predict(net, tile=64, overlap=16).compute()
        devices = client.run(lambda: torch.cuda.get_device_name(0))
    diff = np.abs(gpu.front_probability.values - cpu.front_probability.values)
    agree = (gpu.zones.values == cpu.zones.values).mean()
    print(f"GPU: {devices}; |bf16 - cpu| max {np.nanmax(diff):.2e}, mean {np.nanmean(diff):.2e}; "
          f"zones agree {agree:.4f}")
    assert np.nanmax(diff) < 0.05  # bf16 keeps ~3 significant digits
    assert np.nanmean(diff) < 0.005
    assert agree > 0.98


def test_cuda_inference_in_this_process_fp32_matches_cpu(net, small_cube):
    cube, _ = small_cube
    cpu = cube.sar.calving.predict(net, tile=64, overlap=16, device="cpu").compute()
    gpu = cube.sar.calving.predict(net, tile=64, overlap=16, device="cuda",
                                   precision="fp32").compute()
    diff = np.abs(gpu.front_probability.values - cpu.front_probability.values)
    print(f"|cuda fp32 - cpu| max {np.nanmax(diff):.2e}, mean {np.nanmean(diff):.2e} "
          f"(cudnn.allow_tf32={torch.backends.cudnn.allow_tf32})")
    np.testing.assert_allclose(gpu.front_probability.values, cpu.front_probability.values,
                               atol=1e-3)


def test_resampled_prediction_on_cuda_matches_cpu(net):
    """resolution= on CUDA (resampling on the host, blending on the GPU) agrees with the CPU."""
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(2, shape=(96, 96), resolution=40.0, seed=5)
    sar = cube.sar.chunk({"time": 1})
    kwargs = {"tile": 64, "overlap": 16, "resolution": 20.0}
    cpu = sar.calving.predict(net, device="cpu", **kwargs).compute()
    gpu = sar.calving.predict(net, device="cuda", precision="fp32", **kwargs).compute()
    assert gpu.attrs["resolution"] == 20.0
    diff = np.abs(gpu.front_probability.values - cpu.front_probability.values)
    print(f"resolution=20 on a 40 m cube: |cuda fp32 - cpu| max {np.nanmax(diff):.2e}")
    np.testing.assert_array_equal(np.isnan(gpu.front_probability.values),
                                  np.isnan(cpu.front_probability.values))
    assert np.nanmax(diff) < 1e-3
