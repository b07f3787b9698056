"""A task's result: slots of the claimed final state that a claim must make available on the
chain before it can be finalized (docs/SPEC.md 7.11), over contracts/Tasks.vy with the real
contracts/Availability.vy and the mock game.

Properties guarded:
- a solver that withholds its result cannot finalize its claim, and loses its bond once the
  window has closed with every challenge settled (the withholder bears the cost; nobody gains);
- only a tensor whose bytes are on the chain, and that is the claimed slot of the claimed final
  state, counts as published; anyone may show it;
- a poster cannot name a result slot the program does not have;
- a task without result slots behaves as before.
"""

from __future__ import annotations

import boa
import numpy as np
import pytest

from tests.contracts._court import publish_tensor
from tests.contracts.test_tasks import (
    CHALLENGER_WON,
    CLAIM_EXPIRED,
    CLAIM_FINALIZED,
    CLAIM_LIVE,
    SOLVER_BOND,
    SOLVER_WON,
    WINDOW,
    commitment,
    events,
    task_args,
)
from verifier.commit.commitments import SlotTable, commit_tensor, keccak

N_SLOTS, STEPS = 30, 1_000
RESULT, SECOND = 3, 17  # the task's two result slots
WEIGHTS = np.arange(-40, 40, dtype=np.int32).reshape(8, 10)
BIAS = np.array([5, -6, 7], dtype=np.int64)
SALT = keccak(b"results salt")
PROGRAM_CID = keccak(b"the program file's sha2-256")


def table_of(values: dict[int, np.ndarray]) -> SlotTable:
    table = SlotTable(N_SLOTS)
    for i in range(N_SLOTS):
        table.set(i, commit_tensor(values[i]) if i in values else keccak(b"filler", bytes([i])))
    return table


STATE = table_of({RESULT: WEIGHTS, SECOND: BIAS})
FINAL_ROOT = STATE.state_root(STEPS, 0)


@pytest.fixture
def published(availability):
    """Both result tensors' bytes are on the availability registry."""
    for array in (WEIGHTS, BIAS):
        publish_tensor(availability, array)


@pytest.fixture
def task_id(tasks, funded):
    return tasks.post_task(
        *task_args(n_slots=N_SLOTS, steps=STEPS), 1 << RESULT | 1 << SECOND, PROGRAM_CID, sender=funded[0]
    )


@pytest.fixture
def claim_id(tasks, task_id, funded):
    solver = funded[1]
    cid = tasks.commit_claim(task_id, commitment(task_id, FINAL_ROOT, solver, SALT), sender=solver)
    tasks.reveal_claim(cid, FINAL_ROOT, SALT, sender=solver)
    return cid


def publish(tasks, claim_id, slot, table=STATE, commitment_=None, path=None, sender=None):
    opening = table.open(slot)
    c = opening.commitment if commitment_ is None else commitment_
    p = list(opening.proof) if path is None else path
    return tasks.publish_result(claim_id, slot, c, p, sender=sender or boa.env.generate_address("anyone"))


def to_window_end(tasks, claim_id):
    boa.env.time_travel(seconds=tasks.challenge_deadline(claim_id) - boa.env.timestamp)


# --- posting ----------------------------------------------------------------------------------


def test_post__records_result_slots_and_logs_program_cid(tasks, funded):
    tid = tasks.post_task(*task_args(n_slots=N_SLOTS), 1 << RESULT | 1 << SECOND, PROGRAM_CID, sender=funded[0])
    (ev,) = events(tasks, "TaskPosted")
    assert (ev.task_id, ev.program_cid) == (tid, PROGRAM_CID)
    assert tasks.result_slots(tid) == 1 << RESULT | 1 << SECOND


def test_post__without_result__finalizes_on_the_root_alone(tasks, funded):
    """The default: no result slots, nothing to publish (the tasks of before, the market's)."""
    tid = tasks.post_task(*task_args(), sender=funded[0])
    assert tasks.result_slots(tid) == 0
    solver = funded[1]
    cid = tasks.commit_claim(tid, commitment(tid, FINAL_ROOT, solver, SALT), sender=solver)
    tasks.reveal_claim(cid, FINAL_ROOT, SALT, sender=solver)
    to_window_end(tasks, cid)
    assert tasks.finalizable(cid) and not tasks.expirable(cid)
    tasks.finalize(cid)


