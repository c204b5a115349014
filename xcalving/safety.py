"""Safe writes: nothing the package did not make is ever deleted or overwritten.

The rules every writer in xcalving follows (``write_cube``, ``caffe_to_zarr``, the CLI, the demo):

1. A target is never an input: it may not be, hold or lie inside a path the data are read from
   (:func:`refuse_inputs`), checked before anything is written.
2. A new store is written beside the target, in a hidden sibling unique to the run
   (``.NAME.xcalving-tmp-PID-XXXX``), while the run holds the target's lock
   (:func:`xcalving.atomic.target_lock`: a second run is refused, never left to delete the
   first one's work), and moved into place only after it is complete and verified
   (:func:`staged`); a failure removes the sibling, so a re-run starts clean and the old target,
   if any, is untouched. Single files do the same through :func:`xcalving.atomic.staged_file`.
3. Replacing (``mode="w"``, ``--overwrite``) is allowed only for a Zarr store or for a folder
   xcalving created and marked (:data:`MARKER`, listing what it wrote), never for an arbitrary
   folder, a file, the current folder, the home folder or the root (:func:`check_replaceable`).
4. Names Zarr cannot store faithfully are refused before writing (:func:`check_names`).

Remote targets (``s3://...``) have no atomic rename: they are written in place, and ``mode="w"``
still replaces only a Zarr store.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import shutil
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from xcalving.atomic import is_url, local_path, staging_name, target_lock
from xcalving.errors import (
    InputError,
    TargetExistsError,
    UnsafeTargetError,
    WriteVerificationError,
    XcalvingWarning,
)

__all__ = ["MARKER", "UnsafeTargetError", "check_names", "check_replaceable", "check_target",
           "is_zarr_store", "mark_folder", "partial_path", "refuse_inputs", "staged"]

#: File at the root of a folder xcalving created: JSON naming the writer and its entries.
MARKER = ".xcalving-output"
_OLD_TAG = ".xcalving-old-"
_PARTIAL_TAG = ".xcalving-partial"
_ZARR_META = ("zarr.json", ".zgroup", ".zattrs", ".zarray")
_CHUNK_KEY = re.compile(r"^(c|[0-9]+([./][0-9]+)*)$")


def is_zarr_store(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder with Zarr metadata (v3 or v2) at its root."""
    root = local_path(path)
    return root.is_dir() and any((root / name).is_file() for name in _ZARR_META)


def partial_path(target: str | os.PathLike[str]) -> Path:
    """Where a resumable run writes before it becomes ``target``: ``.NAME.xcalving-partial``."""
    path = Path(os.path.abspath(local_path(target)))  # "." has no name of its own
    return path.with_name(f".{path.name}{_PARTIAL_TAG}")


# --- what a target may be -----------------------------------------------------------------------
def _protected(path: Path) -> str | None:
    """Why ``path`` may never be replaced, or None: the root, home, the current folder or above."""
    real = Path(os.path.realpath(path))
    if real == Path(real.anchor):
        return "the root of the filesystem"
    if real == Path.home().resolve():
        return "your home folder"
    cwd = Path.cwd().resolve()
    if cwd == real or cwd.is_relative_to(real):
        return "the current folder (or a folder holding it)"
    return None


def _manifest(path: Path) -> dict[str, Any] | None:
    """The marker of a folder xcalving created, or None when there is none (or it is unreadable)."""
    try:
        marker = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and isinstance(marker.get("entries"), list) else None


def _foreign(path: Path) -> list[str] | None:
    """Root entries of ``path`` xcalving did not write; None when ``path`` is not ours to judge."""
    entries = sorted(p.name for p in path.iterdir())
    if is_zarr_store(path):
        return [name for name in entries if not (name.startswith(".") or name in _ZARR_META
                                                  or _CHUNK_KEY.match(name)
                                                  or (path / name).is_dir())]
    marker = _manifest(path)
    if marker is None:
        return None
    known = {*map(str, marker["entries"]), MARKER}
    # hidden staging and lock files of xcalving's own (killed) runs are not the user's
    return [name for name in entries if name not in known
            and not (name.startswith(".") and ".xcalving-" in name)]


