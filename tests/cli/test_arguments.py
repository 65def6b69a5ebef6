"""The command line refuses bad arguments before any long work: exit status 2 and one line on
stderr, never a traceback; --out and the model are checked before training or measuring."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize("argv", [
    ["--seed", "-1"], ["--epochs", str(10**30)], ["--epochs", "0"], ["--lr", "1e400"],
    ["--lr", "nan"], ["--hidden", "-3"], ["--seed", "1.5"], ["--epochs", "9" * 5000]],
    ids=lambda a: f"{a[0]}={a[1][:12]}")
def test_demo_refuses_bad_numbers_with_exit_status_2(argv, capsys):
    from xmlp.cli.commands import main

    with pytest.raises(SystemExit) as info:
        main(["demo", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[0]}" in err and "Traceback" not in err


def _no_long_work(monkeypatch: Any) -> None:
    """Make training and measuring fail loudly: a refused command must not get there."""
    import xmlp.cli.bench_cases
    import xmlp.cli.demo

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("started the long work before checking its arguments")

    monkeypatch.setattr(xmlp.cli.demo, "fit", never)
    monkeypatch.setattr(xmlp.cli.bench_cases, "load_backends", never)


def test_demo_checks_out_and_model_before_training(tmp_path, monkeypatch, capsys):
    from xmlp.cli.commands import main

    _no_long_work(monkeypatch)
    assert main(["demo", "--out", str(tmp_path)]) == 2  # a directory
    assert "is a directory" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path / "no" / "d.png")]) == 2
    assert "no directory" in capsys.readouterr().err
    assert main(["demo", "--hidden", str(2**62), "--out", str(tmp_path / "d.png")]) == 2
    err = capsys.readouterr().err
    assert "cannot build MLP(1, " in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_bench_checks_out_before_measuring(tmp_path, monkeypatch, capsys):
    from xmlp.cli.commands import main

    _no_long_work(monkeypatch)
    target = tmp_path / "results"
    target.write_text("keep me")
    assert main(["bench", "--quick", "--out", str(target)]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err
    assert target.read_text() == "keep me"
    assert main(["bench", "--quick", "--out", str(target / "sub")]) == 2
    assert "cannot make the --out directory" in capsys.readouterr().err
    for flag in ("--min-time",):  # the one option in seconds
        for value in ("inf", "nan", "-1"):
            with pytest.raises(SystemExit) as info:
                main(["bench", flag, value])
            assert info.value.code == 2
    assert "finite number" in capsys.readouterr().err
