"""The host-side path of predict (docs/performance.rst) against the semantics it replaced.

The blending was rewritten for speed: windows copied into one reused batch buffer, no data
filled there, per-window sigmoid and softmax of the part kept, shares (weights divided by their
sum, separable) so that no division pass is needed, a halo only along axes with neighbours.
An obviously correct per-window implementation, written here as the previous code did it
(weighted sum of whole windows, then divided by the sum of the weights), is the oracle.
"""

import warnings

import dask
import dask.array as dsa
import numpy as np
import pytest
import torch
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import xcalving
from xcalving.errors import PerformanceWarning
from xcalving.inference.blend import predict_block
from xcalving.inference.runner import get_runner
from xcalving.model.weights import model_spec
from xcalving.scaling import to_network_input
from xcalving.windows import blend_weights, placements, plan_windows

FILL = -0.5


class Pointwise(nn.Module):
    """Output at a pixel depends on that pixel only: tiling must not show."""

    def forward(self, x):
        return {"front": x, "zones": torch.cat([x, -x, 2 * x, 0 * x], dim=1)}


class Neighbourhood(nn.Module):
    """Output depends on a 5 x 5 neighbourhood, zero-padded at the window's edge.

    So each window's output depends on where the window lies: cutting the wrong window, or
    blending with the wrong weight, shows.
    """

    def forward(self, x):
        mean = nn.functional.avg_pool2d(x, 5, stride=1, padding=2)
        rows = torch.linspace(-1, 1, x.shape[-2])[None, None, :, None]
        return {"front": mean + rows, "zones": torch.cat([x, mean, -mean, rows.expand_as(x)], 1)}


def runner_for(module):
    return get_runner(model_spec(module.eval()), "cpu", "fp32")


def oracle_block(block, origin, core, plan, module, fill, stride):
    """The previous semantics, window by window, in numpy (float64 sums, then divided)."""
    leads = block.shape[0]
    rows, cols = core[1] - core[0], core[3] - core[2]
    total = np.zeros((leads, 5, rows, cols))
    weight_sum = np.zeros((rows, cols))
    weights = blend_weights(plan.extent, plan.overlap).astype(np.float64)
    clean = np.where(np.isnan(block), fill, block)
    (ey, ex), (sy, sx) = plan.extent, plan.size
    for y0 in plan.starts_y:
        for x0 in plan.starts_x:
            if not (y0 < core[1] and y0 + ey > core[0] and x0 < core[3] and x0 + ex > core[2]):
                continue
            r0, r1 = max(y0, core[0]), min(y0 + ey, core[1])
            c0, c1 = max(x0, core[2]), min(x0 + ex, core[3])
            win = (slice(r0 - y0, r1 - y0), slice(c0 - x0, c1 - x0))
            out = (slice(r0 - core[0], r1 - core[0]), slice(c0 - core[2], c1 - core[2]))
            for lead in range(leads):
                r, c = y0 - origin[0], x0 - origin[1]
                window = np.pad(clean[lead, r:r + ey, c:c + ex], ((0, sy - ey), (0, sx - ex)),
                                mode="edge")
                with torch.inference_mode():
                    logits = module(torch.from_numpy(window.astype(np.float32))[None, None])
                probs = torch.cat([torch.sigmoid(logits["front"]),
                                   torch.softmax(logits["zones"], 1)], 1)[0].double().numpy()
                total[(lead, slice(None), *out)] += probs[(slice(None), *win)] * weights[win]
            weight_sum[out] += weights[win]
    result = total / weight_sum
    nan = np.isnan(block[:, core[0] - origin[0]:core[1] - origin[0],
                         core[2] - origin[1]:core[3] - origin[1]])
    result[np.broadcast_to(nan[:, None], result.shape)] = np.nan
    return result


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.integers(8, 120), cols=st.integers(8, 120), tile=st.sampled_from([8, 16, 24, 40]),
       frac=st.floats(0, 0.75), stride=st.sampled_from([1, 8]), leads=st.integers(1, 3),
       batch=st.integers(1, 7), split=st.tuples(st.floats(0, 1), st.floats(0, 1)),
       pointwise=st.booleans(), seed=st.integers(0, 2**16))
