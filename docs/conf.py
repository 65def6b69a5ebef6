"""Sphinx configuration: pydata theme, Markdown pages (MyST), API reference from docstrings.

Build: ``nox -s docs`` (warnings are errors), or ``sphinx-build -W -b html docs docs/_build/html``
with ``pip install -e ".[docs]"``. The API pages and the user guide's page list are generated
at each build (docs/_ext/xmlp_docs.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent / "src"))  # the checkout's xmlp, installed or not

import xmlp  # noqa: E402

project = "xmlp"
author = "xmlp developers"
copyright = "xmlp developers, MIT licence"
release = xmlp.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "xmlp_docs",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_generated", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# Markdown: the pages are also read on GitHub, so they stay plain CommonMark plus tables
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
suppress_warnings = ["myst.xref_missing"]  # links to files outside docs/ (tests/, src/...)

# API reference: Google-style docstrings ("Args:"), types from the signatures
autosummary_generate = True
autosummary_ignore_module_all = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_mock_imports = ["cupy", "torch", "jax", "dask", "distributed", "sklearn", "matplotlib"]
napoleon_google_docstring = True
napoleon_numpy_docstring = True
napoleon_use_rtype = False
add_module_names = False

html_theme = "pydata_sphinx_theme"
html_title = f"xmlp {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {page: [] for page in ("index", "getting-started", "errors", "performance",
                                      "development")}
