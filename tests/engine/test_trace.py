"""Traces: roots, node roots, openings, persistence and resume."""

from __future__ import annotations

import numpy as np
import pytest

from onnx_models.toy import accumulator_program
from verifier.commit import commitments as commit
from verifier.commit.merkle import merkle_root
from verifier.core.errors import ProofError, TraceError
from verifier.engine.graph import SlotKind
from verifier.engine.program import load_program
from verifier.engine.trace import Trace

STEPS = 12


@pytest.fixture(scope="module")
def program():
    return load_program(accumulator_program(steps=STEPS))


@pytest.fixture(scope="module")
def trace(program):
    with Trace(program, checkpoint_every=5) as tr:
        tr.run()
        yield tr


def test_trace__step_roots_match_hand_computed_states(program, trace) -> None:
    """Recompute state(t, 0) from the SPEC formula with plain numpy values."""
    state = program.initial_state()
    for t in range(STEPS + 1):
        leaves = [commit.EMPTY] * program.n_slots
        leaves[program.step_slot] = commit.commit_tensor(np.array(t, np.int64))
        for s, v in zip(program.state_slots, state):
            leaves[s] = commit.commit_tensor(v)
        for s, slot in enumerate(program.graph.slots):
            if slot.kind in (SlotKind.DATA, SlotKind.CONST):
                leaves[s] = commit.commit_tensor(slot.value)

        assert trace.step_root(t) == commit.state_root(t, 0, merkle_root(leaves)), t
        if t < STEPS:
            _, state = program.run_step(t, state)


def test_trace__deterministic_across_runs_paths_and_checkpointing(program, trace) -> None:
    for fast, every in ((False, 1), (True, 3), (True, 100)):
        with Trace(program, checkpoint_every=every, fast=fast) as other:
            assert other.run() == trace.final_root
            assert [other.step_root(t) for t in range(STEPS + 1)] == [trace.step_root(t) for t in range(STEPS + 1)]


@pytest.mark.parametrize("t", [0, 4, 5, STEPS - 1])
def test_node_roots__bracketed_by_step_roots(trace, program, t: int) -> None:
    roots = trace.node_roots(t)
    assert len(roots) == program.n_nodes + 2
    assert roots[0] == trace.step_root(t) and roots[-1] == trace.step_root(t + 1)
    assert len(set(roots)) == len(roots)  # every node changes its output slot


@pytest.mark.parametrize("t", [0, 5, STEPS - 1])
def test_openings__every_position_and_slot_verify(trace, program, t: int) -> None:
    """First, last and every boundary position (BoLD #697), against the node roots."""
    roots = trace.node_roots(t)
    for n in range(program.n_nodes + 1):
        for slot in range(program.n_slots):
            value = trace._values_at(t, n)[slot]
            if value is None:
                # an empty slot opens to the zero word
                op = trace.open_slot(t, n, slot)
                assert commit.verify_slot(roots[n], t, n, op, program.n_slots) == commit.EMPTY
                continue
            for index in {0, value.size - 1}:
                proof = trace.open_element(t, n, slot, index)
                assert proof.state_root == roots[n]
                assert proof.verify(program.n_slots) == int(value.reshape(-1)[index])


def test_openings__final_state(trace, program) -> None:
    proof = trace.open_element(STEPS, 0, program.state_slots[0], 2)
    assert proof.state_root == trace.final_root
    assert proof.verify(program.n_slots) == int(trace.final_state()["acc"][2])


def test_openings__wrong_position_or_value__fail(trace, program) -> None:
    proof = trace.open_element(3, 2, program.state_slots[0], 1)
    commit.verify_slot(proof.state_root, 3, 2, proof.slot, program.n_slots)
    with pytest.raises(ProofError):
        commit.verify_slot(proof.state_root, 3, 3, proof.slot, program.n_slots)
    with pytest.raises(ProofError):
        commit.verify_slot(trace.node_roots(3)[3], 3, 2, proof.slot, program.n_slots)


def test_node_openings__descriptors_and_boundary_verify(trace, program) -> None:
    for n in range(program.n_nodes + 1):
        op = trace.open_node(n)
        assert commit.verify_node(program.graph_root, program.n_nodes + 1, op) == program.descriptors[n]
    assert program.descriptors[-1][0] == 0xFF


def test_trace__resume_after_crash_gives_same_roots(program, trace, tmp_path) -> None:
    d = tmp_path / "t"
    tr = Trace(program, d, checkpoint_every=5)
    assert tr.run(stop_at=8) == trace.step_root(8)
    assert tr.steps_done == 8 and not tr.done
    # A crash that lost the newest checkpoint resumes from the one before it.
    (d / "ckpt-000000000008.bin").unlink()
    resumed = Trace(program, d)
    assert resumed.steps_done == 5 and resumed.checkpoint_every == 5
    assert resumed.run() == trace.final_root
    again = Trace(program, d)
    assert again.done and again.final_root == trace.final_root
    np.testing.assert_array_equal(again.final_state()["acc"], trace.final_state()["acc"])


def test_trace__checkpoint_with_wrong_root__skipped_on_resume(program, trace, tmp_path) -> None:
    tr = Trace(program, tmp_path, checkpoint_every=5)
    tr.run(stop_at=10)
    # Swap in the state of step 5 under the name of step 10: loads, but its root is wrong.
    (tmp_path / "ckpt-000000000010.bin").write_bytes((tmp_path / "ckpt-000000000005.bin").read_bytes())
    resumed = Trace(program, tmp_path)
    assert resumed.steps_done == 5
    assert resumed.run() == trace.final_root


