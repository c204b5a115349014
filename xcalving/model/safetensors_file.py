"""Reading a ``.safetensors`` file's header safely, without reading its tensor data.

Before anything is parsed, the path must be a regular file (a directory, device or pipe is
refused), must not be a pickle or ``torch.save()`` checkpoint (unpickling can run arbitrary
code), and must announce a header of at most :data:`MAX_HEADER_BYTES`. What the xcalving entries
of the header mean is :mod:`xcalving.model.header`'s business.
"""

from __future__ import annotations

import os
from pathlib import Path

from safetensors import SafetensorError, safe_open

from xcalving.errors import InputError, UnsafeFileError
from xcalving.model.files import check_regular_file

__all__ = ["MAX_HEADER_BYTES", "read_header"]

_PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".ckpt", ".pkl", ".pickle"})
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80
#: Largest safetensors header read (xcalving's own are a few kB; safetensors allows 100 MB).
MAX_HEADER_BYTES = 16 * 2**20
_CONVERT_HINT = (
    "To convert a checkpoint you trust, load it yourself in a trusted session with "
    "state = torch.load(path, weights_only=True), build the network, call "
    "model.load_state_dict(state) and write it with xcalving.model.save_model(model, "
    "'weights.safetensors')."
)


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    """Return whether ``head`` starts like a safetensors file of ``size`` bytes.

    A safetensors file is an 8-byte little-endian header length followed by a JSON object. This
    is checked before the pickle signature because the first length byte can be 0x80 too.
    """
    if len(head) < 9:
        return False
    header_len = int.from_bytes(head[:8], "little")
    return 8 + header_len <= size and head[8:9] == b"{"


def _check_file(path: str | os.PathLike[str], caller: str) -> Path:
    """Return ``path`` if it is an existing safetensors file, else raise the right error."""
    path = Path(path)
    size = check_regular_file(path, caller).st_size
    with open(path, "rb") as handle:
        head = handle.read(16)
    safetensors_like = _looks_like_safetensors(head, size)
    pickled = head.startswith(_ZIP_MAGIC) or (head[:1] == bytes([_PICKLE_PROTO]))
    if path.suffix.lower() in _PICKLE_SUFFIXES or (pickled and not safetensors_like):
        raise UnsafeFileError(
            f"{caller}: {str(path)!r} looks like a pickle or torch.save() checkpoint. xcalving "
            f"reads .safetensors files only, because loading a pickle file can run arbitrary "
            f"code. {_CONVERT_HINT}"
        )
    if not safetensors_like:
        raise InputError(
            f"{caller}: {str(path)!r} is not a safetensors file (unexpected header). Pass a "
            f"file written by xcalving.model.save_model."
        )
    header_len = int.from_bytes(head[:8], "little")
    if header_len > MAX_HEADER_BYTES:
        raise InputError(
            f"{caller}: {str(path)!r} has a safetensors header of {header_len:,} bytes; xcalving "
            f"reads headers of at most {MAX_HEADER_BYTES:,} bytes (its own are a few kB). The "
            f"file is damaged or not a weights file; rewrite it with xcalving.model.save_model."
        )
    return path


def read_header(path: str | os.PathLike[str],
                caller: str) -> tuple[Path, dict[str, str], dict[str, tuple[int, ...]]]:
    """Return the checked path, header metadata and stored tensor shapes of a safetensors file.

    No tensor data is read: the shapes come from the header.

    Parameters
    ----------
    path : str or os.PathLike
        A safetensors file.
    caller : str
        The argument or function named in error messages.

    Returns
    -------
    path : pathlib.Path
        ``path``, checked.
    metadata : dict of str to str
        The header metadata; empty when the file has none.
    shapes : dict of str to tuple of int
        The shape of every stored tensor, by name.

    Raises
    ------
    WeightsNotFoundError
        If there is no file at ``path``.
    UnsafeFileError
        If the file is a pickle or ``torch.save()`` checkpoint.
    InputError
        If ``path`` is not a regular file (a directory, device or pipe) or not a valid
        safetensors file, or its header is larger than :data:`MAX_HEADER_BYTES`.
    """
    path = _check_file(path, caller)
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = dict(handle.metadata() or {})
            shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except SafetensorError as err:
        raise InputError(
            f"{caller}: {str(path)!r} is not a valid safetensors file ({err}). Rewrite it "
            f"with xcalving.model.save_model."
        ) from err
    return path, meta, shapes
