"""The site's API reference and navigation cover every public name and every page.

The public names are read here from the source files (the ``__all__`` of ``xmlp`` and of each
module of the generator's ``DOCUMENTED_MODULES``), not from the generator's own listing, so a
name the generator missed fails this test; a module that is neither documented nor described
as internal in docs/development.md fails it too. The docs build (``nox -s docs``, warnings as
errors) then checks that each generated entry became a documented object.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
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


def _source_path(module_name: str) -> Path:
    """src/xmlp/a/b.py or src/xmlp/a/b/__init__.py for ``xmlp.a.b``."""
    package_dir = Path(xmlp.__file__).parent
    parts = module_name.split(".")[1:]
    path = package_dir.joinpath(*parts).with_suffix(".py")
    return path if path.exists() else package_dir.joinpath(*parts, "__init__.py")


def public_names_in_source() -> dict[str, list[str]]:
    """{module: its __all__} for xmlp and each documented module, read from the source."""
    found = {}
    for module_name in ("xmlp", *GENERATOR.DOCUMENTED_MODULES):
        for node in ast.parse(_source_path(module_name).read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
            ):
                found[module_name] = list(ast.literal_eval(node.value))
    return found


def _layout_table() -> set[str]:
    """The modules docs/development.md's code layout describes: {"xmlp.backend", ...}."""
    text = (DOCS / "development.md").read_text(encoding="utf-8")
    section = text[text.index("## Code layout"):]
    section = section[:section.index("\n## ", 1)]
    found = set()
    for cell in re.findall(r"^\| `([\w/]+)\.py` \|", section, re.MULTILINE):
        found.add(".".join(["xmlp", *cell.removesuffix("/__init__").split("/")]).rstrip("."))
    return found


def test_the_documented_modules_exist_and_every_other_module_is_described_as_internal():
    """Each module of DOCUMENTED_MODULES imports and has an ``__all__``; every other module
    (xmlp.backend, xmlp.nn.checks, xmlp.ops.numpy_fast...) is internal, so the code layout of
    docs/development.md describes it, and the page says the reference covers the public ones."""
    names = public_names_in_source()
    for module_name in GENERATOR.DOCUMENTED_MODULES:
        importlib.import_module(module_name)
        assert module_name in names, f"{module_name} has no __all__"
    internal = set(GENERATOR.all_submodules()) - set(GENERATOR.DOCUMENTED_MODULES)
    assert {"xmlp.backend", "xmlp.nn.checks", "xmlp.ops.numpy_fast",
            "xmlp.training.epoch", "xmlp.cli.bench_cases"} <= internal
    # the package modules of xmlp.nn, xmlp.io... are internal: their package documents them
    undescribed = sorted(internal - _layout_table())
    assert not undescribed, f"neither documented nor in docs/development.md: {undescribed}"
    development = " ".join((DOCS / "development.md").read_text(encoding="utf-8").split())
    assert "`DOCUMENTED_MODULES`" in development


def _listed(rst: str) -> set[str]:
    """Names in the autosummary tables of one generated page."""
    return set(re.findall(r"^   (\w+)$", rst, re.MULTILINE))


def test_every_public_name_is_in_the_api_reference():
    pages = GENERATOR.api_sources()
    top = _listed(pages["xmlp.rst"])
    names = public_names_in_source()
    assert "xmlp" in names and "xmlp.nn" in names
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


def _public_objects() -> dict[str, object]:
    """{module.name: object} for every public name that imports here (xmlp.sklearn needs
    scikit-learn), each object once, under its shortest name (xmlp.Linear, not
    xmlp.layers.Linear); submodules named in an ``__all__`` are left out."""
    names: dict[int, tuple[str, object]] = {}
    for module_name, module_all in public_names_in_source().items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in module_all:
            obj, dotted = getattr(module, name), f"{module_name}.{name}"
            if isinstance(obj, ModuleType):
                continue
            key = id(obj) if isinstance(obj, type) or callable(obj) else id(dotted)
            if key not in names or len(dotted) < len(names[key][0]):
                names[key] = (dotted, obj)
    return dict(names.values())


def test_the_module_index_describes_every_module():
    """api/index lists each module page with the first paragraph of its docstring."""
    pages = GENERATOR.api_sources()
    index = pages["index.rst"]
    for module_name in public_names_in_source():
        if f"{module_name.replace('.', '-')}.rst" not in pages:
            continue  # its names are all xmlp's
        path = _source_path(module_name)
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        first = " ".join(doc.split("\n\n")[0].split()).removeprefix(f"{module_name}: ")
        page = module_name.replace(".", "-")
        line = next((entry for entry in index.splitlines()
                     if entry.startswith(f"* :doc:`{module_name} <{page}>`: ")), "")
        assert first and line.endswith(first), (module_name, line)


