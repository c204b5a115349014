#!/usr/bin/env bash
# The GPU checks of issue 3, as one script for a machine with a CUDA GPU (run from the repo root).
#
#   bash scripts/gpu_checks.sh [OUTDIR]
#
# Needs torch with CUDA plus the package's dependencies and the `cuda` extra (dask-cuda). Where
# the machine cannot install them, set XCALVING_SITE_TARBALL to a .tar.xz of an unpacked
# site-packages folder named `site` (wheels for the same Python); it is unpacked to /tmp and put on
# PYTHONPATH together with the repository. Writes, under OUTDIR (default gpu-checks/):
#   env.txt     GPU, driver and package versions
#   pytest.log  pytest -m gpu tests/test_predict_gpu.py (with the measured differences)
#   gpu.json    benchmarks/bench_predict.py --gpu: predict vs the xbatcher peer and bare forward
#   bench.log   that benchmark's progress lines
set -u
out=${1:-gpu-checks}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if [ -n "${XCALVING_SITE_TARBALL:-}" ]; then  # one or more, space-separated
    mkdir -p /tmp/xcalving-site
    for tarball in $XCALVING_SITE_TARBALL; do tar xJf "$tarball" -C /tmp/xcalving-site; done
    export PYTHONPATH="/tmp/xcalving-site/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
py=${PYTHON:-python3}
{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    "$py" - <<'PY'
import importlib
for name in ["torch", "numpy", "pandas", "xarray", "dask", "distributed", "dask_cuda", "zarr",
             "rioxarray", "geopandas", "xbatcher", "xcalving"]:
    try:
        mod = importlib.import_module(name)
        print(name, getattr(mod, "__version__", "?"))
    except Exception as exc:  # report and go on: the log says what is missing
        print(name, "FAILED:", type(exc).__name__, exc)
import torch
print("cuda", torch.version.cuda, torch.cuda.get_device_name(0), "bf16",
      torch.cuda.is_bf16_supported(), "allow_tf32", torch.backends.cudnn.allow_tf32)
PY
} >"$out/env.txt" 2>&1
cat "$out/env.txt"
timeout "${PYTEST_TIMEOUT:-240}" "$py" -m pytest -m gpu -s -p no:cacheprovider \
    tests/test_predict_gpu.py >"$out/pytest.log" 2>&1
echo "pytest exit $?" >>"$out/pytest.log"
tail -n 30 "$out/pytest.log"
timeout "${BENCH_TIMEOUT:-360}" "$py" benchmarks/bench_predict.py --gpu bf16 fp32 \
    >"$out/gpu.json" 2>"$out/bench.log"
echo "bench exit $?" >>"$out/bench.log"
grep -v "^$" "$out/bench.log" | tail -n 20
cat "$out/gpu.json"
