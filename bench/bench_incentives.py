"""Incentives of tasks, claims and challenges: an agent-based simulation over the REAL contracts.

contracts/Token.vy and contracts/Tasks.vy run on titanoboa exactly as deployed;
contracts/mocks/MockGame.vy stands in for the dispute game's *verdict only* (the game's
correctness is proven elsewhere: tests/contracts/test_game_*.py). Every party is charged

- the real gas of every Tasks.vy call it makes or benefits from, measured by boa (intrinsic +
  calldata + execution, as bench/bench_gas.py counts it), and
- the real gas of its side of each dispute game, from bench/gas_snapshot.json (a 10,000-step
  claim of the bundled MLP, an honest challenger against one wrong element, at `--arity`).

A rejected claim's prize is split in proportion to each winner's metered gas (docs/SPEC.md 7.5):
the mock's `challenger_gas` is set to what Game.vy's meter gives the challenger's moves of the
snapshot (see `metered`), plus the difference between the real challenge transaction's meter
and the mock's (the mock's `create` is cheaper), so every weight is the real contracts'.

Agents: honest solver, cheating solver (wrong root), lazy copier (copies a pending commitment
by front-running it, or commits blind), self-challenging cheater (its sybils challenge its own
wrong claim, it concedes those games and settles them first), sybil swarm griefer (`k`
challenges against an honest claim; the honest solver misses one clock in one of them with
probability `p`), honest watchtower, slot griefer (commits and never reveals), gas-inflating
sybil (in the sweep: its sybils buy metered weight by padding at one gas per unit, or by playing
whole games the cheater pays both sides of, at every spending level). Permissionless
calls (settle, collect, finalize, expire_claim) are made by arbitrary parties in random order.

Printed and written to bench/incentives_report.json:
- per attack, attacker and defender cost (BOND and ETH) and the attacker:defender ratio
  (goal >= 10:1), with the assumptions;
- the honest challenger's net after gas in every game it played (goal > 0 in every game), and a
  sweep of the solver bond (and of the number of conceding sybils, of the gas-inflating sybil's
  spending, with the minimum attacker:defender ratio over it, and of the challenger bond for the
  swarm, with the bond at which the full-play swarm reaches 10:1 found by bisection) showing
  where the goals stop holding;
- the honest solver's bond losses (goal 0);
- the watchtower's income with zero cheaters from Tasks.vy alone (0: nothing in the task
  registry pays watching when nobody cheats; the verification fees of Attestations.vy do, and
  bench/bench_attest.py measures them);
- funds held vs owed by Tasks.vy after every transaction.

Exit code: 1 when an invariant breaks (Tasks' token balance != owed() != this script's own
ledger after any transaction, or an honest party that met its clocks ends with less BOND than it
started with). With `--check` also 1 when a goal is missed, except the zero-cheater watchtower
income goal, which this script reports for Tasks.vy alone and leaves to bench/bench_attest.py.

    python bench/bench_incentives.py [--tasks 840] [--seed 1] [--gwei 100] [--bond-eth 0.001]
        [--solver-bond 1000] [--challenger-bond 250] [--reward 200] [--arity 4]
        [--swarm-k 3] [--miss-p 0.1] [--sybils 1] [--check] [--no-sweep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boa
from boa.contracts.base_evm_contract import BoaError

from verifier.market.economics import MIN_CHALLENGER_BOND

E18 = 10**18
# the least challenger bond Tasks.vy accepts, in whole BOND
MIN_CHALLENGER_BOND_WHOLE = MIN_CHALLENGER_BOND // E18
PENDING, SOLVER_WON, CHALLENGER_WON = 0, 1, 2
DAY = 86_400
# a Game.timeout transaction (the winner of a game the other side abandoned claims it): not in
# gas_snapshot.json, so assumed; about one move of the game
TIMEOUT_GAS = 60_000
# the meter (docs/SPEC.md 6, 7.5): 4/5 of (21_000 + execution) per challenger transaction
METER_NUM, METER_DEN = 4, 5
# the part of the referee's element-choice transaction that Game.enter_element meters, measured
# on the accumulator game: 85,865 of 166,530 gas
ENTER_ELEMENT_SHARE = 0.5
# episodes per chain before a fresh deployment (each chain is checked on its own)
CHAIN_TASKS = 70
# the share of a game played before the honest solver misses its clock (swarm, probability p)
MISSED_AT = 0.5
ATTACKS = [
    "cheating solver",
    "self-challenging cheater",
    "copier: front-runs pending commitment",
    "copier: blind commit, reveals a guess",
    "copier: blind commit, never reveals",
    "sybil swarm (full play)",
    "sybil swarm (abandon after challenge)",
    "slot griefer",
    "gas-inflating sybil",
]


def tx_gas(execution: int, calldata: bytes) -> int:
    """Intrinsic + calldata (EIP-2028, EIP-7623 floor) + execution (as bench/bench_gas.py)."""
    zeros = calldata.count(0)
    tokens = zeros + 4 * (len(calldata) - zeros)
    return max(21_000 + 4 * tokens + execution, 21_000 + 10 * tokens)


def burn_of(b: int) -> int:
    return -(-b * 5_000 // 10_000)


_DEPLOYERS: dict = {}


def deployer(rel: str):
    """contracts/`rel`, compiled once per process by the real compiler."""
    if rel not in _DEPLOYERS:
        _DEPLOYERS[rel] = boa.load_partial(str(ROOT / "contracts" / rel))
    return _DEPLOYERS[rel]


class Invariant(Exception):
    pass


class Sim:
    """One chain: Token, MockGame, Tasks; a ledger of gas per (episode, party)."""

    def __init__(self, args, rng: random.Random, sb: int, cb: int, game: dict):
        self.a, self.rng, self.sb, self.cb, self.reward = (
            args,
            rng,
            sb,
            cb,
            args.reward * E18,
        )
        self.game = game
        self.deployer = boa.env.generate_address("deployer")
        with boa.env.prank(self.deployer):
            self.token = deployer("Token.vy").deploy()
            self.mock = deployer("mocks/MockGame.vy").deploy()
            self.tasks = deployer("Tasks.vy").deploy(
                self.token.address, self.mock.address, deployer("Availability.vy").deploy().address
            )
            self.mock.set_tasks(self.tasks.address)
        self.funded: set = set()
        self.shadow_owed = 0  # this script's own ledger of what Tasks owes
        self.txs = 0
        self.call_gas: dict[str, list[int]] = defaultdict(list)
        self.reverted_gas: dict[str, list[int]] = defaultdict(list)
        self.gas: dict[str, int] = defaultdict(
            int
        )  # party -> gas of the current episode
        self.bystanders = [boa.env.generate_address(f"bystander{i}") for i in range(4)]
        # this script's own ledger of the prize split: each challenge's metered weight, each
        # claim's total G of its winners and the prize paid out so far
        self.weight: dict[int, int] = {}
        self.claim_gas: dict[int, int] = defaultdict(int)
        self.shared: dict[int, int] = defaultdict(int)
        self.n_addr = 0
        self.rewarded: dict[str, int] = defaultdict(int)

    # --- parties and calls -------------------------------------------------------------------

    def new(self, name: str) -> str:
        self.n_addr += 1
        addr = boa.env.generate_address(f"{name}{self.n_addr}")
        with boa.env.prank(self.deployer):
            self.token.mint(addr, 10**7 * E18)
        with boa.env.prank(addr):
            self.token.approve(self.tasks.address, 2**256 - 1)
        return addr

    def bal(self, who: str) -> int:
        return self.token.balanceOf(who)

    def call(self, who: str, fn: str, *args, payer: str | None = None):
        """`who` sends Tasks.`fn`(*args); its gas is charged to `payer` (default `who`): the
        party a permissionless call serves pays for it in the metrics, whoever sent it."""
        f = getattr(self.tasks, fn)
        calldata = f.prepare_calldata(*args)
        with boa.env.prank(who):
            r = f(*args)
        g = tx_gas(self.tasks._computation.get_gas_used(), calldata)
        self.call_gas[fn].append(g)
        self.gas[payer or who] += g
        self.txs += 1
        self.check(fn)
        return r

    def call_reverting(
        self, who: str, fn: str, *args, reason: str, payer: str | None = None
    ) -> str:
        f = getattr(self.tasks, fn)
        calldata = f.prepare_calldata(*args)
        with boa.env.prank(who):
            try:
                f(*args)
            except BoaError as e:
                comp = getattr(self.tasks, "_computation", None)
                ex = comp.get_gas_used() if comp is not None else 30_000
                g = tx_gas(ex, calldata)
                self.reverted_gas[fn].append(g)
                self.gas[payer or who] += g
                self.check(fn + " (reverted)")
                if reason not in str(e):
                    raise Invariant(
                        f"{fn} reverted, but not with {reason!r}: {str(e)[:300]}"
                    ) from e
                return reason
        raise Invariant(f"{fn} was expected to revert")

    def check(self, what: str):
        held, owed = self.bal(self.tasks.address), self.tasks.owed()
        if not (held == owed == self.shadow_owed):
            raise Invariant(
                f"after {what}: held {held} owed() {owed} ledger {self.shadow_owed}"
            )

    def anyone(self, *parties: str) -> str:
        return self.rng.choice(list(parties) + self.bystanders)

    def travel(self, seconds: int):
        boa.env.time_travel(seconds=seconds)

    # --- game gas (bench/gas_snapshot.json) ---------------------------------------------------

    def charge_game(self, solver: str, challenger: str, mode: str) -> int:
        """Charges each side the real gas of its part of a game; returns what Game.vy's meter
        would say for the challenger's moves (a timeout is not the challenger's move: 0)."""
        g = self.game
        if mode == "full":
            self.gas[solver] += g["solver_in_game"]
            self.gas[challenger] += g["challenger_in_game"]
            return g["challenger_metered_in_game"]
        if (
            mode == "solver concedes"
        ):  # the solver never moves; the challenger claims the timeout
            self.gas[challenger] += TIMEOUT_GAS
            return 0
        if (
            mode == "challenger abandons"
        ):  # one solver move, then the solver claims the timeout
            self.gas[solver] += g["solver_first_move"] + TIMEOUT_GAS
            return 0
        if mode == "solver misses clock":
            self.gas[solver] += int(g["solver_in_game"] * MISSED_AT)
            self.gas[challenger] += (
                int(g["challenger_in_game"] * MISSED_AT) + TIMEOUT_GAS
            )
            return int(g["challenger_metered_in_game"] * MISSED_AT)
        raise ValueError(mode)

    # --- task lifecycle with the shadow ledger ------------------------------------------------

    def post(self, poster: str) -> int:
        self.shadow_owed += self.reward
        dl = boa.env.timestamp + 60 * DAY
        return self.call(
            poster,
            "post_task",
            b"\x01" * 32,
            12,
            30,
            b"\x02" * 32,
            b"\x03" * 32,
            10_000,
            self.reward,
            2 * DAY,
            2 * DAY,
            self.sb,
            self.cb,
            self.a.arity,
            dl,
        )

    def commit(
        self,
        who: str,
        task: int,
        root: bytes,
        salt: bytes,
        commitment: bytes | None = None,
        payer: str | None = None,
    ) -> int:
        c = commitment or self.tasks.claim_commitment(task, root, who, salt)
        self.shadow_owed += self.sb
        return self.call(who, "commit_claim", task, c, payer=payer)

    def reveal(
        self, who: str, claim: int, root: bytes, salt: bytes, payer: str | None = None
    ):
        self.call(who, "reveal_claim", claim, root, salt, payer=payer)

    def challenge(self, who: str, claim: int) -> int:
        self.shadow_owed += self.cb
        cid = self.call(who, "challenge", claim)
        # the mock's `create` is cheaper than Game.vy's: charge the real challenge transaction
        # (Tasks.challenge + Game.create, from the snapshot) instead of the measured one
        self.gas[who] += self.game["challenge_tx"] - self.call_gas["challenge"][-1]
        return cid

    def decide(self, challenge_id: int, outcome: int, meter: int = 0):
        """Ends the game; `meter`: the challenger's in-game metered gas. Tasks metered the
        mock's cheaper challenge transaction, so the mock's meter also carries the difference
        to the real one: the weight is what Game.vy would give."""
        gid = self.tasks.challenges(challenge_id)[2]
        tx = self.tasks.challenges(challenge_id)[4]
        extra = max(0, self.game["challenge_metered"] - tx) + meter
        with boa.env.prank(self.deployer):
            self.mock.set_outcome(gid, outcome)
            self.mock.set_challenger_gas(gid, extra)
        self.weight[challenge_id] = tx + extra

    def settle(self, challenge_id: int, payer: str, caller: str):
        ch = self.tasks.challenges(challenge_id)
        claim = self.tasks.claims(ch[0])
        outcome = self.mock.outcome(ch[2])
        if outcome == CHALLENGER_WON:
            self.shadow_owed -= self.cb
            self.claim_gas[ch[0]] += self.weight[challenge_id]
            if claim[9] == 2:  # LIVE: first win rejects, burns burn(sb)
                self.shadow_owed -= burn_of(self.sb)
        else:
            self.shadow_owed -= self.cb
        self.call(caller, "settle", challenge_id, payer=payer)

    def collect(self, challenge_id: int, payer: str, caller: str):
        claim_id = self.tasks.challenges(challenge_id)[0]
        c = self.tasks.claims(claim_id)
        prize = self.sb - burn_of(self.sb)
        # the share by this script's own ledger of weights (Tasks' is checked against it by
        # the held == owed() == ledger check after the call)
        share = prize * self.weight[challenge_id] // self.claim_gas[claim_id]
        self.shared[claim_id] += share
        dust = prize - self.shared[claim_id] if c[8] + 1 == c[7] else 0
        self.shadow_owed -= share + dust
        self.call(caller, "collect", challenge_id, payer=payer)

    def finalize(self, claim: int, solver: str, caller: str, payer: str | None = None):
        self.shadow_owed -= self.reward + self.sb
        self.rewarded[solver] += self.reward
        self.call(caller, "finalize", claim, payer=payer or solver)

    def expire(self, claim: int, payer: str, caller: str):
        self.shadow_owed -= self.sb
        self.call(caller, "expire_claim", claim, payer=payer)

    def to_window_end(self, claim: int):
        self.travel(self.tasks.challenge_deadline(claim) - boa.env.timestamp)

    def honest_solve(
        self, task: int, solver: str, caller_pool: list[str], baseline: bool = True
    ) -> int:
        """Commit, reveal, no challenge, finalize: closes the task. With `baseline` its gas is
        the solver's ordinary cost of doing the work, kept out of the attack's costs."""
        salt = self.rng.randbytes(32)
        payer = "base:" + solver if baseline else None
        cl = self.commit(solver, task, TRUE_ROOT, salt, payer=payer)
        self.reveal(solver, cl, TRUE_ROOT, salt, payer=payer)
        self.to_window_end(cl)
        self.finalize(cl, solver, self.anyone(solver, *caller_pool), payer=payer)
        return cl


TRUE_ROOT = b"\x11" * 32


def wrong_root(rng: random.Random) -> bytes:
    r = rng.randbytes(32)
    return r if r != TRUE_ROOT else b"\x12" * 32


# --- episodes: each returns {party role -> address}, roles whose costs are reported ----------


def ep_honest(s: Sim) -> dict:
    poster, solver, wt = s.new("poster"), s.new("solver"), s.new("watchtower")
    task = s.post(poster)
    # the watchtower recomputes the claim, finds it right and waits
    s.honest_solve(task, solver, [poster, wt])
    return {
        "attacker": None,
        "defender": solver,
        "solver": solver,
        "watchtower": wt,
        "honest": [solver, wt],
    }


def _cheat(s: Sim, sybils: int, name: str) -> dict:
    poster, cheater, solver = s.new("poster"), s.new("cheater"), s.new("solver")
    wts = [s.new("watchtower") for _ in range(s.a.watchtowers)]
    syb = [s.new("sybil") for _ in range(sybils)]
    task = s.post(poster)
    salt, root = s.rng.randbytes(32), wrong_root(s.rng)
    cl = s.commit(cheater, task, root, salt)
    s.reveal(cheater, cl, root, salt)
    # the sybils and the watchtowers challenge in random order within the window
    order = [("sybil", a) for a in syb] + [("wt", a) for a in wts]
    s.rng.shuffle(order)
    chs = []
    for kind, a in order:
        s.travel(s.rng.randrange(1, 6 * 3600))
        cid = s.challenge(a, cl)
        chs.append((kind, a, cid))
        if kind == "sybil":
            # the cheater concedes its sybil's game at once and settles it first
            s.decide(cid, CHALLENGER_WON, s.charge_game(cheater, a, "solver concedes"))
            s.settle(cid, payer=a, caller=cheater)
    # the cheater fights every honest game to the end (the most it can make the watchtower pay)
    for kind, a, cid in chs:
        if kind == "wt":
            s.decide(cid, CHALLENGER_WON, s.charge_game(cheater, a, "full"))
    for kind, a, cid in s.rng.sample(chs, len(chs)):
        if kind == "wt":
            s.settle(cid, payer=a, caller=s.anyone(a, cheater, poster))
    s.to_window_end(cl)
    for kind, a, cid in s.rng.sample(chs, len(chs)):
        s.collect(cid, payer=a, caller=s.anyone(a, cheater, poster, *wts))
    # the task reopened: an honest solver closes it
    s.honest_solve(task, solver, [poster, *wts])
    return {
        "attack": name,
        "attacker": [cheater, *syb],
        "defender": wts,
        "watchtowers": wts,
        "honest": [*wts, solver],
        "honest_games": [(a, cid) for k, a, cid in chs if k == "wt"],
    }


def ep_cheat(s: Sim) -> dict:
    return _cheat(s, 0, "cheating solver")


def ep_selfchallenge(s: Sim) -> dict:
    return _cheat(s, s.a.sybils, "self-challenging cheater")


def ep_inflate(s: Sim) -> dict:
    """A cheater whose sybils inflate their metered weight to take the prize back from the
    honest watchtower. `pad`: one sybil buys `inflate_weight` of weight at the meter's bound, one
    gas per unit (the cheapest weight can be; the solver moves that padding needs are not even
    charged), then the cheater concedes. `long games`: `inflate_sybils` sybils each play a whole
    game against the cheater, which pays both sides."""
    poster, cheater, solver, wt = (
        s.new("poster"),
        s.new("cheater"),
        s.new("solver"),
        s.new("watchtower"),
    )
    pad = s.a.inflate_mode == "pad"
    syb = [s.new("sybil") for _ in range(1 if pad else s.a.inflate_sybils)]
    task = s.post(poster)
    salt, root = s.rng.randbytes(32), wrong_root(s.rng)
    cl = s.commit(cheater, task, root, salt)
    s.reveal(cheater, cl, root, salt)
    order = [("sybil", a) for a in syb] + [("wt", wt)]
    s.rng.shuffle(order)
    chs = []
    for kind, a in order:
        s.travel(s.rng.randrange(1, 6 * 3600))
        chs.append((kind, a, s.challenge(a, cl)))
    for kind, a, cid in chs:
        if kind == "wt":
            meter = s.charge_game(cheater, a, "full")
        elif pad:
            s.gas[a] += (
                s.a.inflate_weight + TIMEOUT_GAS
            )  # padded moves, then the timeout
            meter = s.a.inflate_weight
        else:
            meter = s.charge_game(cheater, a, "full")
        s.decide(cid, CHALLENGER_WON, meter)
    for kind, a, cid in s.rng.sample(chs, len(chs)):
        s.settle(cid, payer=a, caller=s.anyone(a, cheater, poster))
    s.to_window_end(cl)
    for kind, a, cid in s.rng.sample(chs, len(chs)):
        s.collect(cid, payer=a, caller=s.anyone(a, cheater, poster))
    s.honest_solve(task, solver, [poster, wt])
    return {
        "attack": "gas-inflating sybil",
        "attacker": [cheater, *syb],
        "defender": [wt],
        "watchtowers": [wt],
        "honest": [wt, solver],
        "honest_games": [(a, cid) for k, a, cid in chs if k == "wt"],
    }


def ep_copier_pending(s: Sim) -> dict:
    poster, solver, copier = s.new("poster"), s.new("solver"), s.new("copier")
    task = s.post(poster)
    salt = s.rng.randbytes(32)
    c = s.tasks.claim_commitment(task, TRUE_ROOT, solver, salt)
    # the copier sees the solver's commit in the mempool and lands the same commitment first
    cl = s.commit(copier, task, TRUE_ROOT, salt, commitment=c)
    # the solver's own commit now reverts
    s.call_reverting(
        solver, "commit_claim", task, c, reason="tasks: task has a live claim"
    )
    # the copier cannot open a commitment that binds the solver's address
    s.call_reverting(
        copier,
        "reveal_claim",
        cl,
        TRUE_ROOT,
        salt,
        reason="tasks: reveal does not match commitment",
    )
    # nor can the solver reveal the copier's claim (not charged: a solver checks this off-chain)
    s.call_reverting(
        solver,
        "reveal_claim",
        cl,
        TRUE_ROOT,
        salt,
        reason="tasks: not the committer",
        payer="nobody",
    )
    s.travel(s.tasks.reveal_deadline(cl) - boa.env.timestamp)
    s.expire(cl, payer=solver, caller=s.anyone(solver, poster))
    s.honest_solve(task, solver, [poster])
    return {
        "attack": "copier: front-runs pending commitment",
        "attacker": [copier],
        "defender": [solver],
        "honest": [solver],
        "delay_s": 2 * DAY,
    }


def ep_copier_blind(s: Sim) -> dict:
    poster, solver, copier, wt = (
        s.new("poster"),
        s.new("solver"),
        s.new("copier"),
        s.new("watchtower"),
    )
    task = s.post(poster)
    salt, guess = s.rng.randbytes(32), wrong_root(s.rng)
    cl = s.commit(
        copier, task, guess, salt
    )  # the slot is taken before any root is public
    if s.rng.random() < 0.5:
        s.reveal(copier, cl, guess, salt)
        cid = s.challenge(wt, cl)
        # the copier has no trace to play from
        s.decide(cid, CHALLENGER_WON, s.charge_game(copier, wt, "solver concedes"))
        s.settle(cid, payer=wt, caller=s.anyone(wt, copier, poster))
        s.to_window_end(cl)
        s.collect(cid, payer=wt, caller=s.anyone(wt, poster))
        s.honest_solve(task, solver, [poster, wt])
        return {
            "attack": "copier: blind commit, reveals a guess",
            "attacker": [copier],
            "defender": [wt],
            "honest": [solver, wt],
            "honest_games": [(wt, cid)],
            "watchtowers": [wt],
        }
    s.travel(s.tasks.reveal_deadline(cl) - boa.env.timestamp)
    s.expire(cl, payer=solver, caller=s.anyone(solver, poster, wt))
    s.honest_solve(task, solver, [poster, wt])
    return {
        "attack": "copier: blind commit, never reveals",
        "attacker": [copier],
        "defender": [solver],
        "honest": [solver, wt],
        "delay_s": 2 * DAY,
    }


def ep_swarm(s: Sim) -> dict:
    poster, solver, griefer = s.new("poster"), s.new("solver"), s.new("griefer")
    syb = [s.new("sybil") for _ in range(s.a.swarm_k)]
    task = s.post(poster)
    salt = s.rng.randbytes(32)
    base = "base:" + solver  # the solver's ordinary commit, reveal and finalize
    cl = s.commit(solver, task, TRUE_ROOT, salt, payer=base)
    s.reveal(solver, cl, TRUE_ROOT, salt, payer=base)
    mode = getattr(s.a, "swarm_mode", "mixed")
    full = s.rng.random() < 0.5 if mode == "mixed" else mode == "full"
    chs = []
    for a in syb:
        s.travel(s.rng.randrange(1, 6 * 3600))
        chs.append((a, s.challenge(a, cl)))
    missed = s.rng.randrange(len(chs)) if s.rng.random() < s.a.miss_p else None
    for i, (a, cid) in enumerate(chs):
        if i == missed:
            s.decide(
                cid, CHALLENGER_WON, s.charge_game(solver, a, "solver misses clock")
            )
        else:
            s.decide(
                cid,
                SOLVER_WON,
                s.charge_game(solver, a, "full" if full else "challenger abandons"),
            )
    for a, cid in s.rng.sample(chs, len(chs)):
        won = s.mock.outcome(s.tasks.challenges(cid)[2]) == CHALLENGER_WON
        s.settle(
            cid, payer=a if won else solver, caller=s.anyone(a, solver, poster, griefer)
        )
    s.to_window_end(cl)
    if missed is None:
        s.finalize(cl, solver, s.anyone(solver, poster, griefer), payer=base)
    else:
        a, cid = chs[missed]
        s.collect(cid, payer=a, caller=s.anyone(a, solver, poster))
        # the solver claims the reopened task again: a second commit and reveal it pays for
        s.honest_solve(task, solver, [poster], baseline=False)
    mode = "full play" if full else "abandon after challenge"
    # a solver that missed a clock was not live: it is not held to "never loses a bond"
    return {
        "attack": f"sybil swarm ({mode})",
        "attacker": [griefer, *syb],
        "defender": [solver],
        "honest": [solver] if missed is None else [],
        "missed": missed is not None,
        "solver": solver,
    }


def ep_slot(s: Sim) -> dict:
    poster, solver, griefer = s.new("poster"), s.new("solver"), s.new("griefer")
    task = s.post(poster)
    cl = s.commit(griefer, task, b"", b"", commitment=s.rng.randbytes(32))
    s.travel(s.tasks.reveal_deadline(cl) - boa.env.timestamp)
    s.expire(cl, payer=solver, caller=s.anyone(solver, poster))
    s.honest_solve(task, solver, [poster])
    return {
        "attack": "slot griefer",
        "attacker": [griefer],
        "defender": [solver],
        "honest": [solver],
        "delay_s": 2 * DAY,
    }


EPISODES = [
    ep_honest,
    ep_cheat,
    ep_selfchallenge,
    ep_copier_pending,
    ep_copier_blind,
    ep_swarm,
    ep_slot,
]


# --- running and accounting -----------------------------------------------------------------


def run(
    args, n_tasks: int, sb: int, cb: int, game: dict, seed: int, kinds=None
) -> dict:
    """Plays `n_tasks` episodes (cycling through `kinds`) on a fresh chain."""
    rng = random.Random(seed)
    kinds = kinds or EPISODES
    total: dict | None = None
    done = 0
    while done < n_tasks:
        # a fresh chain every CHAIN_TASKS episodes: py-evm slows down as one chain's state grows
        n = min(CHAIN_TASKS, n_tasks - done)
        with boa.swap_env(boa.Env()):
            s = Sim(args, rng, sb, cb, game)
            r = _play(args, s, n, kinds, offset=done)
        done += n
        if total is None:
            total = r
            continue
        for name, c in r["costs"].items():
            for k, v in c.items():
                total["costs"][name][k].extend(v)
        for k in ("honest_nets", "violations", "solver_bond_losses", "wt_income_zero"):
            total[k].extend(r[k])
        for k in ("txs", "swarm_missed", "burned", "owed_end", "chains"):
            total[k] += r[k]
        for k in ("call_gas", "reverted_gas"):
            for fn, v in r[k].items():
                total[k].setdefault(fn, []).extend(v)
    return total


def _play(args, s: Sim, n_tasks: int, kinds, offset: int = 0) -> dict:
    gas_bond = args.gwei * 1e-9 / args.bond_eth  # BOND per gas unit
    costs: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    honest_nets, violations, solver_losses, wt_income_zero = [], [], [], []
    swarm_missed = 0
    orig_new = s.new
    for i in range(n_tasks):
        ep = kinds[(offset + i) % len(kinds)]
        s.gas.clear()
        s.rewarded.clear()
        before: dict[str, int] = {}

        def tracked_new(name, _orig=orig_new, _before=before):
            a = _orig(name)
            _before[a] = s.bal(a)
            return a

        s.new = tracked_new  # every party is fresh per episode: its BOND delta is the episode's
        out = ep(s)
        s.new = orig_new
        # a reward received is income for work, not part of the attack: left out of costs
        flow = {
            a: (s.bal(a) - b - s.rewarded.get(a, 0)) / E18 for a, b in before.items()
        }
        gasb = {a: s.gas.get(a, 0) * gas_bond for a in before}
        for a in out["honest"]:
            if flow[a] < 0:
                violations.append(
                    f"task {i} ({ep.__name__}): honest party lost {-flow[a]:.6f} BOND"
                )
        if ep is ep_honest:
            wt_income_zero.append(flow[out["watchtower"]] - gasb[out["watchtower"]])
            solver_losses.append(max(0.0, -flow[out["solver"]]))
            continue
        name = out["attack"]
        costs[name]["attacker"].append(sum(-flow[a] + gasb[a] for a in out["attacker"]))
        costs[name]["defender"].append(sum(-flow[a] + gasb[a] for a in out["defender"]))
        costs[name]["defender_gas"].append(sum(gasb[a] for a in out["defender"]))
        costs[name]["attacker_gas"].append(sum(gasb[a] for a in out["attacker"]))
        costs[name]["missed"].append(1.0 if out.get("missed") else 0.0)
        for a, _cid in out.get("honest_games", []):
            honest_nets.append(
                {
                    "attack": name,
                    "net": flow[a] - gasb[a],
                    "bond": flow[a],
                    "gas": gasb[a],
                }
            )
        if "solver" in out:  # the swarm's defender
            if out.get("missed"):
                swarm_missed += 1
            else:
                solver_losses.append(max(0.0, -flow[out["solver"]]))
    return {
        "costs": costs,
        "honest_nets": honest_nets,
        "violations": violations,
        "txs": s.txs,
        "solver_bond_losses": solver_losses,
        "wt_income_zero": wt_income_zero,
        "swarm_missed": swarm_missed,
        "call_gas": dict(s.call_gas),
        "reverted_gas": dict(s.reverted_gas),
        "burned": s.tasks.burned() / E18,
        "owed_end": s.tasks.owed() / E18,
        "chains": 1,
    }


def metered(move: dict) -> int:
    """What Game.vy's (or Tasks.challenge's) meter gives a challenger move of the snapshot:
    4/5 of (21_000 + execution), execution taken as the move's gas less 21_000 and 16 gas per
    calldata byte (an upper bound of its calldata cost, so this errs low). The element choice
    goes through the referee and only the game's part is metered: ENTER_ELEMENT_SHARE of its
    gas, as measured on the accumulator game (tests/contracts/test_tasks_metered_gas.py).
    Proofs are anyone's to send: not metered."""
    if move["call"] in ("challenge", "pick", "pick_data"):
        return (move["gas"] - 16 * move["calldata"]) * METER_NUM // METER_DEN
    if move["call"] == "pick_element":
        return int(move["gas"] * ENTER_ELEMENT_SHARE)
    return 0


