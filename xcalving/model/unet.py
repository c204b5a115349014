"""U-Net with an atrous spatial pyramid pooling (ASPP) bottleneck."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from xcalving.errors import InputError, InputTypeError, did_you_mean

__all__ = ["ASPPUNet"]

_CONFIG_KEYS = ("in_channels", "width", "aspp_rates", "image_pooling", "n_zones", "depth")


def _conv_bn_relu(c_in: int, c_out: int, kernel: int = 3, dilation: int = 1) -> nn.Sequential:
    """Return conv, BatchNorm and ReLU; the conv has no bias because BatchNorm cancels it."""
    padding = dilation * (kernel // 2)
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    """Return the two 3x3 conv + BatchNorm + ReLU layers of one U-Net level."""
    return nn.Sequential(_conv_bn_relu(c_in, c_out), _conv_bn_relu(c_out, c_out))


class _ImagePooling(nn.Module):
    """Global-average-pooling branch of ASPP, broadcast back to the input size."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        # No BatchNorm: after pooling there is one value per channel and image, so BatchNorm would
        # fail in training with batch size 1 and be noisy with small batches.
        self.conv = nn.Conv2d(channels, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.relu(self.conv(x.mean(dim=(2, 3), keepdim=True)))
        return pooled.expand(-1, -1, x.shape[2], x.shape[3])


class _ASPP(nn.Module):
    """Parallel 1x1, atrous 3x3 and (optional) image-pooling branches with a 1x1 projection."""

    def __init__(self, channels: int, rates: Sequence[int], image_pooling: bool) -> None:
        super().__init__()
        branches: list[nn.Module] = [_conv_bn_relu(channels, channels, kernel=1)]
        branches += [_conv_bn_relu(channels, channels, dilation=r) for r in rates]
        if image_pooling:
            branches.append(_ImagePooling(channels))
        self.branches = nn.ModuleList(branches)
        self.project = _conv_bn_relu(len(branches) * channels, channels, kernel=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))