def test_trace__step_roots_recomputed_lazily(program, trace) -> None:
    with Trace(program, checkpoint_every=4) as tr:
        tr.run()
        wanted = [11, 3, 0, 7, 12, 3]
        assert tr.step_roots(wanted) == [trace.step_root(t) for t in wanted]


def test_trace__directory_of_another_program__refused(program, tmp_path) -> None:
    Trace(program, tmp_path).run(stop_at=2)
    other = load_program(accumulator_program(steps=STEPS, seed=3))
    with pytest.raises(TraceError) as e:
        Trace(other, tmp_path)
    assert "another program" in str(e.value)


def test_trace__corrupt_checkpoint__refused(program, tmp_path) -> None:
    tr = Trace(program, tmp_path, checkpoint_every=5)
    tr.run()
    (tmp_path / "ckpt-000000000005.bin").write_bytes(b"garbage")
    with pytest.raises(TraceError) as e:
        Trace(program, tmp_path).state_at_step(7)
    assert "corrupt" in str(e.value) and "\n" not in str(e.value)


def test_trace__out_of_range_requests__refused(trace, program) -> None:
    with pytest.raises(TraceError):
        trace.node_roots(STEPS)
    with pytest.raises(TraceError):
        trace.open_element(0, program.n_nodes + 1, 0, 0)
    with pytest.raises(TraceError):
        trace.open_slot(0, 0, program.n_slots)


# -- checkpoints within a disk budget -------------------------------------------------------------


def test_checkpoints__default_spacing__fits_the_disk_budget_and_still_opens_every_step(tmp_path) -> None:
    """A budget of a few checkpoints widens the spacing; the files on disk stay within it and
    every step root still matches a densely checkpointed trace."""
    from verifier.engine.trace import checkpoint_bytes

    program = load_program(accumulator_program(steps=1000))
    per = checkpoint_bytes(program)
    budget = 7 * per
    tr = Trace(program, tmp_path / "budget", disk_budget=budget)
    tr.run()
    files = list((tmp_path / "budget").glob("ckpt-*.bin"))
    assert tr.checkpoint_every == -(-1000 // 7) > 100
    assert sum(f.stat().st_size for f in files) <= budget and all(f.stat().st_size == per for f in files)
    with Trace(program, checkpoint_every=1) as dense:
        dense.run()
        assert [tr.step_root(t) for t in range(0, 1001, 97)] == [dense.step_root(t) for t in range(0, 1001, 97)]


def test_checkpoints__default_spacing__is_dense_when_the_budget_allows_and_bounded_in_files() -> None:
    from verifier.engine import trace as tracing

    program = load_program(accumulator_program(steps=STEPS))
    assert tracing.checkpoint_interval(program) == tracing.DEFAULT_CHECKPOINT_EVERY
    assert tracing.checkpoint_interval(program, every=3) == 3
    long = load_program(accumulator_program(steps=10 * tracing.MAX_CHECKPOINTS * tracing.DEFAULT_CHECKPOINT_EVERY))
    every = tracing.checkpoint_interval(long)
    assert -(-long.steps // every) <= tracing.MAX_CHECKPOINTS < -(-long.steps // (every - 1))


def test_checkpoints__budget_below_one_checkpoint__refused_saying_what_to_raise(tmp_path) -> None:
    from verifier.engine.trace import checkpoint_bytes

    program = load_program(accumulator_program(steps=STEPS))
    with pytest.raises(TraceError, match="raise --disk-budget to at least"):
        Trace(program, tmp_path / "t", disk_budget=checkpoint_bytes(program) - 1)
    assert not (tmp_path / "t").exists()


def test_trace__temporary_and_small__kept_in_memory_with_the_same_roots(program, trace, tmp_path, monkeypatch) -> None:
    """A trace without a directory whose checkpoints fit MEMORY_BUDGET makes no directory at
    all, and its roots and openings equal those of a trace on disk."""
    import tempfile

    from verifier.engine import trace as trace_module

    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    with Trace(program, checkpoint_every=5) as mem, Trace(program, tmp_path / "disk", checkpoint_every=5) as disk:
        assert mem.dir is None
        assert mem.run() == disk.run() == trace.final_root
        assert [mem.step_root(t) for t in range(STEPS + 1)] == [disk.step_root(t) for t in range(STEPS + 1)]
        assert mem.state_at_step(7)[0].tolist() == disk.state_at_step(7)[0].tolist()
        assert mem.node_roots(6) == disk.node_roots(6)
    assert list(private.iterdir()) == []
    # closed, its checkpoints are gone and a state is recomputed from the initial one
    assert mem._memory == {} and mem.state_at_step(STEPS)[0].tolist() == trace.state_at_step(STEPS)[0].tolist()
    # past the budget, a temporary directory, removed at close
    monkeypatch.setattr(trace_module, "MEMORY_BUDGET", 0)
    with Trace(program, checkpoint_every=5) as big:
        assert big.dir is not None and big.dir.parent == private
        assert big.run() == trace.final_root
    assert list(private.iterdir()) == []
