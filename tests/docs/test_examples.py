"""Every ```python block of README.md and docs/**/*.md, run as a test (Sybil), and every
``Example:`` of a public docstring (the API reference's), run as a doctest.

* One namespace per page: a page's blocks run in order and see what the blocks before them
  defined, as a reader who copies them one after the other would. Each page runs in a fresh
  temporary directory (files it writes land there).
* A block that imports a library that is not installed here is skipped, naming the extra to
  install. ``nox -s examples`` installs what the pages use and sets XMLP_EXAMPLES_STRICT=1,
  which turns such a skip into a failure: there only GPU blocks skip.
* GPU blocks (they import CuPy, or put torch on ``"cuda..."``) run where CuPy / torch see an
  NVIDIA GPU and are skipped otherwise, with that reason. Until a GPU run has verified them,
  each carries the visible note :data:`GPU_NOTE` just above it (checked below).
* A block is a ```python fence (a ```text, ```bash or ```pycon fence is not run). Sybil's
  ``<!-- skip: next "reason" -->`` and ``<!-- invisible-code-block: python -->`` comments work
  too (invisible on GitHub and on the site).

The backend sessions leave this module to ``nox -s examples`` (``--ignore`` in noxfile.py).
"""

from __future__ import annotations

import ast
import doctest
import importlib
import importlib.util
import os
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import SkipTest

import pytest
from sybil import Example, Sybil
from sybil.evaluators.doctest import DocTestEvaluator
from sybil.evaluators.python import PythonEvaluator
from sybil.parsers.myst import PythonCodeBlockParser, SkipParser

import xmlp

ROOT = Path(__file__).resolve().parents[2]
# docs/_build and the generated API stubs are Sphinx output, not pages
PAGES = [ROOT / "README.md", *sorted(
    p for p in (ROOT / "docs").rglob("*.md")
    if not any(part.startswith("_") or part == "generated" for part in p.relative_to(ROOT).parts)
)]

GPU_NOTE = "not yet verified on a GPU"
# Set to True once `nox -s examples` has passed on a machine with an NVIDIA GPU (CuPy and a
# CUDA torch installed); the notes may then go.
GPU_EXAMPLES_VERIFIED = False

# top-level module imported by a block -> the extra that installs it
EXTRAS = {"cupy": "cupy", "torch": "torch", "jax": "jax", "dask": "dask", "distributed": "dask",
          "array_api_strict": "strict", "matplotlib": "plot", "sklearn": "sklearn"}

SYBIL = Sybil(parsers=[PythonCodeBlockParser(), SkipParser()])
FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*python[ \t]*$", re.MULTILINE)

os.environ.setdefault("MPLBACKEND", "Agg")  # a block that plots must not open a window


def _is_code(example: Example) -> bool:
    return isinstance(example.region.evaluator, PythonEvaluator | DocTestEvaluator)


def _source(example: Example) -> str:
    parsed: Any = example.parsed
    return str(getattr(parsed, "source", parsed))  # doctest examples carry .source


def imported(source: str) -> set[str]:
    """Top-level modules a block imports (``import dask.array as da`` -> "dask")."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def needs_gpu(source: str) -> bool:
    return "cupy" in imported(source) or re.search(r"""["']cuda""", source) is not None


def _gpu_missing(source: str) -> str | None:
    """Why this GPU block cannot run here, or None."""
    try:
        if "cupy" in imported(source):
            import cupy

            if cupy.cuda.runtime.getDeviceCount() < 1:
                return "no GPU visible to CuPy"
        if re.search(r"""["']cuda""", source) and "torch" in source:
            import torch

            if not torch.cuda.is_available():
                return "torch sees no CUDA device"
    except ImportError as exc:
        return f"{exc.name} is not installed"
    except Exception as exc:  # CuPy without a driver raises its own errors
        return f"{type(exc).__name__}: {exc}"
    return None


def skip_reason(source: str) -> str | None:
    """Why a block cannot run here, in a reader's words; None when it can."""
    if needs_gpu(source):
        why = _gpu_missing(source)
        if why is not None:
            note = "" if GPU_EXAMPLES_VERIFIED else f"; this example is {GPU_NOTE}"
            return f"needs an NVIDIA GPU ({why}){note}"
    for name in sorted(imported(source) & EXTRAS.keys()):
        if importlib.util.find_spec(name) is None:
            return f'needs {name}, which is not installed: pip install ".[{EXTRAS[name]}]"'
    return None


def _documents() -> Iterator[tuple[Path, list[Example]]]:
    for page in PAGES:
        yield page, list(SYBIL.parse(page).examples())


