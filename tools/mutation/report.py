"""Write tools/mutation/report.md from mutmut's results (mutants/) and tools/mutation/survivors.txt.

    python tools/mutation/report.py [--runtime SECONDS] [--command "nox -s mutate"]

Run from the repository root after ``mutmut run`` (``nox -s mutate`` does both); it also
writes results.json (results.py), from which a fresh clone's run starts. The score is
killed / (mutants - equivalent ones), per module and in all. Every mutant that is not killed
is listed with its diff and the line survivors.txt gives it: why it is equivalent, or the test
that kills it (then it must show as killed after a rerun). One with no line there is listed as
UNEXPLAINED and makes this script exit 1, so a new survivor is not missed.
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import json
import os
import subprocess
import sys
from collections import Counter
from importlib.metadata import version
from pathlib import Path

from results import KILLED, current_metas  # tools/mutation/results.py, beside this script
from results import save as save_results

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ANNOTATIONS = HERE / "survivors.txt"
REPORT = HERE / "report.md"

# mutmut's exit codes (mutmut/stats.py): KILLED in results.py
STATUS = {0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", None: "not run",
          -11: "crashed", -9: "crashed", 2: "interrupted"}


def load_results() -> dict[str, dict[str, int | None]]:
    """module path under src/xmlp ("nn/linear.py") -> {mutant name: exit code}."""
    results: dict[str, dict[str, int | None]] = {}
    for meta in current_metas():  # not those of modules moved or removed since
        data = json.loads(meta.read_text())
        if data.get("exit_code_by_key"):
            # its path under src/xmlp: several packages have an __init__.py
            module = meta.relative_to(ROOT / "mutants" / "src" / "xmlp").as_posix()
            results[module.removesuffix(".meta")] = data["exit_code_by_key"]
    return results


class Notes(dict):  # type: ignore[type-arg]
    """mutant name -> note; a name with ``*`` (fnmatch) covers every mutant it matches, after
    the names written out in full."""

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        if name in self:
            return self[name]
        for pattern, note in self.items():
            if "*" in pattern and fnmatch.fnmatchcase(name, pattern):
                return note
        return default


def load_annotations() -> Notes:
    """mutant name -> "equivalent: why", "killed by: test", or "dask only: why" / "jax only:
    why" (reached or killed only by another backend's session: counted apart, not as killed);
    '#' starts a comment line."""
    notes = Notes()
    for line in ANNOTATIONS.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, reason = line.partition(" ")
        notes[name.strip()] = reason.strip()
    return notes


def status(code: int | None) -> str:
    return KILLED.get(code, STATUS.get(code, "suspicious")) if code is not None else "not run"


def diff_of(name: str) -> str:
    """The changed lines of mutant ``name`` (mutmut show), without the diff's headers."""
    try:
        from mutmut.mutation.diff_apply import get_diff_for_mutant

        cwd = os.getcwd()
        os.chdir(ROOT)
        try:
            text = get_diff_for_mutant(name)
        finally:
            os.chdir(cwd)
    except Exception:  # an API change in mutmut: ask its command line instead
        done = subprocess.run(["mutmut", "show", name], cwd=ROOT, capture_output=True, text=True,
                              check=False)
        text = done.stdout
    lines = [ln for ln in text.splitlines()
             if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    return "\n".join(lines) or "(no diff)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", type=int, help="seconds the mutmut run took")
    parser.add_argument("--command", default="nox -s mutate")
    args = parser.parse_args()

    results = load_results()
    if not results:
        print("no mutmut results under mutants/: run `nox -s mutate` first", file=sys.stderr)
        return 2
    notes = load_annotations()
    rows = []
    survivors: list[tuple[str, str, str]] = []  # (module, name, status)
    dask_only: list[tuple[str, str, str]] = []  # code only Dask data reaches
    fixed: list[tuple[str, str, str]] = []  # survived once, killed now by the test named
    totals: Counter[str] = Counter()
    for module, codes in results.items():
        count: Counter[str] = Counter()
        for name, code in codes.items():
            st = status(code)
            note = notes.get(name, "") or ""
            count["mutants"] += 1
            if st == "not run":  # a run that was stopped, or limited to other modules
                count["not run"] += 1
                continue
            if st in ("killed", "timeout", "type check"):
                count["killed"] += 1
                if note.startswith("killed by"):
                    fixed.append((module, name, note))
            elif note.startswith("equivalent"):
                count["equivalent"] += 1
                survivors.append((module, name, st))
            elif note.startswith(("dask only", "jax only")):  # killed in another session only
                count["dask only"] += 1
                dask_only.append((module, name, st))
            else:
                count["not killed"] += 1
                survivors.append((module, name, st))
        totals.update(count)
        rows.append((module, count))

    def score(c: Counter[str]) -> str:
        relevant = c["mutants"] - c["not run"] - c["equivalent"] - c["dask only"]
        return f"{100 * c['killed'] / relevant:.1f}%" if relevant else "-"

    # mutmut keys each result to a hash of its function's source: a function changed since its
    # mutants ran shows as "not run", so every result below holds for the source at this commit
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True, check=False).stdout.strip()
    out = [
        "# Mutation testing report",
        "",
        f"Generated by `tools/mutation/report.py` after `{args.command}` on "
        f"{datetime.date.today().isoformat()}, source at commit {commit or '?'}, "
        f"mutmut {version('mutmut')}, backends numpy and array_api_strict.",
    ]
    if args.runtime is not None:
        out.append(f"The mutmut run took {args.runtime} s (one worker, `nice -n 19`).")
    out += [
        "",
        "Score = killed / (mutants run - equivalent - Dask only). A mutant is killed when a test "
        "fails or it times out; *not run* counts mutants this and earlier runs have not reached "
        "(a run stopped early or limited to some modules: `nox -s mutate` runs them next). "
        "*Dask only*: mutants of code that only Dask data reaches (streamed fit), whose tests "
        "(tests/training/test_dask_streaming.py) run in the Dask session, not in these suites, "
        "and the few "
        "only JAX's immutable arrays can tell apart (killed by the JAX session, checked by hand); "
        "listed below, left out of the score, not claimed killed.",
        "",
        "| module | mutants | run | killed | equivalent | Dask only | not killed | not run | "
        "score |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for module, c in [*rows, ("**all**", totals)]:
        out.append(f"| {module} | {c['mutants']} | {c['mutants'] - c['not run']} | "
                   f"{c['killed']} | {c['equivalent']} | {c['dask only']} | {c['not killed']} | "
                   f"{c['not run']} | "
                   f"{score(c)} |")
    complete = [m for m, c in rows if not c["not run"]]
    partial = [m for m, c in rows if c["not run"]]
    out += ["", f"Run completely: {', '.join(complete) or 'none'}. "
                f"Not completely: {', '.join(partial) or 'none'}."]
    out += ["", "## Surviving mutants", "",
            "Each with its diff and why it is harmless (from tools/mutation/survivors.txt).", ""]
    unexplained = 0
    for _module, name, st in survivors:
        note = notes.get(name)
        if note is None or not note.startswith("equivalent"):
            unexplained += 1
            note = f"UNEXPLAINED ({st})" + (f"; note says: {note}" if note else "")
        out += [f"- `{name}` ({st}): {note}", "", "  ```diff",
                *("  " + ln for ln in diff_of(name).splitlines()), "  ```", ""]
    if not survivors:
        out.append("None.")
    out += ["", "## Mutants only Dask data reaches (or only JAX tells apart)", "",
            "Not killed by the NumPy and array-api-strict suites; their tests need Dask arrays "
            "(tests/training/test_dask_streaming.py, `XMLP_BACKENDS=dask`) or JAX's immutable "
            "arrays "
            "(`XMLP_BACKENDS=jax`). Per function:", ""]
    by_function: Counter[str] = Counter(name.split("__mutmut_")[0] for _m, name, _s in dask_only)
    for function, n in sorted(by_function.items()):
        example = next(name for _m, name, _s in dask_only if name.startswith(function + "__"))
        out.append(f"- `{function}`: {n} mutants; {notes.get(example)}")
    if not dask_only:
        out.append("None.")
    out += ["", "## Mutants that survived once, and the tests added to kill them", ""]
    for _module, name, note in fixed:
        out.append(f"- `{name}`: {note}")
    if not fixed:
        out.append("None.")
    REPORT.write_text("\n".join(out) + "\n")
    save_results()  # results.json: a fresh clone's `nox -s mutate` starts from these
    print(f"{REPORT.relative_to(ROOT)}: score {score(totals)} over "
          f"{totals['mutants'] - totals['not run']} mutants run (of {totals['mutants']}), "
          f"{totals['equivalent']} equivalent, {totals['dask only']} Dask only, "
          f"{totals['not killed']} not killed "
          f"({unexplained} unexplained)")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
