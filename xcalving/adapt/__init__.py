"""Adapting weights to one glacier from a handful of its labelled scenes.

No network trained on CaFFe transfers well to a glacier it never saw; a few labelled scenes of
that glacier do. :func:`finetune` turns them into weights for its whole time series in minutes
on a laptop; :func:`finetune_card` shows what a fine-tuned file was made from and how it scored.

One module per job: ``sources`` (reading a CaFFe tree, a Zarr cube, GeoTIFF scenes), ``labels``
(front lines and zone polygons from a GIS, rasterised on each scene's grid), ``prepare`` (one
pixel spacing, 8-bit grey, random augmented windows), ``loop`` (what trains, the loss, the
budget, Ctrl-C), ``card`` (scores and the card), ``base`` (the base weights and the scenes
they replay) and ``api`` (:func:`finetune`).
"""

from __future__ import annotations

from xcalving.adapt.api import FinetuneResult, finetune
from xcalving.adapt.card import finetune_card, read_facts

__all__ = ["FinetuneResult", "finetune", "finetune_card", "read_facts"]