def load_game(arity: int) -> dict:
    snap = json.loads((ROOT / "bench/gas_snapshot.json").read_text())
    g = next(x for x in snap["games"] if x["arity"] == arity)
    ch = next(m for m in g["moves"] if m["call"] == "challenge")
    first = next(m for m in g["moves"] if m["by"] == "solver")
    moves = [
        m for m in g["moves"] if m["by"] == "challenger" and m["call"] != "challenge"
    ]
    return {
        "arity": arity,
        "steps": snap["steps"],
        "challenge_tx": ch["gas"],
        "challenger_total": g["challenger_gas"],
        "solver_in_game": g["solver_gas"],
        "challenger_in_game": g["challenger_gas"] - ch["gas"],
        "solver_first_move": first["gas"],
        "challenge_metered": metered(ch),
        "challenger_metered_in_game": sum(metered(m) for m in moves),
    }


# --- report ---------------------------------------------------------------------------------


def ratio(att: float, dfn: float) -> float:
    return float("inf") if dfn <= 0 else att / dfn


def fmt_ratio(r: float) -> str:
    return "inf (defender profits)" if r == float("inf") else f"{r:.1f}:1"


def mean(xs):
    return statistics.fmean(xs) if xs else 0.0


ASSUMPTIONS = {
    "cheating solver": "the cheater fights the watchtower's game to the end (the most gas it can make the "
    "watchtower spend) and loses it; defender = the honest watchtower(s), net of bond refund and prize",
    "self-challenging cheater": "its sybil(s) challenge first or in random order among the watchtowers, the cheater "
    "concedes the sybil games (each sybil pays the challenge tx and a timeout tx) and "
    "settles them first; it fights the watchtower's game to the end; sybil shares count "
    "back to the attacker",
    "copier: front-runs pending commitment": "the copier lands the solver's own commitment first; the solver's "
    "commit reverts (measured gas) and it pays expire_claim; the task "
    "is delayed by the clock (2 days, not priced)",
    "copier: blind commit, reveals a guess": "it reveals a wrong guess and concedes the watchtower's game (challenge "
    "tx + timeout for the watchtower); defender = the watchtower",
    "copier: blind commit, never reveals": "the solver pays expire_claim; delay of one clock (2 days) not priced",
    "sybil swarm (full play)": "k sybils each play their game to the end and lose it; with probability p the "
    "honest solver misses a clock halfway through one game (it loses the solver bond "
    "and recommits); defender = the honest solver, its ordinary commit/reveal/"
    "finalize gas left out, the reward left out",
    "sybil swarm (abandon after challenge)": "k sybils challenge and never move: the solver makes one move and "
    "claims each timeout; otherwise as full play",
    "slot griefer": "commits a random commitment and never reveals; the honest solver pays expire_claim; delay "
    "of one clock (2 days) not priced",
    "gas-inflating sybil": "the cheater's sybils inflate their metered weight, padding at one gas per unit of "
    "weight (the meter's bound) or playing whole games against the cheater, which pays both sides; "
    "the cheater fights the watchtower's game to the end; sybil shares count back to the attacker",
}


