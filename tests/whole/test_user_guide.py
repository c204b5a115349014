"""The user guide (docs/user_guide.rst) and the README's happy path run as written.

Every ``.. code-block:: python`` of the guide runs, in order, in one namespace, in an empty
folder; a block with ``:class: not-run`` is skipped, and a block that calls ``.explore(`` runs
only where folium and mapclassify (the ``explore`` extra) are installed. The README's first
Python block runs on GeoTIFFs written for it. Then ``frame.explore()`` on fronts, where the
extra is installed.
"""

from __future__ import annotations

import importlib.util
import re
import textwrap
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "user_guide.rst"
README = ROOT / "README.md"


def _has_explore() -> bool:
    return all(importlib.util.find_spec(name) for name in ("folium", "mapclassify"))


def rst_python_blocks(text: str) -> list[tuple[str, set[str]]]:
    """The code of every ``.. code-block:: python`` in ``text``, with its classes."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() != ".. code-block:: python":
            i += 1
            continue
        i += 1
        classes: set[str] = set()
        while i < len(lines) and lines[i].strip().startswith(":"):
            option = lines[i].strip()
            if option.startswith(":class:"):
                classes.update(option.split(":", 2)[2].split())
            i += 1
        body = []
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith("   ")):
            body.append(lines[i])
            i += 1
        blocks.append((textwrap.dedent("\n".join(body)).strip() + "\n", classes))
    return blocks


def markdown_python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_guide_has_the_steps_it_promises() -> None:
    blocks = rst_python_blocks(GUIDE.read_text(encoding="utf-8"))
    code = "".join(body for body, _ in blocks)
    for name in ("open_scenes", "calving.predict", "write_cube", "open_cube", "fronts(",
                 "box_from_centreline", "terminus_change", "terminus_plot", "write_fronts",
                 "front_map", ".explore("):
        assert name in code, name
    assert sum("not-run" in classes for _, classes in blocks) == 1


@pytest.mark.slow
def test_the_user_guide_runs_as_written(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "user_guide"}
    ran = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the guide's own output is checked, not its warnings
        for body, classes in rst_python_blocks(GUIDE.read_text(encoding="utf-8")):
            if "not-run" in classes or (".explore(" in body and not _has_explore()):
                continue
            exec(compile(body, f"{GUIDE.name} block {ran}", "exec"), namespace)
            ran += 1
    for name in ("s1", "pred.zarr", "terminus.png", "fronts.parquet", "fronts.gpkg",
                 "fronts.geojson", "fronts.fgb", "fronts_map.png"):
        assert (tmp_path / name).exists(), name
    frame, change = namespace["frame"], namespace["change"]
    assert len(frame) == 4 and not frame.geometry.is_empty.any()
    # the synthetic glacier retreats; the demo weights see it within a pixel or two
    truth = namespace["terminus_change"](namespace["truth"], namespace["box"])
    assert abs(change["position_m"] - truth["position_m"]).max() < 60.0
    assert change["change_m"].iloc[-1] < -300
    if _has_explore():
        assert (tmp_path / "fronts_map.html").stat().st_size > 5_000


@pytest.mark.slow
def test_the_readme_happy_path_runs(tmp_path, monkeypatch) -> None:
    from xcalving.data.synthetic import glacier_cube

    monkeypatch.chdir(tmp_path)
    cube, _ = glacier_cube(2, shape=(256, 256), resolution=20.0, seed=7)
    (tmp_path / "s1").mkdir()
    for scene in cube.sar:  # as RTC products hold it: linear power, no units tag
        power = (10 ** (scene / 10)).astype("float32")
        power.attrs = {}
        power.rio.to_raster(tmp_path / "s1" / f"S1_{str(scene.time.values)[:10]}.tif")
    code = markdown_python_blocks(README.read_text(encoding="utf-8"))[0]
    if not _has_explore():
        code = "\n".join(line for line in code.splitlines() if ".explore(" not in line)
    namespace: dict = {"__name__": "readme"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, "README.md", "exec"), namespace)
    assert len(namespace["frame"]) == 2
    assert (tmp_path / "pred.zarr").is_dir()


def test_explore_draws_fronts_on_a_web_map(tmp_path) -> None:
    pytest.importorskip("folium")
    pytest.importorskip("mapclassify")
    import xcalving
    from xcalving.data.synthetic import glacier_cube

    cube, _ = glacier_cube(2, shape=(128, 128), resolution=20.0, seed=7)
    frame = xcalving.fronts(cube[["zones"]], min_length_px=1)
    assert not frame.geometry.is_empty.any()
    m = frame.explore()
    m.save(tmp_path / "map.html")
    html = (tmp_path / "map.html").read_text(encoding="utf-8")
    assert "LineString" in html and "length_m" in html
