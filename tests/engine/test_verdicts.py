"""Self-test verdicts remembered per machine (verifier.engine.verdicts): reused only under the same
fingerprint, recomputed on any doubt, and never for kernels other than the genuine ones."""

from __future__ import annotations

import json
import os

import pytest

from verifier.engine import compiled, fastpath, verdicts
from verifier.engine.compiled import RULES, Rule


@pytest.fixture
def home(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("BISECTML_HOME", str(tmp_path))
    monkeypatch.delenv(verdicts.ENV, raising=False)
    return tmp_path


def counting(result: dict[str, bool]):  # noqa: ANN201
    calls = []

    def compute() -> dict[str, bool]:
        calls.append(1)
        return dict(result)

    return compute, calls


def test_computed_once_then_remembered(home) -> None:
    compute, calls = counting({"Add": True, "Div": False})
    assert verdicts.remembered("t", compute) == {"Add": True, "Div": False}
    assert verdicts.remembered("t", compute) == {"Add": True, "Div": False}
    assert len(calls) == 1
    other, other_calls = counting({"Add": True})
    verdicts.remembered("u", other)  # another family has its own file
    assert len(other_calls) == 1


def test_another_fingerprint_or_a_damaged_file__computed_again(home, monkeypatch) -> None:
    compute, calls = counting({"Add": True})
    verdicts.remembered("t", compute)
    (path,) = (home / "selftest").glob("t-*.json")
    path.write_text("{not json")
    verdicts.remembered("t", compute)
    assert len(calls) == 2
    stored = json.loads(path.read_text())
    stored["verdicts"]["Add"] = "yes"  # not a verdict
    path.write_text(json.dumps(stored))
    verdicts.remembered("t", compute)
    assert len(calls) == 3
    monkeypatch.setattr(verdicts.platform, "machine", lambda: "another-cpu")
    verdicts.remembered("t", compute)
    assert len(calls) == 4 and len(list((home / "selftest").glob("t-*.json"))) == 2


def test_each_family_keeps_its_newest_files__upgrades_do_not_pile_up(home, monkeypatch) -> None:
    """Every new fingerprint (an upgrade, another interpreter) writes a file; past KEEP of a
    family the oldest go, the newest stay and are still reused; another family is untouched."""
    compute, calls = counting({"Add": True})
    verdicts.remembered("u", compute)
    for i in range(verdicts.KEEP + 3):
        monkeypatch.setattr(verdicts.platform, "machine", lambda i=i: f"cpu-{i}")
        verdicts.remembered("t", compute)
        for f in (home / "selftest").glob("t-*.json"):  # a file system's clock may not tick between writes
            if f.stat().st_mtime_ns > 10**18:
                os.utime(f, ns=(i * 10**9, i * 10**9))
    files = sorted((home / "selftest").glob("t-*.json"), key=lambda f: f.stat().st_mtime_ns)
    assert len(files) == verdicts.KEEP and len(list((home / "selftest").glob("u-*.json"))) == 1
    assert len(calls) == verdicts.KEEP + 4
    verdicts.remembered("t", compute)  # the newest (cpu-10) is still remembered
    assert len(calls) == verdicts.KEEP + 4
    monkeypatch.setattr(verdicts.platform, "machine", lambda: "cpu-0")  # the oldest was forgotten
    verdicts.remembered("t", compute)
    assert len(calls) == verdicts.KEEP + 5


def test_always_tests_when_asked(home, monkeypatch) -> None:
    compute, calls = counting({"Add": True})
    verdicts.remembered("t", compute)
    monkeypatch.setenv(verdicts.ENV, "always")
    verdicts.remembered("t", compute)
    assert len(calls) == 2


def test_fingerprint_covers_the_kernels_code(monkeypatch, tmp_path) -> None:
    before = verdicts.fingerprint("t")
    (tmp_path / "fastpath.py").write_text("# another kernel\n")
    monkeypatch.setattr(verdicts, "__file__", str(tmp_path / "engine" / "verdicts.py"))  # sources are under verifier/
    monkeypatch.setattr(verdicts, "_SOURCES", ("fastpath.py",))
    assert verdicts.fingerprint("t") != before


def test_a_patched_compiled_kernel_is_tested_not_remembered(home, monkeypatch) -> None:
    monkeypatch.setattr(compiled, "_VERDICTS", None)
    assert all(compiled.verdicts().values())  # the genuine kernels: stored
    wrong = Rule(RULES["Abs"].bounds, lambda info, ivs: lambda x: x)  # not abs at all
    monkeypatch.setitem(RULES, "Abs", wrong)
    monkeypatch.setattr(compiled, "_VERDICTS", None)
    assert compiled.verdicts()["Abs"] is False


def test_a_patched_fast_kernel_is_tested_not_remembered(home, monkeypatch) -> None:
    fastpath.enable_fast_path(retest=True)
    monkeypatch.setattr(fastpath, "_RESULTS", None)
    assert fastpath.enable_fast_path()["MatMul"] is True  # genuine: stored
    monkeypatch.setitem(fastpath._KERNELS, "MatMul", lambda inputs, attrs: inputs[0])
    monkeypatch.setattr(fastpath, "_RESULTS", None)
    try:
        assert fastpath.enable_fast_path()["MatMul"] is False
    finally:
        monkeypatch.undo()
        fastpath.enable_fast_path(retest=True)
