import os
import sys
from pathlib import Path

import pytest

# The tests mirror the layout (tests/<wing>/test_<module>.py); some import each other's helpers
# by module name (the bad-input matrix, the contract's faulty modules), so every folder is on the
# path, as tests/ itself is for the shared helpers (bad_inputs_*.py, counting.py).
sys.path[:0] = [str(p) for p in sorted(Path(__file__).parent.iterdir())
                if p.is_dir() and not p.name.startswith((".", "_"))]

# Tests run on 2 cores: keep torch from fighting pytest (and dask) for them.
os.environ.setdefault("OMP_NUM_THREADS", "1")


#: Suites that run whole programs (notebooks, the docs build, the user guide, the CLI's examples,
#: fuzzing, killed workers, timings): all ``slow``, so ``make test-fast`` (``-m "not gpu and not
#: slow"``) is the quick half for inner-loop work and ``make test`` runs everything.
SLOW_FILES = {"test_examples.py", "test_docs.py", "test_user_guide.py", "test_cli_examples.py",
              "test_fuzz.py", "test_resilience.py", "test_predict_perf.py", "test_bad_inputs.py",
              "test_search.py", "test_finetune.py"}


def pytest_collection_modifyitems(config, items):
    import torch

    for item in items:
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
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
