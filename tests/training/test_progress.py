"""fit's progress bar: labelled fit, counted in epochs, showing the last loss; drawn on a
terminal when progress is None."""

from __future__ import annotations

import io
import re
import sys

import numpy as np

import xmlp


def test_progress_bar_is_labelled_fit_and_shows_the_last_loss(capsys):
    x, t = np.linspace(-1, 1, 6).reshape(6, 1), np.zeros((6, 1))
    history = xmlp.fit(xmlp.MLP(1, 3, 1, rng=0), x, t, epochs=2, lr=0.1, progress=True)
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("fit: 100%") and "2/2" in err
    assert re.search(r"[\d?]epoch/s|s/epoch", err), err  # the unit is the epoch
    assert f"loss={history[-1]:.4g}" in err


class TerminalStderr(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_none_draws_a_bar_on_a_terminal(monkeypatch):
    err = TerminalStderr()
    monkeypatch.setattr(sys, "stderr", err)
    x, t = np.linspace(-1, 1, 6).reshape(6, 1), np.zeros((6, 1))
    xmlp.fit(xmlp.MLP(1, 3, 1, rng=0), x, t, epochs=2, lr=0.1)
    assert "fit: 100%" in err.getvalue()
