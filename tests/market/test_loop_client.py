"""verifier/market/loop_client.py against the real Loop.vy on the in-process chain: a modeler
whose slot a larger reservation took is told so, in one line, before any transaction."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from _loop_chain import TOKEN, deployed

from verifier.app.demo_loop import TERMS, travel_to
from verifier.market.loop_client import LoopError


@pytest.fixture
def loop():  # noqa: ANN201
    """A loop on the in-process chain with a funded vault, three registered models and period 1 open."""
    w = deployed(TERMS, accounts=4)
    modelers = w.accounts[1:]
    players = [w.client.as_account(m) for m in modelers]
    mids = [p.register(100 * TOKEN) for p in players]
    pid = w.client.open_period()
    return SimpleNamespace(chain=w.chain, deployment=w.deployment, client=w.client, players=players, mids=mids,
                           modelers=modelers, pid=pid)  # fmt: skip


def test_reveal__a_displaced_model__says_to_commit_again_with_more(loop):
    chain, client, players, mids, modelers, pid = loop.chain, loop.client, loop.players, loop.mids, loop.modelers, loop.pid
    assert TERMS.models == 2
    players[0].commit(pid, mids[0], 30, 50 * TOKEN)
    players[1].commit(pid, mids[1], -10, 50 * TOKEN)
    players[2].commit(pid, mids[2], 20, 60 * TOKEN)  # the first of the two smallest gives way
    assert [m for m, _, _ in client.slots(pid)] == [mids[2], mids[1]]
    assert players[0].stake(mids[0]) == (100 * TOKEN, 0)
    travel_to(chain, client.schedule(pid).commit_deadline)
    nonce = chain.w3.eth.get_transaction_count(modelers[0])
    with pytest.raises(LoopError, match=f"model {mids[0]} holds no slot in period {pid}: a larger reservation displaced it"):
        players[0].reveal(pid, mids[0])
    assert chain.w3.eth.get_transaction_count(modelers[0]) == nonce  # nothing sent
    players[1].reveal(pid, mids[1])
    assert [p for _, _, p in client.slots(pid)] == [None, -10]


def test_loop_programs__finds_tasks_from_the_deployment_block_in_ranges(loop, monkeypatch):
    """The daemons' hook reads TaskPosted from where the loop can have logged anything, in ranges
    a node serves, and finds the program a task was posted for."""
    from verifier.court import chain as chain_module
    from verifier.market.loop_client import LoopPrograms

    chain, client, pid = loop.chain, loop.client, loop.pid
    for p, mid, pred in zip(loop.players[:2], loop.mids[:2], (30, -10), strict=True):
        p.commit(pid, mid, pred, 50 * TOKEN)
    sch = client.schedule(pid)
    travel_to(chain, sch.commit_deadline)
    for p, mid in zip(loop.players[:2], loop.mids[:2], strict=True):
        p.reveal(pid, mid)
    travel_to(chain, sch.reveal_deadline)
    task_id = client.post_task(pid, 0)
    posted_at = int(chain.w3.eth.block_number)
    task = SimpleNamespace(program_id=bytes(client.tasks.functions.tasks(task_id).call()[1]))
    ranges = []
    real = chain_module.Deployment.logs

    def counted(self, event, filters=None, from_block=0, to_block=None):  # noqa: ANN001, ANN202
        ranges.append((max(from_block, self.block), to_block))
        return real(self, event, filters, from_block, to_block)

    monkeypatch.setattr(chain_module, "LOG_RANGE", 3)
    monkeypatch.setattr(chain_module.Deployment, "logs", counted)
    assert LoopPrograms(client, from_block=posted_at + 1).for_task(task) is None  # posted before it: not seen
    found = LoopPrograms(client, from_block=loop.deployment.block).for_task(task)
    assert found is not None and found.id == task.program_id
    assert ranges[-1] == (loop.deployment.block, posted_at)
