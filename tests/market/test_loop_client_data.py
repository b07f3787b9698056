"""verifier/market/loop_client.py's data side against the real Loop.vy on the in-process chain:
publishing, staking and joining refuse bad input before any transaction, and the data-values
program a period's task is posted for is rebuilt from the chain with the task's program id (a
dataset slot joined but not valued, and features from the period before)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
from _loop_chain import TOKEN, deployed

from verifier.app.demo_loop import TERMS, travel_to
from verifier.market.availability import AvailabilityError
from verifier.market.loop_client import VALUES, LoopClient, LoopError, LoopPrograms

DATA_TERMS = dataclasses.replace(TERMS, datasets=2, features=3, dataset_rows=4, k=2, data_share_bps=2_000, data_slash_bps=500)


def _rows(value: int, label: int) -> tuple[np.ndarray, np.ndarray]:
    t = DATA_TERMS
    return np.full((t.dataset_rows, t.features), value, np.int8), np.full(t.dataset_rows, label, np.int8)


@pytest.fixture
def loop():  # noqa: ANN201
    """A loop of DATA_TERMS on the in-process chain over a pool with liquidity, a funded vault,
    two modelers and two data providers (each with a dataset published)."""
    w = deployed(DATA_TERMS, accounts=6, liquidity=True)
    client, others = w.client, w.accounts[1:]
    modelers = [client.as_account(a) for a in others[:2]]
    providers = [client.as_account(a) for a in others[2:4]]
    dsets = [p.publish_dataset(*_rows(v, lab), 100 * TOKEN) for p, v, lab in zip(providers, (0, 2), (-1, 1), strict=True)]
    return SimpleNamespace(chain=w.chain, deployment=w.deployment, k=w.k, token=w.token, pool=w.pool, client=client, modelers=modelers,
                           providers=providers, dsets=dsets, stranger=client.as_account(others[4]))  # fmt: skip


def _nothing_sent(chain, who: LoopClient, call) -> str:  # noqa: ANN001
    """The LoopError `call` raises, checked to have sent nothing from `who`'s account."""
    nonce = chain.w3.eth.get_transaction_count(who.account)
    with pytest.raises(LoopError) as e:
        call()
    assert chain.w3.eth.get_transaction_count(who.account) == nonce
    return str(e.value)


def _to(w: SimpleNamespace, t: int, swap: int = 10**6) -> None:
    """To time `t`, with a trade of the pool one average window before it (its average price
    then covers the window): `swap` bond tokens buy the asset, a negative `swap` sells it."""
    travel_to(w.chain, t - DATA_TERMS.average - 60)
    asset = w.k.contract("Token", w.client.addresses["Asset"])
    token_in = (w.token if swap > 0 else asset).address
    w.k.send(w.pool.functions.swap(token_in, abs(swap), 0, w.k.account), "poke")
    travel_to(w.chain, t)


