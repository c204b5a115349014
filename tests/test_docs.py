"""The documentation builds with warnings as errors, from the numpydoc docstrings, offline."""

import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


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
    for name in ("xcalving.predict", "mean_distance_error", "CalvingDataArrayAccessor",
                 "glacier_cube", "PatchStream", "ASPPUNet", "PerformanceWarning"):
        assert name in api, name
    assert "_axis_starts" not in api  # private names stay out
    tiling = (out / "tiling.html").read_text(encoding="utf-8")
    assert "redundancy" in tiling and "spatial_chunks" in tiling
    assert (out / "_images" / "demo_fronts_map.png").is_file()