def check_replaceable(path: str | os.PathLike[str], *, what: str = "path",
                      flag: str = "mode='w'") -> None:
    """Refuse to replace ``path`` unless it is a Zarr store or a folder xcalving created.

    Raises
    ------
    UnsafeTargetError
        ``path`` is a file, an arbitrary folder, a marked folder with entries added since, or
        the root, home or current folder.
    """
    target = local_path(path)
    reason = _protected(target)
    if reason is None and not target.is_dir():
        reason = "a file, not a Zarr store"
    if reason is None:
        foreign = _foreign(target)
        if foreign is None:
            reason = "a folder that is neither a Zarr store nor one xcalving created"
        elif foreign:
            reason = f"a folder that holds files xcalving did not write ({', '.join(foreign[:3])})"
    if reason is not None:
        message = (f"{what}: {os.fspath(path)!r} is {reason}; {flag} replaces only a Zarr store "
                   f"or a folder xcalving created (marked by {MARKER}). Choose a new path, or "
                   "move that one away yourself if you mean to replace it.")
        raise UnsafeTargetError(message)


def mark_folder(path: str | os.PathLike[str], written_by: str) -> None:
    """Mark ``path`` as xcalving's, listing its current entries (only those may be replaced)."""
    folder = local_path(path)
    entries = sorted(p.name for p in folder.iterdir() if p.name != MARKER)
    text = json.dumps({"written_by": written_by, "entries": entries}, indent=1)
    (folder / MARKER).write_text(text + "\n")


def marked_by(path: str | os.PathLike[str]) -> str | None:
    """Who marked ``path`` (e.g. ``"xcalving demo"``), or None when it carries no marker."""
    marker = _manifest(local_path(path))
    return None if marker is None else str(marker.get("written_by"))


# --- targets and inputs -------------------------------------------------------------------------
def _parts(path: Any) -> tuple[str, ...]:
    if is_url(path):
        return tuple(p for p in str(path).rstrip("/").split("/") if p)
    return Path(os.path.realpath(local_path(path))).parts


def _relation(target: tuple[str, ...], source: tuple[str, ...]) -> str | None:
    if target == source:
        return "is"
    if source[:len(target)] == target:
        return "holds"
    if target[:len(source)] == source:
        return "lies inside"
    return None


def refuse_inputs(target: str | os.PathLike[str], inputs: Iterable[Any], *, what: str = "path",
                  flag: str = "mode='w'") -> None:
    """Refuse a ``target`` that is, holds or lies inside one of ``inputs`` (paths or URLs).

    Raises
    ------
    InputError
        Writing there would destroy data before (or while) they are read.
    """
    mine = _parts(target)
    for source in inputs:
        relation = _relation(mine, _parts(source))
        if relation is None and _matches_pattern(target, source):
            _refuse_pattern_match(target, source, what)
        if relation is None:
            continue
        exists = "already exists and " if not is_url(target) and os.path.lexists(target) else ""
        message = (f"{what}: {os.fspath(target)!r} {exists}{relation} the input "
                   f"{os.fspath(source)!r} the data are read from; writing there would destroy "
                   f"the input before it is read ({flag} never replaces an input). Choose another "
                   "path; to update a store in place, load the data first (ds.load()).")
        raise InputError(message)


def _matches_pattern(target: Any, source: Any) -> bool:
    """Whether the local glob pattern ``source`` matches ``target`` or a folder holding it."""
    text = os.fspath(source) if isinstance(source, os.PathLike) else str(source)
    if is_url(text) or is_url(target) or not re.search(r"[*?\[]", text) \
            or os.path.lexists(text):
        return False
    pattern = Path(os.path.abspath(local_path(text))).parts
    path = Path(os.path.abspath(local_path(target))).parts
    return len(path) >= len(pattern) and all(
        fnmatch.fnmatchcase(part, glob) for part, glob in zip(path, pattern, strict=False))


