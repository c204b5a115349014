"""The per-process model cache: one network per weights, device and precision in each process.

A block task asks :func:`get_runner` for its network; the first task of a process builds it
from the :class:`~xcalving.model.weights.ModelSpec` (:func:`~xcalving.model.weights.build_module`),
every later task reuses it. :func:`model_cache_info` says what a process holds.

The runner also holds the network to :data:`CONTRACT`, where it runs, on the batches predict
gives it anyway (a user's module is never run on anything else, nor on the client):

* every batch: the output's type, keys, dtypes, shapes and device (free: no values are read);
* the first batch of each runner (one device sync): no whole batch of non-finite logits, and,
  for a user's module, no probabilities in place of logits;
* every block (:mod:`xcalving.inference.blend`): NaN where the input had data is reported once.
"""

from __future__ import annotations

import difflib
import threading
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from xcalving.errors import InputError, XcalvingError, XcalvingWarning
from xcalving.runtime import torch_threads_for_process

if TYPE_CHECKING:
    from xcalving.model.weights import ModelSpec

__all__ = ["CONTRACT", "N_CHANNELS", "get_runner", "model_cache_info"]

#: Output channels of a runner: front probability, then the four zone probabilities.
N_CHANNELS = 5
#: What a network must do, quoted by every error about its output.
CONTRACT = (
    "a model is called on a float tensor (N, 1, H, W) of one-band windows and returns a dict "
    "{'front': (N, 1, H, W) logits, 'zones': (N, 4, H, W) logits of no_data, rock, glacier, "
    "ocean} with the N, H and W of its input, on the input's device, like "
    "xcalving.model.ASPPUNet; predict applies the sigmoid and softmax itself"
)
#: Slack of the probability test: zone rows of a softmax in bf16 sum to 1 within ~0.01.
_SUM_TOLERANCE = 0.02

_CACHE: dict[tuple[str, str, str], _Runner] = {}
_LOADS: dict[str, int] = {}
_LOCK = threading.Lock()


def model_cache_info() -> dict[str, Any]:
    """What this process has loaded: ``{"loaded": {sha256: times built}, "torch_threads": n}``.

    Each network is built once per process, device and precision, whatever the number of tasks.
    """
    import torch  # heavy: torch, loaded on first use

    # the count the runners set on the threads that run blocks (torch's count is per thread)
    threads = max((r.threads for r in _CACHE.values()), default=torch.get_num_threads())
    return {"loaded": dict(_LOADS), "torch_threads": threads, "cached": len(_CACHE)}


def get_runner(spec: ModelSpec, device: str, precision: str) -> _Runner:
    """The network for ``spec`` on ``device``: built once per process, then served from cache.

    On the CPU an :class:`~xcalving.model.ASPPUNet` runs channels-last (NHWC), in which
    oneDNN runs its convolutions 1.4-1.9x as fast (``docs/performance.rst``); a caller's other
    modules run as they are. The module converted is predict's own copy, never the caller's.
    """
    # heavy: xcalving.model.weights loads torch, safetensors, tqdm
    from xcalving.model.weights import build_module

    key = (spec.sha256, device, precision)
    with _LOCK:
        if key not in _CACHE:
            module = build_module(spec).to(device).eval()
            channels_last = device == "cpu" and _is_asppunet(module)
            if channels_last:
                import torch  # heavy: torch, loaded on first use

                module = module.to(memory_format=torch.channels_last)
            _CACHE[key] = _Runner(module, device, precision, torch_threads_for_process(),
                                  custom=spec.module is not None, channels_last=channels_last)
            _LOADS[spec.sha256] = _LOADS.get(spec.sha256, 0) + 1
        return _CACHE[key]


def _is_asppunet(module: Any) -> bool:
    # heavy: xcalving.model.unet loads torch, safetensors, tqdm
    from xcalving.model.unet import ASPPUNet

    return isinstance(module, ASPPUNet)