def summarize(res: dict, args) -> dict:
    per = {}
    for name in ATTACKS:
        c = res["costs"].get(name)
        if not c:
            continue
        att, dfn, dg = mean(c["attacker"]), mean(c["defender"]), mean(c["defender_gas"])
        extra = {}
        if name.startswith("sybil swarm"):
            # the missed clock is rare and decides the outcome: weigh the two cases' measured
            # means by p instead of by how often the RNG happened to draw them
            sel = {
                m: [i for i, x in enumerate(c["missed"]) if x == m] for m in (0.0, 1.0)
            }
            cond = {
                m: {
                    k: mean([c[k][i] for i in idx])
                    for k in ("attacker", "defender", "defender_gas")
                }
                for m, idx in sel.items()
                if idx
            }
            extra["conditional_bond"] = {
                "no_missed_clock": {
                    k: round(v, 3) for k, v in cond.get(0.0, {}).items()
                },
                "missed_clock": {k: round(v, 3) for k, v in cond.get(1.0, {}).items()},
                "episodes_missed": len(sel[1.0]),
                "episodes_not_missed": len(sel[0.0]),
            }
            if len(cond) == 2:
                p = args.miss_p
                a0, a1 = cond[0.0]["attacker"], cond[1.0]["attacker"]
                d0, d1 = cond[0.0]["defender"], cond[1.0]["defender"]
                att = (1 - p) * a0 + p * a1
                dfn = (1 - p) * d0 + p * d1
                dg = (1 - p) * cond[0.0]["defender_gas"] + p * cond[1.0]["defender_gas"]
                extra["expected_at_p"] = p
                # the largest p at which attacker >= 10 * defender still holds (linear in p)
                den = (a0 - a1) - 10 * (d0 - d1)
                ps = (a0 - 10 * d0) / den if den else None
                extra["goal_holds_while_p_at_most"] = (
                    None if ps is None else round(min(max(ps, 0.0), 1.0), 4)
                )
        r = ratio(att, dfn)
        per[name] = {
            "episodes": len(c["attacker"]),
            "attacker_cost_bond": round(att, 3),
            "attacker_cost_eth": round(att * args.bond_eth, 6),
            "defender_cost_bond": round(dfn, 3),
            "defender_cost_eth": round(dfn * args.bond_eth, 6),
            "defender_gas_bond": round(dg, 3),
            "ratio": None if r == float("inf") else round(r, 2),
            "ratio_text": fmt_ratio(r),
            "ratio_vs_defender_gas": None if dg <= 0 else round(att / dg, 2),
            "goal_10_to_1": "pass" if r >= 10 else "FAIL",
            "assumptions": ASSUMPTIONS[name],
            **extra,
        }
    nets = [h["net"] for h in res["honest_nets"]]
    return {
        "attacks": per,
        "honest_challenger_net_bond": {
            "games": len(nets),
            "min": round(min(nets), 3) if nets else None,
            "median": round(statistics.median(nets), 3) if nets else None,
            "min_by_attack": {
                a: round(
                    min(h["net"] for h in res["honest_nets"] if h["attack"] == a), 3
                )
                for a in sorted({h["attack"] for h in res["honest_nets"]})
            },
            "goal_positive_every_game": "pass" if nets and min(nets) > 0 else "FAIL",
        },
    }


