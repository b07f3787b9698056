"""The market commands in-process (typer's CliRunner): help, the throwaway embedded chain,
input checking, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import onnx
import pytest
from typer.testing import CliRunner

from cli import app
from onnx_models.toy import accumulator_program
from verifier.app.units import (
    CommandError,
    format_amount,
    format_duration,
    parse_amount,
    parse_duration,
)
from verifier.engine.program import load_program

runner = CliRunner()
NO_CHAIN = {"BISECTML_RPC_URL": None, "BISECTML_PRIVATE_KEY": None}
POST = ["--reward", "10", "--solver-bond", "6", "--challenger-bond", "250"]


@pytest.fixture(scope="module")
def toy_file(tmp_path_factory):  # noqa: ANN201
    path = tmp_path_factory.mktemp("program") / "toy.onnx"
    onnx.save(accumulator_program(steps=6), path)
    return path


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BISECTML_HOME", str(tmp_path / "home"))
    for var in NO_CHAIN:
        monkeypatch.delenv(var, raising=False)


def _one_line_error(res, code: int = 2) -> str:  # noqa: ANN001
    assert res.exit_code == code, (res.exit_code, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


def _commands(group, path=()):  # noqa: ANN001, ANN202
    for name, cmd in group.commands.items():
        yield (*path, name), cmd
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, (*path, name))


MARKET = [
    ("deploy",), ("task",), ("task", "post"), ("task", "show"), ("task", "list"), ("claim",), ("claim", "show"),
    ("dispute",), ("dispute", "open"), ("dispute", "play"), ("dispute", "status"), ("settle",), ("finalize",),
]  # fmt: skip


@pytest.mark.parametrize("words", MARKET, ids=" ".join)
def test_help__has_an_example(words) -> None:  # noqa: ANN001
    res = runner.invoke(app, [*words, "--help"])
    assert res.exit_code == 0 and "Example" in res.stdout, res.stdout


def test_help__every_command_outside_the_daemons_has_an_example() -> None:
    import typer

    root = typer.main.get_command(app)
    seen = set()
    for words, _ in _commands(root):
        if words[0] in ("solver", "challenger"):  # the daemons' groups, documented by their owner
            continue
        res = runner.invoke(app, [*words, "--help"])
        assert res.exit_code == 0 and "Example" in res.stdout, words
        seen.add(words)
    assert set(MARKET) <= seen


def test_deploy__without_rpc_url__runs_on_the_embedded_chain_and_records_nothing(tmp_path) -> None:
    res = runner.invoke(app, ["deploy", "--mint", "5", "--json"])
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["embedded"] and out["recorded_in"] is None and out["balance"] == str(5 * 10**18)
    assert set(out["addresses"]) >= {"Token", "Game", "Referee", "Tasks"}
    assert "in-process chain" in res.stderr and "--rpc-url" in res.stderr
    assert not (tmp_path / "home" / "deployments.json").exists()


def test_task_post__without_rpc_url__is_a_dry_run_that_posts(toy_file) -> None:
    res = runner.invoke(app, ["task", "post", str(toy_file), *POST, "--arity", "4", "--json"])
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["embedded"] and out["task_id"] == 1 and out["steps"] == 6
    assert out["program_id"] == "0x" + load_program(toy_file).id.hex()
    human = runner.invoke(app, ["task", "post", str(toy_file), *POST, "--window", "2d", "--deadline", "3d"])
    assert human.exit_code == 0 and "posted task 1" in human.stdout and "program id" in human.stdout


@pytest.fixture
def on_anvil(anvil, tmp_path) -> list[str]:
    """A suite deployed on anvil and recorded in this test's home; the options that reach it."""
    from verifier.app.session import deployments_path
    from verifier.court.chain import Chain, deploy_suite

    chain = Chain.connect(anvil.url, key=anvil.keys[9])
    deploy_suite(chain).save(deployments_path())
    key = tmp_path / "poster.key"
    key.write_text(anvil.keys[9])
    key.chmod(0o600)
    return ["--rpc-url", anvil.url, "--key-file", str(key)]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--window", "1h"], ["--window", "1d"]),
        (["--clock", "31d"], ["--clock", "30d"]),
        (["--arity", "64"], ["--arity", "2..32"]),
        (["--deadline", "1d"], ["--deadline", "longer than the window"]),
        (["--challenger-bond", "249.9"], ["--challenger-bond 249.9 BOND", "250 BOND .. 1,000 BOND"]),
        (["--challenger-bond", "1001"], ["--challenger-bond 1,001 BOND", "no watchtower could challenge"]),
        ([], ["holds 0 BOND", "the reward is 10 BOND"]),
    ],
    ids=["window", "clock", "arity", "deadline", "cb-low", "cb-high", "funds"],
)
def test_task_post__refused_on_one_line_before_any_transaction(toy_file, on_anvil, anvil, extra, words) -> None:  # noqa: ANN001
    nonce = anvil.rpc("eth_getTransactionCount", [_address(anvil.keys[9]), "latest"])
    line = _one_line_error(runner.invoke(app, ["task", "post", str(toy_file), *POST, *extra, *on_anvil]))
    assert all(w in line for w in words), line
    assert anvil.rpc("eth_getTransactionCount", [_address(anvil.keys[9]), "latest"]) == nonce


