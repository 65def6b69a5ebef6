"""Sphinx helpers for xmlp's site, so new public names and new pages need no docs plumbing.

* ``api/``: the API reference of what users call, generated at each build from the package
  itself: every name in ``xmlp.__all__`` (grouped by the module that defines it), then each
  module of ``DOCUMENTED_MODULES`` (``xmlp.nn``, ``xmlp.optim``, ``xmlp.sklearn``...) with the
  names of its ``__all__`` (a package's: what it re-exports) that ``xmlp`` does not re-export.
  The other modules (``xmlp.backend``, ``xmlp.nn.checks``, ``xmlp.ops.numpy_fast``...) are
  internal: docs/development.md's code layout describes them. autosummary writes one page per
  name from its docstring.
* The user guide's table of contents lists every ``docs/*.md`` page that is not a top-level
  page, known pages first in reading order, the others after them alphabetically.
* ``_generated/benchmark-results.md``: every folder of ``benchmarks/results`` (its tables and
  figures), for docs/performance.md to include.
* At the end of a build, a warning (an error under ``-W``) for each public name that did not
  become a documented object.
* Signatures and class headers speak of public things only: a private base class
  (``_Container``, or an xmlp class that no documented name is, as ``Activation``) is shown
  as its own public bases, and a bare ``Any`` annotation (an array of any library, a module,
  a generator...: the docstring says which) is left out rather than shown as ``Any``.

The functions that compute names import nothing from Sphinx, so tests/docs/test_api_reference.py
can check them without building the site.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
from pathlib import Path
from types import ModuleType
from typing import Any

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
PACKAGE = "xmlp"

# Pages at the top of the navigation (docs/index.md lists them); every other docs/*.md page
# belongs to the user guide.
TOP_LEVEL = ("index", "getting-started", "user-guide", "errors", "performance", "development")
# Reading order of the user guide; pages not named here follow alphabetically.
GUIDE_ORDER = ("layers", "usage", "own-layer", "optimizers", "optim", "classification",
               "training",
               "backends", "dask", "streaming", "sklearn", "scikit-learn")
GUIDE_MARKER = "% xmlp-guide-pages"
# Libraries a public submodule may import at its top that the docs build does not install:
# replaced by mocks while the reference is generated (autodoc does the same for its imports).
# The modules whose __all__ the API reference documents, besides ``xmlp`` itself: what users
# import. A package's names are those of its __init__'s __all__ (xmlp.nn: Linear, MLP...; its
# modules xmlp.nn.linear... are not pages of their own). Every other module is internal.
DOCUMENTED_MODULES = (
    "xmlp.nn",
    "xmlp.optim",
    "xmlp.training",
    "xmlp.training.batches",
    "xmlp.io",
    "xmlp.ops",
    "xmlp.data",
    "xmlp.metrics",
    "xmlp.errors",
    "xmlp.sklearn",
    "xmlp.cli",
    "xmlp.cli.bench",
    "xmlp.cli.demo",
)
MOCKED = ["cupy", "torch", "jax", "jaxlib", "dask", "distributed", "sklearn",
          "array_api_strict", "matplotlib", "threadpoolctl"]


# -- public names ----------------------------------------------------------------------------
def _import(name: str) -> ModuleType:
    try:
        from sphinx.ext.autodoc.mock import mock
    except ImportError:  # tests without Sphinx: import for real
        return importlib.import_module(name)
    with mock(MOCKED):
        return importlib.import_module(name)


def public_submodules() -> list[str]:
    """``xmlp.data``, ``xmlp.nn``...: the documented modules below xmlp, sorted."""
    return sorted(DOCUMENTED_MODULES)


def all_submodules() -> list[str]:
    """Every module and package below xmlp without a ``_`` part, documented or internal."""
    package = importlib.import_module(PACKAGE)
    names = []
    for info in pkgutil.walk_packages(package.__path__, f"{PACKAGE}.",
                                      onerror=lambda name: None):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def _all(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:  # no __all__: what the module defines without a leading underscore
        names = [n for n, v in vars(module).items() if not n.startswith("_")
                 and getattr(v, "__module__", None) == module.__name__]
    return list(names)


def api_sections() -> list[tuple[str, list[str]]]:
    """[(module, names)]: ``xmlp`` with its ``__all__``, then each public submodule with the
    names of its ``__all__`` that are not the same object as one of xmlp's."""
    package = importlib.import_module(PACKAGE)
    # a submodule named in __all__ (xmlp.optim) gets its own section below, not a second entry
    top = [n for n in _all(package) if not isinstance(getattr(package, n, None), ModuleType)]
    top_objects = {id(getattr(package, n)) for n in top if hasattr(package, n)}
    sections = [(PACKAGE, top)]
    for name in public_submodules():
        module = _import(name)
        own = [n for n in _all(module) if id(getattr(module, n, None)) not in top_objects]
        if own:
            sections.append((name, own))
    return sections