class _Runner:
    """Call a network on a batch (B, 1, H, W) → probabilities (B, 5, H, W) float32.

    ``runner.logits(tensor)`` gives the checked logits on the runner's device (what the
    blending of both paths uses); ``runner.probs(tensor)`` the probabilities, ``runner(numpy
    batch)`` the probabilities as numpy.
    ``custom`` marks a caller's own module: its exceptions are reported against the contract,
    and its first batch is tested for probabilities in place of logits. ``channels_last``:
    batches go to the module in NHWC memory format (the module was converted).
    """

    def __init__(self, module: Any, device: str, precision: str, threads: int,
                 custom: bool = False, channels_last: bool = False) -> None:
        self.module, self.device, self.precision = module, device, precision
        self.threads, self.custom, self.channels_last = threads, custom, channels_last
        self._lock = threading.RLock()  # _check_values warns while holding it
        self._values_checked = False  # set once a batch passed _check_values
        self._warned_non_finite = False

    def logits(self, x: Any) -> tuple[Any, Any]:
        """The checked (zones (N, 4, H, W), front (N, 1, H, W)) float32 logits of a batch tensor.

        The blending (:mod:`xcalving.inference.blend`) applies the softmax and sigmoid window
        by window, to the part of each window it keeps.
        """
        zones, front = _check_output(self._forward(x), x)
        if not self._values_checked:
            with self._lock:
                if not self._values_checked:
                    self._values_checked = self._check_values(zones, front, x)
        return zones, front

    def probs(self, x: Any) -> Any:
        """Front probability (sigmoid) and zone probabilities (softmax) of a batch tensor."""
        import torch  # heavy: torch, loaded on first use

        zones, front = self.logits(x)
        return torch.cat([torch.sigmoid(front), torch.softmax(zones, dim=1)], dim=1)

    def use_threads(self) -> None:
        """Give the calling thread the runner's torch thread count.

        Torch's intra-op thread count belongs to the calling thread, and each Dask pool thread
        that runs a block may have its own: set it before a block's first torch operation and
        on every call of the network (it costs nothing when equal).
        """
        import torch  # heavy: torch, loaded on first use

        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)

    def _forward(self, x: Any) -> Any:
        import torch  # heavy: torch, loaded on first use

        self.use_threads()
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        with torch.inference_mode(), torch.autocast(
            device_type=self.device.split(":")[0], dtype=dtype or torch.float32,
            enabled=dtype is not None,
        ):
            try:
                if self.channels_last:  # a one-band batch is NHWC already: no copy
                    return self.module(x.contiguous(memory_format=torch.channels_last))
                return self.module(x)
            except Exception as err:
                if not self.custom or isinstance(err, XcalvingError) or _out_of_memory(err):
                    raise
                raise InputError(_raised_message(err, x)) from err

    def _check_values(self, zones: Any, front: Any, x: Any) -> bool:
        """Check a batch's values; False when it cannot tell (every input window constant).

        Constant windows (all no data, filled) are left out: they say nothing about a network,
        and a module that divides by a window's spread gives NaN there, which is masked.
        """
        stats = _value_stats(zones, front, x)
        if stats is None:
            return False
        if stats["bad"] == stats["count"]:
            raise InputError(
                f"model returned no finite logits (all NaN or Inf) for a batch of "
                f"{x.shape[0]} windows of finite input: the network is broken (NaN weights, "
                f"e.g. from a diverged training{_precision_hint(self.precision)}). Check the "
                f"weights; the contract: {CONTRACT}."
            )
        if stats["bad"]:
            self._warn_non_finite(f"{stats['bad'] / stats['count']:.2%} of the logits of its "
                                  "first batch are NaN or Inf")
        if self.custom and not stats["bad"]:
            _check_logits(stats)
        return True

    def report_nan_output(self, pixels: int) -> None:
        """Warn (once per runner) that ``pixels`` pixels with data came out NaN in a block."""
        self._warn_non_finite(f"{pixels} pixels with data of a block came out NaN")

    def _warn_non_finite(self, what: str) -> None:
        with self._lock:
            if self._warned_non_finite:
                return
            self._warned_non_finite = True
        warnings.warn(
            f"model returned NaN or Inf logits: {what}. predict keeps going; where the "
            "probabilities are NaN, front_probability and zone_probability are NaN and zones "
            "is 0 (no data), as for missing input, and neighbouring windows that overlap them "
            f"are affected too. Check the weights{_precision_hint(self.precision)} and how the "
            "model treats constant or extreme windows (e.g. dividing by a window's standard "
            "deviation). Shown once per model and process.",
            XcalvingWarning, stacklevel=2,
        )

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch  # heavy: torch, loaded on first use

        return self.probs(torch.from_numpy(batch).to(self.device)).cpu().numpy()


