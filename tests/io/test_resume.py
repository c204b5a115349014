"""Resuming as a library feature: ``write_cube(..., resume=True)`` (``xcalving predict --resume``
goes through the same module, ``xcalving.io.resume``)."""

import pytest

import xcalving
from xcalving.errors import InputError
from xcalving.io.lineage import input_fingerprint
from xcalving.safety import partial_path


def _pred(small_cube, net):
    cube, _ = small_cube
    pred = cube.sar.chunk({"time": 1}).calving.predict(net, tile=32, overlap=8)
    pred.attrs["input_fingerprint"] = input_fingerprint(cube)
    return pred


def test_write_cube_resume_writes_then_fills_only_what_is_missing(small_cube, net, tmp_path):
    out = tmp_path / "pred.zarr"
    pred = _pred(small_cube, net)
    xcalving.write_cube(pred, out, resume=True)
    assert not partial_path(out).exists()
    first = xcalving.open_cube(out).front_probability.values
    xcalving.write_cube(pred, out, resume=True)  # complete already: nothing to write
    assert (xcalving.open_cube(out).front_probability.values == first).all()


def test_write_cube_resume_needs_the_input_fingerprint(small_cube, net, tmp_path):
    pred = _pred(small_cube, net)
    del pred.attrs["input_fingerprint"]
    with pytest.raises(InputError, match="input_fingerprint"):
        xcalving.write_cube(pred, tmp_path / "pred.zarr", resume=True)


def test_write_cube_resume_refuses_another_input(small_cube, net, tmp_path):
    out = tmp_path / "pred.zarr"
    pred = _pred(small_cube, net)
    xcalving.write_cube(pred, out, resume=True)
    other = pred.assign_attrs(input_fingerprint="sha256:other")
    with pytest.raises(InputError, match="resume=True: the input cube holds other data"):
        xcalving.write_cube(other, out, resume=True)
