"""Tiled, blended, chunk-invariant inference over lazy SAR cubes.

Plan, then execute:

1. :func:`~xcalving.windows.plan_windows` lays one global grid of windows over the whole (y, x)
   array, anchored at pixel (0, 0), ``tile - overlap`` apart, the last window snapped inside the
   array so that every pixel is covered and none is dropped. An axis shorter than a tile gets one
   window, padded at the array border by repeating the edge pixels up to a multiple of the network
   stride.
2. :func:`~xcalving.windows.blend_weights` gives every window a smooth weight: a raised-cosine ramp
   over the overlap at each side, clamped above zero, so seams vanish and border pixels (covered by
   one window only) still count. The blended result is the weighted sum divided by the float sum of
   weights.
3. The executor maps a block function over the cube with a halo of ``tile - 1`` pixels: each
   output block computes every window of the global plan that touches it, whole, from the
   haloed input, and keeps its own part. Which windows touch a pixel, and their weights, do
   not depend on the chunking, so neither does the result.

Networks are built on each worker from a :class:`~xcalving.model.weights.ModelSpec`, once per
process, device and precision (see :func:`model_cache_info`).

The package follows the data: ``api`` (:func:`predict`) checks the options (``options``) and
the input (``inputs``), optionally resamples it (``resample``), maps the blocks and builds the
Dataset (``execute``); each block blends its windows (``blend``) with the network from the
process's cache (``runner``). Ensembles and test-time flips (``members``) are several such
predictions, combined. Importing it loads neither torch nor dask.
"""

from xcalving.inference.api import predict
from xcalving.inference.execute import spatial_chunks
from xcalving.inference.members import combine
from xcalving.inference.options import PredictOptions, check_tile
from xcalving.inference.runner import model_cache_info

__all__ = ["PredictOptions", "check_tile", "combine", "model_cache_info", "predict",
           "spatial_chunks"]
