"""Sphinx configuration for the xcalving documentation (``make docs``)."""

from __future__ import annotations

import os
import sys
from importlib.metadata import PackageNotFoundError, version

# Build from the source tree even where xcalving is not installed.
sys.path.insert(0, os.path.abspath(".."))

project = "xcalving"
author = "the xcalving authors"
copyright = "the xcalving authors; code Apache-2.0, CaFFe-derived data and weights CC BY 4.0"
try:
    release = version("xcalving")
except PackageNotFoundError:
    release = "0+unknown"
version = release

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",
]

# No intersphinx and nothing else that fetches: the build must work offline (tests/whole/test_docs.py).
exclude_patterns = ["_build"]
templates_path: list[str] = []
root_doc = "index"
language = "en"

# autodoc: signatures keep their type hints; members in source order; never document private names.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"undoc-members": False, "private-members": False}
autodoc_preserve_defaults = True

# numpydoc renders the sections; members are listed by explicit directives in api.rst, so the
# class member tables (which would need autosummary stub pages) are off.
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = False
numpydoc_xref_param_type = False

html_theme = "alabaster"
html_title = f"xcalving {release}"
html_static_path: list[str] = []
html_theme_options = {
    "description": "Glacier calving fronts from SAR datacubes, lazily",
    "fixed_sidebar": True,
}
