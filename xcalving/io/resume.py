"""Resuming a prediction write: only the blocks a store lacks, never two runs or inputs mixed.

A resumable write goes into ``.NAME.xcalving-partial`` beside the target (kept when
interrupted), and moves there when every block is in it (:func:`write_partial`). Resuming
(:func:`resume`) first checks that the store was started on the same input data (the
``input_fingerprint`` attribute: a hash of every input byte) with the same settings and layout,
then writes only the missing blocks: predict is chunk-invariant, so a block written by either
run is the same. :func:`xcalving.write_cube` with ``resume=True`` and ``xcalving predict
--resume`` both go through here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xcalving.errors import InputError, WriteVerificationError
from xcalving.io.cube import missing_blocks, open_cube
from xcalving.safety import is_zarr_store, partial_path, remove_tree, staged

__all__ = ["SAME_RUN", "Flags", "resume", "resumable_store", "write_partial"]

#: Attributes that must match to add to an existing prediction: each changes values. The input's
#: path is not one of them (a moved cube keeps its fingerprint): ``input_fingerprint`` is compared
#: instead, and the variables and their stored dtypes by :func:`_check_same_layout`.
SAME_RUN = ("model_sha256", "tile", "overlap", "precision", "input_scaling", "resolution")

#: Computes a delayed write; the second argument names it (for a progress bar).
Run = Callable[[Any, str], None]


@dataclass(frozen=True)
class Flags:
    """How messages name the target, resuming and replacing (the CLI's flags, or arguments)."""

    out: str = "path"
    resume: str = "resume=True"
    overwrite: str = 'mode="w"'


def _compute(job: Any, what: str) -> None:
    import dask  # heavy: dask, loaded on first use

    dask.compute(job)


def resumable_store(out: Path) -> Path | None:
    """The store a resumed write continues: the partial one beside ``out``, ``out``, or None."""
    partial = partial_path(out)
    if partial.exists():
        return partial
    return out if is_zarr_store(out) else None


def write_partial(out: Path, pred: Any, *, overwrite: bool, run: Run = _compute,
                  flags: Flags = Flags()) -> None:
    """Write ``pred`` into the partial store beside ``out`` (kept if interrupted), then move it."""
    partial = partial_path(out)
    if partial.exists():  # overwrite: an interrupted run is started over
        remove_tree(partial)
    with staged(out, mode="w" if overwrite else "w-", what=flags.out, flag=flags.overwrite,
                scratch=partial, keep_on=(KeyboardInterrupt,),
                verify=lambda store: _check_complete(store, pred)) as scratch:
        job = pred.to_zarr(scratch, mode="w-", consolidated=False, zarr_format=3,
                           compute=False, write_empty_chunks=True)
        run(job, "write")


def resume(out: Path, pred: Any, *, overwrite: bool, run: Run = _compute,
           flags: Flags = Flags()) -> tuple[Path, int, int]:
    """Finish the partial store beside ``out`` (then move it there), or fill ``out`` itself.

    Returns the store written, the blocks written and the blocks of ``pred``.
    """
    store = resumable_store(out) or out
    _check_same_run(store, pred, flags)
    if store == out:
        written = _fill(out, pred, run)
    else:
        with staged(out, mode="w" if overwrite else "w-", what=flags.out, flag=flags.overwrite,
                    scratch=store, keep_on=(BaseException,),
                    verify=lambda done: _check_complete(done, pred)) as scratch:
            written = _fill(scratch, pred, run)
    return store, written, math.prod(len(c) for c in pred.chunksizes.values())


def _check_same_run(store: Path, pred: Any, flags: Flags) -> None:
    """Refuse to resume ``store`` with another input or other settings."""
    done = open_cube(store)
    again = f"Pass {flags.overwrite} instead of {flags.resume} to start over"
    if "input_fingerprint" not in done.attrs:
        raise InputError(f"{flags.resume}: {store} records no fingerprint of its input (not "
                         "written by this version of `xcalving predict`), so nothing shows the "
                         f"input is the same. {again}, or choose a new {flags.out}.")
    if not str(done.attrs["input_fingerprint"]).startswith("sha256:"):
        raise InputError(f"{flags.resume}: {store} was started on an input xcalving cannot read "
                         "in full (a remote store), so nothing shows its every byte is the same; "
                         f"{again[0].lower()}{again[1:]}.")
    if done.attrs["input_fingerprint"] != pred.attrs.get("input_fingerprint"):
        raise InputError(
            f"{flags.resume}: the input cube holds other data than when {store} was started (its "
            "fingerprint, a hash of every input byte, differs: regenerated or edited since, or "
            "started by another xcalving version?), and mixing blocks of two inputs would "
            f"corrupt the prediction. {again}, or choose a new {flags.out}."
        )
    _check_same_layout(store, done, pred, flags)
    same = all(done.attrs.get(k) == pred.attrs.get(k) for k in SAME_RUN)
    if not same or dict(done.sizes) != dict(pred.sizes):
        raise InputError(f"{flags.resume}: {store} holds another prediction (model, tile, "
                         "overlap, precision, scaling, resolution or shape differ); pass "
                         f"{flags.overwrite} to replace it or choose a new {flags.out}.")


def _check_same_layout(store: Path, done: Any, pred: Any, flags: Flags) -> None:
    """Refuse to resume ``store`` with other variables or another stored probability dtype."""
    have, want = sorted(map(str, done.data_vars)), sorted(map(str, pred.data_vars))
    if have != want:
        raise InputError(f"{flags.resume}: {store} holds the variables {have} and this run "
                         f"writes {want}; pass --outputs {' '.join(have)} to continue it, or "
                         f"{flags.overwrite} instead of {flags.resume} to start over.")
    for name in want:
        if not name.endswith("_probability"):
            continue
        stored = str(done[name].encoding.get("dtype", done[name].dtype))
        wanted = str(pred[name].encoding.get("dtype", pred[name].dtype))
        if stored != wanted:
            raise InputError(f"{flags.resume}: {store} stores {name} as {stored} and this run "
                             f"as {wanted}; pass --dtype {stored} to continue it, or "
                             f"{flags.overwrite} instead of {flags.resume} to start over.")


def _check_complete(store: Path, pred: Any) -> None:
    """Refuse to move ``store`` into place while any block of ``pred`` is missing from it."""
    missing = missing_blocks(store, pred)
    if missing:
        raise WriteVerificationError(f"{len(missing)} blocks are missing from it")


def _fill(store: Path, pred: Any, run: Run) -> int:
    """Write only the blocks ``store`` lacks (predict is chunk-invariant); return how many."""
    import dask  # heavy: dask, loaded on first use

    regions = missing_blocks(store, pred)
    writable = pred.drop_vars([c for c in pred.coords if not pred[c].dims])
    jobs = [writable.isel(region).to_zarr(store, region="auto", consolidated=False,
                                          write_empty_chunks=True, compute=False)
            for region in regions]
    run(dask.delayed(jobs), "resume")
    return len(regions)


def write_resumable(ds: Any, path: str | os.PathLike[str], *, mode: str) -> str:
    """:func:`xcalving.write_cube` with ``resume=True``: continue a store, or start one."""
    if "input_fingerprint" not in ds.attrs:
        raise InputError(
            "resume=True needs ds.attrs['input_fingerprint'], the identity of the input data "
            "(a resumed store must be continued from the same input); set it before writing, "
            "e.g. pred.attrs['input_fingerprint'] = xcalving.io.input_fingerprint(cube).")
    out = Path(os.fspath(path))
    if resumable_store(out) is not None:
        resume(out, ds, overwrite=mode == "w")
    else:
        write_partial(out, ds, overwrite=mode == "w")
    return os.fspath(path)
