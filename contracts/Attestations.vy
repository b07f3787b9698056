# pragma version ~=0.4.3
"""
@title Verification fees: paid attestations of re-executed claims
@notice Pays watchtowers for verifying claims that turn out right (the verifier's dilemma,
        docs/SPEC.md 7.10). Anyone funds a fee for a task on `Tasks.vy`. While a claim of the
        task is live and inside its challenge window, a verifier commits to the root of the
        claim's final slot table (`slots_root`, the preimage of the claimed
        state(T, 0) = H(0x03 || u64(T) || u32(0) || slots_root), known only to whoever ran the
        program) bound to its own address. After the window has closed it reveals; a reveal is
        valid iff it opens the commitment and hashes to the claim's final root. If the claim is
        finalized, the task's fee is split equally among its valid reveals; if it is rejected,
        its attestations earn nothing and the fee waits for the task's next claim; if the task
        ends without a valid attestation of its finalized claim, or is reclaimed, each funder
        takes its contribution back.
@custom:security Trust assumptions and choices:
                 - The token is the bisectml bond token (contracts/Token.vy): no fees, hooks or
                   blacklists. Every mutating function is `@nonreentrant` and updates storage
                   before it calls out. The contract holds exactly `owed` (fees not yet paid or
                   refunded); tokens sent to it directly are not accounted.
                 - `Tasks.vy` is trusted for the state, solver, final root and timing of claims
                   and tasks; this contract never calls anything on it but views.
                 - `slots_root` is public only after the window has closed (market `record`
                   calls) or if a game's last-boundary proof opens it; attestations close with
                   the window, so a lazy watchtower cannot copy it, and a commitment binds its
                   verifier, so one cannot be copied either.
                 - The solver's own address cannot attest; its sybils can, at the gas of each
                   attestation, and dilute the honest shares (SPEC 7.10 bounds the rational
                   sybil count). A solver that sells `slots_root` is the residual risk.
                 - A fee only grows while any claim of its task can still be attested: a funder
                   takes nothing back before the task has ended unverified.
                 - REVEAL_PERIOD is two days, a protocol constant sized like MIN_WINDOW: a day of
                   censorship plus a day to land one reveal (SPEC 7.2).
"""

from ethereum.ercs import IERC20
from contracts import Tasks
from contracts.lib import merkle


interface IBurnable:
    def burn(amount: uint256): nonpayable


# task and claim states, as Tasks.vy numbers them (module constants are not importable)
TASK_OPEN: constant(uint8) = 1
TASK_DONE: constant(uint8) = 2
TASK_RECLAIMED: constant(uint8) = 3
CLAIM_LIVE: constant(uint8) = 2
CLAIM_REJECTED: constant(uint8) = 3
CLAIM_FINALIZED: constant(uint8) = 4

# attestation states: none, committed (result hidden), revealed and valid, fee share collected
ATTEST_NONE: constant(uint8) = 0
ATTEST_COMMITTED: constant(uint8) = 1
ATTEST_REVEALED: constant(uint8) = 2
ATTEST_COLLECTED: constant(uint8) = 3

# seconds after a claim's challenge window closes during which attestations are revealed: two
# days, a day of censorship plus a day to land one transaction (SPEC 7.2, 7.10)
REVEAL_PERIOD: public(constant(uint256)) = 172_800


struct Attestation:
    # keccak256(abi_encode(claim_id, slots_root, verifier, salt)), see `attestation_commitment`
    commitment: bytes32
    # ATTEST_NONE, ATTEST_COMMITTED, ATTEST_REVEALED or ATTEST_COLLECTED
    state: uint8


struct ClaimTally:
    # attestations of the claim revealed and valid; they share the task's fee if it is finalized
    valid: uint256
    # of those, collected
    collected: uint256


event FeeFunded:
    task_id: indexed(uint256)
    funder: indexed(address)
    amount: uint256
    # the task's fee after this contribution
    fee: uint256


event Attested:
    claim_id: indexed(uint256)
    task_id: indexed(uint256)
    verifier: indexed(address)
    commitment: bytes32


event AttestationRevealed:
    claim_id: indexed(uint256)
    task_id: indexed(uint256)
    verifier: indexed(address)
    slots_root: bytes32
    # valid reveals of the claim so far
    valid: uint256


event FeeCollected:
    claim_id: indexed(uint256)
    task_id: indexed(uint256)
    verifier: indexed(address)
    # floor(fee / valid)
    share: uint256
    # fee - valid * share, burned by the last collection (0 before)
    dust_burned: uint256


event FeeRefunded:
    task_id: indexed(uint256)
    funder: indexed(address)
    amount: uint256


# the bond token, the one Tasks.vy uses
token: public(immutable(IERC20))
# the task registry whose claims are attested
tasks: public(immutable(Tasks.__interface__))

# task id => fee funded, not refunded; fixed once the task is done, then shared as collected
fees: public(HashMap[uint256, uint256])
# task id => funder => its part of the fee, until refunded
contributions: public(HashMap[uint256, HashMap[address, uint256]])
# claim id => verifier => its attestation
attestations: public(HashMap[uint256, HashMap[address, Attestation]])
# claim id => counts of its attestations
tallies: public(HashMap[uint256, ClaimTally])
# fees of tasks not yet paid out or refunded, shares and dust not yet paid == token balance
owed: public(uint256)
# total burned: rounding dust
burned: public(uint256)


