import os

import pytest

# Tests run on 2 cores: keep torch from fighting pytest (and dask) for them.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def small_cube():
    from xcalving.data.synthetic import glacier_cube

    return glacier_cube(3, shape=(96, 128), resolution=25.0, seed=4)


@pytest.fixture(scope="module")
def net():
    """A tiny ASPPUNet (width 4) in eval mode, the same weights in every module (seed 0)."""
    import torch

    from xcalving.model import ASPPUNet

    torch.manual_seed(0)
    return ASPPUNet(width=4).eval()