def sweep(args, game: dict) -> dict:
    """Where the goals stop holding: solver bond, number of sybils, challenger bond."""
    out = {"solver_bond": [], "sybils": [], "challenger_bond_swarm_full": []}
    for sb in args.sweep_sb:
        cb = args.challenger_bond
        r = run(
            args,
            4,
            sb * E18,
            cb * E18,
            game,
            args.seed + sb,
            [ep_cheat, ep_selfchallenge],
        )
        sm = summarize(r, args)
        out["solver_bond"].append(
            {
                "solver_bond": sb,
                "challenger_bond": cb,
                "honest_net_min": sm["honest_challenger_net_bond"]["min"],
                "min_by_attack": sm["honest_challenger_net_bond"]["min_by_attack"],
                "ratio_cheater": sm["attacks"]["cheating solver"]["ratio_text"],
                "ratio_self_challenge": sm["attacks"]["self-challenging cheater"][
                    "ratio_text"
                ],
                "violations": len(r["violations"]),
            }
        )
    for k in range(9):
        a2 = argparse.Namespace(**{**vars(args), "sybils": k})
        r = run(
            a2,
            2,
            args.solver_bond * E18,
            args.challenger_bond * E18,
            game,
            args.seed + 100 + k,
            [ep_selfchallenge],
        )
        sm = summarize(r, a2)
        out["sybils"].append(
            {
                "sybils": k,
                "honest_net_min": sm["honest_challenger_net_bond"]["min"],
                "attacker_cost_bond": sm["attacks"]["self-challenging cheater"][
                    "attacker_cost_bond"
                ],
                "violations": len(r["violations"]),
            }
        )
    best = min(out["sybils"], key=lambda x: x["attacker_cost_bond"])
    out["cost_minimizing_sybils"] = {
        "sybils": best["sybils"],
        "attacker_cost_bond": best["attacker_cost_bond"],
        "honest_net_min": best["honest_net_min"],
        "goal_honest_net_positive": "pass" if best["honest_net_min"] > 0 else "FAIL",
        "note": "each conceded sybil costs the cheater a challenge tx and a timeout tx and wins it a share in "
        "proportion to its metered challenge tx only",
    }
    out["gas_inflating_sybil"] = inflation_sweep(args, game)
    out["swarm_full_cb_for_10_to_1"] = swarm_threshold(args, game)
    for cb in args.sweep_cb:
        r, x = _full_swarm(args, game, cb, args.seed + 200 + cb)
        out["challenger_bond_swarm_full"].append(
            {
                "challenger_bond": cb,
                "attacker_cost_bond": x["attacker_cost_bond"],
                "defender_cost_bond": x["defender_cost_bond"],
                "ratio": x["ratio_text"],
                "miss_p": 0.0,
                "violations": len(r["violations"]),
            }
        )
    return out