@deploy
def __init__(tasks_: address):
    """
    @param tasks_ The task registry (contracts/Tasks.vy); its token pays the fees.
    """
    assert tasks_ != empty(address), "attest: tasks is the zero address"
    tasks = Tasks.__interface__(tasks_)
    token = staticcall tasks.token()


@external
@nonreentrant
def fund(task_id: uint256, amount: uint256):
    """
    @notice Adds `amount` to the task's verification fee, pulled from the caller (approve it
            first). Only while the task is open; the contribution comes back to the caller only
            if the task ends without a valid attestation of its finalized claim.
    """
    assert amount > 0, "attest: fee is zero"
    state: uint8 = (staticcall tasks.tasks(task_id)).state
    assert state != 0, "attest: no such task"
    assert state == TASK_OPEN, "attest: task not open"
    fee: uint256 = self.fees[task_id] + amount
    self.fees[task_id] = fee
    self.contributions[task_id][msg.sender] += amount
    self.owed += amount
    log FeeFunded(task_id=task_id, funder=msg.sender, amount=amount, fee=fee)
    assert extcall token.transferFrom(msg.sender, self, amount, default_return_value=True), "attest: transfer failed"


@external
@nonreentrant
def attest(claim_id: uint256, commitment: bytes32):
    """
    @notice Commits the caller to the final slot table root it computed for the claim: while
            the claim is live, unchallenged and inside its challenge window, once per
            verifier, not from the claim's solver address. Compute `commitment` with
            `attestation_commitment(claim_id, slots_root, msg.sender, salt)`.
    """
    c: Tasks.Claim = self._claim(claim_id)
    assert c.state == CLAIM_LIVE, "attest: claim not live"
    assert block.timestamp < self._window_end(claim_id), "attest: challenge window closed"
    assert msg.sender != c.solver, "attest: solver cannot attest own claim"
    # a game can make the solver open slots_root in a proof: only attestations made before any
    # game exists prove a re-execution
    assert c.challenges == 0, "attest: claim already challenged"
    assert self.attestations[claim_id][msg.sender].state == ATTEST_NONE, "attest: already attested"
    self.attestations[claim_id][msg.sender] = Attestation(commitment=commitment, state=ATTEST_COMMITTED)
    log Attested(claim_id=claim_id, task_id=c.task_id, verifier=msg.sender, commitment=commitment)


@external
@nonreentrant
def reveal_attestation(claim_id: uint256, slots_root: bytes32, salt: bytes32):
    """
    @notice Opens the caller's attestation once the claim's challenge window has closed and
            before REVEAL_PERIOD more seconds pass. It counts iff it opens the commitment and
            state(T, 0, slots_root) is the claim's final root.
    """
    a: Attestation = self.attestations[claim_id][msg.sender]
    assert a.state != ATTEST_NONE, "attest: no attestation"
    assert a.state == ATTEST_COMMITTED, "attest: already revealed"
    c: Tasks.Claim = self._claim(claim_id)
    assert c.state != CLAIM_REJECTED, "attest: claim rejected"
    closes: uint256 = self._window_end(claim_id)
    assert block.timestamp >= closes, "attest: challenge window open"
    assert block.timestamp < closes + REVEAL_PERIOD, "attest: reveal period over"
    assert self._commitment(claim_id, slots_root, msg.sender, salt) == a.commitment, "attest: reveal does not match commitment"
    steps: uint256 = (staticcall tasks.tasks(c.task_id)).steps
    # state(T, 0) = H(0x03 || u64(T) || u32(0) || slots_root) (SPEC 3.3); Tasks.vy bounds T
    # below 2^63, so its convert cannot revert
    assert merkle._state_root(steps, 0, slots_root) == c.final_root, "attest: slots root does not match claim"

    self.attestations[claim_id][msg.sender].state = ATTEST_REVEALED
    # bounded by the attestations ever made
    valid: uint256 = unsafe_add(self.tallies[claim_id].valid, 1)
    self.tallies[claim_id].valid = valid
    log AttestationRevealed(claim_id=claim_id, task_id=c.task_id, verifier=msg.sender, slots_root=slots_root, valid=valid)