def test_data_calls__bad_input__refused_before_any_transaction(loop):
    w = loop
    provider, other = w.providers
    x, y = _rows(1, 1)
    assert "features [4, 3] and labels [4]" in _nothing_sent(w.chain, provider, lambda: provider.publish_dataset(x[:, :2], y, TOKEN))
    assert "labels must be -1 or 1" in _nothing_sent(w.chain, provider, lambda: provider.publish_dataset(x, y * 0, TOKEN))
    assert "integers in -128..127" in _nothing_sent(w.chain, provider, lambda: provider.publish_dataset(x * 0.5, y, TOKEN))
    assert "less than 1,000,001 BOND" in _nothing_sent(w.chain, provider, lambda: provider.publish_dataset(x, y, 10**6 * TOKEN + TOKEN))
    # an int64 file of int8 values is taken as the int8 dataset it is
    assert provider.dataset_of_shape(x.astype(np.int64), y.astype(np.int64))[0].dtype == np.int8

    mine, theirs = w.dsets
    assert "there is no dataset 9 on this loop (it has 2)" in _nothing_sent(w.chain, provider, lambda: provider.add_data_stake(9, TOKEN))
    assert f"dataset {theirs} is owned by {other.account}" in _nothing_sent(w.chain, provider, lambda: provider.add_data_stake(theirs, TOKEN))
    assert "withdraw at most that" in _nothing_sent(w.chain, provider, lambda: provider.withdraw_data_stake(mine, 101 * TOKEN))
    assert "dataset 3 is not published" in _nothing_sent(w.chain, w.modelers[0], lambda: w.modelers[0].register(TOKEN, (mine, 3)))
    assert "there is no period 1" in _nothing_sent(w.chain, provider, lambda: provider.join(1, mine, 50 * TOKEN))

    pid = w.client.open_period()
    assert "owned by" in _nothing_sent(w.chain, provider, lambda: provider.join(pid, theirs, 50 * TOKEN))
    assert "got 1 BOND" in _nothing_sent(w.chain, provider, lambda: provider.join(pid, mine, TOKEN))  # below min_stake
    provider.join(pid, mine)  # all of its free stake
    assert w.client.dataset_slots(pid) == [(mine, 100 * TOKEN, False)]
    assert "already joined" in _nothing_sent(w.chain, provider, lambda: provider.join(pid, mine, 50 * TOKEN))
    assert "0 BOND free (100 BOND reserved" in _nothing_sent(w.chain, provider, lambda: provider.withdraw_data_stake(mine, TOKEN))
    travel_to(w.chain, w.client.schedule(pid).commit_deadline)
    assert "commit deadline passed" in _nothing_sent(w.chain, other, lambda: other.join(pid, theirs, 50 * TOKEN))
    provider.add_data_stake(mine, 5 * TOKEN)
    provider.withdraw_data_stake(mine, 5 * TOKEN)
    assert w.client.dataset(mine)["stake"] == 100 * TOKEN


def test_values_program__rebuilt_from_the_chain__has_its_tasks_program_id(loop):
    """Period 1 has no model and ends at its close with a label; period 2's features hold it.
    In period 2 dataset A joins but no revealed model names it (slot 0, not valued) and B joins
    named by a revealed model (slot 1): the values program the client rebuilds (mask 0 1, B's
    arrays, the features, the label) is the one the loop posted."""
    w = loop
    c = w.client
    p1 = c.open_period()
    s1 = c.schedule(p1)
    _to(w, s1.trade_at)
    c.trade(p1)
    _to(w, s1.end, swap=10**6 * TOKEN)  # the asset rises
    c.close(p1)
    assert c.period(p1)["label"] == 1 and c.period(p1)["state"] == 2

    a, b = w.dsets
    mids = [m.register(100 * TOKEN, datasets) for m, datasets in zip(w.modelers, ((b,), ()), strict=True)]
    p2 = c.open_period()
    assert c.features(p2).tolist() == [[1, 0, 0]]
    for provider, did in zip(w.providers, w.dsets, strict=True):
        provider.join(p2, did, 50 * TOKEN)
    s2 = c.schedule(p2)
    for m, mid, pred in zip(w.modelers, mids, (30, -10), strict=True):
        m.commit(p2, mid, pred, 20 * TOKEN)
    travel_to(w.chain, s2.commit_deadline)
    for m, mid in zip(w.modelers, mids, strict=True):
        m.reveal(p2, mid)
    assert c.dataset_slots(p2) == [(a, 50 * TOKEN, False), (b, 50 * TOKEN, True)]
    _to(w, s2.trade_at)
    c.trade(p2)
    _to(w, s2.end, swap=-10**5 * TOKEN)  # the asset falls
    c.close(p2)
    assert c.period(p2)["label"] == -1

    data = c.program_data(p2, VALUES)
    assert data["mask"].tolist() == [0, 1] and data["datasets"][0] is None
    assert [a.tolist() for a in data["datasets"][1]] == [a.tolist() for a in _rows(2, 1)]
    # the datasets' publications are read from the suite's deployment block on, never from block 0
    assert c.from_block == w.deployment.block and w.providers[0].from_block == c.from_block
    with pytest.raises(AvailabilityError, match="never published"):
        LoopClient.at(w.chain, c.addresses["Loop"], w.chain.w3.eth.block_number + 1).dataset_arrays(b)
    task_id = c.post_task(p2, VALUES)
    program_id = bytes(c.tasks.functions.tasks(task_id).call()[1])
    assert c.program(p2, VALUES).id == program_id
    found = LoopPrograms(c).for_task(SimpleNamespace(program_id=program_id))  # refuses a rebuilt program of another id
    assert found is not None and found.id == program_id
    assert c.values(p2) is None
