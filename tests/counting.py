"""A network that counts its forward calls, to prove that work is done once.

One class for every test that counts: predict deep-copies a caller's module into the graph and
caches runners by the module's hash, so the count lives on the class, and a second class with
the same weights would be served this one's cached copy (and count on the wrong class).
"""

from __future__ import annotations

import torch


class CountingNet(torch.nn.Module):
    """A tiny ASPPUNet (width 4, seed 0) that counts its forward calls on the class."""

    calls = 0

    def __init__(self):
        super().__init__()
        from xcalving.model import ASPPUNet

        torch.manual_seed(0)
        self.net = ASPPUNet(width=4).eval()

    def forward(self, x):
        type(self).calls += 1
        return self.net(x)


def network_calls(function) -> int:
    """Forward calls of :class:`CountingNet` while ``function()`` runs on the sync scheduler."""
    import dask

    CountingNet.calls = 0
    with dask.config.set(scheduler="synchronous"):
        function()
    return CountingNet.calls