@pytest.mark.parametrize("n_slots", [1, 30, 255, 256, 512])
def test_post__result_slot_outside_the_program__reverts(tasks, funded, n_slots):
    """Slot S-1 is the last a poster may name (bits at 256 and above do not exist)."""
    last = min(n_slots, 256) - 1
    tid = tasks.post_task(*task_args(n_slots=n_slots), 1 << last, sender=funded[0])
    assert tasks.result_slots(tid) == 1 << last
    if n_slots < 256:
        with boa.reverts("tasks: result slot outside the program"):
            tasks.post_task(*task_args(n_slots=n_slots), 1 << n_slots, sender=funded[0])


# --- publishing -------------------------------------------------------------------------------


def test_publish__by_anyone__records_each_slot(tasks, task_id, claim_id, published):
    publish(tasks, claim_id, RESULT)
    (ev,) = events(tasks, "ResultPublished")
    assert tasks.published(claim_id) == 1 << RESULT
    assert (ev.claim_id, ev.task_id, ev.slot, ev.commitment) == (claim_id, task_id, RESULT, commit_tensor(WEIGHTS))
    publish(tasks, claim_id, SECOND)
    assert tasks.published(claim_id) == 1 << RESULT | 1 << SECOND


def test_publish__bytes_not_on_the_chain__reverts(tasks, claim_id, availability):
    """A commitment in the claimed state whose bytes nobody published is not available."""
    publish_tensor(availability, BIAS)
    with boa.reverts("tasks: result not on the availability registry"):
        publish(tasks, claim_id, RESULT)
    assert tasks.published(claim_id) == 0


def test_publish__another_states_slot__reverts(tasks, claim_id, published, availability):
    """Published bytes that are not the claimed state's slot: another table's, another slot's
    commitment with this slot's path, or a tampered path."""
    other = np.zeros((8, 10), dtype=np.int32)
    publish_tensor(availability, other)
    with boa.reverts("tasks: not that slot of the claimed state"):
        publish(tasks, claim_id, RESULT, table=table_of({RESULT: other, SECOND: BIAS}))
    with boa.reverts("tasks: not that slot of the claimed state"):
        publish(tasks, claim_id, RESULT, commitment_=commit_tensor(BIAS))
    path = list(STATE.open(RESULT).proof)
    path[2] = keccak(b"tampered", path[2])
    with boa.reverts("tasks: not that slot of the claimed state"):
        publish(tasks, claim_id, RESULT, path=path)
    # the right slot table, at another position than the final (T, 0)
    assert STATE.state_root(STEPS - 1, 0) != FINAL_ROOT


def test_publish__path_of_another_length__reverts(tasks, claim_id, published):
    path = list(STATE.open(RESULT).proof)
    with boa.reverts("merkle: wrong proof length"):
        publish(tasks, claim_id, RESULT, path=path[:-1])
    with boa.reverts("merkle: wrong proof length"):
        publish(tasks, claim_id, RESULT, path=[*path, bytes(32)])


def test_publish__not_a_result_slot__reverts(tasks, claim_id, published):
    """Slot 4 of the claimed state (its proof is right) is not a slot the poster asked for."""
    with boa.reverts("tasks: not a result slot"):
        publish(tasks, claim_id, 4)
    with boa.reverts("tasks: not a result slot"):
        opening = STATE.open(RESULT)  # no bit beyond 255: slot 259 is not slot 3
        tasks.publish_result(claim_id, RESULT + 256, opening.commitment, list(opening.proof))


