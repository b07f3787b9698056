"""`bisectml status`: one account's standing on a deployment. Its balances, the tasks it posted,
its claims and challenges with their games (both chess clocks), what it has to do next, and
its profit and loss: the bond token it received from the contracts minus what it paid them,
with what they still hold for it shown apart."""

from __future__ import annotations

from typing import Any

from verifier.app.commands import (
    challenge_ids,
    challenge_record,
    claim_record,
    game_view,
    task_record,
)
from verifier.app.session import Session
from verifier.app.tokens import checked_address
from verifier.app.units import CommandError
from verifier.court.states import (
    CHALLENGE_STATES,
    CLAIM_COMMITTED,
    CLAIM_LIVE,
    CLAIM_STATES,
    TASK_STATES,
)

# the states in which a contract still holds the account's bond
_CLAIM_HOLDS = (CLAIM_COMMITTED, CLAIM_LIVE)
_CHALLENGE_OPEN = 1


def _ids(session: Session, event: Any, field: str, filters: dict[str, Any]) -> list[int]:
    return sorted({int(e["args"][field]) for e in session.deployment.logs(event, filters)})


def account_status(session: Session, address: str | None = None) -> dict[str, Any]:
    court, now = session.court, session.now()
    me = checked_address(address) if address else session.account
    if me is None:
        raise CommandError("no account: give --address, --key-file or BISECTML_PRIVATE_KEY.")
    ev = court.tasks.events
    tasks = []
    for tid in _ids(session, ev.TaskPosted(), "task_id", {"poster": me}):
        t = task_record(court, tid)
        tasks.append({"task_id": tid, "state": TASK_STATES.get(t["state"], str(t["state"])), "reward": str(t["reward"]),
                      "claim_id": t["claim_id"], "deadline": t["deadline"]})  # fmt: skip
    claims, held = [], 0
    for cid in _ids(session, ev.ClaimCommitted(), "claim_id", {"solver": me}):
        c = claim_record(court, cid)
        t = task_record(court, c["task_id"])
        if c["state"] in _CLAIM_HOLDS:
            held += t["solver_bond"]
        claims.append({"claim_id": cid, "task_id": c["task_id"], "state": CLAIM_STATES.get(c["state"], str(c["state"])),
                       "challenges": c["challenges"], "unsettled": c["unsettled"],
                       "finalizable": bool(court.tasks.functions.finalizable(cid).call())})  # fmt: skip
    challenges, games = [], []
    for chid in _ids(session, ev.Challenged(), "challenge_id", {"challenger": me}):
        ch = challenge_record(court, chid)
        if ch["state"] == _CHALLENGE_OPEN:
            held += task_record(court, claim_record(court, ch["claim_id"])["task_id"])["challenger_bond"]
        challenges.append({"challenge_id": chid, "claim_id": ch["claim_id"], "game_id": ch["game_id"],
                           "state": CHALLENGE_STATES.get(ch["state"], str(ch["state"])),
                           "settleable": bool(court.tasks.functions.settleable(chid).call()),
                           "collectable": bool(court.tasks.functions.collectable(chid).call())})  # fmt: skip
        games.append(game_view(court, ch["game_id"], now, me))
    # games defending my claims
    for c in claims:
        for chid in challenge_ids(court, c["claim_id"], c["challenges"]):
            games.append(game_view(court, challenge_record(court, chid)["game_id"], now, me))
    token = court.token
    contracts = {a.lower() for n, a in session.deployment.addresses.items() if n in ("Tasks", "Market", "Attestations")}
    received = sum(int(e["args"]["value"]) for e in session.deployment.logs(token.events.Transfer(), {"receiver": me})
                   if e["args"]["sender"].lower() in contracts)  # fmt: skip
    paid = sum(int(e["args"]["value"]) for e in session.deployment.logs(token.events.Transfer(), {"sender": me})
               if e["args"]["receiver"].lower() in contracts)  # fmt: skip
    todo = [f"move in game {g['game_id']}" for g in games if g["your_move"]]
    todo += [f"settle challenge {c['challenge_id']}" for c in challenges if c["settleable"]]
    todo += [f"collect challenge {c['challenge_id']}" for c in challenges if c["collectable"]]
    todo += [f"finalize claim {c['claim_id']}" for c in claims if c["finalizable"]]
    return {
        "address": me,
        "now": now,
        "bond": str(token.functions.balanceOf(me).call()),
        "ether": str(session.chain.w3.eth.get_balance(me)),
        "received": str(received),
        "paid": str(paid),
        "held": str(held),
        "profit": str(received - paid),
        "tasks": tasks,
        "claims": claims,
        "challenges": challenges,
        "games": games,
        "todo": todo,
    }
