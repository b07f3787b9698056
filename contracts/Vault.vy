# pragma version ~=0.4.3
"""
@title The closed loop's vault: depositors' capital, shares, and requests taken in between periods
@notice Depositors pool the bond token; a share is a claim on `assets` (docs/SPEC.md 12.1).
        Deposits and withdrawals are requests that take effect together, at one price, when
        the manager (contracts/Loop.vy) opens its next period (`turn`): then the vault holds
        only the bond token and nothing of the last period is pending, so nobody can enter or
        leave at a price that a known outcome, a pending settlement or an open position is
        about to move. A request not yet taken in can be cancelled; one taken in is claimed
        (shares, or tokens) by anyone for its owner.
@custom:security Trust assumptions and choices:
                 - The token is the bisectml bond token (contracts/Token.vy): no fees or hooks.
                 - The manager is set once, by the deployer, right after deployment; it is the
                   loop whose bounded terms (SPEC 12.1) limit what it borrows (`lend`) for a
                   period's pool, tasks and position, and it returns what comes back
                   (`repay`). Depositors check the wiring (`manager`, the loop's `vault`).
                 - A share's price is `(assets + 1) / (total_shares + VIRTUAL_SHARES)`: the
                   virtual share offset keeps a first depositor from inflating the price of a
                   share against later ones (OpenZeppelin's ERC-4626 offset), and every
                   rounding favours the vault.
                 - The contract holds `owed()` = assets + requested deposits + withdrawals
                   taken in and not yet claimed; tokens sent to it directly stay there.
"""

from ethereum.ercs import IERC20

VIRTUAL_SHARES: public(constant(uint256)) = 1_000


struct Request:
    # the epoch the request joined (taken in when that epoch turns)
    epoch: uint256
    deposit: uint256
    shares: uint256


struct Epoch:
    # what an epoch's requests gave and got, and what of it is still unclaimed
    deposits_left: uint256
    minted_left: uint256
    shares_left: uint256
    paid_left: uint256


event Requested:
    account: indexed(address)
    epoch: indexed(uint256)
    deposit: uint256
    shares: uint256


event Cancelled:
    account: indexed(address)
    deposit: uint256
    shares: uint256


event Claimed:
    account: indexed(address)
    epoch: indexed(uint256)
    shares: uint256
    amount: uint256


event Turned:
    epoch: indexed(uint256)
    assets: uint256
    total_shares: uint256
    deposits: uint256
    minted: uint256
    shares: uint256
    paid: uint256


event Lent:
    amount: uint256


event Repaid:
    amount: uint256


token: public(immutable(IERC20))
manager: public(address)
deployer: address

# the depositors' capital held here, and what the manager borrowed and has not yet repaid
assets: public(uint256)
lent: public(uint256)
total_shares: public(uint256)
shares: public(HashMap[address, uint256])
requests: public(HashMap[address, Request])
# the epoch requests join now (= turns so far)
epoch: public(uint256)
pending_deposits: public(uint256)
pending_shares: public(uint256)
epochs: public(HashMap[uint256, Epoch])
# paid out by taken-in withdrawals and not yet claimed
unclaimed: public(uint256)


@deploy
def __init__(token_: IERC20):
    assert token_.address != empty(address), "vault: zero token"
    token = token_
    self.deployer = msg.sender


@external
def set_manager(manager_: address):
    """@notice Binds the manager (the loop) once, right after deployment."""
    assert msg.sender == self.deployer, "vault: only the deployer"
    assert self.manager == empty(address), "vault: manager already set"
    assert manager_ != empty(address), "vault: empty manager"
    self.manager = manager_


@external
@view
def owed() -> uint256:
    """@notice Tokens the vault owes: its assets, requested deposits and unclaimed withdrawals."""
    return self.assets + self.pending_deposits + self.unclaimed


# --- depositors ------------------------------------------------------------------------------


@external
@nonreentrant
def deposit(amount: uint256):
    """@notice Requests a deposit; it buys shares at the price of the manager's next turn."""
    assert amount > 0, "vault: nothing to deposit"
    self._enter(msg.sender)
    self.requests[msg.sender].deposit += amount
    self.pending_deposits += amount
    log Requested(account=msg.sender, epoch=self.epoch, deposit=amount, shares=0)
    assert extcall token.transferFrom(msg.sender, self, amount, default_return_value=True), "vault: token call failed"


