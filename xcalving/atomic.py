"""Writing a target safely: a lock on it, a staging name per run, a verified swap.

- :func:`target_lock` -- an advisory lock (``fcntl.flock``) on ``.NAME.xcalving-lock`` beside
  the target, held while a run writes it. A second run (another process, or another thread of
  this one) is refused at once with :class:`~xcalving.errors.TargetBusyError`: it never deletes
  the first run's staging or swaps its own result over it. The kernel drops the lock when its
  process ends, even when killed, so a lock is never stale. Re-entrant within one thread.
- :func:`staging_name` -- the hidden sibling a run writes into, ``.NAME.xcalving-tmp-PID-RANDOM``:
  unique per run, so no two runs share one.
- :func:`staged_file` -- one file written beside its target, checked by a verifier (read back
  by its reader, or size and sha256 of the bytes meant: :func:`expect_bytes`), flushed to disk
  and only then moved over the target by :func:`os.replace`. A failure at any step (an
  exception, a disk that filled up, a writer that stopped short) leaves the target as it was.

:func:`xcalving.safety.staged` does the same for stores (folders), with the same lock and names.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from xcalving.errors import TargetBusyError, WriteVerificationError

try:
    import fcntl
except ImportError:  # not POSIX: no advisory locks, writes are still staged and verified
    fcntl = None  # type: ignore[assignment]

__all__ = ["expect_bytes", "file_digest", "is_url", "local_path", "lock_path", "staged_file",
           "staging_name", "target_lock", "write_bytes", "write_figure", "write_text"]

TMP_TAG = ".xcalving-tmp-"
LOCK_TAG = ".xcalving-lock"
_GUARD = threading.Lock()
_HELD: dict[str, list[int]] = {}  # lock path -> [thread ident, depth]
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)  # filesystems without flock


def is_url(path: Any) -> bool:
    """Whether ``path`` is a remote URL (``file://`` URLs count as local paths)."""
    text = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    return "://" in text and not text.startswith("file://")


def local_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a :class:`~pathlib.Path`, a ``file://`` prefix removed."""
    return Path(os.fspath(path).removeprefix("file://"))


def staging_name(target: Path, tag: str = TMP_TAG, suffix: str = "") -> Path:
    """A hidden sibling of ``target`` unique to this run: ``.NAME<tag>PID-RANDOM<suffix>``."""
    return target.with_name(f".{target.name}{tag}{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def lock_path(target: str | os.PathLike[str]) -> Path:
    """The lock file of ``target``: ``.NAME.xcalving-lock`` in its (resolved) folder."""
    path = Path(os.path.abspath(local_path(target)))
    return Path(os.path.realpath(path.parent)) / f".{path.name}{LOCK_TAG}"


# --- the lock -----------------------------------------------------------------------------------
@contextlib.contextmanager
def target_lock(target: str | os.PathLike[str], *, what: str = "path") -> Iterator[None]:
    """Hold the lock of ``target`` for the block; refuse at once when another run holds it.

    Raises
    ------
    TargetBusyError
        Another process, or another thread of this one, holds the lock (a ``BlockingIOError``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "pred.zarr"
    >>> with target_lock(out):
    ...     with target_lock(out):  # the same thread again: fine
    ...         pass
    """
    if is_url(target) or fcntl is None:
        yield
        return
    path = lock_path(target)
    if _reenter(path, target, what):
        try:
            yield
        finally:
            _leave(path)
        return
    fd = _acquire(path, target, what)
    try:
        yield
    finally:
        _leave(path)
        _release(path, fd)


def _reenter(path: Path, target: Any, what: str) -> bool:
    """True when this thread already holds the lock (counted); refuse another thread's."""
    with _GUARD:
        held = _HELD.get(str(path))
        if held is None:
            return False
        if held[0] != threading.get_ident():
            raise _busy(target, what, "another thread of this process")
        held[1] += 1
        return True


def _leave(path: Path) -> None:
    with _GUARD:
        held = _HELD.get(str(path))
        if held is not None:
            held[1] -= 1
            if held[1] <= 0:
                del _HELD[str(path)]


def _acquire(path: Path, target: Any, what: str) -> int:
    """Lock ``path`` (created if need be); -1 where the filesystem has no locks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(20):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise _busy(target, what, holder) from None
        except OSError as err:
            os.close(fd)
            if err.errno in _NO_LOCKS:
                return -1
            raise
        if _same_file(fd, path):  # not a file its last holder removed meanwhile
            _claim(fd, path)
            return fd
        os.close(fd)
    raise _busy(target, what, "runs that keep taking and releasing it")


def _claim(fd: int, path: Path) -> None:
    with _GUARD:
        _HELD[str(path)] = [threading.get_ident(), 1]
    os.ftruncate(fd, 0)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    os.write(fd, f"process {os.getpid()}, since {stamp}\n".encode())


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "a process that has not said which"


def _release(path: Path, fd: int) -> None:
    if fd < 0:
        return
    with contextlib.suppress(OSError):
        os.unlink(path)  # while still holding it: whoever opened it meanwhile sees it is gone
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _busy(target: Any, what: str, holder: str) -> TargetBusyError:
    return TargetBusyError(
        f"{what}: another xcalving run is writing {os.fspath(target)!r} ({holder}); two runs "
        "writing one target would delete or overwrite each other's work. Wait for that run to "
        "finish, or choose another path. (Its lock is released when it ends, even if killed.)")


# --- one file, staged and verified --------------------------------------------------------------
def file_digest(path: str | os.PathLike[str]) -> tuple[int, str]:
    """Size in bytes and hex sha256 of the file at ``path``, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for piece in iter(lambda: handle.read(1 << 20), b""):
            digest.update(piece)
    return os.path.getsize(path), digest.hexdigest()


def expect_bytes(data: bytes) -> Callable[[Path], None]:
    """A verifier for :func:`staged_file`: the file must hold exactly ``data`` (size, sha256)."""
    meant = (len(data), hashlib.sha256(data).hexdigest())

    def verify(path: Path) -> None:
        size, digest = file_digest(path)
        if (size, digest) != meant:
            raise WriteVerificationError(f"it holds {size:,} bytes (sha256 {digest[:12]}...) where "
                          f"{meant[0]:,} bytes (sha256 {meant[1][:12]}...) were written")
    return verify


@contextlib.contextmanager
def staged_file(target: str | os.PathLike[str], *, what: str = "path",
                verify: Callable[[Path], None] | None = None,
                seed: bool = False) -> Iterator[Path]:
    """Yield a staging path for one file; after the block, verify it and move it over ``target``.

    Parameters
    ----------
    target
        The file to write (its folder must exist).
    what
        How messages name the target.
    verify
        Called on the staged file before the swap; anything it raises refuses the swap
        (:class:`~xcalving.errors.WriteVerificationError`). E.g. a reader that reads it back,
        or :func:`expect_bytes`.
    seed
        Start from a copy of the existing target (to change part of it, e.g. one layer of a
        GeoPackage), so the target itself is never written in place.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> with staged_file(out, verify=expect_bytes(b"kept")) as tmp:
    ...     _ = tmp.write_bytes(b"kept")
    >>> out.read_bytes(), sorted(p.name for p in out.parent.iterdir())
    (b'kept', ['notes.txt'])
    """
    path = Path(os.path.abspath(local_path(target)))
    with target_lock(path, what=what):
        work = staging_name(path, suffix=path.suffix)
        try:
            if seed and path.is_file():
                shutil.copy2(path, work)
            yield work
            _swap_in(work, path, what, verify)
        finally:
            if os.path.lexists(work):  # only the file this call made
                os.remove(work)


def _swap_in(work: Path, path: Path, what: str,
             verify: Callable[[Path], None] | None) -> None:
    """Flush ``work`` to disk, verify it, then move it over ``path`` (and flush the folder)."""
    if not work.is_file():
        raise WriteVerificationError(f"{what}: nothing was written for {os.fspath(path)!r}; it "
                                     "is left as it was.")
    with open(work, "rb+") as handle:
        os.fsync(handle.fileno())
    try:
        if verify is not None:
            verify(work)
    except Exception as err:
        raise WriteVerificationError(
            f"{what}: the file written for {os.fspath(path)!r} does not read back as written "
            f"({err}); {os.fspath(path)!r} is left as it was. Is the disk full? Free some "
            "space and run again.") from err
    os.replace(work, path)
    with contextlib.suppress(OSError):  # the rename itself reaches the disk
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def write_bytes(target: str | os.PathLike[str], data: bytes, *, what: str = "path") -> None:
    """Write ``data`` to ``target`` through :func:`staged_file`, verified by size and sha256."""
    with staged_file(target, what=what, verify=expect_bytes(data)) as tmp:
        _put(tmp, data)


def _put(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def write_text(target: str | os.PathLike[str], text: str, *, what: str = "path") -> None:
    """Write ``text`` (UTF-8) to ``target`` through :func:`write_bytes`."""
    write_bytes(target, text.encode(), what=what)


def write_figure(target: str | os.PathLike[str], figure: Any, *, what: str = "path",
                 **savefig: Any) -> None:
    r"""Save a matplotlib ``figure`` to ``target`` through :func:`write_bytes` (format by suffix).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from matplotlib.figure import Figure
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "empty.png"
    >>> write_figure(out, Figure(figsize=(1, 1)))
    >>> out.read_bytes()[:4]
    b'\x89PNG'
    """
    buffer = io.BytesIO()
    savefig.setdefault("format", Path(os.fspath(target)).suffix.lstrip(".") or "png")
    figure.savefig(buffer, **savefig)
    write_bytes(target, buffer.getvalue(), what=what)
