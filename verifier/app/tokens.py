"""The bond token from the command line: balances, transfers, allowances, and a faucet for
development chains (`deploy --fund`). Amounts are BOND with 18 decimals in human output and base
units (strings) in JSON; every transfer is checked against the balance before it is sent."""

from __future__ import annotations

from typing import Any

from verifier.app.commands import require_funds
from verifier.app.session import Session
from verifier.app.units import CommandError, format_amount

# ether a funded development account is topped up to, for the gas of its moves
FUND_ETHER = 10 * 10**18


def checked_address(text: str, what: str = "address") -> str:
    from web3 import Web3

    if not Web3.is_address(text):
        raise CommandError(f"{what} '{text}' is not an account address; give 0x and 40 hex digits.")
    return Web3.to_checksum_address(text)


def spender_address(session: Session, spender: str) -> str:
    """'tasks', 'market', 'attestations' or an address."""
    names = {k.lower(): v for k, v in session.deployment.addresses.items()}
    if spender.lower() in names:
        return checked_address(names[spender.lower()])
    return checked_address(spender, "spender")


def balance(session: Session, address: str | None = None) -> dict[str, Any]:
    court, chain = session.court, session.chain
    who = checked_address(address) if address else chain.account
    if who is None:
        raise CommandError("no account: give an address, --key-file or BISECTML_PRIVATE_KEY.")
    token = court.token
    allowances = {
        name: str(token.functions.allowance(who, addr).call())
        for name, addr in session.deployment.addresses.items()
        if name in ("Tasks", "Market", "Attestations")
    }
    return {
        "address": who,
        "bond": str(token.functions.balanceOf(who).call()),
        "ether": str(chain.w3.eth.get_balance(who)),
        "allowances": allowances,
    }


def transfer(session: Session, to: str, amount: int) -> dict[str, Any]:
    court, chain = session.court, session.chain
    dest = checked_address(to, "recipient")
    if amount == 0:
        raise CommandError("the amount is 0; give a positive amount.")
    send = court.token.functions.transfer(dest, amount)
    resumed = chain.resume(send) is not None
    if not resumed:
        require_funds(court, chain.account, amount, "the transfer")
        chain.send(send, "transfer")
    return {"from": chain.account, "to": dest, "amount": str(amount), "resumed": resumed, "balance": balance(session)["bond"]}


def approve(session: Session, spender: str, amount: int) -> dict[str, Any]:
    court, chain = session.court, session.chain
    who = spender_address(session, spender)
    chain.send(court.token.functions.approve(who, amount), "approve")
    return {"owner": chain.account, "spender": who, "allowance": str(court.token.functions.allowance(chain.account, who).call())}


def fund(session: Session, addresses: list[str], amount: int) -> list[dict[str, Any]]:
    """On a development chain (the caller checks it with `require_dev_chain` before it deploys):
    mint `amount` BOND to each address and top its ether up."""
    chain = session.chain
    targets = [checked_address(a, "--fund") for a in addresses]
    funded = []
    for who in targets:
        if amount:
            chain.send(session.court.token.functions.mint(who, amount), "mint")
        if not session.embedded and chain.w3.eth.get_balance(who) < FUND_ETHER:
            try:
                chain.w3.provider.make_request("anvil_setBalance", [who, hex(FUND_ETHER)])
            except Exception as e:  # noqa: BLE001 - any node that lacks the dev method
                raise CommandError(f"the node refused anvil_setBalance ({type(e).__name__}); send ether to {who} yourself.") from None
        funded.append({"address": who, "bond": str(session.court.token.functions.balanceOf(who).call()),
                       "ether": str(chain.w3.eth.get_balance(who))})  # fmt: skip
    return funded


def describe(b: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("address", b["address"]), ("BOND", format_amount(int(b["bond"]))), ("ether", f"{int(b['ether']) / 10**18:g} ETH")]
    rows += [(f"{k} may pull", _allowance(int(v))) for k, v in b["allowances"].items()]
    return rows


def _allowance(v: int) -> str:
    # the daemons approve the maximum once; ERC-20s treat it as never decreasing
    return "unlimited" if v == 2**256 - 1 else format_amount(v)
