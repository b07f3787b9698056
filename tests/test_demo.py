"""`bisectml demo` tells the whole story, and the money adds up."""

from __future__ import annotations

import io

from rich.console import Console

from verifier.demo import CHALLENGER_BOND, REWARD, SOLVER_BOND, Demo
from verifier.game import Outcome


def test_demo__cheater_slashed_honest_paid_books_balance() -> None:
    buf = io.StringIO()
    demo = Demo(Console(file=buf, width=120), steps=160)
    assert demo.run() == 0
    s = demo.summary
    burn = SOLVER_BOND // 2
    assert s["outcome"] == Outcome.CHALLENGER_WON
    assert s["cheater"] == -SOLVER_BOND
    assert s["watchtower"] == SOLVER_BOND - burn  # its bond back plus the unburned half
    assert s["honest"] == REWARD
    assert s["poster"] == -REWARD
    assert s["burned"] == burn and s["escrow"] == 0
    assert sum(s[a] for a in ("poster", "honest", "cheater", "watchtower")) == -burn
    text = buf.getvalue()
    for phrase in ("reveals 7 step roots", "node roots of step", "disputes element", "one-step proof", "finalized"):
        assert phrase in text, phrase
    assert CHALLENGER_BOND > 0 and 0.5 < s["accuracy"] <= 1.0