# --- the contract --------------------------------------------------------------------------------
def _check_output(out: Any, x: Any) -> tuple[Any, Any]:
    """The (zones, front) logits of a network's output, as float32, or one error for all faults.

    Reads shapes and dtypes only, so it costs nothing and runs on every batch.
    """
    problems = _structure_problems(out, x)
    if problems:
        raise InputError(
            f"model output does not meet predict's contract: {'; '.join(problems)}. The "
            f"contract: {CONTRACT}."
        )
    return out["zones"].float(), out["front"].float()


def _structure_problems(out: Any, x: Any) -> list[str]:
    """What is wrong with the type and keys of ``out``, then with each tensor in it."""
    import torch  # heavy: torch, loaded on first use

    by_name = "return them by name: {'front': front_logits, 'zones': zone_logits}"
    if isinstance(out, torch.Tensor):
        return [f"it returned one tensor of shape {tuple(out.shape)}, not a dict; {by_name}"]
    if isinstance(out, tuple | list):
        items = [tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                 for t in out]
        return [f"it returned a {type(out).__name__} {items}, not a dict; {by_name}"]
    if not isinstance(out, Mapping):
        return [f"it returned a {type(out).__name__}, not a dict; {by_name}"]
    missing = [key for key in ("front", "zones") if key not in out]
    if missing:
        keys = [str(key) for key in out]
        renames = [f"{close[0]!r} → {key!r}" for key in missing
                   if (close := difflib.get_close_matches(key, keys, n=1, cutoff=0.6))]
        hint = f" (rename {', '.join(renames)})" if renames else ""
        return [f"it returned a dict with keys {keys}, without {missing}{hint}"]
    return [p for key, channels in (("front", 1), ("zones", N_CHANNELS - 1))
            for p in _tensor_problems(key, out[key], channels, x)]


def _tensor_problems(key: str, t: Any, channels: int, x: Any) -> list[str]:
    """What is wrong with one output tensor, given the input batch ``x``."""
    import torch  # heavy: torch, loaded on first use

    if not isinstance(t, torch.Tensor):
        return [f"{key!r} is a {type(t).__name__}, not a torch.Tensor"]
    n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    problems = []
    if not t.is_floating_point():
        problems.append(f"{key!r} has dtype {t.dtype}; return float logits, not class labels "
                        "or masks")
    if t.dim() != 4:
        fix = f" (add the channel axis: {key}[:, None])" if tuple(t.shape) == (n, h, w) else ""
        return [*problems, f"{key!r} has shape {tuple(t.shape)}, not (N, {channels}, H, W){fix}"]
    if t.shape[1] != channels:
        problems.append(f"{key!r} has {t.shape[1]} channels, not {channels}")
    if t.shape[0] != n:
        problems.append(f"{key!r} has batch size {t.shape[0]} for a batch of {n} windows; "
                        "return one output per input window")
    if tuple(t.shape[-2:]) != (h, w):
        problems.append(f"{key!r} is {t.shape[-2]}×{t.shape[-1]} pixels for {h}×{w} windows; "
                        "upsample the logits to the input size, e.g. F.interpolate(logits, "
                        "size=x.shape[-2:], mode='bilinear')")
    if t.device != x.device:
        problems.append(f"{key!r} is on {t.device}, the input on {x.device}")
    return problems