def test_block_equals_the_per_window_oracle(rows, cols, tile, frac, stride, leads, batch, split,
                                            pointwise, seed):
    """Any geometry: cores that cut windows, scenes shorter than a tile (edge padding),
    strides that pad, NaN, batches that split the lead dim; a model that sees neighbours."""
    rng = np.random.default_rng(seed)
    tile = max(stride, tile // stride * stride)
    plan = plan_windows((rows, cols), tile, min(int(tile * frac), tile - 1), stride)
    block = rng.normal(0, 2, (leads, rows, cols)).astype(np.float32)
    block[rng.random(block.shape) < 0.05] = np.nan
    module = Pointwise() if pointwise else Neighbourhood()
    cut_y, cut_x = int(rows * split[0]), int(cols * split[1])
    for core in [(0, rows, 0, cols), (cut_y, rows, 0, max(cut_x, 1)),
                 (0, max(cut_y, 1), cut_x, cols) if cut_x < cols else (0, rows, 0, cols)]:
        if core[0] >= core[1] or core[2] >= core[3]:
            continue
        want = oracle_block(block, (0, 0), core, plan, module, FILL, stride)
        got = predict_block(block, (0, 0), core, plan, runner_for(module), FILL, batch)
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_block_at_an_offset_and_read_only_input():
    """A haloed block whose pixel (0, 0) is not the array's; the input is never written."""
    rng = np.random.default_rng(0)
    full = rng.normal(0, 1, (2, 90, 70)).astype(np.float32)
    full[0, 40:44, 30:37] = np.nan
    plan = plan_windows(full.shape[-2:], 32, 8)
    origin, core = (9, 9), (40, 70, 40, 60)  # a halo of tile - 1 = 31 around the core
    block = full[:, 9:90, 9:70].copy()
    block.flags.writeable = False
    got = predict_block(block, origin, core, plan, runner_for(Neighbourhood()), FILL, 3)
    want = oracle_block(full, (0, 0), core, plan, Neighbourhood(), FILL, 1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True)


@given(n=st.integers(1, 300), tile=st.integers(1, 64), frac=st.floats(0, 0.9),
       lo=st.floats(0, 1), hi=st.floats(0, 1))
def test_shares_add_up_to_one_at_every_pixel(n, tile, frac, lo, hi):
    plan = plan_windows((n, 5), tile, min(int(tile * frac), tile - 1))
    first, last = sorted((int(lo * n), int(hi * n)))
    last = max(last, first + 1) if first < n else n
    first = min(first, n - 1)
    total = np.zeros((last - first, 5))
    for place in placements(plan, (first, last, 0, 5)):
        assert place.weight.dtype == np.float32 and (place.weight > 0).all()
        total[place.core] += place.weight
    np.testing.assert_allclose(total, 1.0, rtol=1e-6)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.tuples(st.integers(1, 3), st.integers(20, 100), st.integers(20, 100)),
       tile=st.sampled_from([16, 32]), frac=st.floats(0, 0.6), batch=st.integers(1, 9),
       chunk=st.tuples(st.integers(16, 100), st.integers(16, 100)), seed=st.integers(0, 99))
