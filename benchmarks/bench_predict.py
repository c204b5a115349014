"""Throughput and memory of ``xcalving.predict``, every figure a ratio measured in one process.

The machine these run on is noisy, so no figure is an absolute time compared across runs: each
compares two things measured in the same process, back to back (``A, B, A``: the reference is
timed before and after the candidate and averaged, which cancels slow drifts of the machine).

* ``PredictVsBare``: ``predict`` + ``.compute()`` of a lazy Zarr cube against the bare forward
  pass of the same network over exactly the same windows in the same batches.
* ``Redundancy``: windows computed ÷ windows in the plan, for chunkings of a scene, before and
  after predict's own rechunking (cheap, deterministic).
* ``PredictVsPeer``: ``predict`` against the same job written by hand with xbatcher windows, a
  torch loop and an averaging accumulator.
* ``PeakMemory``: peak RSS of predict + ``to_zarr`` for a lazy cube 16x as large as another,
  each in a fresh subprocess, with a cheap stand-in network.
* ``PredictVsCopy``: the host side alone: ``predict`` with a network that costs nothing, written
  to Zarr, against a plain Zarr copy of the same lazy cube (interleaved, median of 5).

Run them with ``make bench ASV_ARGS="--bench bench_predict"``, or without asv with
``python benchmarks/bench_predict.py`` (prints every figure; ``--host`` prints the host-side
figure alone, as JSON).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

#: Predict's defaults, used by every benchmark here.
TILE, OVERLAP, BATCH = 512, 128, 8
#: The measured cube: (time, y, x) float32 dB, one Zarr chunk per scene.
N_TIMES, SCENE = 2, 2048
#: The long measurements take ~1 min each on 2 CPU cores; three of them make one figure.
TIMEOUT = 1800


def _log(message: str) -> None:
    print(f"[bench_predict] {message}", file=sys.stderr, flush=True)


def _cores() -> int:
    from dask.system import CPU_COUNT

    return int(CPU_COUNT)


# --- shared inputs -------------------------------------------------------------------------------
def make_cube(directory: str = ".") -> str:
    """Write the (2, 2048, 2048) synthetic dB cube, one chunk per scene; return its path.

    Used as ``setup_cache``: asv runs it once and the benchmarks run in the same directory.
    """
    import xcalving
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(N_TIMES, shape=(SCENE, SCENE), seed=0)
    sar = cube[["sar"]].chunk({"time": 1, "y": SCENE, "x": SCENE})
    return os.path.abspath(xcalving.write_cube(sar, os.path.join(directory, "cube.zarr"),
                                               mode="w"))


make_cube.timeout = 600  # type: ignore[attr-defined]


def _open(path: str) -> Any:
    import xcalving

    cube = xcalving.open_cube(path)
    assert cube.sar.chunks == ((1,) * N_TIMES, (SCENE,), (SCENE,)), cube.sar.chunks
    return cube


def _network() -> Any:
    import torch

    from xcalving.model.unet import ASPPUNet

    torch.manual_seed(0)
    return ASPPUNet().eval()  # the default network: width=32, 16.2 M parameters


def null_network() -> Any:
    """A stand-in network that costs next to nothing: the logits are the input itself.

    It meets predict's contract (``front`` (N, 1, H, W) and ``zones`` (N, 4, H, W) logits of
    the input's N, H and W), so everything predict does besides the network is measured.
    """
    import torch

    class NullNetwork(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"front": x, "zones": torch.cat([x, -x, 2 * x, 0 * x], 1)}

    return NullNetwork()


def _scaling(net: Any) -> Any:
    """The input scaling ``net`` was trained on, as predict reads it (once: it hashes weights)."""
    from xcalving.model.weights import model_spec

    return model_spec(net).scaling


def _network_input(values: np.ndarray, scaling: Any) -> np.ndarray:
    """What predict feeds the network: dB converted to the net's scaling, no data filled."""
    from xcalving.scaling import fill_value, to_network_input

    x = to_network_input(values, "db", scaling)
    return np.where(np.isnan(x), np.float32(fill_value(scaling)), x).astype(np.float32)


