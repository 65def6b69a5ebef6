"""tools/mutation/results.py: mutmut's results kept in git and restored on a fresh clone."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[2] / "tools" / "mutation"


def needs_mutmut() -> None:
    """save() records mutmut's version."""
    pytest.importorskip("mutmut", reason="mutmut is not installed (the `mutate` extra)")


@pytest.fixture
def results(tmp_path, monkeypatch):
    """tools/mutation/results.py, pointed at a mutants/ and results.json under tmp_path."""
    spec = importlib.util.spec_from_file_location("mutation_results", HERE / "results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "MUTANTS", tmp_path / "mutants")
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results.json")
    monkeypatch.setattr(module, "ROOT", tmp_path)
    return module


META = {
    "exit_code_by_key": {
        "xmlp.io.checkpoint.x_save__mutmut_1": 1, "xmlp.io.checkpoint.x_save__mutmut_2": 0,
        "xmlp.io.checkpoint.x_save__mutmut_3": None,
        "xmlp.io.checkpoint.xǁCheckpointǁload__mutmut_1": 36,
        "xmlp.io.checkpoint.xǁCheckpointǁload__mutmut_2": 33,
    },
    "hash_by_function_name": {"x_save": "0123456789ab", "xǁCheckpointǁload": "ba9876543210"},
    "type_check_error_by_key": {}, "durations_by_key": {"xmlp.io.checkpoint.x_save__mutmut_1": 0.5},
    "estimated_durations_by_key": {"xmlp.io.checkpoint.x_save__mutmut_1": 0.4},
}


def write_meta(root: Path, meta: dict) -> Path:
    """mutants/src/xmlp/io/checkpoint.py.meta, beside the source it describes."""
    source = root / "src" / "xmlp" / "io" / "checkpoint.py"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.touch()
    path = root / "mutants" / "src" / "xmlp" / "io" / "checkpoint.py.meta"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(meta))
    return path