def _address(key: str) -> str:
    from eth_account import Account

    return Account.from_key(key).address


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["task", "post", "TOY", "--reward", "ten", "--solver-bond", "1", "--challenger-bond", "1"], "--reward 'ten'"),
        (["task", "post", "TOY", *POST, "--clock", "soon"], "--clock 'soon'"),
        (["task", "post", "no_such_program", *POST], "no file or bundled program"),
        (["dispute", "play", "1", "--program", "TOY", "--as", "bob"], "'bob'"),
        (["task", "post", "TOY", "--reward", "1"], "--solver-bond"),
        (["task", "show", "x"], "valid integer"),
    ],
    ids=["amount", "duration", "program", "side", "missing-option", "id"],
)
def test_bad_input__one_line_exit_2(toy_file, args, needle) -> None:  # noqa: ANN001
    args = [str(toy_file) if a == "TOY" else a for a in args]
    assert needle in _one_line_error(runner.invoke(app, args))


@pytest.mark.parametrize(
    "args",
    [
        ["task", "show", "1"],
        ["task", "list"],
        ["claim", "show", "1"],
        ["dispute", "open", "1", "--program", "TOY"],
        ["dispute", "play", "1", "--program", "TOY", "--as", "challenger"],
        ["dispute", "status", "1"],
        ["settle", "1"],
        ["finalize", "1"],
    ],
    ids=" ".join,
)
def test_state_commands__without_rpc_url__explain_they_need_one(toy_file, args) -> None:  # noqa: ANN001
    args = [str(toy_file) if a == "TOY" else a for a in args]
    line = _one_line_error(runner.invoke(app, args))
    assert "--rpc-url" in line and "BISECTML_RPC_URL" in line


def test_unreachable_rpc_url__one_line_exit_2() -> None:
    line = _one_line_error(runner.invoke(app, ["task", "show", "1", "--rpc-url", "http://127.0.0.1:9"]))
    assert "cannot reach http://127.0.0.1:9" in line and "--rpc-url" in line


def test_missing_key__one_line_exit_2(anvil) -> None:
    line = _one_line_error(runner.invoke(app, ["deploy", "--rpc-url", anvil.url]))
    assert "--key-file" in line and "BISECTML_PRIVATE_KEY" in line


def test_unreadable_key_file__one_line_exit_2(anvil, tmp_path) -> None:
    line = _one_line_error(runner.invoke(app, ["deploy", "--rpc-url", anvil.url, "--key-file", str(tmp_path / "nope.key")]))
    assert "cannot read key file" in line


def test_unknown_task__one_line_exit_2(on_anvil) -> None:
    line = _one_line_error(runner.invoke(app, ["task", "show", "7", *on_anvil]))
    assert "there is no task 7" in line and "bisectml task list" in line


def test_no_deployment_on_the_chain__says_to_deploy(anvil) -> None:
    line = _one_line_error(runner.invoke(app, ["task", "list", "--rpc-url", anvil.url]))
    assert "bisectml deploy" in line


def test_mint__refused_off_dev_chains(monkeypatch) -> None:
    from verifier.app import commands

    monkeypatch.setattr(commands, "DEV_CHAIN_IDS", frozenset())
    line = _one_line_error(runner.invoke(app, ["deploy", "--mint", "1"]))
    assert "--mint is for development chains" in line


def test_units() -> None:
    assert parse_amount("10") == 10 * 10**18 and parse_amount("2.5") == 25 * 10**17 and parse_amount("7wei") == 7
    assert parse_amount("1_000 BOND") == 1000 * 10**18
    assert parse_duration("1d") == 86_400 and parse_duration("6h") == 21_600 and parse_duration("90") == 90
    assert format_amount(25 * 10**17) == "2.5 BOND" and format_amount(1) == "0.000000000000000001 BOND"
    assert format_duration(93_784) == "1d 2h"
    for bad in ("-1", "1e-30", "abc"):
        with pytest.raises(CommandError):
            parse_amount(bad)
    with pytest.raises(CommandError):
        parse_duration("1y")
