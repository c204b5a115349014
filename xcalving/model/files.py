"""Weights files on disk: refusing what is not a regular file, and their sha256."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from xcalving.errors import InputError, WeightsNotFoundError

__all__ = ["check_regular_file", "sha256_file"]


def _file_kind(mode: int) -> str:
    """Name the kind of a non-regular file, for an error message."""
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _refuse_irregular(info: os.stat_result, path: str | os.PathLike[str], caller: str) -> None:
    if not stat.S_ISREG(info.st_mode):
        inside = sorted(Path(path).glob("*.safetensors")) if stat.S_ISDIR(info.st_mode) else []
        hint = (f" It holds {[p.name for p in inside[:3]]}: pass one of them, e.g. "
                f"{os.fspath(inside[0])!r}." if inside else "")
        raise InputError(
            f"{caller}: {os.fspath(path)!r} is {_file_kind(info.st_mode)}, not a regular file; "
            f"pass the path of a .safetensors weights file.{hint}"
        )


def check_regular_file(path: str | os.PathLike[str], caller: str = "model") -> os.stat_result:
    """Return ``os.stat(path)`` if ``path`` is an existing regular file, else raise.

    Devices (``/dev/zero`` never ends), named pipes (opening one blocks until something
    writes) and directories are refused before anything opens them. Links are followed.

    Raises
    ------
    WeightsNotFoundError
        If nothing is at ``path``.
    InputError
        If ``path`` is a directory, device, pipe or socket.
    """
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError) as err:
        raise WeightsNotFoundError(
            f"{caller}: no weights file at {os.fspath(path)!r}. Check the path, or write one "
            f"with xcalving.model.save_model(model, path)."
        ) from err
    _refuse_irregular(info, path, caller)
    return info


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a regular file, read in 1 MiB pieces.

    The file is opened without blocking and checked to be a regular file on the open handle,
    so a device (``/dev/zero``), a named pipe or a directory is refused instead of being read
    for ever (or waited on).

    Raises
    ------
    WeightsNotFoundError
        If nothing is at ``path``.
    InputError
        If ``path`` is a directory, device, pipe or socket.
    """
    check_regular_file(path, "sha256_file")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    digest = hashlib.sha256()
    with open(os.open(path, flags), "rb", closefd=True) as fh:
        _refuse_irregular(os.fstat(fh.fileno()), path, "sha256_file")  # swapped since stat()?
        for piece in iter(lambda: fh.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()