def _value_stats(zones: Any, front: Any, x: Any) -> dict[str, Any] | None:
    """Counts and ranges of the logits of a batch's non-constant windows (None if there are none).

    Run once per runner: the indexing and the read-back synchronise with the device.
    """
    import torch  # heavy: torch, loaded on first use

    varies = x.flatten(1).amax(1) > x.flatten(1).amin(1)
    if not bool(varies.any()):
        return None
    zones, front = zones[varies], front[varies]
    finite = torch.isfinite(front).sum() + torch.isfinite(zones).sum()
    values = torch.stack([
        finite.float(), front.amin(), front.amax(), zones.amin(), zones.amax(),
        (zones.sum(dim=1) - 1).abs().amax(),
    ]).tolist()
    names = ("finite", "front_min", "front_max", "zones_min", "zones_max", "sum_error")
    stats = dict(zip(names, values, strict=True))
    count = front.numel() + zones.numel()
    return {**stats, "count": count, "bad": count - int(stats["finite"])}


def _check_logits(stats: dict[str, Any]) -> None:
    """Refuse zone probabilities (rows in [0, 1] summing to 1); warn for a front in [0, 1].

    A softmax output is unmistakable: four values in [0, 1] summing to 1 at every pixel of a
    batch. A front in [0, 1] is also what small logits look like, hence only a warning.
    """
    front_01 = stats["front_min"] >= 0.0 and stats["front_max"] <= 1.0
    if (stats["zones_min"] >= -1e-3 and stats["zones_max"] <= 1.0 + 1e-3
            and stats["sum_error"] <= _SUM_TOLERANCE):
        front = " (and 'front' lies in [0, 1], as after a sigmoid)" if front_01 else ""
        raise InputError(
            "model returned probabilities, not logits: at every pixel of a batch the four "
            f"'zones' values lie in [0, 1] and sum to 1, as after a softmax{front}. predict "
            "applies the softmax and sigmoid itself; applied twice, zone probabilities flatten "
            "towards 0.25 and every front probability is at least 0.5. Return the logits: "
            "remove the final softmax/sigmoid from the model's forward. The contract: "
            f"{CONTRACT}."
        )
    if front_01:
        warnings.warn(
            f"model's 'front' output lies in [0, 1] over a whole batch "
            f"({stats['front_min']:.3g} to {stats['front_max']:.3g}), as probabilities do. "
            "predict applies a sigmoid to the front logits, which turns a probability p into "
            "sigmoid(p) >= 0.5: every pixel would look like front. If the model applies "
            "torch.sigmoid, return its input (the logits) instead; if these are logits, ignore "
            "this warning.",
            XcalvingWarning, stacklevel=2,
        )


def _raised_message(err: Exception, x: Any) -> str:
    """The error for a caller's module that raised when predict called it."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    text = text if len(text) <= 300 else text[:300] + " …"
    return (
        f"model raised {type(err).__name__} ({text}) when predict called it on a batch of "
        f"shape {tuple(x.shape)}, {x.dtype}, on {x.device}. The contract: {CONTRACT}. A model "
        "that needs other input (more bands, another dtype or size) must be wrapped in a module "
        "that adapts it."
    )


def _out_of_memory(err: Exception) -> bool:
    """Whether ``err`` is a lack of memory, which is no fault of the model's contract."""
    import torch  # heavy: torch, loaded on first use

    return isinstance(err, MemoryError | getattr(torch, "OutOfMemoryError", MemoryError))


def _precision_hint(precision: str) -> str:
    return ("; half precision can overflow: try precision='fp32'"
            if precision in ("bf16", "fp16") else "")