def test_pointwise_cube_through_predict_equals_untiled(shape, tile, frac, batch, chunk, seed):
    """Through the dask layer: lead dims, NaN, random chunks and batch sizes."""
    values = np.random.default_rng(seed).normal(0, 3, shape).astype(np.float32)
    values[:, ::7, ::5] = np.nan
    data = xr.DataArray(dsa.from_array(values, chunks=(1, *chunk)), dims=("time", "y", "x"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PerformanceWarning)
        pred = xcalving.predict(data, Pointwise(), tile=tile, overlap=int(tile * frac),
                                batch_size=batch, scaling="none", outputs="all").compute()
    x = torch.from_numpy(np.nan_to_num(values, nan=0.0))[:, None]
    front = torch.sigmoid(x)[:, 0].numpy()
    zones = torch.softmax(torch.cat([x, -x, 2 * x, 0 * x], 1), 1).numpy()
    nan = np.isnan(values)
    front[nan] = np.nan
    zones[np.broadcast_to(nan[:, None], zones.shape)] = np.nan
    np.testing.assert_allclose(pred.front_probability.values, front, rtol=1e-5, atol=1e-6)
    got = pred.zone_probability.transpose("time", "zone", "y", "x").values
    np.testing.assert_allclose(got, zones, rtol=1e-5, atol=1e-6)
    want_zones = np.where(nan, 0, np.nanargmax(np.nan_to_num(zones, nan=-1), 1) + 0)
    np.testing.assert_array_equal(pred.zones.values, want_zones)


def test_no_halo_along_a_single_chunk_axis_and_the_same_numbers():
    """One chunk along x: the overlap (a copy of every block) is along y only."""
    values = np.random.default_rng(3).normal(0, 1, (2, 300, 90)).astype(np.float32)
    one = xr.DataArray(dsa.from_array(values, chunks=(1, 300, 90)), dims=("time", "y", "x"))
    rows = one.chunk({"y": 150})  # blocks of more than 4 window steps: kept as they are
    preds = [xcalving.predict(d, Neighbourhood(), tile=32, overlap=8, scaling="none")
             for d in (one, rows)]
    layers = [dict(p.front_probability.data.dask.layers) for p in preds]
    assert not any(name.startswith("overlap") for name in layers[0])
    assert any(name.startswith("overlap") for name in layers[1])
    a, b = (p.front_probability.values for p in preds)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_two_predictions_in_one_compute_keep_their_own_results():
    """Each prediction's blocks have their own keys (a fixed name once made them collide)."""
    rng = np.random.default_rng(4)
    a, b = (xr.DataArray(rng.normal(m, 1, (40, 40)).astype(np.float32), dims=("y", "x"))
            for m in (-2.0, 2.0))
    pa, pb = (xcalving.predict(d, Pointwise(), tile=16, overlap=4, scaling="none")
              for d in (a, b))
    got_a, got_b = dask.compute(pa.front_probability, pb.front_probability)
    np.testing.assert_allclose(got_a.values, torch.sigmoid(torch.from_numpy(a.values)).numpy(),
                               rtol=1e-6)
    np.testing.assert_allclose(got_b.values, torch.sigmoid(torch.from_numpy(b.values)).numpy(),
                               rtol=1e-6)


def test_the_zones_task_reads_the_block_without_copying_it():
    """The arg-max keeps the channel axis (length 1) instead of map_blocks(drop_axis=), which
    concatenates every 5-channel block first."""
    data = xr.DataArray(np.zeros((2, 64, 64), np.float32), dims=("time", "y", "x"))
    pred = xcalving.predict(data, Pointwise(), tile=32, overlap=8, scaling="none")
    graph = pred.zones.data.__dask_graph__()
    tasks = [str(task) for layer in graph.layers.values() for task in layer.values()]
    assert not any("concatenate" in task for task in tasks)


@pytest.mark.parametrize("batch", [1, 8])
def test_the_batch_buffer_is_refilled_for_a_module_that_writes_its_input(batch):
    class InPlace(nn.Module):
        def forward(self, x):
            x.mul_(0)  # a rude module: writes into its input
            return Pointwise()(x + 1)

    values = np.random.default_rng(5).normal(0, 1, (70, 70)).astype(np.float32)
    got = xcalving.predict(xr.DataArray(values, dims=("y", "x")), InPlace(), tile=32,
                           overlap=8, batch_size=batch, scaling="none")
    np.testing.assert_allclose(got.front_probability.values,
                               1 / (1 + np.exp(-1.0)), rtol=1e-6)


# --- channels-last on the CPU ---------------------------------------------------------------------
def test_asppunet_runs_channels_last_on_the_cpu_and_agrees_with_the_eager_forward():
    """Predict's NHWC copy of the network against the caller's module, NCHW, within 1e-5."""
    from xcalving.model import ASPPUNet

    torch.manual_seed(0)
    net = ASPPUNet(width=8).eval()
    for module in net.modules():  # non-trivial statistics: BatchNorm is part of what changes
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    runner = runner_for(net)
    assert runner.channels_last
    conv = next(m for m in runner.module.modules()
                if isinstance(m, nn.Conv2d) and m.in_channels > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert next(net.parameters()).is_contiguous()  # the caller's module is left as it was
    values = np.random.default_rng(6).normal(-12, 4, (2, 96, 128)).astype(np.float32)
    data = xr.DataArray(values, dims=("time", "y", "x"), attrs={"units": "dB"})
    pred = xcalving.predict(data, net, tile=128, overlap=0, outputs="all", dtype="float32")
    x = torch.from_numpy(to_network_input(values, "db", model_spec(net).scaling))[:, None]
    with torch.inference_mode():
        out = net(x)  # whole scenes, NCHW, eager: one window each, as predict cut them
    np.testing.assert_allclose(pred.front_probability.values,
                               torch.sigmoid(out["front"])[:, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(pred.zone_probability.transpose("time", "zone", "y", "x").values,
                               torch.softmax(out["zones"], 1).numpy(), atol=1e-5)


def test_other_modules_run_as_they_are():
    assert not runner_for(Neighbourhood()).channels_last