def _check_int(name: str, value: Any, minimum: int) -> int:
    """Return ``value`` if it is an int >= ``minimum``, else raise `InputError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(
            f"ASPPUNet: {name} must be an integer >= {minimum}; got {value!r} "
            f"({type(value).__name__}). Pass e.g. {name}={max(minimum, 1)}."
        )
    return value


def _check_rates(rates: Any) -> tuple[int, ...]:
    """Return ``rates`` as a tuple of positive ints, else raise `InputError`."""
    if isinstance(rates, str | bytes) or not isinstance(rates, Sequence):
        raise InputError(
            f"ASPPUNet: aspp_rates must be a sequence of positive integers such as (6, 12, 18) "
            f"or () for none; got {rates!r} ({type(rates).__name__})."
        )
    bad = [r for r in rates if isinstance(r, bool) or not isinstance(r, int) or r < 1]
    if bad:
        raise InputError(
            f"ASPPUNet: aspp_rates must contain positive integers only; got {list(rates)!r} with "
            f"invalid entries {bad!r}. Use e.g. aspp_rates=(6, 12, 18)."
        )
    return tuple(rates)


class ASPPUNet(nn.Module):
    """U-Net for calving-front segmentation with an ASPP bottleneck and two heads.

    The encoder follows Ronneberger et al. (2015) with every channel width halved at the default
    ``width=32``: levels of ``width``, ``2*width``, ``4*width`` and ``8*width`` channels (two 3x3
    conv + BatchNorm + ReLU each, 2x2 max-pooling between them) and a bottleneck of
    ``16*width`` channels (512 by default). The bottleneck is a double conv followed by atrous
    spatial pyramid pooling (ASPP): a 1x1 branch, one dilated 3x3 branch per entry of
    ``aspp_rates`` and, only with ``image_pooling=True``, a global-average-pooling branch; the
    branches are concatenated and projected back to ``16*width`` channels by a 1x1 conv +
    BatchNorm + ReLU. The decoder upsamples with 2x2 stride-2 transposed convs, concatenates the
    skip connection and applies a double conv. Two 1x1 heads give the outputs.

    The default network (``width=32``) has 16,155,845 parameters; ``width=16`` has 4,041,829,
    about a quarter, and costs about a quarter of the compute.

    Parameters
    ----------
    in_channels : int, default 1
        Number of input bands (1 for a single SAR backscatter band).
    width : int, default 32
        Channels of the first level; every other width scales with it.
    aspp_rates : sequence of int, default (6, 12, 18)
        Dilation rates of the atrous 3x3 branches; any number, including none. The defaults are
        chosen for 512-pixel windows: at stride 16 the bottleneck is 32x32, and rates 6/12/18
        span it without the 3x3 taps falling mostly into the zero padding.
    image_pooling : bool, default False
        Add the global-average-pooling branch of DeepLabv3. It feeds the mean over the whole
        window into every pixel, which ties a window's output to the window's extent: the same
        pixel gets different logits depending on which tile or chunk it was cut with. That
        breaks tiled, chunk-invariant inference, which is why it is off by default.
    n_zones : int, default 4
        Number of zone classes (0 no data, 1 rock, 2 glacier, 3 ocean).
    depth : int, default 4
        Number of 2x2 pooling steps; the network stride is ``2**depth``.

    Notes
    -----
    `forward` accepts any height and width >= 1: the input is padded on the bottom and right to
    a multiple of `stride` (reflect padding where it is possible, replicate otherwise) and the
    logits are cropped back to the input size.
    """

    def __init__(
        self,
        in_channels: int = 1,
        *,
        width: int = 32,
        aspp_rates: Sequence[int] = (6, 12, 18),
        image_pooling: bool = False,
        n_zones: int = 4,
        depth: int = 4,
    ) -> None:
        super().__init__()
        if not isinstance(image_pooling, bool):
            raise InputError(
                f"ASPPUNet: image_pooling must be True or False; got {image_pooling!r} "
                f"({type(image_pooling).__name__})."
            )
        self._config: dict[str, Any] = {
            "in_channels": _check_int("in_channels", in_channels, 1),
            "width": _check_int("width", width, 1),
            "aspp_rates": list(_check_rates(aspp_rates)),
            "image_pooling": image_pooling,
            "n_zones": _check_int("n_zones", n_zones, 2),
            "depth": _check_int("depth", depth, 1),
        }
        self._build(in_channels, width, tuple(aspp_rates), image_pooling, n_zones, depth)

    def _build(
        self,
        in_channels: int,
        width: int,
        rates: tuple[int, ...],
        image_pooling: bool,
        n_zones: int,
        depth: int,
    ) -> None:
        """Create the layers; split from ``__init__`` to keep validation and wiring apart."""
        widths = [width * 2**level for level in range(depth + 1)]
        self.encoders = nn.ModuleList(
            _double_conv(c_in, c_out)
            for c_in, c_out in zip([in_channels, *widths[:-2]], widths[:-1], strict=True)
        )
        self.bottleneck = nn.Sequential(
            _double_conv(widths[-2], widths[-1]), _ASPP(widths[-1], rates, image_pooling)
        )
        # The transposed conv feeds a bias-free conv + BatchNorm, which would cancel its bias.
        self.upsamplers = nn.ModuleList(
            nn.ConvTranspose2d(2 * c, c, kernel_size=2, stride=2, bias=False)
            for c in reversed(widths[:-1])
        )
        self.decoders = nn.ModuleList(_double_conv(2 * c, c) for c in reversed(widths[:-1]))
        self.zones_head = nn.Conv2d(width, n_zones, kernel_size=1)
        self.front_head = nn.Conv2d(width, 1, kernel_size=1)
        self._init_weights()

    def _init_weights(self) -> None:
        """Initialise convs for ReLU (He et al. 2015).

        PyTorch's default conv init shrinks the signal by about sqrt(3) per layer; with fresh
        BatchNorm statistics an untrained network in eval mode then outputs almost only biases.
        """
        heads = (self.zones_head, self.front_head)
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.ConvTranspose2d) and module not in heads:
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    @property
    def stride(self) -> int:
        """Total downsampling factor, ``2**depth``; inputs are padded to a multiple of it."""
        return 2 ** self._config["depth"]

    @property
    def config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-serialisable dict (see `get_config`)."""
        return self.get_config()

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments as a JSON-serialisable dict.

        Returns
        -------
        dict
            A fresh copy, with ``aspp_rates`` as a list; ``ASPPUNet.from_config`` rebuilds an
            identical (untrained) network from it.
        """
        return {**self._config, "aspp_rates": list(self._config["aspp_rates"])}

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> ASPPUNet:
        """Build a network from a dict made by `get_config`.

        Parameters
        ----------
        cfg : mapping
            Constructor arguments; missing keys take their defaults.

        Returns
        -------
        ASPPUNet
            A freshly initialised network.

        Raises
        ------
        InputError
            If ``cfg`` has a key that is not a constructor argument, or a bad value.
        InputTypeError
            If ``cfg`` is not a mapping.
        """
        if not isinstance(cfg, Mapping):
            raise InputTypeError(
                f"ASPPUNet.from_config: cfg must be a mapping such as model.get_config(); "
                f"got {type(cfg).__name__}."
            )
        unknown = [key for key in cfg if key not in _CONFIG_KEYS]
        if unknown:
            hint = did_you_mean(unknown[0], _CONFIG_KEYS)
            raise InputError(
                f"ASPPUNet.from_config: unknown key(s) {unknown!r} in cfg; valid keys are "
                f"{list(_CONFIG_KEYS)!r}.{hint} Remove or rename the unknown keys."
            )
        kwargs = dict(cfg)
        in_channels = kwargs.pop("in_channels", 1)
        return cls(in_channels, **kwargs)

    def _check_input(self, x: Any) -> None:
        """Raise if ``x`` is not a floating-point (N, in_channels, H, W) tensor."""
        expected = f"(N, {self._config['in_channels']}, H, W)"
        if not isinstance(x, torch.Tensor):
            raise InputTypeError(
                f"ASPPUNet: x must be a torch.Tensor of shape {expected}; got "
                f"{type(x).__name__}. Convert with torch.as_tensor(x, dtype=torch.float32)."
            )
        if x.dim() != 4 or x.shape[1] != self._config["in_channels"] or 0 in x.shape:
            raise InputError(
                f"ASPPUNet: x must have shape {expected} with N, H, W >= 1; got "
                f"{tuple(x.shape)}. Add a batch axis with x[None] or select the right bands."
            )
        if not x.is_floating_point():
            raise InputError(
                f"ASPPUNet: x must be a floating-point tensor; got dtype {x.dtype}. "
                f"Convert with x.float()."
            )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Compute zone and front logits.

        Parameters
        ----------
        x : torch.Tensor
            Images of shape ``(N, in_channels, H, W)``; any ``H, W >= 1``.

        Returns
        -------
        dict of str to torch.Tensor
            ``"zones"``: ``(N, n_zones, H, W)`` logits; ``"front"``: ``(N, 1, H, W)`` logits.

        Raises
        ------
        InputError
            If ``x`` does not have shape ``(N, in_channels, H, W)`` or is not floating point.
        """
        self._check_input(x)
        height, width = x.shape[-2:]
        h = _pad_to_multiple(x, self.stride)
        skips = []
        for encoder in self.encoders:
            h = encoder(h)
            skips.append(h)
            h = F.max_pool2d(h, kernel_size=2)
        h = self.bottleneck(h)
        for upsample, decoder, skip in zip(
            self.upsamplers, self.decoders, reversed(skips), strict=True
        ):
            h = decoder(torch.cat([skip, upsample(h)], dim=1))
        h = h[..., :height, :width]
        return {"zones": self.zones_head(h), "front": self.front_head(h)}


def _pad_to_multiple(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Pad ``x`` on the bottom and right so that H and W are multiples of ``stride``."""
    height, width = x.shape[-2:]
    pad_w, pad_h = -width % stride, -height % stride
    # Reflect keeps image statistics near the edge but needs pad < size; replicate always works.
    # The axes are padded one at a time so a thin image can still reflect along its long axis.
    if pad_w:
        x = F.pad(x, (0, pad_w, 0, 0), mode="reflect" if pad_w < width else "replicate")
    if pad_h:
        x = F.pad(x, (0, 0, 0, pad_h), mode="reflect" if pad_h < height else "replicate")
    return x