def _time_predict(sar: Any, net: Any, device: str = "auto", precision: str = "auto") -> float:
    """Seconds for ``predict`` + ``.compute()`` with the threaded scheduler (the default)."""
    import xcalving

    start = time.perf_counter()
    xcalving.predict(sar, net, tile=TILE, overlap=OVERLAP, batch_size=BATCH, device=device,
                     precision=precision).compute()
    return time.perf_counter() - start


def _autocast(device: str, precision: str) -> Any:
    """torch.autocast as predict uses it: bf16/fp16 on CUDA, nothing for fp32."""
    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device_type=device.split(":")[0], dtype=dtype or torch.float32,
                          enabled=dtype is not None)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _pool_torch_threads() -> dict[int, int]:
    """Torch threads of each thread of dask's default pool (torch threads are per thread)."""
    import dask

    def probe(_: int) -> tuple[int, int]:
        import threading

        import torch

        time.sleep(0.2)
        return threading.get_ident(), torch.get_num_threads()

    pairs = dask.compute(*[dask.delayed(probe)(i) for i in range(4 * _cores())])
    return dict(pairs)


def _sandwich(reference: Callable[[], float], candidate: Callable[[], float],
              names: tuple[str, str]) -> tuple[float, float]:
    """Time ``reference, candidate, reference``; return (mean reference s, candidate s)."""
    first = reference()
    _log(f"{names[0]}: {first:.1f} s")
    middle = candidate()
    _log(f"{names[1]}: {middle:.1f} s (torch threads in dask's pool: {_pool_torch_threads()})")
    last = reference()
    _log(f"{names[0]} again: {last:.1f} s")
    ref = (first + last) / 2
    _log(f"{names[1]} throughput / {names[0]} throughput = {ref / middle:.3f} "
         f"({names[0]} mean {ref:.1f} s, {names[1]} {middle:.1f} s)")
    return ref, middle


# --- 1. predict against the bare forward pass ----------------------------------------------------
def _bare_batches(values: np.ndarray, net: Any) -> list[Any]:
    """The windows of the plan as network input, in predict's order and batches.

    Predict computes one block per scene here (chunks (1, 2048, 2048)); within a block it walks
    window rows, then columns, and sends ``BATCH`` windows at a time (the last batch is short).
    """
    import torch

    from xcalving.windows import plan_windows

    plan = plan_windows(values.shape[-2:], TILE, OVERLAP, net.stride)
    batches, scaling = [], _scaling(net)
    for scene in values:
        x = _network_input(scene, scaling)
        windows = [x[y0:y0 + TILE, x0:x0 + TILE] for y0 in plan.starts_y for x0 in plan.starts_x]
        for i in range(0, len(windows), BATCH):
            batches.append(torch.from_numpy(np.stack(windows[i:i + BATCH])[:, None]).contiguous())
    return batches


def _bare_seconds(net: Any, batches: list[Any], device: str = "cpu",
                  precision: str = "fp32") -> float:
    """Seconds for ``net(x)`` over ``batches`` in one loop with torch's default threads.

    On a GPU the batches already lie on it and ``net`` is a copy there: the bare figure is the
    network alone, no host-device copy.
    """
    import torch

    torch.set_num_threads(_cores())  # the default; predict's workers may have lowered it
    start = time.perf_counter()
    with torch.inference_mode(), _autocast(device, precision):
        for x in batches:
            net(x)
    _sync(device)
    return time.perf_counter() - start