def test_saved_results_restore_every_exit_code_and_hash(results, tmp_path):
    needs_mutmut()
    path = write_meta(tmp_path, META)
    assert results.save() == 4  # the mutant not run yet is kept, as not run
    saved = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert saved["files"]["src/xmlp/io/checkpoint.py"]["x_save"] == ["0123456789ab", [1, 0, None]]
    assert saved["python"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    path.unlink()
    assert results.restore() == 4
    restored = json.loads(path.read_text())
    assert restored["exit_code_by_key"] == META["exit_code_by_key"]
    assert restored["hash_by_function_name"] == META["hash_by_function_name"]
    # durations are mutmut's own timing estimates: not kept, and empty is what it expects
    assert restored["durations_by_key"] == {} == restored["estimated_durations_by_key"]


def test_results_already_in_mutants_are_not_overwritten(results, tmp_path):
    """mutants/ holds results newer than the committed ones: restore leaves them."""
    needs_mutmut()
    path = write_meta(tmp_path, META)
    results.save()
    newer = dict(META, exit_code_by_key={k: 1 for k in META["exit_code_by_key"]})
    path.write_text(json.dumps(newer))
    assert results.restore() == 0
    assert json.loads(path.read_text()) == newer


def test_restore_without_committed_results_does_nothing(results, tmp_path):
    assert results.restore() == 0
    assert not (tmp_path / "mutants").exists()


def test_mutants_not_numbered_from_one_are_refused(results, tmp_path):
    """A gap would shift every later mutant's result onto the wrong mutant after a restore."""
    needs_mutmut()
    gap = dict(META, exit_code_by_key={"xmlp.io.checkpoint.x_save__mutmut_1": 1,
                                       "xmlp.io.checkpoint.x_save__mutmut_3": 1})
    write_meta(tmp_path, gap)
    with pytest.raises(SystemExit, match=r"x_save are not numbered 1\.\.n"):
        results.save()


def test_the_committed_results_match_the_report():
    """results.json and report.md come from one report.py run: the same counts per module."""
    committed = json.loads((HERE / "results.json").read_text(encoding="utf-8"))
    report = (HERE / "report.md").read_text(encoding="utf-8")
    for source, functions in committed["files"].items():
        codes = [c for _hash, cs in functions.values() for c in cs]
        if not codes:  # a module without mutants (an __init__.py of imports) has no row
            continue
        module = source.removeprefix("src/xmlp/")
        row = f"| {module} | {len(codes)} | {sum(c is not None for c in codes)} |"
        assert row in report, row


def test_results_of_another_mutmut_are_not_restored(results, tmp_path, capsys):
    """Mutant numbers are mutmut's own: results written by another version would land on
    other mutants, so nothing is restored and every mutant runs."""
    needs_mutmut()
    path = write_meta(tmp_path, META)
    results.save()
    path.unlink()
    saved = json.loads(results.RESULTS.read_text(encoding="utf-8"))
    saved["mutmut"] = "0.0.1"
    results.RESULTS.write_text(json.dumps(saved), encoding="utf-8")
    assert results.restore() == 0
    assert not path.exists()
    assert "written by mutmut 0.0.1" in capsys.readouterr().err


def test_save_without_results_keeps_the_committed_file(results, tmp_path):
    """No mutants/ (mutmut never ran here): save refuses instead of writing an empty file."""
    needs_mutmut()
    results.RESULTS.write_text("committed", encoding="utf-8")
    with pytest.raises(SystemExit, match="no mutmut results"):
        results.save()
    assert results.RESULTS.read_text(encoding="utf-8") == "committed"


def test_results_of_a_module_moved_or_removed_since_are_dropped(results, tmp_path):
    """Results of a source file that no longer exists name mutants of code that is gone:
    restore writes none back, and save keeps none (with nothing else, it refuses)."""
    needs_mutmut()
    path = write_meta(tmp_path, META)
    results.save()
    committed = results.RESULTS.read_text(encoding="utf-8")
    path.unlink()
    (tmp_path / "src" / "xmlp" / "io" / "checkpoint.py").unlink()
    assert results.restore() == 0
    assert not path.exists()
    path.write_text(json.dumps(META))  # a mutants/ from before the move
    with pytest.raises(SystemExit, match="no mutmut results"):
        results.save()
    assert results.RESULTS.read_text(encoding="utf-8") == committed


def test_a_package_init_module_keeps_its_results(results, tmp_path):
    """mutmut names mutants of src/xmlp/optim/__init__.py xmlp.optim.*, without __init__."""
    needs_mutmut()
    meta = {**META, "exit_code_by_key": {"xmlp.optim.xǁSGDǁstep__mutmut_1": 1,
                                         "xmlp.optim.xǁSGDǁstep__mutmut_2": 0},
            "hash_by_function_name": {"xǁSGDǁstep": "0123456789ab"}}
    path = tmp_path / "mutants" / "src" / "xmlp" / "optim" / "__init__.py.meta"
    path.parent.mkdir(parents=True)
    (tmp_path / "src" / "xmlp" / "optim").mkdir(parents=True)
    (tmp_path / "src" / "xmlp" / "optim" / "__init__.py").touch()
    path.write_text(json.dumps(meta))
    assert results.save() == 2
    path.unlink()
    assert results.restore() == 2
    assert json.loads(path.read_text())["exit_code_by_key"] == meta["exit_code_by_key"]


def test_forget_survivors_marks_every_mutant_not_killed_as_not_run(results, tmp_path):
    """Survived (0) and no tests (33) run again; killed (1) and timed out (36) stay; a mutant
    not run yet stays not run."""
    path = write_meta(tmp_path, META)
    assert results.forget_survivors() == 2
    codes = json.loads(path.read_text())["exit_code_by_key"]
    assert codes == {
        "xmlp.io.checkpoint.x_save__mutmut_1": 1, "xmlp.io.checkpoint.x_save__mutmut_2": None,
        "xmlp.io.checkpoint.x_save__mutmut_3": None,
        "xmlp.io.checkpoint.xǁCheckpointǁload__mutmut_1": 36,
        "xmlp.io.checkpoint.xǁCheckpointǁload__mutmut_2": None,
    }