def _inflate_point(args, game: dict, seed: int, **over) -> dict:
    a2 = argparse.Namespace(**{**vars(args), **over})
    r = run(
        a2,
        1,
        args.solver_bond * E18,
        args.challenger_bond * E18,
        game,
        seed,
        [ep_inflate],
    )
    sm = summarize(r, a2)
    x = sm["attacks"]["gas-inflating sybil"]
    return {
        "attacker_cost_bond": x["attacker_cost_bond"],
        "defender_cost_bond": x["defender_cost_bond"],
        "ratio": x["ratio_text"],
        "ratio_value": x["ratio"],
        "honest_net_bond": sm["honest_challenger_net_bond"]["min"],
        "violations": len(r["violations"]),
    }


def inflation_sweep(args, game: dict) -> dict:
    """The gas-inflating sybil at every spending level: padded weight from a quarter of the
    honest watchtower's weight to 32 times it (then refined around the worst level), and 1..8
    sybils playing whole games. Reports the honest watchtower's net and the ratio at each."""
    g_h = game["challenge_metered"] + game["challenger_metered_in_game"]
    gas_bond = args.gwei * 1e-9 / args.bond_eth
    pad, seed = [], args.seed + 300

    def point(mult: float) -> dict:
        w = int(mult * g_h)
        p = {"weight_vs_honest": round(mult, 4), "sybil_weight_gas": w,
             "sybil_weight_bond": round(w * gas_bond, 3),
             **_inflate_point(args, game, seed + len(pad), inflate_mode="pad", inflate_weight=w)}  # fmt: skip
        pad.append(p)
        return p

    for mult in args.sweep_inflate:
        point(mult)

    def r(p: dict) -> float:
        return float("inf") if p["ratio_value"] is None else p["ratio_value"]

    # refine between the neighbours of the worst grid level
    grid = sorted(pad, key=lambda p: p["weight_vs_honest"])
    i = min(range(len(grid)), key=lambda j: r(grid[j]))
    lo = grid[max(i - 1, 0)]["weight_vs_honest"]
    hi = grid[min(i + 1, len(grid) - 1)]["weight_vs_honest"]
    for j in range(1, 8):
        point(lo + (hi - lo) * j / 8)
    pad.sort(key=lambda p: p["weight_vs_honest"])
    long_games = []
    for k in args.sweep_long:
        long_games.append({"sybils": k, **_inflate_point(args, game, seed + 100 + k, inflate_mode="long games",
                                                          inflate_sybils=k)})  # fmt: skip
    worst = min(pad + long_games, key=r)
    # the weight at which the honest share falls to the honest watchtower's costs
    break_even = next(
        (p["weight_vs_honest"] for p in pad if p["honest_net_bond"] <= 0), None
    )
    return {
        "honest_weight_gas": g_h,
        "pad": pad,
        "long_games": long_games,
        "min_ratio": worst["ratio"],
        "min_ratio_at": {
            k: worst[k]
            for k in ("weight_vs_honest", "sybil_weight_gas", "sybils")
            if k in worst
        },
        "honest_net_negative_from_weight_vs_honest": break_even,
        "goal_10_to_1_every_level": "pass" if r(worst) >= 10 else "FAIL",
        "note": "pad buys weight at the meter's bound (1 gas per unit, solver moves not charged): the cheapest "
        "weight can be; long games: each sybil plays a whole game, the cheater paying both sides",
    }