@external
@nonreentrant
def withdraw(amount: uint256):
    """@notice Requests to redeem `amount` shares at the price of the manager's next turn."""
    assert amount > 0, "vault: nothing to withdraw"
    assert amount <= self.shares[msg.sender], "vault: more shares than held"
    self._enter(msg.sender)
    self.shares[msg.sender] -= amount
    self.requests[msg.sender].shares += amount
    self.pending_shares += amount
    log Requested(account=msg.sender, epoch=self.epoch, deposit=0, shares=amount)


@external
@nonreentrant
def cancel():
    """@notice Takes back the caller's request that no turn has taken in yet."""
    r: Request = self.requests[msg.sender]
    assert r.epoch == self.epoch and r.deposit + r.shares > 0, "vault: no request to cancel; a taken-in request is claimed"
    self.requests[msg.sender] = empty(Request)
    self.pending_deposits -= r.deposit
    self.pending_shares -= r.shares
    self.shares[msg.sender] += r.shares
    log Cancelled(account=msg.sender, deposit=r.deposit, shares=r.shares)
    self._push(msg.sender, r.deposit)


@external
@nonreentrant
def claim(account: address):
    """@notice Gives `account` the shares and tokens of its taken-in request (anyone)."""
    assert self._claim(account), "vault: nothing to claim; a request is taken in when the next period opens"


@internal
def _enter(account: address):
    # a request joins the current epoch; one taken in earlier is claimed first
    if self.requests[account].epoch != self.epoch:
        self._claim(account)
        self.requests[account].epoch = self.epoch


@internal
def _claim(account: address) -> bool:
    r: Request = self.requests[account]
    if r.epoch == self.epoch or r.deposit + r.shares == 0:
        return False
    e: Epoch = self.epochs[r.epoch]
    # each claimer takes its part of what is left, so the last one takes the rest exactly
    minted: uint256 = 0
    if r.deposit > 0:
        minted = r.deposit * e.minted_left // e.deposits_left
        e.deposits_left -= r.deposit
        e.minted_left -= minted
    paid: uint256 = 0
    if r.shares > 0:
        paid = r.shares * e.paid_left // e.shares_left
        e.shares_left -= r.shares
        e.paid_left -= paid
    self.epochs[r.epoch] = e
    self.requests[account] = empty(Request)
    self.shares[account] += minted
    self.unclaimed -= paid
    log Claimed(account=account, epoch=r.epoch, shares=minted, amount=paid)
    self._push(account, paid)
    return True


# --- the manager -----------------------------------------------------------------------------


@external
@nonreentrant
def turn() -> uint256:
    """
    @notice Takes in the epoch's requests, all at one price, and starts the next epoch (the
            manager, when it opens a period). Returns the assets after them.
    """
    assert msg.sender == self.manager, "vault: only the manager"
    e: uint256 = self.epoch
    assets: uint256 = self.assets
    supply: uint256 = self.total_shares
    deposits: uint256 = self.pending_deposits
    redeemed: uint256 = self.pending_shares
    minted: uint256 = deposits * (supply + VIRTUAL_SHARES) // (assets + 1)
    # paid <= assets: redeemed <= supply, so paid < assets + 1
    paid: uint256 = redeemed * (assets + 1) // (supply + VIRTUAL_SHARES)
    self.epochs[e] = Epoch(deposits_left=deposits, minted_left=minted, shares_left=redeemed, paid_left=paid)
    assets = assets + deposits - paid
    supply = supply + minted - redeemed
    self.assets = assets
    self.total_shares = supply
    self.unclaimed += paid
    self.pending_deposits = 0
    self.pending_shares = 0
    self.epoch = e + 1
    log Turned(epoch=e, assets=assets, total_shares=supply, deposits=deposits, minted=minted, shares=redeemed, paid=paid)
    return assets


@external
@nonreentrant
def lend(amount: uint256):
    """@notice Hands `amount` of the assets to the manager (a period's pool, tasks or position)."""
    assert msg.sender == self.manager, "vault: only the manager"
    self.assets -= amount
    self.lent += amount
    log Lent(amount=amount)
    self._push(msg.sender, amount)


@external
@nonreentrant
def repay(amount: uint256):
    """@notice Takes back `amount` from the manager into the assets (it may exceed what was lent)."""
    assert msg.sender == self.manager, "vault: only the manager"
    self.assets += amount
    self.lent -= min(self.lent, amount)
    log Repaid(amount=amount)
    assert extcall token.transferFrom(msg.sender, self, amount, default_return_value=True), "vault: token call failed"


@internal
def _push(to: address, amount: uint256):
    if amount != 0:
        assert extcall token.transfer(to, amount, default_return_value=True), "vault: token call failed"
