"""Downloading CaFFe from PANGAEA: a sha256-checked fetch, then an extraction kept inside dest."""

from __future__ import annotations

import os
import re
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from xcalving.errors import InputError, TargetExistsError, UnsafeFileError, require

__all__ = ["CAFFE_SHA256", "CAFFE_URL", "download_caffe"]

#: Where PANGAEA serves the CaFFe archive (record doi:10.1594/PANGAEA.940950).
CAFFE_URL = "https://download.pangaea.de/dataset/940950/files/data_raw.zip"
#: SHA-256 of ``data_raw.zip``. Unknown to xcalving: ``None`` makes :func:`download_caffe` print
#: the hash of what it fetched and wait for you to confirm it by passing ``sha256=``.
CAFFE_SHA256: str | None = None


def _import_pooch() -> Any:
    return require("pooch", extra=None, what="download_caffe")


def _fetch(url: str, dest: Path, sha256: str | None, progress: bool) -> Path:
    """Download the archive into ``dest`` (pooch skips it when a verified copy is there)."""
    pooch = _import_pooch()
    known = None if sha256 is None else f"sha256:{sha256.lower()}"
    try:
        path = Path(pooch.retrieve(url, known_hash=known, fname="data_raw.zip", path=dest,
                                   progressbar=progress))
    except ValueError as err:  # pooch's hash mismatch; it has deleted the download already
        raise UnsafeFileError(
            f"download of {url} failed verification against sha256={sha256!r}: {err} "
            "Nothing was extracted. Check the hash (or the URL) and try again."
        ) from err
    if sha256 is None:
        digest = pooch.file_hash(str(path), alg="sha256")
        print(f"sha256 of {path}: {digest}")
        raise UnsafeFileError(
            f"downloaded {path} (sha256 {digest}) but did not extract it: no sha256 was given to "
            "check it against. Compare the hash with a trusted source, then call "
            f"download_caffe({os.fspath(dest)!r}, sha256={digest!r}) to extract it (the file is "
            "not downloaded again)."
        )
    return path


def _check_member(info: zipfile.ZipInfo, archive: Path, dest: Path) -> None:
    name = info.filename.replace("\\", "/")
    escapes = (name.startswith("/") or re.match(r"^[A-Za-z]:", name) is not None
               or ".." in PurePosixPath(name).parts
               or not (dest / name).resolve().is_relative_to(dest.resolve()))
    if escapes or stat.S_ISLNK(info.external_attr >> 16):
        raise UnsafeFileError(
            f"{os.fspath(archive)!r}: member {info.filename!r} is a link or would be written "
            f"outside {os.fspath(dest)!r}; nothing was extracted. The archive is damaged or "
            "malicious: delete it and download it again from a trusted source."
        )


def _extract_safely(archive: Path, dest: Path) -> None:
    """Check every member first, then extract: a bad member means nothing is written."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as err:
        raise InputError(f"{os.fspath(archive)!r} is not a zip archive ({err}); delete it and "
                         "download it again.") from err
    with zf:
        for info in zf.infolist():
            _check_member(info, archive, dest)
        names = [n for n in zf.namelist() if not n.endswith("/")]
        # the archive may or may not wrap its folders in data_raw/; the result is the same
        nested = all(n.startswith("data_raw/") for n in names)
        zf.extractall(dest if nested else dest / "data_raw")


def download_caffe(dest: str | os.PathLike[str], *, url: str = CAFFE_URL,
                   sha256: str | None = CAFFE_SHA256, progress: bool = True) -> Path:
    """Download CaFFe's ``data_raw.zip`` from PANGAEA and unzip it safely into ``dest``.

    Parameters
    ----------
    dest
        Folder that receives ``data_raw.zip`` and ``data_raw/``.
    url
        Where to fetch the archive (default: PANGAEA, doi:10.1594/PANGAEA.940950).
    sha256
        Expected SHA-256 of the archive. ``None`` (the default, because xcalving does not know
        the hash of the published file): the archive is downloaded, its hash printed, and
        :class:`~xcalving.errors.UnsafeFileError` raised without extracting; confirm by calling
        again with ``sha256=`` that hash — the download is reused.
    progress
        Show a download progress bar.

    Returns
    -------
    pathlib.Path
        ``dest / "data_raw"``.

    Raises
    ------
    FileExistsError
        When ``dest/data_raw`` exists and is not empty (it is never overwritten).
    UnsafeFileError
        On a hash mismatch, without ``sha256``, or when a member of the archive is a link or
        would land outside ``dest`` (absolute path, ``..``): then nothing is extracted.

    Notes
    -----
    The data are CC BY 4.0: cite Gourmelon et al. (2022), ESSD 14, 4287–4313.
    """
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", str(sha256)):
        raise InputError(f"sha256 must be 64 hexadecimal digits; got {sha256!r}.")
    dest = Path(dest)
    data_raw = dest / "data_raw"
    if data_raw.is_dir() and any(data_raw.iterdir()):
        raise TargetExistsError(f"dest: {os.fspath(data_raw)!r} exists and is not empty; "
                              "download_caffe never overwrites it. Choose another dest, or "
                              "remove that folder first.")
    dest.mkdir(parents=True, exist_ok=True)
    _extract_safely(_fetch(url, dest, sha256, progress), dest)
    return data_raw