def _full_swarm(args, game: dict, cb: int, seed: int) -> tuple[dict, dict]:
    """A full-play swarm against a solver that misses no clock, at challenger bond `cb`: the
    run and its attack summary."""
    a2 = argparse.Namespace(**{**vars(args), "swarm_mode": "full", "miss_p": 0.0})
    r = run(a2, 2, max(args.solver_bond, cb) * E18, cb * E18, game, seed, [ep_swarm])
    return r, summarize(r, a2)["attacks"]["sybil swarm (full play)"]


def swarm_threshold(args, game: dict) -> dict:
    """The smallest challenger bond (whole BOND) the registry accepts at which a full-play swarm
    against an honest solver that misses no clock costs the attacker 10 times what it costs the
    solver: the protocol's minimum if the goal holds there (Tasks.vy refuses any smaller bond)."""

    def ratio_at(cb: int) -> float:
        x = _full_swarm(args, game, cb, args.seed + 500)[1]
        return float("inf") if x["ratio"] is None else x["ratio"]

    lo, hi = MIN_CHALLENGER_BOND_WHOLE, 2_000
    at_minimum = ratio_at(lo)  # each point plays a whole swarm: computed once
    if at_minimum >= 10:
        return {"challenger_bond": lo, "at_protocol_minimum": True, "ratio_at": fmt_ratio(at_minimum),
                "note": "the goal holds at the least bond Tasks.vy accepts; nothing smaller can be posted"}  # fmt: skip
    assert ratio_at(hi) >= 10, (
        "the swarm stays below 10:1 even at a 2,000 BOND challenger bond"
    )
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ratio_at(mid) >= 10:
            hi = mid
        else:
            lo = mid
    return {"challenger_bond": hi, "at_protocol_minimum": False, "ratio_just_below": fmt_ratio(ratio_at(lo)),
            "ratio_at": fmt_ratio(ratio_at(hi)),
            "note": "bisection over whole BOND, swarm of --swarm-k playing every game to the end, p = 0"}  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--tasks", type=int, default=840, help="episodes (tasks) to play, ~0.09 s each"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gwei", type=float, default=100.0, help="gas price")
    ap.add_argument(
        "--bond-eth", type=float, default=0.001, help="price of 1 BOND in ETH"
    )
    ap.add_argument(
        "--solver-bond", type=int, default=1000, help="BOND (within Market.vy's bounds: 250 ..= 10,000)"
    )
    ap.add_argument(
        "--challenger-bond", type=int, default=250, help="BOND (Market.vy's minimum, MIN_CHALLENGER_BOND)"
    )
    ap.add_argument("--reward", type=int, default=200, help="BOND")
    ap.add_argument(
        "--arity",
        type=int,
        default=4,
        choices=(4, 8, 16),
        help="game arity (a row of gas_snapshot.json); 4 is the costliest",
    )
    ap.add_argument(
        "--watchtowers", type=int, default=1, help="honest challengers per wrong claim"
    )
    ap.add_argument(
        "--sybils", type=int, default=1, help="sybils of the self-challenging cheater"
    )
    ap.add_argument(
        "--swarm-k", type=int, default=3, help="challenges of the swarm griefer"
    )
    ap.add_argument(
        "--miss-p",
        type=float,
        default=0.1,
        help="P(the solver misses one clock in a swarm)",
    )
    ap.add_argument(
        "--sweep-sb",
        type=int,
        nargs="*",
        default=[100, 200, 300, 400, 500, 750, 1000, 2000],
    )
    ap.add_argument(
        "--sweep-cb", type=int, nargs="*", default=[250, 500, 1000]
    )
    ap.add_argument(
        "--sweep-inflate",
        type=float,
        nargs="*",
        default=[0.25, 0.5, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32],
        help="padded sybil weight, in multiples of the honest watchtower's metered weight",
    )
    ap.add_argument(
        "--sweep-long",
        type=int,
        nargs="*",
        default=[1, 2, 3, 4, 6, 8],
        help="numbers of sybils playing whole games",
    )
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument(
        "--check", action="store_true", help="exit 1 when a goal is missed too"
    )
    ap.add_argument("--out", default=str(ROOT / "bench/incentives_report.json"))
    args = ap.parse_args(argv)
    args.swarm_mode = "mixed"
    game = load_game(args.arity)
    t0 = time.perf_counter()
    try:
        res = run(
            args,
            args.tasks,
            args.solver_bond * E18,
            args.challenger_bond * E18,
            game,
            args.seed,
        )
        sw = None if args.no_sweep else sweep(args, game)
    except Invariant as e:
        print(f"INVARIANT BROKEN: {e}")
        return 1
    elapsed = time.perf_counter() - t0
    sm = summarize(res, args)
    gas_bond = args.gwei * 1e-9 / args.bond_eth
    wt0 = res["wt_income_zero"]
    swarm_eps = sum(
        len(res["costs"][n]["attacker"]) for n in ATTACKS if n.startswith("sybil swarm")
    )
    sb_loss = {
        "honest_solver_bond_losses_bond": round(sum(res["solver_bond_losses"]), 6),
        "solvers_checked": len(res["solver_bond_losses"]),
        "goal_zero": "pass" if sum(res["solver_bond_losses"]) == 0 else "FAIL",
        "swarm_missed_clock_episodes": res["swarm_missed"],
        "swarm_episodes": swarm_eps,
        "note": "a solver that misses a clock is not live and not held to the goal; its loss is the "
        "swarm's damage (in the swarm rows: p * solver bond per swarm)",
    }
    report = {
        "command": " ".join(
            [
                "python bench/bench_incentives.py",
                *(sys.argv[1:] if argv is None else argv),
            ]
        ),
        "runtime_s": round(elapsed, 1),
        "terms": {
            "solver_bond": args.solver_bond,
            "challenger_bond": args.challenger_bond,
            "reward": args.reward,
            "window_s": 2 * DAY,
            "clock_s": 2 * DAY,
            "arity": args.arity,
            "burn_bps": 5_000,
        },
        "prices": {
            "gwei": args.gwei,
            "bond_eth": args.bond_eth,
            "bond_per_mgas": round(gas_bond * 1e6, 4),
            "note": f"1 BOND = {args.bond_eth} ETH (assumed); 1M gas at {args.gwei:g} gwei = "
            f"{args.gwei * 1e-3:g} ETH = {gas_bond * 1e6:g} BOND",
        },
        "game_gas": {
            **game,
            "timeout_tx_assumed": TIMEOUT_GAS,
            "missed_clock_at": MISSED_AT,
            "source": "bench/gas_snapshot.json (10,000-step MLP claim); the challenge tx is charged at "
            "the snapshot's real Tasks.challenge + Game.create, not the mock's",
        },
        "tasks_call_gas_median": {
            k: int(statistics.median(v)) for k, v in sorted(res["call_gas"].items())
        },
        "tasks_reverted_call_gas_median": {
            k: int(statistics.median(v)) for k, v in sorted(res["reverted_gas"].items())
        },
        "episodes": args.tasks,
        "chains": res["chains"],
        "transactions": res["txs"],
        "invariant_checks": res["txs"],
        "funds_held_vs_owed": {
            "checked_after_every_transaction": True,
            "unequal": 0,
            "violations_honest_bond": res["violations"],
            "owed_at_end": res["owed_end"],
            "burned_total": res["burned"],
        },
        **sm,
        "honest_solver": sb_loss,
        "watchtower_zero_cheaters": {
            "episodes": len(wt0),
            "expected_income_bond": round(mean(wt0), 6),
            "goal_positive": "see bench/attest_report.json",
            "note": "Tasks.vy alone pays nothing when nobody cheats; verification fees (Attestations.vy, "
            "SPEC 7.10) pay an honest watchtower F/h - c per task, measured by bench/bench_attest.py",
        },
        "sweep": sw,
    }
    goals_failed = [n for n, x in sm["attacks"].items() if x["goal_10_to_1"] == "FAIL"]
    if sm["honest_challenger_net_bond"]["goal_positive_every_game"] == "FAIL":
        goals_failed.append("honest challenger net > 0 in every game")
    if sw and sw["gas_inflating_sybil"]["goal_10_to_1_every_level"] == "FAIL":
        goals_failed.append("gas-inflating sybil: 10:1 at every spending level")
    if sw and sw["cost_minimizing_sybils"]["goal_honest_net_positive"] == "FAIL":
        goals_failed.append(
            "honest challenger net > 0 against the cost-minimizing self-challenger "
            f"({sw['cost_minimizing_sybils']['sybils']} sybils)"
        )
    if sb_loss["goal_zero"] == "FAIL":
        goals_failed.append("honest solver never loses a bond")
    report["goals_failed"] = goals_failed
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print_table(report, args)
    if res["violations"]:
        print(
            "INVARIANT BROKEN: an honest party lost a bond:\n  "
            + "\n  ".join(res["violations"][:10])
        )
        return 1
    if sw and any(
        x["violations"] for part in sw.values() if isinstance(part, list) for x in part
    ):
        print("INVARIANT BROKEN in the sweep: an honest party lost a bond")
        return 1
    if args.check and goals_failed:
        print("goals missed: " + "; ".join(goals_failed))
        return 1
    return 0


