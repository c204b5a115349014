"""The documentation builds with warnings as errors, from the numpydoc docstrings, offline; the
README stays a short user's page; environment.yml follows pyproject.toml."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("numpydoc")
    conf = (DOCS / "conf.py").read_text()
    assert "sphinx.ext.intersphinx" not in conf  # the build must not touch the network
    out = tmp_path / "html"
    cmd = [sys.executable, "-m", "sphinx", "-q", "-W", "-b", "html",
           "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                            cwd=DOCS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    api = (out / "api.html").read_text(encoding="utf-8")
    for name in ("xcalving.predict", "xcalving.open_scenes", "mean_distance_error",
                 "CalvingDataArrayAccessor", "glacier_cube", "write_fronts", "terminus_plot",
                 "box_from_centreline", "weights_table", "front_map"):
        assert name in api, name
    advanced = (out / "advanced.html").read_text(encoding="utf-8")
    for name in ("PatchStream", "ASPPUNet", "PerformanceWarning", "plan_windows",
                 "missing_blocks", "check_same_grid", "ocean_next_to_glacier", "recipe_loss",
                 "resolve_device", "caffe_to_zarr", "write_fixture_tree", "TrainConfig"):
        assert name in advanced, name
    import xcalving.errors

    for name, obj in vars(xcalving.errors).items():  # every exception and warning class
        if isinstance(obj, type) and issubclass(obj, Exception | Warning):
            if obj.__module__ == "xcalving.errors":
                assert f"xcalving.errors.{name}" in advanced, name
    assert "PatchStream" not in api  # the training surface stays off the user's page
    for page in (api, advanced):
        assert "_axis_starts" not in page  # private names stay out
    for page in ("user_guide", "design", "reliability"):
        assert (out / f"{page}.html").is_file(), page
    tiling = (out / "tiling.html").read_text(encoding="utf-8")
    assert "redundancy" in tiling and "spatial_chunks" in tiling
    assert (out / "_images" / "demo_fronts_map.png").is_file()


def test_every_page_is_in_the_index():
    index = (DOCS / "index.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^   (\w+)$", index, flags=re.M))
    pages = {path.stem for path in DOCS.glob("*.rst")} - {"index"}
    assert pages <= listed, f"pages missing from the toctree of docs/index.rst: {pages - listed}"


def test_readme_is_short_and_predicts_early():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move detail to docs/"
    head = "\n".join(lines[:60])
    assert re.search(r"\.calving\.predict\(|xcalving\.predict\(", head), \
        "README must call predict within its first 60 lines"
    for section in ("## Install", "## Adapt to your glacier", "## Shipped weights",
                    "## Documentation", "## Citing", "## Licence and data"):
        assert section in lines, section
    text = "\n".join(lines)
    assert "CC BY 4.0" in text and "Gourmelon" in text  # CaFFe's attribution stays


def test_readme_links_point_at_files():
    text = README.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if not target.startswith(("http://", "https://")):
            assert (ROOT / target).exists(), target


def test_design_page_lists_every_module():
    design = (DOCS / "design.rst").read_text(encoding="utf-8")
    package = ROOT / "xcalving"
    missing = [str(path.relative_to(package)) for path in sorted(package.rglob("*.py"))
               if f"``{path.relative_to(package).as_posix()}``" not in design]
    assert not missing, f"docs/design.rst has no line for {missing}"


def _requirement(spec: str) -> tuple[str, str]:
    match = re.match(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(>=\s*[\w.]+)?", spec.strip())
    assert match, spec
    return match.group(1).lower(), (match.group(3) or "").replace(" ", "")


def test_environment_yml_has_the_core_dependencies_with_their_lower_bounds():
    yaml = pytest.importorskip("yaml")
    core = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"][0] == "conda-forge"
    conda = dict(_requirement(spec) for spec in env["dependencies"] if isinstance(spec, str))
    renamed = {"torch": "pytorch-cpu", "matplotlib": "matplotlib-base"}  # conda-forge names
    for spec in core:
        name, bound = _requirement(spec)
        name = renamed.get(name, name)
        assert name in conda, f"environment.yml lacks {name}"
        assert conda[name] == bound, f"{name}: {conda[name]!r} != pyproject's {bound!r}"
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    assert "-e ." in pip