class PredictVsBare:
    """``predict`` throughput ÷ bare forward throughput over the same windows (goal >= 0.95).

    Cube (2, 2048, 2048) float32 dB in Zarr, chunks (1, 2048, 2048), opened lazily; the default
    ``ASPPUNet()`` (width 32) in eval mode; tile 512, overlap 128, batch 8 (predict's defaults):
    25 windows a scene, 50 in all, in batches of 8, 8, 8, 1 per scene. Predict runs two scenes
    in parallel on dask's two threads with one torch thread each; the bare loop runs one batch
    after another with torch's default two threads.
    """

    timeout = TIMEOUT
    rounds = 1
    repeat = 1
    number = 1
    setup_cache = staticmethod(make_cube)

    def setup(self, path: str) -> None:
        import torch

        self.cube = _open(path)
        self.net = _network()
        self.batches = _bare_batches(self.cube.sar.values, self.net)
        torch.set_num_threads(_cores())
        with torch.inference_mode():
            self.net(self.batches[-1])  # one window: first-call costs out of the way

    def track_throughput_ratio(self, path: str) -> float:
        bare, pred = _sandwich(lambda: _bare_seconds(self.net, self.batches),
                               lambda: _time_predict(self.cube.sar, self.net),
                               ("bare forward", "predict"))
        return bare / pred

    track_throughput_ratio.unit = "predict/bare throughput"  # type: ignore[attr-defined]


# --- 2. redundancy -------------------------------------------------------------------------------
class Redundancy:
    """Windows computed ÷ windows in the plan, for square chunks of a square scene.

    ``rechunked=False``: the chunks as given; ``True``: after predict's rechunking
    (:func:`xcalving.inference.spatial_chunks`), which is what predict computes.
    """

    params = [[2048, 8192], [256, 512, 1024, 2048], [False, True]]
    param_names = ["scene", "chunk", "rechunked"]
    rounds = 1

    def track_redundancy(self, scene: int, chunk: int, rechunked: bool) -> float:
        from xcalving.windows import redundancy

        chunks = _chunks(scene, chunk, rechunked)
        return redundancy((scene, scene), (chunks, chunks), TILE, OVERLAP)

    track_redundancy.unit = "windows computed / planned"  # type: ignore[attr-defined]

    def track_chunk(self, scene: int, chunk: int, rechunked: bool) -> float:
        return float(max(_chunks(scene, chunk, rechunked)))

    track_chunk.unit = "px (largest chunk)"  # type: ignore[attr-defined]


