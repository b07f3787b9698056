"""Shell completion: `bisectml completion SHELL` prints a script, and bash completes with it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

runner = CliRunner()
BISECTML = Path(sys.executable).with_name("bisectml")


def test_completion__bash_completes_commands_and_subcommands(tmp_path) -> None:
    """The printed script, evaluated by a real bash, completes `ro` to `round` and `round s` to
    the round verbs starting with `s`."""
    bash = shutil.which("bash")
    assert bash and BISECTML.exists(), "bash and the installed bisectml entry point are needed"
    script = tmp_path / "complete.sh"
    script.write_text(
        'eval "$(bisectml completion bash)"\n'
        "COMP_WORDS=(bisectml ro); COMP_CWORD=1; _bisectml_completion bisectml; echo \"${COMPREPLY[*]}\"\n"
        "COMP_WORDS=(bisectml round s); COMP_CWORD=2; _bisectml_completion bisectml; echo \"${COMPREPLY[*]}\"\n"
    )
    env = {**os.environ, "PATH": f"{BISECTML.parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run([bash, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.splitlines()
    assert first.split() == ["round"]
    assert {"settle", "show", "sync"} <= set(second.split()) and all(w.startswith("s") for w in second.split())


@pytest.mark.parametrize("shell", ["zsh", "fish", "powershell"])
def test_completion__other_shells_print_their_script(shell) -> None:
    res = runner.invoke(app, ["completion", shell])
    assert res.exit_code == 0 and "_BISECTML_COMPLETE" in res.stdout


def test_completion__unknown_shell__one_line() -> None:
    res = runner.invoke(app, ["completion", "tcsh"])
    assert res.exit_code != 0
    assert "use bash, zsh, fish or powershell" in res.output and len(res.output.strip().splitlines()) == 1