@external
@nonreentrant
def collect_fee(claim_id: uint256, verifier: address):
    """
    @notice Pays a valid attestation its equal share `floor(fee / valid)` of the task's fee,
            once the claim is finalized and its reveal period is over. Anyone may call it; it
            pays the verifier, once. The last collection of the claim burns the rounding dust.
    """
    state: uint8 = self.attestations[claim_id][verifier].state
    assert state != ATTEST_COLLECTED, "attest: fee already collected"
    assert state == ATTEST_REVEALED, "attest: attestation not revealed"
    c: Tasks.Claim = self._claim(claim_id)
    assert c.state == CLAIM_FINALIZED, "attest: claim not finalized"
    assert block.timestamp >= self._window_end(claim_id) + REVEAL_PERIOD, "attest: reveal period open"

    fee: uint256 = self.fees[c.task_id]
    tally: ClaimTally = self.tallies[claim_id]
    # this attestation is revealed, so valid >= 1
    share: uint256 = unsafe_div(fee, tally.valid)
    # collected < valid: each valid attestation collects once
    collected: uint256 = unsafe_add(tally.collected, 1)
    dust: uint256 = 0
    if collected == tally.valid:
        # valid * share <= fee
        dust = unsafe_sub(fee, unsafe_mul(tally.valid, share))

    self.attestations[claim_id][verifier].state = ATTEST_COLLECTED
    self.tallies[claim_id].collected = collected
    self.owed -= share + dust
    self.burned += dust
    log FeeCollected(claim_id=claim_id, task_id=c.task_id, verifier=verifier, share=share, dust_burned=dust)
    if share != 0:
        assert extcall token.transfer(verifier, share, default_return_value=True), "attest: transfer failed"
    if dust != 0:
        extcall IBurnable(token.address).burn(dust)


@external
@nonreentrant
def refund(task_id: uint256, funder: address):
    """
    @notice Returns a funder's contribution once the task has ended unverified: reclaimed on
            Tasks.vy, or done with no valid attestation of its finalized claim after the reveal
            period. Anyone may call it; it pays the funder, once.
    """
    amount: uint256 = self.contributions[task_id][funder]
    assert amount != 0, "attest: nothing to refund"
    self._require_unverified(task_id)
    self.contributions[task_id][funder] = 0
    # a contribution is part of its task's fee until refunded
    self.fees[task_id] = unsafe_sub(self.fees[task_id], amount)
    self.owed -= amount
    log FeeRefunded(task_id=task_id, funder=funder, amount=amount)
    assert extcall token.transfer(funder, amount, default_return_value=True), "attest: transfer failed"


@external
@pure
def attestation_commitment(claim_id: uint256, slots_root: bytes32, verifier: address, salt: bytes32) -> bytes32:
    """
    @notice The commitment `attest` takes: keccak256(abi_encode(claim_id, slots_root,
            verifier, salt)), four 32-byte words (docs/SPEC.md 7.10).
    """
    return self._commitment(claim_id, slots_root, verifier, salt)


@external
@view
def fee_share(claim_id: uint256) -> uint256:
    """
    @notice floor(fee / valid) with the valid reveals so far (0: none yet). Final once the
            reveal period is over; paid only if the claim is finalized.
    """
    valid: uint256 = self.tallies[claim_id].valid
    if valid == 0:
        return 0
    return self.fees[(staticcall tasks.claims(claim_id)).task_id] // valid


@external
@view
def reveal_period(claim_id: uint256) -> (uint256, uint256):
    """
    @notice First second reveals are accepted (the claim's challenge window end) and first
            second they are not (and fees can be collected); (0, 0) for a claim not revealed.
    """
    c: Tasks.Claim = staticcall tasks.claims(claim_id)
    if c.state != CLAIM_LIVE and c.state != CLAIM_REJECTED and c.state != CLAIM_FINALIZED:
        return 0, 0
    closes: uint256 = self._window_end(claim_id)
    return closes, closes + REVEAL_PERIOD


@external
@view
def collectable(claim_id: uint256, verifier: address) -> bool:
    """
    @notice Whether `collect_fee(claim_id, verifier)` would pass its checks now.
    """
    c: Tasks.Claim = staticcall tasks.claims(claim_id)
    return (
        self.attestations[claim_id][verifier].state == ATTEST_REVEALED
        and c.state == CLAIM_FINALIZED
        and block.timestamp >= self._window_end(claim_id) + REVEAL_PERIOD
    )


@internal
@view
def _claim(claim_id: uint256) -> Tasks.Claim:
    c: Tasks.Claim = staticcall tasks.claims(claim_id)
    assert c.state != 0, "attest: no such claim"
    return c


@internal
@view
def _window_end(claim_id: uint256) -> uint256:
    # the revealed claim's challenge deadline (reveal time + window): attestations close,
    # reveals open. Tasks' view reads one word of the task, not its whole record.
    return staticcall tasks.challenge_deadline(claim_id)


@internal
@view
def _require_unverified(task_id: uint256):
    # the task can no longer pay a fee: reclaimed, or done with no valid attestation of its
    # finalized claim once nobody can reveal one any more
    t: Tasks.Task = staticcall tasks.tasks(task_id)
    if t.state == TASK_RECLAIMED:
        return
    assert t.state == TASK_DONE, "attest: task not ended"
    c: Tasks.Claim = staticcall tasks.claims(t.claim_id)
    assert block.timestamp >= c.time + t.window + REVEAL_PERIOD, "attest: reveal period open"
    assert self.tallies[t.claim_id].valid == 0, "attest: fee earned by attesters"


@internal
@pure
def _commitment(claim_id: uint256, slots_root: bytes32, verifier: address, salt: bytes32) -> bytes32:
    return keccak256(abi_encode(claim_id, slots_root, verifier, salt))