def test_no_private_base_is_shown():
    """A class's "Bases:" line names public classes only: a private one (an xmlp class that is
    no documented name, as ``Activation``) gives way to its own bases."""
    public_ids = {id(obj) for obj in _public_objects().values()}
    classes = {name: obj for name, obj in _public_objects().items() if isinstance(obj, type)}
    assert "xmlp.MLP" in classes
    for name, cls in classes.items():
        shown = GENERATOR.public_bases(list(getattr(cls, "__orig_bases__", cls.__bases__)))
        for base in shown:
            base_name = getattr(base, "__name__", str(base))
            module = getattr(base, "__module__", "") or ""
            assert not base_name.startswith("_"), (name, base)
            if module.split(".")[0] == "xmlp":
                assert id(base) in public_ids, (name, base)
    assert GENERATOR.public_bases(list(xmlp.MLP.__bases__)) == [xmlp.nn.Container]
    assert GENERATOR.public_bases(list(xmlp.Tanh.__bases__)) == [xmlp.Module]  # Activation
    assert GENERATOR.public_bases(list(xmlp.MSELoss.__bases__)) == [xmlp.Module]  # Loss
    assert GENERATOR.public_bases(list(xmlp.Module.__bases__)) == [object]


def test_bare_any_is_left_out_of_signatures():
    drop = GENERATOR.drop_bare_any
    assert drop("(x: Any, y: ~typing.Any = None, *extra: Any, z: dict[str, Any] = None)",
                "Any") == ("(x, y = None, *extra, z: dict[str, Any] = None)", "")
    assert drop("(n: int)", "tuple[Any, ...]") == ("(n: int)", "tuple[Any, ...]")
    assert drop(None, None) == (None, None)


def test_the_sphinx_hooks_are_connected():
    class App:
        def __init__(self) -> None:
            self.events: list[str] = []

        def connect(self, event: str, handler: object) -> None:
            self.events.append(event)

    app = App()
    GENERATOR.setup(app)
    assert {"autodoc-process-bases", "autodoc-process-signature"} <= set(app.events)


# Public names whose docstring has no "Args:" section (the reference's Parameters) or no
# "Example:" yet; every other public name must have both, and a summary line. Take a name out
# when its docstring gains them (the test below then says so).
SECTIONS_TO_WRITE = {
    "xmlp.CrossEntropyLoss", "xmlp.MSELoss",
    "xmlp.cli.main", "xmlp.cli.demo.add_arguments", "xmlp.cli.demo.check_output_file",
    "xmlp.cli.demo.import_backend", "xmlp.cli.demo.make_digits_figure",
    "xmlp.cli.demo.make_figure", "xmlp.cli.demo.run", "xmlp.optim.SGD", "xmlp.optim.Adam",
    "xmlp.optim.AdamW", "xmlp.optim.Optimizer", "xmlp.sklearn.MLPClassifier",
    "xmlp.sklearn.MLPRegressor", "xmlp.sklearn.expected_failed_checks",
    # constants: a "#:" comment above the assignment is their summary
    "xmlp.cli.demo.BACKENDS", "xmlp.cli.demo.DEFAULT_SEED", "xmlp.cli.demo.DIGITS_SPLIT_SEED",
}
_ARGS = re.compile(r"^(Args|Arguments|Parameters):|^Parameters\n-{3,}", re.MULTILINE)
_EXAMPLE = re.compile(r"^Examples?:|^Examples?\n-{3,}", re.MULTILINE)


def _missing_sections(module_name: str, name: str, obj: object) -> list[str]:
    """What the rendered page of a public name lacks: "summary", "Args", "Example"."""
    if not (isinstance(obj, type) or callable(obj)):  # a constant: its "#:" comment
        module = importlib.import_module(module_name)
        source = Path(module.__file__).read_text(encoding="utf-8")
        return [] if re.search(rf"^#: .+\n{re.escape(name)}\b", source, re.MULTILINE) else [
            "summary"]
    doc = inspect.getdoc(obj) or ""
    missing = [] if doc.strip() else ["summary"]
    try:
        takes = bool(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        takes = False
    exception = isinstance(obj, type) and issubclass(obj, BaseException)
    if takes and not exception and not _ARGS.search(doc):
        missing.append("Args")
    if not _EXAMPLE.search(doc):
        missing.append("Example")
    return missing


def test_every_public_name_has_a_summary_parameters_and_an_example():
    gaps, written = {}, []
    for dotted, obj in _public_objects().items():
        module_name, name = dotted.rsplit(".", 1)
        missing = _missing_sections(module_name, name, obj)
        if missing and dotted not in SECTIONS_TO_WRITE:
            gaps[dotted] = missing
        if not missing and dotted in SECTIONS_TO_WRITE:
            written.append(dotted)
    assert not gaps, f"docstrings without these sections: {gaps}"
    assert not written, f"every section written: take out of SECTIONS_TO_WRITE: {written}"
