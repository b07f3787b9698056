"""`bisectml demo` tells the whole story, and the money adds up."""

from __future__ import annotations

import io
import tempfile

from rich.console import Console

from verifier.app import demo_market as market
from verifier.app.demo import CHALLENGER_BOND, REWARD, SOLVER_BOND, Demo
from verifier.court.game import Outcome


def test_demo__cheater_slashed_honest_paid_books_balance(tmp_path, monkeypatch) -> None:
    # resources have owners: the demo leaves nothing in the temporary folder
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setenv("TMPDIR", str(private))
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    buf = io.StringIO()
    demo = Demo(Console(file=buf, width=120), steps=160)
    assert demo.run() == 0
    assert sorted(p.name for p in private.iterdir()) == []
    s = demo.summary
    burn = SOLVER_BOND // 2
    m = s["market"]
    # the market round: the cheater's scores claim is slashed too, and the honest solver is paid
    # the three tasks' rewards
    m_burn = market.SOLVER_BOND // 2
    assert s["outcome"] == Outcome.CHALLENGER_WON and m["outcome"] == Outcome.CHALLENGER_WON
    assert s["cheater"] == -SOLVER_BOND - market.SOLVER_BOND
    assert s["watchtower"] == SOLVER_BOND - burn + market.SOLVER_BOND - m_burn
    assert s["honest"] == REWARD + 3 * market.TASK_REWARD
    assert s["poster"] == -REWARD
    assert s["escrow"] == 0
    assert s["burned"] == burn + m_burn
    assert sum(s[a] for a in ("poster", "honest", "cheater", "watchtower")) == -burn - m_burn + 3 * market.TASK_REWARD
    # payouts rest on each model's own score: the model on noise data earns less than A and no
    # contribution bonus (it makes the others' metamodel worse); the noise dataset is slashed,
    # the clean one paid
    assert m["modeler A"] > m["modeler C"] and m["modeler A"] > 0
    assert m["scores"][0] > m["scores"][2] and m["contributions"][0] > 0 > m["contributions"][2]
    assert m["values"][0] > 0 > m["values"][1]
    assert m["clean data"] > 0 > m["noise data"]
    people = ("clean data", "noise data", "modeler A", "modeler B", "modeler C", "sponsor")
    assert sum(m[p] for p in people) == -m["burned"] - 3 * market.TASK_REWARD
    assert m["market_balance"] == m["market_owed"]
    text = buf.getvalue()
    for phrase in ("reveals 7 step roots", "node roots of step", "disputes element", "one-step proof", "finalized"):
        assert phrase in text, phrase
    assert CHALLENGER_BOND > 0 and 0.5 < s["accuracy"] <= 1.0
    # the closed loop: three periods, the cheater's metamodel claim caught, the books balanced
    loop = s["loop"]
    assert loop["periods"] == 3 and loop["caught"] == 1 and loop["balanced"]
    assert loop["model_pnl"][0] > loop["model_pnl"][1]
    assert loop["share_price"][-1] > loop["share_price"][0]
    assert "wins game" in text and "share price" in text
    # the data providers: what the demo shows (each provider's balance plus its dataset's stake,
    # before and after a period) is what the contract logged (DataPaid) and what SPEC 12.5's rule
    # pays for what settle read (the chain's scores, values and reservations)
    rows = loop["rows"]
    for r in rows:
        assert r.settled is not None and all(v is not None for v in r.data_values), r
        assert r.data_payouts == r.data_paid == r.settled.expected_data(), r
        for paid, value in zip(r.data_payouts, r.data_values, strict=True):
            # a negative value is slashed, a payout needs a positive value
            assert (paid < 0) == (value < 0) and (paid <= 0 or value > 0), r
    assert loop["data_pnl"] == [sum(r.data_payouts[i] for r in rows) for i in range(2)]
    assert any(r.data_payouts[0] > 0 for r in rows) and any(r.data_payouts[1] < 0 for r in rows)
    # Over these three periods the informative dataset does not earn more than the flipped one
    # (-5 against +45 BOND): the features of periods 1 and 2 are [0, 0] and [+1, 0] (no history
    # yet), and the series' labels predict the next one only weakly (SPEC 11.3), so a period's
    # data values are near coin flips. The periods test plays ten periods.
    shown = " ".join(text.split())  # the console wraps lines at its width
    pnl = [f"{p / 10**18:+,.1f}" for p in loop["data_pnl"]]
    assert f"informative data {pnl[0]}, noisy data {pnl[1]}, burned" in shown
