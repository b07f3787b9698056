"""The bindings on the in-process chain (web3 + py-evm): deploy the suite, play a whole game
through verifier.court.play with dry-runs and decoded reverts."""

from __future__ import annotations

import pytest

from onnx_models.toy import accumulator_program
from verifier.court.chain import Chain, ChainError, deploy_suite, load_artifacts
from verifier.court.game import Outcome, Role
from verifier.court.play import Court, GamePlayer, play_out
from verifier.engine.program import Program, load_program
from verifier.engine.trace import Trace


class OffByOne(Program):
    def run_step(self, t, state, fast=True, on_node=None):  # noqa: ANN001, ANN201
        values, nxt = super().run_step(t, state, fast, on_node)
        if t == 4:
            nxt = [nxt[0] + 1, *nxt[1:]]
        return values, nxt


@pytest.fixture(scope="module")
def court() -> Court:
    chain = Chain.embedded()
    return Court(chain, deploy_suite(chain))


def test_artifacts__are_fresh() -> None:
    assert set(load_artifacts()) >= {"Game", "Referee", "Tasks", "Token"}


def test_revert_reason__is_decoded_and_nothing_is_sent(court) -> None:
    before = court.chain.w3.eth.block_number
    with pytest.raises(ChainError) as e:
        court.chain.send(court.tasks.functions.commit_claim(12345, b"\x00" * 32))
    assert "tasks: " in str(e.value) and "\n" not in str(e.value)
    assert court.chain.w3.eth.block_number == before


def test_game__cheating_claim_loses_on_chain(court) -> None:
    honest = load_program(accumulator_program(steps=8))
    cheat = load_program(accumulator_program(steps=8))
    cheat.__class__ = OffByOne
    ht, ct = Trace(honest, checkpoint_every=3), Trace(cheat, checkpoint_every=3)
    ht.run()
    claim = ct.run()
    accounts = court.chain.w3.eth.accounts
    solver, challenger = court.as_account(court.chain.as_account(accounts[1])), court.as_account(court.chain.as_account(accounts[2]))
    receipt = court.chain.send(
        court.game.functions.create(accounts[1], accounts[2], honest.initial_state_root, claim, honest.graph_root,
                                    honest.steps, honest.n_nodes, honest.n_slots, 4, 3600)
    )
    gid = court.game.events.GameCreated().process_receipt(receipt)[0]["args"]["game_id"]
    moves = []
    outcome = play_out(
        [GamePlayer.for_trace(solver, gid, Role.SOLVER, ct), GamePlayer.for_trace(challenger, gid, Role.CHALLENGER, ht)],
        on_move=lambda p, m, r, s: moves.append((p.role, m.function)),
    )
    assert outcome == Outcome.CHALLENGER_WON
    assert moves[-1] == (Role.CHALLENGER, "prove_boundary")