def _refuse_pattern_match(target: Any, source: Any, what: str) -> None:
    raise InputError(f"{what}: {os.fspath(target)!r} matches the input pattern "
                     f"{os.fspath(source)!r} (or lies in a folder it matches), so it would be "
                     "read as an input: by the next run of the same command, or by this one. "
                     "Choose a path outside what the pattern matches, e.g. beside the inputs' "
                     "folder.")


def check_target(target: str | os.PathLike[str], *, mode: str, inputs: Iterable[Any] = (),
                 what: str = "path", flag: str = "mode='w'") -> None:
    """Everything :func:`staged` will need, checked before anything is written.

    ``mode="w-"`` refuses any existing target; ``"w"`` only what :func:`check_replaceable`
    refuses; both refuse a target that overlaps an input.
    """
    refuse_inputs(target, inputs, what=what, flag=flag)
    exists = _remote_exists(target) if is_url(target) else os.path.lexists(local_path(target))
    if not exists:
        return
    if mode == "w-":
        raise TargetExistsError(
            f"{what}: {os.fspath(target)!r} already exists and xcalving never overwrites without "
            f"{flag}; choose a new path, or pass {flag} to replace it."
        )
    if is_url(target):
        if not _remote_is_store(target):
            raise UnsafeTargetError(f"{what}: {target!r} is not a Zarr store; {flag} replaces "
                                    "only a Zarr store. Choose a new path.")
        return
    check_replaceable(target, what=what, flag=flag)


def _remote_exists(url: Any) -> bool:
    import fsspec  # heavy: fsspec, loaded on first use

    fs, root = fsspec.core.url_to_fs(str(url))
    return bool(fs.exists(root))


def _remote_is_store(url: Any) -> bool:
    import fsspec  # heavy: fsspec, loaded on first use

    fs, root = fsspec.core.url_to_fs(str(url))
    return any(fs.exists(f"{root.rstrip('/')}/{name}") for name in _ZARR_META)


# --- names --------------------------------------------------------------------------------------
def _name_problem(name: Any) -> str | None:
    if not isinstance(name, str):
        return f"names must be strings, not {type(name).__name__}"
    if not name.strip():
        return "it is empty"
    if "/" in name or "\\" in name:
        return ("'/' and '\\' separate groups in a store, so it would land in a sub-group and be "
                "gone when the store is opened again")
    if name != name.strip():
        return "leading or trailing whitespace is dropped or mangled by some filesystems"
    if name.startswith("__"):
        return "names starting with '__' are reserved by Zarr"
    if set(name) == {"."}:
        return "a name of only dots is a path component"
    return None


def check_names(ds: Any) -> None:
    r"""Refuse variable (and coordinate) names a Zarr store cannot keep.

    Raises
    ------
    InputError
        Names that are not strings, empty, contain ``/`` or ``\\``, have leading or trailing
        whitespace, start with ``__`` or are only dots; the message names the ``ds.rename`` fix.
    """
    for name in ds.variables:
        problem = _name_problem(name)
        if problem is not None:
            fixed = re.sub(r"[/\\]+", "_", str(name)).strip().lstrip("_").strip(".") or "data"
            raise InputError(f"variable name {name!r} cannot be stored in Zarr: {problem}. Rename "
                             f"it before writing, e.g. ds = ds.rename({{{name!r}: {fixed!r}}}).")


# --- writing beside and swapping in -------------------------------------------------------------
def remove_tree(path: str | os.PathLike[str]) -> None:
    """Remove a file, link or folder xcalving wrote; warn (never raise) when that fails."""
    target = local_path(path)
    try:
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.exists():
            shutil.rmtree(target)
    except OSError as err:
        warnings.warn(f"could not remove {os.fspath(target)!r} ({err}); remove it yourself.",
                      XcalvingWarning, stacklevel=2)