def _chunks(scene: int, chunk: int, rechunked: bool) -> tuple[int, ...]:
    from xcalving.inference import spatial_chunks

    chunks = (chunk,) * (scene // chunk)
    return spatial_chunks(chunks, scene, TILE, OVERLAP) if rechunked else chunks


# --- 3. predict against the same job written with xbatcher ---------------------------------------
def _peer_seconds(ds: Any, net: Any, device: str = "cpu",
                  precision: str = "fp32") -> tuple[float, np.ndarray]:
    """The job as a user writes it today: xbatcher windows, a torch loop, averaged overlaps.

    Same network, tile, overlap and batch size as predict; the overlaps are averaged (equal
    weights) into a numpy accumulator with a count array. On a GPU, ``net`` lies there, each
    batch is copied to it and the probabilities back, with predict's autocast. Returns
    (seconds, front probability).
    """
    import torch
    import xbatcher

    torch.set_num_threads(_cores())
    scaling = _scaling(net)
    start = time.perf_counter()
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    row = {v: i for i, v in enumerate(ds["y"].values.tolist())}
    col = {v: i for i, v in enumerate(ds["x"].values.tolist())}
    total = np.zeros((ds.sizes["time"], 5, ny, nx), np.float32)
    count = np.zeros((ny, nx), np.float32)
    generator = xbatcher.BatchGenerator(ds[["sar"]], input_dims={"y": TILE, "x": TILE},
                                        input_overlap={"y": OVERLAP, "x": OVERLAP})
    pending: list[tuple[int, int, int, np.ndarray]] = []

    def flush() -> None:
        x = torch.from_numpy(np.stack([w for *_, w in pending])[:, None]).to(device)
        with torch.inference_mode(), _autocast(device, precision):
            out = net(x)
        front, zones = out["front"].float(), out["zones"].float()
        probs = torch.cat([torch.sigmoid(front), torch.softmax(zones, 1)], 1).cpu()
        for (t, r, c, _), p in zip(pending, probs.numpy(), strict=True):
            total[t, :, r:r + TILE, c:c + TILE] += p
        pending.clear()

    for patch in generator:
        r, c = row[patch["y"].values[0].item()], col[patch["x"].values[0].item()]
        count[r:r + TILE, c:c + TILE] += 1
        values = _network_input(patch["sar"].values, scaling)
        for t in range(values.shape[0]):
            pending.append((t, r, c, values[t]))
            if len(pending) == BATCH:
                flush()
    if pending:
        flush()
    with np.errstate(invalid="ignore", divide="ignore"):
        front = total[:, 0] / count  # pixels xbatcher leaves uncovered come out NaN
    return time.perf_counter() - start, front


class PredictVsPeer:
    """``predict`` throughput ÷ the xbatcher + torch loop's throughput (expect ~1 on CPU).

    Same cube, network, tile 512, overlap 128 and batch 8 as ``PredictVsBare``. For 2048 pixels,
    tile 512 and overlap 128 xbatcher's windows end exactly at the edge (2048 = 512 + 4 * 384),
    so both compute the same 50 windows.
    """

    timeout = TIMEOUT
    rounds = 1
    repeat = 1
    number = 1
    setup_cache = staticmethod(make_cube)

    def setup(self, path: str) -> None:
        import torch

        self.cube = _open(path)
        self.net = _network()
        torch.set_num_threads(_cores())
        with torch.inference_mode():
            self.net(torch.zeros(1, 1, TILE, TILE))

    def track_throughput_ratio(self, path: str) -> float:
        peer, pred = _sandwich(lambda: _peer_seconds(self.cube, self.net)[0],
                               lambda: _time_predict(self.cube.sar, self.net),
                               ("xbatcher peer", "predict"))
        return peer / pred

    track_throughput_ratio.unit = "predict/peer throughput"  # type: ignore[attr-defined]


# --- 3b. on a GPU: predict against the peer and the bare forward pass ---------------------------
#: Scenes of the GPU cube: 16 x 25 windows, so one figure is seconds of GPU work, not a blip.
GPU_TIMES = 16


def make_gpu_cube(directory: str = ".") -> str:
    """Write the (16, 2048, 2048) synthetic dB cube for the GPU figures; return its path."""
    import xcalving
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(GPU_TIMES, shape=(SCENE, SCENE), seed=0)
    sar = cube[["sar"]].chunk({"time": 1, "y": SCENE, "x": SCENE})
    return os.path.abspath(xcalving.write_cube(sar, os.path.join(directory, "gpu_cube.zarr"),
                                               mode="w"))


make_gpu_cube.timeout = 600  # type: ignore[attr-defined]


def gpu_figures(path: str, precision: str, device: str = "cuda") -> dict[str, float]:
    """Seconds for the peer, predict and the bare forward pass on CUDA, and their ratios.

    Each side gets a warm-up (cuDNN's algorithm choice, predict's model cache) before the timed
    ``peer, predict, peer`` and ``bare, predict, bare`` sandwiches. The peer and the bare loop use
    the same network's copy on the GPU with predict's autocast for ``precision``.
    """
    import copy

    import xcalving

    cube = xcalving.open_cube(path)
    net = _network()
    on_gpu = copy.deepcopy(net).to(device).eval()
    batches = [b.to(device) for b in _bare_batches(cube.sar.values, net)]
    first = cube.isel(time=slice(0, 1))
    _peer_seconds(first, on_gpu, device, precision)
    _time_predict(first.sar, net, device, precision)
    _bare_seconds(on_gpu, batches[:2], device, precision)
    peer, pred = _sandwich(lambda: _peer_seconds(cube, on_gpu, device, precision)[0],
                           lambda: _time_predict(cube.sar, net, device, precision),
                           (f"xbatcher peer on {device}, {precision}",
                            f"predict on {device}, {precision}"))
    bare, pred2 = _sandwich(lambda: _bare_seconds(on_gpu, batches, device, precision),
                            lambda: _time_predict(cube.sar, net, device, precision),
                            (f"bare forward on {device}, {precision}",
                             f"predict on {device}, {precision}"))
    windows = sum(len(b) for b in batches)
    return {"peer_s": peer, "predict_s": pred, "bare_s": bare, "predict2_s": pred2,
            "windows": windows, "predict_windows_per_s": windows / min(pred, pred2),
            "predict_over_peer": peer / pred, "predict_over_bare": bare / pred2}


class PredictOnGPU:
    """On CUDA: ``predict`` throughput ÷ the xbatcher peer's (goal >= 2) and ÷ bare forward.

    Cube (16, 2048, 2048) float32 dB in Zarr, chunks (1, 2048, 2048); the default ``ASPPUNet()``;
    tile 512, overlap 128, batch 8; fp32 and bf16 (predict's default on CUDA) for both sides.
    Skipped where torch sees no CUDA GPU.
    """

    timeout = TIMEOUT
    rounds = 1
    repeat = 1
    number = 1
    params = [["fp32", "bf16"]]
    param_names = ["precision"]
    setup_cache = staticmethod(make_gpu_cube)

    def setup(self, path: str, precision: str) -> None:
        import torch

        if not torch.cuda.is_available():
            raise NotImplementedError("needs a CUDA GPU")  # asv: skipped
        self.figures = gpu_figures(path, precision)

    def track_predict_over_peer(self, path: str, precision: str) -> float:
        return self.figures["predict_over_peer"]

    track_predict_over_peer.unit = "predict/peer throughput"  # type: ignore[attr-defined]

    def track_predict_over_bare(self, path: str, precision: str) -> float:
        return self.figures["predict_over_bare"]

    track_predict_over_bare.unit = "predict/bare throughput"  # type: ignore[attr-defined]


# --- 4. peak memory ------------------------------------------------------------------------------
#: (time, y, x) of the small and the large lazy cube: 16x the pixels, the same chunks (1, y, x).
#: The small one has 4 scenes, not 1 or 2: with fewer blocks than dask's threads can pipeline
#: (one block written while the next two compute) the peak is ~10 % lower, and the ratio would
#: measure that start-up, not growth with the cube (peaks for 2..64 scenes: benchmarks/README.md).
MEMORY_SHAPES = {"small": (4, SCENE, SCENE), "large": (64, SCENE, SCENE)}


def memory_child(shape: tuple[int, int, int], store: str) -> dict[str, float]:
    """Run in a fresh process: predict a lazy random cube with a pointwise net into Zarr.

    Returns, in MiB: the peak RSS once the imports are done and the graph is built, the peak RSS
    at the end, and the median of the RSS sampled every 0.1 s while the store is written.
    """
    import resource
    import threading

    import dask.array as dsa
    import xarray as xr

    import xcalving

    def peak_mib() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux

    page_mib = os.sysconf("SC_PAGE_SIZE") / 2**20
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            with open("/proc/self/statm") as fh:
                samples.append(int(fh.read().split()[1]) * page_mib)

    data = dsa.random.default_rng(0).uniform(-25.0, 5.0, size=shape, chunks=(1, *shape[1:]))
    sar = xr.DataArray(data.astype(np.float32), dims=("time", "y", "x"), name="sar",
                       attrs={"units": "dB"})
    out = xcalving.predict(sar, null_network(), tile=TILE, overlap=OVERLAP, batch_size=BATCH)
    before = peak_mib()
    sampler = threading.Thread(target=sample, daemon=True)
    start = time.perf_counter()
    sampler.start()
    out.to_zarr(store, mode="w", consolidated=False)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    return {"imports_mib": before, "peak_mib": peak_mib(),
            "median_mib": float(np.median(samples)) if samples else float("nan"),
            "seconds": seconds, "input_mib": data.nbytes / 2**20}


def measure_memory(name: str) -> dict[str, float]:
    """Peak RSS of :func:`memory_child` for ``MEMORY_SHAPES[name]``, in a fresh subprocess."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [sys.executable, os.path.abspath(__file__), "--memory-child",
                json.dumps(MEMORY_SHAPES[name]), os.path.join(tmp, "out.zarr")]
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"memory child failed:\n{done.stderr[-4000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
    _log(f"memory, {name} cube {MEMORY_SHAPES[name]}: {result}")
    return result


def measure_memory_pair() -> dict[str, dict[str, float]]:
    """The small and then the large cube, each in a fresh subprocess, back to back."""
    return {name: measure_memory(name) for name in ("small", "large")}


measure_memory_pair.timeout = TIMEOUT  # type: ignore[attr-defined]


class PeakMemory:
    """Peak RSS of predict + ``to_zarr``: 64 scenes ÷ 4 scenes of 2048 x 2048 (goal <= 1.10).

    A lazy ``dask.array.random`` cube (nothing of it in memory), chunks (1, 2048, 2048), a
    pointwise stand-in network, the output written to a Zarr store; each size in a fresh
    subprocess, measured back to back (in ``setup_cache``, once; the tracks read the figures).
    The peak is the largest of many coincidences of the blocks in flight, so a 16x longer run
    tends to see a higher one; the median RSS while writing shows whether memory drifts up.
    """

    timeout = TIMEOUT
    rounds = 1
    repeat = 1
    number = 1
    setup_cache = staticmethod(measure_memory_pair)

    def track_peak_rss_ratio(self, m: dict[str, dict[str, float]]) -> float:
        return m["large"]["peak_mib"] / m["small"]["peak_mib"]

    track_peak_rss_ratio.unit = "peak RSS large/small"  # type: ignore[attr-defined]

    def track_median_rss_ratio(self, m: dict[str, dict[str, float]]) -> float:
        return m["large"]["median_mib"] / m["small"]["median_mib"]

    track_median_rss_ratio.unit = "median RSS large/small"  # type: ignore[attr-defined]

    def track_peak_rss_mib(self, m: dict[str, dict[str, float]], size: str) -> float:
        return m[size]["peak_mib"]

    track_peak_rss_mib.params = ["small", "large"]  # type: ignore[attr-defined]
    track_peak_rss_mib.param_names = ["cube"]  # type: ignore[attr-defined]
    track_peak_rss_mib.unit = "MiB"  # type: ignore[attr-defined]


# --- 5. the host side: predict with a null network against a Zarr copy ---------------------------
#: Scenes of the host-side cube: 8 x 2048 x 2048 float32 (128 MiB), a few seconds a repetition.
HOST_TIMES = 8
#: Interleaved repetitions: copy, predict, copy, ..., predict, copy; the median ratio is kept.
HOST_PAIRS = 5


def make_host_cube(directory: str = ".") -> str:
    """Write the (8, 2048, 2048) synthetic dB cube, one Zarr chunk per scene; return its path."""
    import xcalving
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(HOST_TIMES, shape=(SCENE, SCENE), seed=0)
    sar = cube[["sar"]].chunk({"time": 1, "y": SCENE, "x": SCENE})
    return os.path.abspath(xcalving.write_cube(sar, os.path.join(directory, "host_cube.zarr"),
                                               mode="w"))


make_host_cube.timeout = 600  # type: ignore[attr-defined]


def _copy_seconds(path: str, store: str) -> float:
    """Seconds to copy the lazy cube at ``path`` to a new Zarr store, chunks and codecs kept."""
    import xarray as xr

    start = time.perf_counter()
    xr.open_zarr(path, consolidated=False).to_zarr(store, consolidated=False, zarr_format=3)
    return time.perf_counter() - start


def _predict_to_zarr_seconds(path: str, net: Any, store: str, **options: Any) -> float:
    """Seconds to open the cube, build ``predict`` with ``net`` and write it to a Zarr store."""
    import xcalving

    start = time.perf_counter()
    cube = xcalving.open_cube(path)
    xcalving.predict(cube.sar, net, tile=TILE, overlap=OVERLAP, batch_size=BATCH,
                     **options).to_zarr(store, consolidated=False, zarr_format=3)
    return time.perf_counter() - start


def host_figures(path: str, pairs: int = HOST_PAIRS, **options: Any) -> dict[str, Any]:
    """Plain Zarr copy against predict(null network) → Zarr, interleaved, in this process.

    After one untimed run of each (imports, the model cache, the first-batch checks), runs
    ``copy, predict, copy, ..., predict, copy``; each predict is compared with the mean of the
    copies either side of it, and the median of those ratios is the figure (robust to a busy
    machine). Both run under dask's threaded scheduler, predict with its defaults but the network
    (``options`` go to predict).
    """
    import shutil

    net = null_network()
    with tempfile.TemporaryDirectory(dir=os.path.dirname(path)) as tmp:
        counter = iter(range(10**6))

        def store() -> str:
            return os.path.join(tmp, f"out{next(counter)}.zarr")

        def copy() -> float:
            target = store()
            seconds = _copy_seconds(path, target)
            shutil.rmtree(target)
            return seconds

        def predict() -> float:
            target = store()
            seconds = _predict_to_zarr_seconds(path, net, target, **options)
            shutil.rmtree(target)
            return seconds

        copy(), predict()  # warm-up
        copies, predicts = [copy()], []
        for _ in range(pairs):
            predicts.append(predict())
            copies.append(copy())
    ratios = [(a + b) / 2 / p for a, b, p in zip(copies, copies[1:], predicts, strict=False)]
    figures = {"copy_s": copies, "predict_s": predicts, "ratios": ratios,
               "predict_over_copy": float(np.median(ratios)), "scenes": HOST_TIMES,
               "cores": _cores()}
    _log(f"host side, {HOST_TIMES} x {SCENE} x {SCENE}: copy {np.median(copies):.2f} s, "
         f"predict(null network) -> Zarr {np.median(predicts):.2f} s (medians); "
         f"ratios {[round(r, 3) for r in ratios]}, median {figures['predict_over_copy']:.3f}")
    return figures


class PredictVsCopy:
    """predict(null network) → Zarr throughput ÷ a plain Zarr copy's (goal >= 0.5).

    The host side of predict alone (reading, scaling, cutting windows, sigmoid and softmax,
    blending, zones, encoding and writing), measured with a network that costs nothing, against
    ``xr.open_zarr(src).to_zarr(dst)`` of the same lazy cube: (8, 2048, 2048) float32 dB,
    chunks (1, 2048, 2048); tile 512, overlap 128, batch 8; predict's default outputs and
    encodings. Median of 5 interleaved pairs.
    """

    timeout = TIMEOUT
    rounds = 1
    repeat = 1
    number = 1
    setup_cache = staticmethod(make_host_cube)

    def setup(self, path: str) -> None:
        self.figures = host_figures(path)

    def track_predict_over_copy(self, path: str) -> float:
        return float(self.figures["predict_over_copy"])

    track_predict_over_copy.unit = "predict/copy throughput"  # type: ignore[attr-defined]


# --- without asv ---------------------------------------------------------------------------------
def _main(argv: list[str]) -> None:
    if argv[:1] == ["--memory-child"]:
        print(json.dumps(memory_child(tuple(json.loads(argv[1])), argv[2])))
        return
    if argv[:1] == ["--host"]:  # only the host-side figure, as JSON on stdout
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(host_figures(make_host_cube(tmp))))
        return
    if argv[:1] == ["--gpu"]:  # only the GPU figures, as JSON on stdout
        import torch

        with tempfile.TemporaryDirectory() as tmp:
            path = make_gpu_cube(tmp)
            out = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
            for precision in argv[1:] or ["bf16", "fp32"]:
                out[precision] = gpu_figures(path, precision)
                _log(f"{precision}: {out[precision]}")
        print(json.dumps(out))
        return
    for scene in (2048, 8192):
        for chunk in (256, 512, 1024, 2048):
            given, ours = (Redundancy().track_redundancy(scene, chunk, r) for r in (False, True))
            _log(f"redundancy, scene {scene}, chunk {chunk}: {given:.3f}; rechunked to "
                 f"{max(_chunks(scene, chunk, True))}: {ours:.3f}")
    m = measure_memory_pair()
    _log(f"peak RSS ratio: {PeakMemory().track_peak_rss_ratio(m):.3f}, median RSS ratio: "
         f"{PeakMemory().track_median_rss_ratio(m):.3f}")
    with tempfile.TemporaryDirectory() as tmp:
        path = make_cube(tmp)
        for suite in (PredictVsBare, PredictVsPeer):
            bench = suite()
            bench.setup(path)
            _log(f"{suite.__name__}: {bench.track_throughput_ratio(path):.3f}")


if __name__ == "__main__":
    _main(sys.argv[1:])
