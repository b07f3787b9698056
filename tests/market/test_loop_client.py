"""verifier/market/loop_client.py against the real Loop.vy on the in-process chain: a modeler
whose slot a larger reservation took is told so, in one line, before any transaction."""

from __future__ import annotations

import pytest

from verifier.app.demo_loop import TERMS, travel_to
from verifier.court.chain import Chain, deploy_suite
from verifier.market.loop_client import LoopClient, LoopError

TOKEN = 10**18


def test_reveal__a_displaced_model__says_to_commit_again_with_more():
    chain = Chain.embedded()
    d = deploy_suite(chain)
    keeper, depositor, *modelers = chain.w3.eth.accounts[:5]
    k = chain.as_account(keeper)
    token = k.contract("Token", d.addresses["Token"])
    asset = k.deploy("Token")
    pool = k.deploy("Pool", token.address, asset.address)
    for who in (keeper, depositor, *modelers):
        k.send(token.functions.mint(who, 10**6 * TOKEN), "mint")
    client = LoopClient.deploy(k, TERMS, token.address, d.addresses["Tasks"], asset.address, pool.address)
    client.as_account(depositor).deposit(10**5 * TOKEN)
    players = [client.as_account(m) for m in modelers]
    mids = [p.register(100 * TOKEN) for p in players]
    pid = client.open_period()
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