def publish(scratch: Path, target: Path, *, check: Callable[[Path], None]) -> None:
    """Move the finished ``scratch`` to ``target``; an old target is moved aside, then removed."""
    if not os.path.lexists(target):
        os.rename(scratch, target)
        return
    check(target)  # it may have changed since the write began
    aside = staging_name(target, _OLD_TAG)
    os.rename(target, aside)
    try:
        os.rename(scratch, target)
    except BaseException:
        os.rename(aside, target)
        raise
    remove_tree(aside)


@contextlib.contextmanager
def staged(target: str | os.PathLike[str], *, mode: str = "w-", what: str = "path",
           flag: str = "mode='w'", scratch: Path | None = None,
           keep_on: tuple[type[BaseException], ...] = (),
           check: Callable[[Path], None] | None = None,
           verify: Callable[[Path], None] | None = None) -> Iterator[Any]:
    """Yield a sibling path to write into; on success it becomes ``target``, on failure it goes.

    The target's lock (:func:`xcalving.atomic.target_lock`) is held throughout: a second run
    writing the same target is refused at once (:class:`~xcalving.errors.TargetBusyError`).

    Parameters
    ----------
    target
        Where the result should end up; check it first with :func:`check_target`.
    mode
        ``"w-"``: ``target`` must not exist when the result is moved in; ``"w"``: an existing
        ``target`` that ``check`` accepts is replaced (moved aside, then removed).
    what, flag
        How messages name the target and the option that replaces it.
    scratch
        The sibling to write into (default: a new ``.NAME.xcalving-tmp-PID-XXXX``, unique to
        this run).
    keep_on
        Exceptions after which the scratch is kept (a resumable run); any other removes it.
    check
        Called on an existing target before it is replaced (default :func:`check_replaceable`).
    verify
        Called on the finished scratch before it is moved in; anything it raises keeps the old
        target (:class:`~xcalving.errors.WriteVerificationError`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "result"
    >>> with staged(out) as tmp:
    ...     tmp.mkdir()
    ...     _ = (tmp / "a.txt").write_text("done")
    >>> sorted(p.name for p in out.parent.iterdir()), (out / "a.txt").read_text()
    (['result'], 'done')
    """
    if is_url(target):
        yield _remote_scratch(target, mode)
        return
    path = Path(os.path.abspath(local_path(target)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with target_lock(path, what=what):
        work = scratch if scratch is not None else staging_name(path)
        try:
            yield work
            _verified(work, path, what, verify)
            if mode == "w-" and os.path.lexists(path):
                raise TargetExistsError(f"{what}: {os.fspath(path)!r} appeared while writing; the "
                                      f"result is not moved there. Choose a new path, or pass "
                                      f"{flag}.")
            publish(work, path,
                    check=check or (lambda p: check_replaceable(p, what=what, flag=flag)))
        except keep_on:
            raise
        except BaseException:
            remove_tree(work)
            raise


def _verified(work: Path, path: Path, what: str, verify: Callable[[Path], None] | None) -> None:
    """Run ``verify`` on the finished ``work``; its failure is a WriteVerificationError."""
    if verify is None:
        return
    try:
        verify(work)
    except WriteVerificationError:
        raise
    except Exception as err:
        raise WriteVerificationError(
            f"{what}: what was written for {os.fspath(path)!r} is incomplete ({err}); "
            f"{os.fspath(path)!r} is left as it was. Is the disk full? Free some space and run "
            "again.") from err


def _remote_scratch(url: Any, mode: str) -> Any:
    """Remote stores are written in place: an old store (checked to be one) is removed first."""
    import fsspec  # heavy: fsspec, loaded on first use

    if mode == "w" and _remote_exists(url):
        fs, root = fsspec.core.url_to_fs(str(url))
        fs.rm(root, recursive=True)
    return url