def _group(obj: Any) -> str:
    """The public module that defines ``obj`` (xmlp.nn.linear...), else ``xmlp``."""
    module = getattr(obj, "__module__", None)
    if (not isinstance(module, str) or not module.startswith(f"{PACKAGE}.")
            or any(part.startswith("_") for part in module.split("."))):
        return PACKAGE
    return module


@functools.cache
def _public_ids() -> frozenset[int]:
    """id() of every object the reference documents."""
    ids = set()
    for module_name, names in api_sections():
        module = _import(module_name)
        ids.update(id(getattr(module, n)) for n in names if hasattr(module, n))
    return frozenset(ids)


def is_private_class(cls: Any) -> bool:
    """A class the reference does not document: its name starts with ``_``, or xmlp defines
    it and no documented name is that class (``xmlp.nn.activations.Activation``)."""
    name = getattr(cls, "__name__", "")
    module = getattr(cls, "__module__", "") or ""
    if name.startswith("_"):
        return True
    return module.split(".")[0] == PACKAGE and id(cls) not in _public_ids()


def public_bases(bases: list[Any]) -> list[Any]:
    """``bases`` with each private class replaced by its own bases, recursively, without
    duplicates; ``[object]`` when nothing public is left."""
    out: list[Any] = []
    for base in bases:
        found = public_bases(list(getattr(base, "__bases__", ()))) if is_private_class(base) \
            else [base]
        out += [b for b in found if all(b is not seen for seen in out)]
    return [b for b in out if b is not object] or [object]


# a bare ``Any`` annotation in a signature string, as autodoc writes it (``~typing.Any`` in
# the short format); ``dict[str, Any]`` and the like are left alone
_BARE_ANY = re.compile(r":\s*(?:~?typing\.)?Any(?=\s*(?:[,)=]|$))")


def drop_bare_any(signature: str | None, return_annotation: str | None
                  ) -> tuple[str | None, str | None]:
    """The signature and return annotation without bare ``Any`` annotations."""
    if signature:
        signature = _BARE_ANY.sub("", signature)
    if return_annotation and re.fullmatch(r"(?:~?typing\.)?Any", return_annotation.strip()):
        return_annotation = ""
    return signature, return_annotation