def print_table(r: dict, args):
    p = r["prices"]
    print(
        f"bisectml incentives: {r['episodes']} tasks, {r['transactions']} Tasks transactions, "
        f"held == owed() == ledger after each; {r['runtime_s']} s"
    )
    t = r["terms"]
    print(
        f"terms: solver bond {t['solver_bond']} BOND, challenger bond {t['challenger_bond']} BOND, reward "
        f"{t['reward']} BOND, arity {t['arity']}; {p['note']}"
    )
    print(
        f"{'attack':40} {'attacker BOND':>13} {'ETH':>8} {'defender BOND':>13} {'ETH':>8}  ratio (goal >= 10:1)"
    )
    for n, x in r["attacks"].items():
        print(
            f"{n:40} {x['attacker_cost_bond']:13.1f} {x['attacker_cost_eth']:8.4f} {x['defender_cost_bond']:13.1f} "
            f"{x['defender_cost_eth']:8.4f}  {x['ratio_text']:24} {x['goal_10_to_1']}"
        )
    for n, x in r["attacks"].items():
        if "conditional_bond" in x:
            cb_ = x["conditional_bond"]
            print(
                f"  {n}: expected at p={x.get('expected_at_p')}; without a missed clock attacker "
                f"{cb_['no_missed_clock'].get('attacker', float('nan')):.1f} / defender "
                f"{cb_['no_missed_clock'].get('defender', float('nan')):.1f} BOND, with one "
                f"{cb_['missed_clock'].get('attacker', float('nan')):.1f} / "
                f"{cb_['missed_clock'].get('defender', float('nan')):.1f} BOND "
                f"({cb_['episodes_missed']} of {cb_['episodes_missed'] + cb_['episodes_not_missed']} "
                f"episodes); 10:1 holds while p <= {x.get('goal_holds_while_p_at_most')}"
            )
    h = r["honest_challenger_net_bond"]
    print(
        f"honest challenger net after gas, {h['games']} games: min {h['min']} BOND, median {h['median']} BOND "
        f"(goal > 0 in every game: {h['goal_positive_every_game']}); min by attack {h['min_by_attack']}"
    )
    s = r["honest_solver"]
    print(
        f"honest solver bond losses: {s['honest_solver_bond_losses_bond']} BOND over {s['solvers_checked']} "
        f"live solvers (goal 0: {s['goal_zero']}); swarm episodes with a missed clock: "
        f"{s['swarm_missed_clock_episodes']}/{s['swarm_episodes']}"
    )
    w = r["watchtower_zero_cheaters"]
    print(
        f"watchtower income with zero cheaters from Tasks.vy alone: {w['expected_income_bond']} BOND per task "
        f"(verification fees pay it: bench/bench_attest.py)"
    )
    if r["sweep"]:
        print(
            "solver bond sweep (challenger bond = --challenger-bond): min honest challenger net / ratios"
        )
        for x in r["sweep"]["solver_bond"]:
            print(
                f"  sb {x['solver_bond']:5} cb {x['challenger_bond']:4}: net min {x['honest_net_min']:9.1f} "
                f"{x['min_by_attack']}  cheater {x['ratio_cheater']}, self-challenge {x['ratio_self_challenge']}"
            )
        print(
            "sybils of a self-challenging cheater: "
            + ", ".join(
                f"{x['sybils']}: {x['honest_net_min']:.1f} (attacker {x['attacker_cost_bond']:.0f})"
                for x in r["sweep"]["sybils"]
            )
            + " (min honest net, BOND)"
        )
        b = r["sweep"]["cost_minimizing_sybils"]
        print(
            f"  the cheater's cheapest sybil count is {b['sybils']}: honest net {b['honest_net_min']:.1f} BOND "
            f"(goal > 0: {b['goal_honest_net_positive']})"
        )
        gi = r["sweep"]["gas_inflating_sybil"]
        print(
            f"gas-inflating sybil (honest weight {gi['honest_weight_gas']:,} gas): "
            + ", ".join(
                f"{p['weight_vs_honest']:g}x: net {p['honest_net_bond']:.1f} {p['ratio']}"
                for p in gi["pad"]
            )
        )
        print(
            "  long games: "
            + ", ".join(
                f"{p['sybils']}: net {p['honest_net_bond']:.1f} {p['ratio']}"
                for p in gi["long_games"]
            )
            + f"; min ratio {gi['min_ratio']} at {gi['min_ratio_at']} (goal 10:1: {gi['goal_10_to_1_every_level']}); "
            f"honest net < 0 from {gi['honest_net_negative_from_weight_vs_honest']}x the honest weight"
        )
        st_ = r["sweep"]["swarm_full_cb_for_10_to_1"]
        print(
            f"swarm, full play, p=0: 10:1 from a challenger bond of {st_['challenger_bond']} BOND "
            + ("(the protocol's minimum: " + st_["ratio_at"] + ")" if st_["at_protocol_minimum"]
               else f"({st_['ratio_just_below']} at one less)")
        )
        print(
            "swarm, full play, p=0, by challenger bond: "
            + ", ".join(
                f"cb {x['challenger_bond']}: {x['ratio']}"
                for x in r["sweep"]["challenger_bond_swarm_full"]
            )
        )
    print(
        f"goals missed: {r['goals_failed'] or 'none'} (the zero-cheater watchtower income is bench_attest's); "
        f"written to {os.path.relpath(args.out, ROOT)}"
    )


if __name__ == "__main__":
    sys.exit(main())
