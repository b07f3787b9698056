"""The `bisectml` command: trace and check, as a user runs them."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cli import app, resolve_program
from verifier.engine.program import load_program
from verifier.engine.trace import Trace, checkpoint_bytes

runner = CliRunner()


def test_trace__json_roots_match_the_library(tmp_path) -> None:
    res = runner.invoke(app, ["trace", "mlp_train", "--steps", "12", "--json", "--dir", str(tmp_path / "t")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    p = load_program(resolve_program("mlp_train"), steps=12)
    with Trace(p) as tr:
        assert out["final_root"] == "0x" + tr.run().hex()
    assert out["program_id"] == "0x" + p.id.hex() and out["steps"] == 12 and out["resumed_from"] == 0
    assert out["engine"] == "compiled"
    ref = runner.invoke(app, ["trace", "mlp_train", "--steps", "12", "--json", "--reference"])
    assert json.loads(ref.stdout)["engine"] == "reference" and json.loads(ref.stdout)["final_root"] == out["final_root"]
    again = runner.invoke(app, ["trace", "mlp_train", "--steps", "12", "--json", "--dir", str(tmp_path / "t")])
    assert json.loads(again.stdout)["resumed_from"] == 12
    assert json.loads(again.stdout)["final_root"] == out["final_root"]


def test_trace__disk_budget_widens_the_checkpoint_spacing(tmp_path) -> None:
    p = load_program(resolve_program("mlp_train"), steps=300)
    three = 3 * checkpoint_bytes(p)  # room for three checkpoints: one every 100 steps fits
    args = ["trace", "mlp_train", "--steps", "300", "--json"]
    assert json.loads(runner.invoke(app, [*args, "--disk-budget", str(three)]).stdout)["checkpoint_every"] == 100
    tight = runner.invoke(app, [*args, "--disk-budget", str(three - 1), "--dir", str(tmp_path / "t")])
    assert tight.exit_code == 0, tight.output
    assert json.loads(tight.stdout)["checkpoint_every"] == 150
    assert sorted(f.name for f in (tmp_path / "t").glob("ckpt-*")) == ["ckpt-000000000150.bin", "ckpt-000000000300.bin"]
    # an explicit spacing wins over the budget
    assert json.loads(runner.invoke(app, [*args, "--checkpoint-every", "7"]).stdout)["checkpoint_every"] == 7


def test_trace__disk_budget_too_small_or_malformed__one_line_error(tmp_path) -> None:
    for budget, says in (("100", "raise --disk-budget to at least"), ("lots", "not a positive size"), ("0", "not a positive size")):
        res = runner.invoke(app, ["trace", "mlp_train", "--steps", "3", "--disk-budget", budget, "--dir", str(tmp_path / budget)])
        assert res.exit_code != 0 and says in res.output and len(res.output.strip().splitlines()) == 1, res.output
        assert not (tmp_path / budget).exists()


def test_trace__node_roots(tmp_path) -> None:
    res = runner.invoke(app, ["trace", "mlp_train", "--steps", "3", "--json", "--node-roots", "1"])
    assert res.exit_code == 0, res.output
    roots = json.loads(res.stdout)["node_roots"]["roots"]
    p = load_program(resolve_program("mlp_train"), steps=3)
    assert len(roots) == p.n_nodes + 2


def test_check__bundled_program() -> None:
    res = runner.invoke(app, ["check", "mlp_train", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["kind"] == "program" and summary["ops"]["MatMul"] >= 1


def test_check__malformed_file__one_line_error_exit_2(tmp_path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage\xff")
    res = runner.invoke(app, ["check", str(bad)])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "re-export" in lines[0]


def test_trace__unknown_program__names_the_bundled_ones() -> None:
    res = runner.invoke(app, ["trace", "no_such_program"])
    assert res.exit_code == 2
    assert "mlp_train" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_trace__leaves_nothing_in_the_temporary_folder(tmp_path) -> None:
    """Resources have owners: `bisectml trace`, run as a user runs it, leaves no trace
    directory (or anything else) in the temporary folder (the demo's check is in test_demo)."""
    import os
    import subprocess
    import sys

    private = tmp_path / "tmp"
    private.mkdir()
    env = {**os.environ, "TMPDIR": str(private), "BISECTML_HOME": str(tmp_path / "home")}
    run = [sys.executable, "-c", "import cli; cli.main()", "trace", "mlp_train", "--steps", "20", "--json"]
    done = subprocess.run(run, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in private.iterdir()) == []


def test_offline_commands__load_no_chain_client(tmp_path) -> None:
    """`--help`, `check` and `trace` never touch a chain, so they must not import one: web3 and
    eth-account alone cost the start-up more than the 0.5 s goal (bench/bench_startup.py)."""
    import os
    import subprocess
    import sys

    probe = (
        "import sys, cli\n"
        "try:\n    cli.main()\n"
        "except SystemExit as e:\n    code = e.code\n"
        "print(' '.join(m for m in ('web3', 'eth_account', 'eth_keyfile') if m in sys.modules), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "BISECTML_HOME": str(tmp_path / "home")}
    for args in (["--help"], ["check", "mlp_train"], ["trace", "mlp_train", "--steps", "1", "--json"]):
        done = subprocess.run([sys.executable, "-c", probe, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stderr.strip().splitlines()[-1:] in ([], [""]), (args, done.stderr[-500:])
