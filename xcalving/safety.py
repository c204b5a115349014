"""Safe writes: nothing the package did not make is ever deleted or overwritten.

The rules every writer in xcalving follows (``write_cube``, ``caffe_to_zarr``, the CLI, the demo):

1. A target is never an input: it may not be, hold or lie inside a path the data are read from
   (:func:`refuse_inputs`), checked before anything is written.
2. A new store is written beside the target, in a hidden sibling (``.NAME.xcalving-tmp-XXXX``),
   and moved into place only after it is complete (:func:`staged`); a failure removes the sibling,
   so a re-run starts clean and the old target, if any, is untouched.
3. Replacing (``mode="w"``, ``--overwrite``) is allowed only for a Zarr store or for a folder
   xcalving created and marked (:data:`MARKER`, listing what it wrote), never for an arbitrary
   folder, a file, the current folder, the home folder or the root (:func:`check_replaceable`).
4. Names Zarr cannot store faithfully are refused before writing (:func:`check_names`).

Remote targets (``s3://...``) have no atomic rename: they are written in place, and ``mode="w"``
still replaces only a Zarr store.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from xcalving.errors import InputError, UnsafeTargetError, XcalvingWarning

__all__ = ["MARKER", "UnsafeTargetError", "check_names", "check_replaceable", "check_target",
           "is_zarr_store", "mark_folder", "partial_path", "refuse_inputs", "staged"]

#: File at the root of a folder xcalving created: JSON naming the writer and its entries.
MARKER = ".xcalving-output"
_TMP_TAG = ".xcalving-tmp-"
_OLD_TAG = ".xcalving-old-"
_PARTIAL_TAG = ".xcalving-partial"
_ZARR_META = ("zarr.json", ".zgroup", ".zattrs", ".zarray")
_CHUNK_KEY = re.compile(r"^(c|[0-9]+([./][0-9]+)*)$")


def is_url(path: Any) -> bool:
    """Whether ``path`` is a remote URL (``file://`` URLs count as local paths)."""
    text = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    return "://" in text and not text.startswith("file://")


def local_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a :class:`~pathlib.Path`, a ``file://`` prefix removed."""
    text = os.fspath(path)
    return Path(text.removeprefix("file://"))


def is_zarr_store(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder with Zarr metadata (v3 or v2) at its root."""
    root = local_path(path)
    return root.is_dir() and any((root / name).is_file() for name in _ZARR_META)


def partial_path(target: str | os.PathLike[str]) -> Path:
    """Where a resumable run writes before it becomes ``target``: ``.NAME.xcalving-partial``."""
    path = Path(os.path.abspath(local_path(target)))  # "." has no name of its own
    return path.with_name(f".{path.name}{_PARTIAL_TAG}")


def _sibling(path: Path, tag: str) -> Path:
    return path.with_name(f".{path.name}{tag}{secrets.token_hex(4)}")


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
    return [name for name in entries if name not in known]


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
        if relation is None:
            continue
        exists = "already exists and " if not is_url(target) and os.path.lexists(target) else ""
        message = (f"{what}: {os.fspath(target)!r} {exists}{relation} the input "
                   f"{os.fspath(source)!r} the data are read from; writing there would destroy "
                   f"the input before it is read ({flag} never replaces an input). Choose another "
                   "path; to update a store in place, load the data first (ds.load()).")
        raise InputError(message)


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
        raise FileExistsError(
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
    import fsspec

    fs, root = fsspec.core.url_to_fs(str(url))
    return bool(fs.exists(root))


def _remote_is_store(url: Any) -> bool:
    import fsspec

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
    aside = _sibling(target, _OLD_TAG)
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
           check: Callable[[Path], None] | None = None) -> Iterator[Any]:
    """Yield a sibling path to write into; on success it becomes ``target``, on failure it goes.

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
        The sibling to write into (default: a new ``.NAME.xcalving-tmp-XXXX``).
    keep_on
        Exceptions after which the scratch is kept (a resumable run); any other removes it.
    check
        Called on an existing target before it is replaced (default :func:`check_replaceable`).

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
    work = scratch if scratch is not None else _sibling(path, _TMP_TAG)
    try:
        yield work
        if mode == "w-" and os.path.lexists(path):
            raise FileExistsError(f"{what}: {os.fspath(path)!r} appeared while writing; the result "
                                  f"is not moved there. Choose a new path, or pass {flag}.")
        publish(work, path, check=check or (lambda p: check_replaceable(p, what=what, flag=flag)))
    except keep_on:
        raise
    except BaseException:
        remove_tree(work)
        raise


def _remote_scratch(url: Any, mode: str) -> Any:
    """Remote stores are written in place: an old store (checked to be one) is removed first."""
    import fsspec

    if mode == "w" and _remote_exists(url):
        fs, root = fsspec.core.url_to_fs(str(url))
        fs.rm(root, recursive=True)
    return url
