"""Fuzzing (hypothesis) of what reads untrusted text and bytes: the label reader and the CLI.

The scene-name parser is fuzzed in tests/data/test_caffe.py. The promise checked here: whatever
the input, the answer is a correct result or one of xcalving's clear errors naming the file or
the argument, never a traceback from PIL, numpy or argparse internals.
``FUZZ_EXAMPLES=1500 pytest tests/whole/test_fuzz.py`` searches harder than the suite's default.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from xcalving.data.caffe import read_label
from xcalving.errors import InputError
from xcalving.zones import ZONE_GREYS

_SETTINGS = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 60)), deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


def _png_bytes(values: np.ndarray, mode: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    image = Image.fromarray(values.astype(np.uint8), mode="L")
    if mode != "L":
        image = image.convert(mode)
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


# --- the label reader ----------------------------------------------------------------------------
@_SETTINGS
@given(data=st.binary(max_size=2048), header=st.booleans(), kind=st.sampled_from(["zones",
                                                                                  "front"]))
def test_label_reader_on_arbitrary_bytes(folder, data, header, kind):
    """Random bytes, with or without a PNG signature: an InputError naming the file, or a label."""
    path = folder / "fuzz_zones.png"
    path.write_bytes((b"\x89PNG\r\n\x1a\n" if header else b"") + data)
    try:
        labels = read_label(path, kind)
    except InputError as err:
        assert str(path) in str(err)
    else:  # only a valid grey PNG with legal values gets here
        assert labels.dtype == np.uint8 and labels.max(initial=0) <= 3


@_SETTINGS
@given(
    shape=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    greys=st.lists(st.integers(0, 255), min_size=1, max_size=6),
    legal=st.booleans(), seed=st.integers(0, 2**16), mode=st.sampled_from(["L", "RGB", "P",
                                                                          "LA", "I;16"]),
    cut=st.one_of(st.none(), st.floats(0.05, 0.95)),
)
def test_label_reader_on_real_pngs(folder, shape, greys, legal, seed, mode, cut):
    """Grey PNGs of random values, modes and truncation: exact classes or an error naming them."""
    rng = np.random.default_rng(seed)
    palette = np.array(sorted(ZONE_GREYS) if legal else greys)
    values = palette[rng.integers(0, palette.size, shape)]
    data = _png_bytes(values, mode)
    if cut is not None:
        data = data[: max(1, int(len(data) * cut))]
    path = folder / f"fuzz_{mode}_zones.png"
    path.write_bytes(data)
    illegal = sorted(set(values.ravel().tolist()) - set(ZONE_GREYS))
    try:
        labels = read_label(path, "zones")
    except InputError as err:
        message = str(err)
        assert str(path) in message
        if cut is None and mode != "I;16":  # a whole 8-bit file: refused only for its values
            assert illegal, message
            assert f"{illegal[0]} (" in message
        return
    # decoded (a cut that keeps every pixel, e.g. only the end marker, may decode): exact
    assert not illegal and mode != "I;16"
    lookup = {g: k for k, g in enumerate(sorted(ZONE_GREYS))}
    np.testing.assert_array_equal(labels, np.vectorize(lookup.get)(values))


# --- the CLI -------------------------------------------------------------------------------------
_VALUES = st.one_of(
    st.sampled_from(["", "-1", "0", "1e9", "nan", "inf", "3.5", "abc", "model", "cuda", "auto",
                     "zones", "probability", "--", "-", "é", "../..", "/dev/null"]),
    st.integers(-5, 10**6).map(str),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=12),
)
_OPTIONS = {
    "predict": ["--out", "--model", "--variable", "--tile", "--overlap", "--batch-size",
                "--device", "--band", "--resolution", "--scaling", "--overwrite", "--resume"],
    "fronts": ["--out", "--gpkg", "--map", "--method", "--min-length", "--min-length-px",
               "--overwrite"],
    "caffe": ["--out", "--window", "--stride", "--unknown-spacing", "--overwrite"],
    "train": ["--out", "--width", "--epochs", "--patience", "--batch-size", "--lr",
              "--max-minutes", "--seed", "--val-glaciers", "--device", "--resume"],
    "tune": ["--out", "--n-trials", "--epochs", "--width", "--max-minutes", "--lr-range",
             "--batch-range", "--scheduler"],
}


@st.composite
def _argv(draw):
    command = draw(st.sampled_from(sorted(_OPTIONS)))
    # the input never exists, so no valid-looking call starts real work
    argv = [command, "MISSING/input.zarr"] if draw(st.booleans()) else [command]
    for option in draw(st.lists(st.sampled_from(_OPTIONS[command] + ["--bogus"]), max_size=5)):
        argv.append(option)
        if draw(st.booleans()):
            argv.append(draw(_VALUES))
    return argv


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 80)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(argv=_argv(), debug=st.booleans())
def test_cli_arguments(folder, argv, debug):
    """Any argument list: exit 1 with one line, or argparse's usage + error (exit 2)."""
    from xcalving.cli import main

    work = folder / "cli"
    work.mkdir(exist_ok=True)
    argv = [a.replace("MISSING", str(work / "missing")) for a in argv]
    assume(not debug)  # --debug re-raises by design; its own test is in test_cli.py
    cwd, stderr = os.getcwd(), io.StringIO()
    os.chdir(work)  # relative --out paths land in the scratch folder
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    finally:
        os.chdir(cwd)
    err = stderr.getvalue()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code in (1, 2), (argv, code, err)
    if code == 1:
        assert len(lines) == 1 and re.match(r"xcalving \w+: error: ", lines[0]), (argv, err)
        assert "(run again with --debug" not in lines[0], (argv, err)  # an expected error
    else:
        assert lines and "error:" in lines[-1], (argv, err)
    assert not (work / "missing").exists()  # nothing was created for a call that failed