def test_publish__claim_not_live__reverts(tasks, task_id, funded, published, mock_game):
    solver, challenger = funded[1], funded[2]
    with boa.reverts("tasks: no such claim"):
        publish(tasks, 99, RESULT)
    cid = tasks.commit_claim(task_id, commitment(task_id, FINAL_ROOT, solver, SALT), sender=solver)
    with boa.reverts("tasks: claim not live"):
        publish(tasks, cid, RESULT)  # committed: no root yet
    tasks.reveal_claim(cid, FINAL_ROOT, SALT, sender=solver)
    chid = tasks.challenge(cid, sender=challenger)
    mock_game.set_outcome(tasks.challenges(chid).game_id, CHALLENGER_WON)
    tasks.settle(chid)
    with boa.reverts("tasks: claim not live"):
        publish(tasks, cid, RESULT)  # rejected: the result of a wrong claim is nobody's


# --- finalizing, or losing the bond for a withheld result --------------------------------------


def test_finalize__needs_every_result_slot(tasks, claim_id, funded, token, published):
    to_window_end(tasks, claim_id)
    with boa.reverts("tasks: result not published"):
        tasks.finalize(claim_id)
    publish(tasks, claim_id, RESULT)
    assert not tasks.finalizable(claim_id)
    with boa.reverts("tasks: result not published"):
        tasks.finalize(claim_id)
    publish(tasks, claim_id, SECOND)
    assert tasks.finalizable(claim_id) and not tasks.expirable(claim_id)
    before = token.balanceOf(funded[1])
    tasks.finalize(claim_id)
    assert tasks.claims(claim_id).state == CLAIM_FINALIZED
    assert token.balanceOf(funded[1]) > before


def test_expire__withheld_result__burns_the_bond_and_reopens(tasks, task_id, claim_id, funded, token, published):
    """A result published by the window's close keeps the claim; one still withheld then costs
    the whole bond (burned: neither the poster nor a rival solver gains from it) and reopens
    the task, which another solver may then claim."""
    publish(tasks, claim_id, RESULT)  # one of two slots is not enough
    boa.env.time_travel(seconds=WINDOW - 2)
    assert not tasks.expirable(claim_id)
    with boa.reverts("tasks: challenge window open"):
        tasks.expire_claim(claim_id)
    to_window_end(tasks, claim_id)
    assert tasks.expirable(claim_id)
    supply, burned, owed = token.totalSupply(), tasks.burned(), tasks.owed()
    tasks.expire_claim(claim_id, sender=boa.env.generate_address("anyone"))
    (ev,) = events(tasks, "ClaimExpired")
    assert ev.burned == SOLVER_BOND
    assert tasks.claims(claim_id).state == CLAIM_EXPIRED
    assert tasks.tasks(task_id).claim_id == 0
    assert token.totalSupply() == supply - SOLVER_BOND
    assert tasks.burned() == burned + SOLVER_BOND
    assert tasks.owed() == owed - SOLVER_BOND == token.balanceOf(tasks)
    with boa.reverts("tasks: claim not live"):
        publish(tasks, claim_id, SECOND)  # too late
    rival = funded[3]
    tasks.commit_claim(task_id, commitment(task_id, FINAL_ROOT, rival, SALT), sender=rival)


def test_expire__waits_for_every_game(tasks, claim_id, funded, mock_game):
    """A withheld result is judged only once every game is over: a challenge still open keeps
    the claim alive, and winning it lets the solver publish late."""
    chid = tasks.challenge(claim_id, sender=funded[2])
    to_window_end(tasks, claim_id)
    with boa.reverts("tasks: challenges unsettled"):
        tasks.expire_claim(claim_id)
    mock_game.set_outcome(tasks.challenges(chid).game_id, SOLVER_WON)
    tasks.settle(chid)
    assert tasks.expirable(claim_id)
    assert tasks.claims(claim_id).state == CLAIM_LIVE


def test_expire__published_result__reverts(tasks, claim_id, published):
    publish(tasks, claim_id, RESULT)
    publish(tasks, claim_id, SECOND)
    to_window_end(tasks, claim_id)
    assert not tasks.expirable(claim_id)
    with boa.reverts("tasks: claim revealed with its result"):
        tasks.expire_claim(claim_id)
