"""mutmut's results kept in git (tools/mutation/results.json), so a fresh clone runs only what
changed since the committed report.

    python tools/mutation/results.py save      # mutants/*.meta -> results.json (report.py does it)
    python tools/mutation/results.py restore   # results.json -> mutants/*.meta, where missing
    python tools/mutation/results.py forget-survivors   # run every mutant not killed again

mutmut keeps its results in mutants/ (git-ignored), one exit code per mutant beside a hash of
each function's AST, and on its next run keeps the results of the functions whose hash is
unchanged. ``restore`` writes results.json back as those files before a run on a clone without
mutants/, so that mutmut reruns only the functions changed since (and, as mutmut itself, the
ones whose hash Python's ast.dump makes differently: another Python version reruns them all).
Results are keyed by each mutant's number within its function, so nothing is restored for
another mutmut version. A function's hash covers its own source only (not comments): a changed
module-level constant that it reads, or a new ``# pragma: no mutate`` in it, does not rerun
it, in mutmut's own cache either; name its mutants (``nox -s mutate -- NAME``) to rerun them.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RESULTS = HERE / "results.json"
MUTANTS = ROOT / "mutants"
_SEP = "__mutmut_"


def _module_of(source: str) -> str:
    """'src/xmlp/io/checkpoint.py' -> 'xmlp.io.checkpoint', 'src/xmlp/optim/__init__.py' ->
    'xmlp.optim' (the prefix of mutmut's mutant names: its package's name for an
    __init__.py)."""
    return source.removeprefix("src/").removesuffix(".py").removesuffix("/__init__") \
        .replace("/", ".")


def current_metas() -> list[Path]:
    """mutants/**/*.py.meta of the sources that still exist (a module moved or removed leaves
    its results in mutants/; they describe code that is gone)."""
    return [meta for meta in sorted(MUTANTS.rglob("*.py.meta"))
            if (ROOT / meta.relative_to(MUTANTS).as_posix().removesuffix(".meta")).exists()]


def save() -> int:
    """Write results.json from mutants/*.meta; returns the number of results kept (mutants
    not run yet, None, are kept as null and run after a restore)."""
    files: dict[str, dict[str, list[object]]] = {}
    kept = 0
    metas = current_metas()
    if not metas:  # writing an empty file would drop the committed results
        raise SystemExit(f"no mutmut results under {MUTANTS}: run mutmut first")
    for meta in metas:
        data = json.loads(meta.read_text())
        source = meta.relative_to(MUTANTS).as_posix().removesuffix(".meta")
        prefix = _module_of(source) + "."
        codes_by_function: dict[str, dict[int, int | None]] = {}
        for name, code in data["exit_code_by_key"].items():
            if not name.startswith(prefix):
                raise SystemExit(f"{source}: mutant {name} does not start with {prefix}")
            function, _, number = name.removeprefix(prefix).rpartition(_SEP)
            codes_by_function.setdefault(function, {})[int(number)] = code
        functions: dict[str, list[object]] = {}
        for function, fhash in sorted(data["hash_by_function_name"].items()):
            codes = codes_by_function.get(function, {})
            # mutmut numbers a function's mutants 1..n
            if sorted(codes) != list(range(1, len(codes) + 1)):
                raise SystemExit(f"{source}: mutants of {function} are not numbered 1..n")
            functions[function] = [fhash, [codes[i] for i in range(1, len(codes) + 1)]]
            kept += sum(c is not None for c in codes.values())
        files[source] = functions
    lines = ["{", f'  "mutmut": {json.dumps(version("mutmut"))},',
             f'  "python": "{sys.version_info.major}.{sys.version_info.minor}",',
             '  "files": {']
    for i, (source, functions) in enumerate(files.items()):
        lines.append(f"    {json.dumps(source)}: {{")
        for j, (function, entry) in enumerate(functions.items()):
            comma = "," if j < len(functions) - 1 else ""
            lines.append(f"      {json.dumps(function, ensure_ascii=False)}: "
                         f"{json.dumps(entry, separators=(',', ':'))}{comma}")
        lines.append("    }" + ("," if i < len(files) - 1 else ""))
    lines += ["  }", "}"]
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return kept


def restore() -> int:
    """Write mutants/<source>.meta from results.json for every source that has none yet;
    returns the number of results restored. Existing results in mutants/ win: they are newer.
    Nothing is restored for another mutmut version."""
    if not RESULTS.exists():
        return 0
    data = json.loads(RESULTS.read_text(encoding="utf-8"))
    # results are keyed by each mutant's number within its function: another mutmut can
    # number them differently (other operators) for the same source, so it starts afresh
    if data["mutmut"] != version("mutmut"):
        print(f"{RESULTS.name} was written by mutmut {data['mutmut']}, this is "
              f"{version('mutmut')}: nothing restored, every mutant runs", file=sys.stderr)
        return 0
    restored = 0
    for source, functions in data["files"].items():
        meta = MUTANTS / f"{source}.meta"
        # a module moved or removed since: its results name mutants that no longer exist
        if meta.exists() or not (ROOT / source).exists():
            continue
        prefix = _module_of(source) + "."
        exit_codes: dict[str, int | None] = {}
        hashes: dict[str, str] = {}
        for function, (fhash, codes) in functions.items():
            hashes[function] = fhash
            for number, code in enumerate(codes, start=1):
                exit_codes[f"{prefix}{function}{_SEP}{number}"] = code
                restored += code is not None
        meta.parent.mkdir(parents=True, exist_ok=True)
        # the fields mutmut's SourceFileMutationData.load reads
        meta.write_text(json.dumps({
            "exit_code_by_key": exit_codes, "hash_by_function_name": hashes,
            "type_check_error_by_key": {}, "durations_by_key": {},
            "estimated_durations_by_key": {},
        }, indent=4))
    return restored


# mutmut's exit codes of a killed mutant (mutmut/stats.py): a test failed, a timeout, the
# type checker
KILLED = {1: "killed", 3: "killed", 36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout",
          255: "timeout", 37: "type check"}


def forget_survivors() -> int:
    """Mark every mutant in mutants/ that was not killed as not run, so that the next mutmut
    run runs it again; returns how many. mutmut reruns a mutant only when its function
    changes, so a test added since cannot kill a survivor until it is forgotten."""
    forgotten = 0
    for meta in sorted(MUTANTS.rglob("*.py.meta")):
        data = json.loads(meta.read_text())
        codes = data["exit_code_by_key"]
        for name, code in codes.items():
            if code is not None and code not in KILLED:
                codes[name] = None
                forgotten += 1
        meta.write_text(json.dumps(data, indent=4))
    return forgotten


def main(argv: list[str]) -> int:
    if argv[1:] == ["save"]:
        print(f"{RESULTS.relative_to(ROOT)}: {save()} results kept")
    elif argv[1:] == ["restore"]:
        print(f"mutants/: {restore()} results restored from {RESULTS.relative_to(ROOT)}")
    elif argv[1:] == ["forget-survivors"]:
        print(f"mutants/: {forget_survivors()} mutants not killed will run again")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
