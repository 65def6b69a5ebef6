"""The site's API reference and navigation cover every public name and every page.

The public names are read here from the source files (each public module's ``__all__``), not
from the generator in docs/_ext/xmlp_docs.py, so a module the generator missed fails this test.
The docs build (``nox -s docs``, warnings as errors) then checks that each generated entry
became a documented object.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import itertools
import re
from pathlib import Path
from types import ModuleType

import pytest

import xmlp

# backend-independent: once, in the numpy session (and in a plain `pytest`)
pytestmark = pytest.mark.requires_backends("numpy")

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _load_generator():
    spec = importlib.util.spec_from_file_location("xmlp_docs", DOCS / "_ext" / "xmlp_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _load_generator()


def public_names_in_source() -> dict[str, list[str]]:
    """{module: its __all__} for xmlp and every module/package below it without a ``_`` part."""
    package_dir = Path(xmlp.__file__).parent
    found = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(part.startswith("_") for part in parts[1:]):
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
            ):
                found[".".join(parts)] = list(ast.literal_eval(node.value))
    return found


def _listed(rst: str) -> set[str]:
    """Names in the autosummary tables of one generated page."""
    return set(re.findall(r"^   (\w+)$", rst, re.MULTILINE))


def test_every_public_name_is_in_the_api_reference():
    pages = GENERATOR.api_sources()
    top = _listed(pages["xmlp.rst"])
    names = public_names_in_source()
    assert "xmlp" in names and "xmlp.nn.linear" in names
    missing = []
    for module_name, module_all in names.items():
        page = pages.get(f"{module_name.replace('.', '-')}.rst", "")
        module = importlib.import_module(module_name)
        for name in module_all:
            same_as_top = name in top and getattr(xmlp, name, None) is getattr(module, name)
            # a submodule named in __all__ (xmlp.optim) is documented by its own page
            own_page = (isinstance(getattr(module, name, None), ModuleType)
                        and f"{module_name}.{name}".replace(".", "-") + ".rst" in pages)
            if name not in _listed(page) and not same_as_top and not own_page:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"not in the API reference: {missing}"


def test_the_api_index_links_every_module_page():
    pages = GENERATOR.api_sources()
    index = pages["index.rst"]
    for name in pages:
        if name != "index.rst":
            assert f"   {name.removesuffix('.rst')}\n" in index


def test_every_page_is_in_the_navigation():
    """Top-level pages are in index.md's toctree; every other docs/*.md is in the guide."""
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    toctree = index[index.index("```{toctree}"):]
    entries = {re.sub(r"^.*<(.+)>$", r"\1", line.strip()) for line in toctree.splitlines()}
    for page in GENERATOR.TOP_LEVEL:
        if page != "index":
            assert page in entries, f"{page} is not in docs/index.md's toctree"
    assert "api/index" in entries
    assert GENERATOR.GUIDE_MARKER in (DOCS / "user-guide.md").read_text(encoding="utf-8")
    guide = GENERATOR.guide_pages()
    for path in DOCS.glob("*.md"):
        assert path.stem in GENERATOR.TOP_LEVEL or path.stem in guide, path.name
    assert guide.index("layers") < guide.index("usage") < guide.index("backends")  # reading order


def test_result_reports_nest_without_skipping_a_heading_level():
    """A committed report going from # to ### sits under its run's heading with no level
    skipped (Sphinx -W fails on a skipped level); code fences are left as they are."""
    report = "# Title\ntext\n### Table\n```\n# a shell comment\n```\n#### Detail\n### Next"
    nested = GENERATOR._nest_headings(report, 3).splitlines()
    assert nested == ["### Title", "text", "#### Table", "```", "# a shell comment", "```",
                      "##### Detail", "#### Next"]
    levels, fenced = [], False
    for line in GENERATOR.benchmark_results_markdown().splitlines():
        fenced ^= line.startswith("```")
        if not fenced and line.startswith("#"):
            levels.append(len(line) - len(line.lstrip("#")))
    assert all(b <= a + 1 for a, b in itertools.pairwise(levels))
    # (a copy of the tests without benchmarks/, as under mutmut, has no results to nest)
    assert levels or not (ROOT / "benchmarks" / "results").is_dir()