DOCUMENTS = dict(_documents())
CASES = [
    pytest.param(page, index, id=f"{page.relative_to(ROOT).as_posix()}:{example.line}")
    for page, examples in DOCUMENTS.items()
    for index, example in enumerate(examples)
    if _is_code(example)
]
_done: dict[Path, int] = {}  # page -> examples evaluated so far


_page_dirs: dict[Path, Path] = {}  # page -> its temporary working directory


@pytest.mark.parametrize(("page", "index"), CASES)
def test_example(page: Path, index: int, tmp_path_factory: pytest.TempPathFactory,
                 monkeypatch: pytest.MonkeyPatch):
    examples = DOCUMENTS[page]
    if page not in _page_dirs:
        _page_dirs[page] = tmp_path_factory.mktemp(page.stem)
    monkeypatch.chdir(_page_dirs[page])
    # the skip directives between the previous block and this one
    for directive in examples[_done.get(page, 0):index]:
        if not _is_code(directive):
            directive.evaluate()
    _done[page] = index + 1
    example = examples[index]
    source = _source(example)
    reason = skip_reason(source)
    if reason is not None and os.environ.get("XMLP_EXAMPLES_STRICT") and not needs_gpu(source):
        pytest.fail(f"{reason}: `nox -s examples` must run every CPU example; add the extra to "
                    "EXAMPLE_EXTRAS in noxfile.py")
    if reason is not None:
        pytest.skip(reason)
    try:
        example.evaluate()
    except SkipTest as exc:  # a <!-- skip: next "reason" --> directive
        pytest.skip(str(exc))


# -- the docstrings' examples ------------------------------------------------------------------
def public_objects() -> dict[str, Any]:
    """{dotted name: object} for every name in the ``__all__`` of xmlp and of its public
    submodules (no ``_`` part; one that cannot be imported here, xmlp.sklearn without
    scikit-learn, is left out), each object once."""
    modules = ["xmlp", *sorted(
        info.name for info in pkgutil.walk_packages(xmlp.__path__, "xmlp.")
        if not any(part.startswith("_") for part in info.name.split(".")))]
    found: dict[str, Any] = {}
    seen: set[int] = set()
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name, None)
            if (isinstance(obj, type) or callable(obj)) and id(obj) not in seen:
                seen.add(id(obj))
                found[f"{module_name}.{name}"] = obj
    return found


DOCTESTS = [test for name, obj in public_objects().items()
            for test in doctest.DocTestFinder(recurse=False).find(obj, name, globs={})
            if test.examples]


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_docstring_example(test: doctest.DocTest, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch):
    source = "\n".join(example.source for example in test.examples)
    reason = skip_reason(source)
    if reason is not None and os.environ.get("XMLP_EXAMPLES_STRICT") and not needs_gpu(source):
        pytest.fail(f"{reason}: `nox -s examples` must run every CPU example; add the extra to "
                    "EXAMPLE_EXTRAS in noxfile.py")
    if reason is not None:
        pytest.skip(reason)
    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    result = runner.run(test, out=report.append)
    assert result.failed == 0, "".join(report)


# -- the runner itself ---------------------------------------------------------------------------
def test_every_python_block_is_collected():
    """Sybil finds as many ```python blocks as there are fences (indented ones included)."""
    for page, examples in DOCUMENTS.items():
        fences = len(FENCE.findall(page.read_text(encoding="utf-8")))
        visible = {e.start for e in examples if _is_code(e)
                   and not page.read_text(encoding="utf-8")[e.start:e.end].lstrip()
                   .startswith("<!--")}
        # a ```python block of doctest lines gives one example per >>> statement
        blocks = len({_fence_start(page, start) for start in visible})
        assert blocks == fences, f"{page.name}: {fences} ```python fences, Sybil saw {blocks}"


def _fence_start(page: Path, position: int) -> int:
    text = page.read_text(encoding="utf-8")
    return max(m.start() for m in FENCE.finditer(text) if m.start() <= position)


def test_gpu_examples_carry_the_note():
    """Each GPU block has GPU_NOTE in the text since the block before it, until verified."""
    if GPU_EXAMPLES_VERIFIED:
        return
    for page, examples in DOCUMENTS.items():
        text = page.read_text(encoding="utf-8")
        previous_end = 0
        for example in examples:
            if not _is_code(example):
                continue
            if needs_gpu(_source(example)):
                assert GPU_NOTE in text[previous_end:example.start], (
                    f"{page.relative_to(ROOT)}:{example.line}: a GPU example without the note "
                    f"'{GPU_NOTE}' above it")
            previous_end = example.end


def test_import_detection():
    assert imported("import dask.array as da\nfrom cupy import ndarray\nimport numpy") == {
        "dask", "cupy", "numpy"}
    assert needs_gpu('model.to(torch, device="cuda:0")')
    assert not needs_gpu("import torch\nmodel.to(torch)")
