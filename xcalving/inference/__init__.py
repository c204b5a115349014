"""Tiled, blended, chunk-invariant inference over lazy SAR cubes.

Plan, then execute:

1. :func:`plan_windows` lays one global grid of windows over the whole (y, x) array, anchored at
   pixel (0, 0), ``tile - overlap`` apart, the last window snapped inside the array so that every
   pixel is covered and none is dropped. An axis shorter than a tile gets one window, padded at
   the array border by repeating the edge pixels up to a multiple of the network stride.
2. :func:`blend_weights` gives every window a smooth weight: a raised-cosine ramp over the
   overlap at each side, clamped above zero, so seams vanish and border pixels (covered by one
   window only) still count. The blended result is the weighted sum divided by the float sum
   of weights.
3. The executor maps a block function over the cube with a halo of ``tile - 1`` pixels: each
   output block computes every window of the global plan that touches it, whole, from the
   haloed input, and keeps its own part. Which windows touch a pixel, and their weights, do
   not depend on the chunking, so neither does the result.

Networks are built on each worker from a :class:`~xcalving.model.weights.ModelSpec`, once per
process, device and precision (see :func:`model_cache_info`).

The package follows the data: ``api`` (:func:`predict`) checks the options (``options``) and
the input (``inputs``), optionally resamples it (``resample``), maps the blocks and builds the
Dataset (``execute``); each block blends its windows (``blend``) with the network from the
process's cache (``runner``). Importing it loads neither torch nor dask.
"""

# the names after "as" stay importable from here, as when this was one module (tests,
# benchmarks, train and tune use them)
from xcalving.inference.api import predict
from xcalving.inference.blend import predict_block as predict_block
from xcalving.inference.blend import predict_block_on_device as predict_block_on_device
from xcalving.inference.execute import _zones_of_block as _zones_of_block
from xcalving.inference.execute import run_blocks as run_blocks
from xcalving.inference.execute import spatial_chunks
from xcalving.inference.execute import warn_rechunk as warn_rechunk
from xcalving.inference.inputs import CO_POLARISATIONS as CO_POLARISATIONS
from xcalving.inference.inputs import CROSS_POLARISATIONS as CROSS_POLARISATIONS
from xcalving.inference.inputs import choose_polarisation
from xcalving.inference.options import PredictOptions, check_tile
from xcalving.inference.runner import N_CHANNELS as N_CHANNELS
from xcalving.inference.runner import get_runner as get_runner
from xcalving.inference.runner import model_cache_info
from xcalving.runtime import dask_threads_here as dask_threads_here
from xcalving.runtime import resolve_device as resolve_device
from xcalving.runtime import resolve_precision as resolve_precision
from xcalving.runtime import torch_threads_for_process as torch_threads_for_process
from xcalving.windows import WindowPlan, blend_weights, plan_windows, redundancy

__all__ = [
    "PredictOptions", "WindowPlan", "blend_weights", "check_tile", "choose_polarisation",
    "model_cache_info", "plan_windows", "predict", "redundancy", "spatial_chunks",
]