# -- generated sources -----------------------------------------------------------------------
def summary_line(module: ModuleType) -> str:
    """The first paragraph of a module's docstring, on one line ("" without one)."""
    first = (module.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(first.split())


def _summary(module: ModuleType) -> list[str]:
    """The first paragraph of a module's docstring, as a paragraph."""
    line = summary_line(module)
    return [line, ""] if line else []


def _autosummary(names: list[str]) -> list[str]:
    return [".. autosummary::", "   :toctree: generated", "   :nosignatures:", "",
            *[f"   {n}" for n in names], ""]


def _heading(text: str, char: str) -> list[str]:
    return [text, char * len(text), ""]


def api_sources() -> dict[str, str]:
    """{relative path under docs/api: reStructuredText} for the whole reference."""
    package = importlib.import_module(PACKAGE)
    sections = api_sections()
    pages: dict[str, str] = {}
    toc = []
    for module_name, names in sections:
        lines = [".. This page is generated by docs/_ext/xmlp_docs.py: do not edit.", ""]
        lines += _heading(f"``{module_name}``", "=")
        lines += [f".. automodule:: {module_name}", "   :no-members:", "",
                  f".. currentmodule:: {module_name}", ""]
        if module_name == PACKAGE:
            groups: dict[str, list[str]] = {}
            for n in names:
                groups.setdefault(_group(getattr(package, n, None)), []).append(n)
            # by defining module; names defined elsewhere (private modules, __version__) last
            for where in sorted(groups, key=lambda m: (m == PACKAGE, m)):
                if where == PACKAGE:
                    lines += _heading("Other names", "-")
                else:
                    lines += _heading(f"``{where}``", "-") + _summary(_import(where))
                lines += _autosummary(groups[where])
        else:
            lines += _autosummary(names)
        page = module_name.replace(".", "-")
        pages[f"{page}.rst"] = "\n".join(lines)
        toc.append(page)
    index = [".. This page is generated by docs/_ext/xmlp_docs.py: do not edit.", ""]
    index += _heading("API reference", "=")
    index += ["Every public name of xmlp, from its docstring. ``xmlp`` holds what most code "
              "needs; the submodules below add their own names. Shapes are written as tuples: "
              "``(N, input_dim)`` is a batch of N rows. A parameter shown without a type takes "
              "what its description says: an array of any supported library, an array module, "
              "a device...", "",
              ".. toctree::", "   :hidden:", "   :maxdepth: 1", "", *[f"   {p}" for p in toc],
              ""]
    for (module_name, _), page in zip(sections, toc, strict=True):
        line = summary_line(_import(module_name)).removeprefix(f"{module_name}: ")
        index += [f"* :doc:`{module_name} <{page}>`: {line}"]
    index.append("")
    pages["index.rst"] = "\n".join(index)
    return pages


def guide_pages() -> list[str]:
    """The user guide's pages: every docs/*.md that is not top-level, in reading order."""
    pages = [p.stem for p in DOCS.glob("*.md") if p.stem not in TOP_LEVEL]
    order = {name: i for i, name in enumerate(GUIDE_ORDER)}
    return sorted(pages, key=lambda p: (order.get(p, len(order)), p))


def benchmark_results_markdown() -> str:
    """Each benchmarks/results/<run>/: its Markdown reports, then its figures."""
    results = ROOT / "benchmarks" / "results"
    out = ["<!-- generated by docs/_ext/xmlp_docs.py from benchmarks/results -->", ""]
    for run in sorted(p for p in results.iterdir() if p.is_dir()) if results.is_dir() else []:
        out += [f"## `benchmarks/results/{run.name}`", ""]
        for image in sorted(run.glob("*.png")):
            out += [f"![{run.name}: {image.stem}](../../benchmarks/results/{run.name}/"
                    f"{image.name})", ""]
        for report in sorted(run.glob("*.md")):
            out += [_nest_headings(report.read_text(encoding="utf-8"), 3), ""]
    return "\n".join(out)


def _nest_headings(text: str, top: int) -> str:
    """The report's headings under this run's: the levels it uses, in order, become ``top``,
    ``top + 1``, ... (a report going from # to ### must not skip a level here either). Lines
    inside code fences are left alone."""
    lines, fenced, levels = text.splitlines(), False, set()
    for line in lines:
        fenced ^= line.startswith("```")
        if not fenced and line.startswith("#"):
            levels.add(len(line) - len(line.lstrip("#")))
    new_level = {level: top + i for i, level in enumerate(sorted(levels))}
    out, fenced = [], False
    for line in lines:
        fenced ^= line.startswith("```")
        if not fenced and line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            line = "#" * new_level[level] + line[level:]
        out.append(line)
    return "\n".join(out)


def write_if_changed(path: Path, text: str) -> None:
    """Write only when different, so Sphinx does not rebuild unchanged pages."""
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


# -- Sphinx hooks ----------------------------------------------------------------------------
def _generate(app: Any, config: Any) -> None:
    api = DOCS / "api"
    for name, text in api_sources().items():
        write_if_changed(api / name, text)
    for stale in api.glob("*.rst"):
        if stale.name not in api_sources():
            stale.unlink()
    # autosummary's page of a name that left the reference (a module now internal) would be a
    # document outside every toctree: a warning, an error under -W
    listed = {f"{module}.{name}.rst" for module, names in api_sections() for name in names}
    for stale in (api / "generated").glob("*.rst"):
        if stale.name not in listed:
            stale.unlink()
    write_if_changed(DOCS / "_generated" / "benchmark-results.md", benchmark_results_markdown())


def _guide_toc(app: Any, docname: str, source: list[str]) -> None:
    if docname == "user-guide" and GUIDE_MARKER in source[0]:
        source[0] = source[0].replace(GUIDE_MARKER, "\n".join(guide_pages()))


def _check_every_name_documented(app: Any, env: Any) -> None:
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    documented = set(env.get_domain("py").objects)
    package = importlib.import_module(PACKAGE)
    for module_name in [PACKAGE, *public_submodules()]:
        module = _import(module_name)
        for name in _all(module):
            obj = getattr(module, name, None)
            here = f"{module_name}.{name}"
            top = (f"{PACKAGE}.{name}" if obj is not None and getattr(package, name, None) is obj
                   else None)
            if here not in documented and top not in documented:
                logger.warning(f"public name {here} is not in the API reference")


def _skip_foreign_members(app: Any, what: str, name: str, obj: Any, skip: bool,
                          options: Any) -> bool | None:
    """Skip what an estimator inherits from scikit-learn (get_params, score...): its
    docstrings point into scikit-learn's own docs, which are not part of this site."""
    module = getattr(obj, "__module__", None) or ""
    owner = getattr(getattr(obj, "__func__", obj), "__qualname__", "")
    if module.startswith("sklearn.") or (what == "class" and owner.startswith("_Metadata")):
        return True
    return None


def _hide_private_bases(app: Any, name: str, obj: Any, options: Any, bases: list[Any]) -> None:
    bases[:] = public_bases(bases)


def _no_bare_any(app: Any, what: str, name: str, obj: Any, options: Any, signature: str | None,
                 return_annotation: str | None) -> tuple[str | None, str | None]:
    return drop_bare_any(signature, return_annotation)


def setup(app: Any) -> dict[str, Any]:
    app.connect("autodoc-skip-member", _skip_foreign_members)
    app.connect("autodoc-process-bases", _hide_private_bases)
    app.connect("autodoc-process-signature", _no_bare_any)
    # before Sphinx lists the source files (autosummary writes its stubs from that list)
    app.connect("config-inited", _generate)
    app.connect("source-read", _guide_toc)
    app.connect("env-check-consistency", _check_every_name_documented)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
