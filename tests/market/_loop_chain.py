"""A loop deployed on the in-process chain for tests/market's client tests: the suite, an asset
and a pool over it, a vault and a loop of the given terms, and funded accounts."""

from __future__ import annotations

from types import SimpleNamespace

from verifier.court.chain import Chain, deploy_suite
from verifier.market.loop import LoopTerms
from verifier.market.loop_client import LoopClient

TOKEN = 10**18


def deployed(terms: LoopTerms, accounts: int, liquidity: bool = False) -> SimpleNamespace:
    """`accounts` funded accounts after the keeper (the first deposits 10^5 BOND in the vault);
    with `liquidity`, the pool holds 4 * 10^8 BOND against 10^8 of the asset."""
    chain = Chain.embedded()
    d = deploy_suite(chain)
    keeper, *others = chain.w3.eth.accounts[: 1 + accounts]
    k = chain.as_account(keeper)
    token = k.contract("Token", d.addresses["Token"])
    asset = k.deploy("Token")
    pool = k.deploy("Pool", token.address, asset.address)
    if liquidity:
        for t in (token, asset):
            k.send(t.functions.mint(keeper, 10**9 * TOKEN), "mint")
            k.send(t.functions.approve(pool.address, 2**256 - 1), "approve")
        k.send(pool.functions.add_liquidity(4 * 10**8 * TOKEN, 10**8 * TOKEN, 0, keeper), "liquidity")
    for who in (keeper, *others):
        k.send(token.functions.mint(who, 10**6 * TOKEN), "mint")
    client = LoopClient.deploy(k, terms, token.address, d.addresses["Tasks"], asset.address, pool.address, d.block)
    client.as_account(others[0]).deposit(10**5 * TOKEN)
    return SimpleNamespace(chain=chain, deployment=d, k=k, token=token, pool=pool, client=client, accounts=others)
