"""Mutation check of the contracts' assert and raise paths.

For every `assert` of a contract it makes two mutants, the statement deleted (`pass` in its
place) and its condition inverted (`assert not (cond), ..`); a `raise` gets the deletion only.
A check written as a call, `self._check(cond, E_CODE)` (Market.vy and Loop.vy keep their reasons
in one REASONS string to stay under the code size limit), is a check too: deleted, or its `cond`
inverted; its reason is the slice of REASONS that E_CODE names.
Each mutant is written into a temporary copy of contracts/, compiled (a mutant that does not
compile is reported and skipped), and the contract's mapped test files run against it with
`pytest -x -q`, the tests reading the copy through BISECTML_CONTRACTS_DIR
(tests/contracts/conftest.py and _court.py). A failing run kills the mutant; a passing one
lets it survive. The working tree is never written; the copy goes away on every exit.

    python bench/mutation_check.py --contracts Game.vy Referee.vy \\
        --allow bench/mutation_allow.json --report bench/mutation_report.json

Deletions run first (a surviving deletion is a check no test needs). `--budget` stops starting
mutants after so many seconds, and `--merge` folds an earlier report in, so a long check can run
in parts (`--kind invert --merge bench/mutation_report.json`). Survivors that are redundant by
design are listed with their backstop in bench/mutation_allow.json and docs/SPEC.md section 6.2.
About 25-35 s per mutant on one core (pytest start, compiling the mutant, the mapped files
until the first failure).

Exit status: 0 when every survivor is explained in the --allow file, 1 when one is not (or a
mutant's run errors), 2 on bad arguments or when a contract's tests do not read the copy.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT / "contracts"
TESTS = "tests/contracts"
ENV = "BISECTML_CONTRACTS_DIR"

#: the fast, relevant test files per contract, the quickest killers first (pytest -x stops at the
#: first failure, so a mutant that breaks honest play dies in the first file)
MAPPING: dict[str, list[str]] = {
    "Game.vy": [f"{TESTS}/test_game_adversaries.py", f"{TESTS}/test_game_raw_reverts.py", f"{TESTS}/test_game_rules.py",
                f"{TESTS}/test_tasks_metered_gas.py"],
    "Referee.vy": [f"{TESTS}/test_game_adversaries.py", f"{TESTS}/test_game_raw_reverts.py", f"{TESTS}/test_game_rules.py"],
    "Tasks.vy": [f"{TESTS}/test_tasks.py", f"{TESTS}/test_tasks_results.py", f"{TESTS}/test_tasks_invariants.py",
                 f"{TESTS}/test_tasks_metered_gas.py"],
    "Attestations.vy": [f"{TESTS}/test_attestations.py", f"{TESTS}/test_attestations_invariants.py"],
    # the anvil test deploys the compiled artifacts, not the mutated copy
    "Pool.vy": [f"{TESTS}/test_pool.py", f"--deselect={TESTS}/test_pool.py::test_pool_on_anvil__the_same_contract_trades_and_averages_on_a_node"],
    # the chain tests deploy the compiled artifacts, not the mutated copy
    "Availability.vy": [f"{TESTS}/test_availability.py", "-k", "not fetch_tensor and not market_client"],
    # test_reasons__ (Market.vy, Loop.vy) reads the source (every E_ code used somewhere), so it would
    # kill every deleted check by its text alone; the mutants must die of behaviour
    "Market.vy": [f"{TESTS}/test_market.py", f"{TESTS}/test_market_attacks.py", f"{TESTS}/test_game_market.py",
                  f"{TESTS}/test_market_invariants.py",
                  f"--deselect={TESTS}/test_market.py::test_reasons__every_code_names_exactly_one_reason"],
    "Loop.vy": [f"{TESTS}/test_loop.py", f"{TESTS}/test_loop_data.py", f"{TESTS}/test_loop_programs.py", f"{TESTS}/test_loop_invariants.py",
                f"--deselect={TESTS}/test_loop.py::test_reasons__every_code_names_exactly_one_reason"],
    "Vault.vy": [f"{TESTS}/test_loop.py", f"{TESTS}/test_loop_invariants.py"],
}
DEFAULT_CONTRACTS = ["Game.vy", "Referee.vy", "Tasks.vy", "Market.vy", "Attestations.vy", "Pool.vy", "Availability.vy",
                     "Loop.vy", "Vault.vy"]

KILLED, SURVIVED, TIMEOUT, NOT_COMPILABLE, ERROR = "killed", "survived", "timeout", "not-compilable", "error"


@dataclass
class Mutant:
    contract: str
    line: int
    end_line: int
    kind: str  # "delete" or "invert"
    statement: str  # the original statement, on one line
    id: str  # stable across edits elsewhere in the file: contract, kind, reason and occurrence
    status: str = ""
    seconds: float = 0.0
    killed_by: str = ""
    detail: str = field(default="", repr=False)


# -- finding the statements -----------------------------------------------------------------------


def _reason(statement: str) -> str:
    m = re.search(r'"([^"]*)"\s*$', statement)
    return m.group(1) if m else statement


def mutants_of(contract: str, source: str) -> list[tuple[Mutant, str]]:
    """(mutant, mutated source) for every assert and raise of `source`, located with vyper's
    own parser (so multi-line statements are spanned whole)."""
    import vyper.ast as vy_ast

    module = vy_ast.parse_to_ast(source)
    lines = source.splitlines(keepends=True)
    checks = {id(c.get_ancestor()): c for c in _check_calls(module)}
    reasons = _coded_reasons(source)
    found = [*module.get_descendants((vy_ast.Assert, vy_ast.Raise)), *(c.get_ancestor() for c in checks.values())]
    nodes = sorted(found, key=lambda n: (n.lineno, n.col_offset))
    seen: dict[str, int] = {}
    out: list[tuple[Mutant, str]] = []
    for node in nodes:
        first, last = node.lineno, node.end_lineno
        text = _segment(lines, first, node.col_offset, last, node.end_col_offset)
        flat = " ".join(text.split())
        call = checks.get(id(node))
        reason = reasons.get(call.args[1].id, call.args[1].id) if call is not None else _reason(flat)
        key = f"{'check' if call is not None else type(node).__name__.lower()} {reason}"
        seen[key] = seen.get(key, 0) + 1
        tag = f'{contract}:{{kind}}:"{reason}"' + (f"#{seen[key]}" if seen[key] > 1 else "")
        indent = lines[first - 1][: node.col_offset]
        before, after = "".join(lines[: first - 1]), "".join(lines[last:])
        tail = lines[last - 1][node.end_col_offset :]
        # deleted: `pass`, keeping the line count so reported lines stay those of the original
        deleted = before + indent + "pass" + "\n" * (last - first) + tail + after
        out.append((Mutant(contract, first, last, "delete", flat, tag.format(kind="delete")), deleted))
        if isinstance(node, vy_ast.Assert) or call is not None:
            t = node.test if call is None else call.args[0]
            head = "".join(lines[: t.lineno - 1]) + lines[t.lineno - 1][: t.col_offset]
            cond = _segment(lines, t.lineno, t.col_offset, t.end_lineno, t.end_col_offset)
            rest = lines[t.end_lineno - 1][t.end_col_offset :] + "".join(lines[t.end_lineno :])
            inverted = head + "not (" + cond + ")" + rest
            out.append((Mutant(contract, first, last, "invert", flat, tag.format(kind="invert")), inverted))
    return out


def _check_calls(module) -> list:  # noqa: ANN001 - a vyper Module node
    """The `self._check(cond, E_CODE)` calls that stand as statements of their own."""
    import vyper.ast as vy_ast

    return [
        n for n in module.get_descendants(vy_ast.Call)
        if isinstance(n.func, vy_ast.Attribute) and n.func.attr == "_check" and isinstance(n.func.value, vy_ast.Name)
        and n.func.value.id == "self" and isinstance(n.get_ancestor(), vy_ast.Expr) and len(n.args) == 2
        and isinstance(n.args[1], vy_ast.Name)
    ]  # fmt: skip


def _coded_reasons(source: str) -> dict[str, str]:
    """E_CODE -> its revert reason, for a contract that keeps its reasons in one REASONS string
    (`E_X: constant(uint256) = offset << 8 | length`, reverting with `<prefix>: <slice>`)."""
    block = re.search(r"REASONS: constant\(String\[\d+\]\) = \(\n((?:\s+\".*\"\n)+)\s*\)", source)
    prefix = re.search(r'concat\("([^"]*)", slice\((?:self\._reasons|REASONS)', source)
    if not block:
        return {}
    table = "".join(re.findall(r'"(.*)"', block.group(1)))
    codes = re.findall(r"^(E_\w+): constant\(uint256\) = (\d+) << 8 \| (\d+)$", source, re.M)
    head = prefix.group(1) if prefix else ""
    return {name: head + table[int(off) : int(off) + int(n)] for name, off, n in codes}


def _segment(lines: list[str], l0: int, c0: int, l1: int, c1: int) -> str:
    if l0 == l1:
        return lines[l0 - 1][c0:c1]
    return lines[l0 - 1][c0:] + "".join(lines[l0 : l1 - 1]) + lines[l1 - 1][:c1]


# -- running one mutant ---------------------------------------------------------------------------


#: the compiler keeps global state: two jobs compiling at once fail each other's compilations
_COMPILER = threading.Lock()


def _compiles(path: Path, search_root: Path) -> str | None:
    """None if the contract at `path` compiles (semantics and ABI), else the error's first line."""
    import vyper
    from vyper.compiler.input_bundle import FilesystemInputBundle

    try:
        with _COMPILER:
            vyper.compile_code(
            path.read_text(),
                contract_path=path,
                resolved_path=path,
                # snekmate's modules resolve from site-packages, as the vyper command line finds them
                input_bundle=FilesystemInputBundle([search_root, *(Path(p) for p in sys.path if p and Path(p).is_dir())]),
                output_formats=["abi", "bytecode"],
            )
    except Exception as e:  # noqa: BLE001 - any compiler error makes the mutant not compilable
        return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    return None


_RUNNING: set[subprocess.Popen] = set()


def _pytest(tests: list[str], contracts_dir: Path, timeout: float) -> tuple[str, str, str]:
    """(status, first failing test, output tail) of the mapped tests against `contracts_dir`."""
    env = dict(os.environ, **{ENV: str(contracts_dir)}, PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *tests]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    _RUNNING.add(proc)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        proc.communicate()
        return TIMEOUT, "", ""
    except BaseException:
        _kill(proc)  # interrupted: the test run goes with us
        raise
    finally:
        _RUNNING.discard(proc)
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", out, re.M)
    if proc.returncode == 0:
        return SURVIVED, "", out[-2000:]
    if proc.returncode == 1:
        return KILLED, failed[0] if failed else "", out[-2000:]
    return ERROR, "", out[-4000:]


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _fresh_copy(slot: Path) -> Path:
    """contracts/ copied into `slot` (a directory reused from mutant to mutant, so titanoboa's
    disk cache, keyed by path, still serves the contracts a mutant leaves alone)."""
    copy = slot / "contracts"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(CONTRACTS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def run_mutant(m: Mutant, source: str, slot: Path, tests: list[str], timeout: float) -> Mutant:
    copy = _fresh_copy(slot)
    (copy / m.contract).write_text(source)
    t0 = time.monotonic()
    err = _compiles(copy / m.contract, slot)
    if err is not None:
        m.status, m.detail = NOT_COMPILABLE, err
    else:
        m.status, m.killed_by, m.detail = _pytest(tests, copy, timeout)
    m.seconds = round(time.monotonic() - t0, 1)
    return m


def canary(contract: str, slot: Path, tests: list[str], timeout: float) -> bool:
    """True if the mapped tests read `contract` from the copy: they must fail when it is broken."""
    copy = _fresh_copy(slot)
    (copy / contract).write_text("this is not vyper\n")
    status, _, _ = _pytest(tests, copy, timeout)
    return status in (KILLED, ERROR)


# -- the command ----------------------------------------------------------------------------------


def _parse_only(values: list[str]) -> list[tuple[str | None, int]]:
    out = []
    for v in values:
        name, _, line = v.rpartition(":")
        out.append((name or None, int(line)))
    return out


def _selected(m: Mutant, only: list[tuple[str | None, int]]) -> bool:
    return not only or any((c is None or c == m.contract) and m.line <= line <= m.end_line for c, line in only)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contracts", nargs="+", default=DEFAULT_CONTRACTS, help="contract files under contracts/")
    ap.add_argument("--tests", nargs="+", help="test files to run for every contract (overrides the mapping)")
    ap.add_argument("--only", action="append", default=[], metavar="[CONTRACT:]LINE",
                    help="only the statement spanning LINE (repeatable)")
    ap.add_argument("--kind", choices=["delete", "invert"], help="only mutants of this kind")
    ap.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant's test run (default 300)")
    ap.add_argument("--report", type=Path, help="write the results as JSON here")
    ap.add_argument("--allow", type=Path, help='JSON list of {"id", "reason"}: survivors explained as redundant')
    ap.add_argument("--no-canary", action="store_true", help="skip checking that the tests read the mutated copy")
    ap.add_argument("--budget", type=float, help="start no mutant after this many seconds; the rest are reported as not run")
    ap.add_argument("--merge", type=Path, help="an earlier --report: its results stand for the mutants not run now")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = ap.parse_args(argv)

    allow: dict[str, str] = {}
    if args.allow:
        allow = {e["id"]: e["reason"] for e in json.loads(args.allow.read_text())}
    only = _parse_only(args.only)

    plan: list[tuple[Mutant, str, list[str]]] = []
    current: set[str] = set()  # every mutant id the named contracts have now, selected or not
    for name in args.contracts:
        path = CONTRACTS / name
        if not path.is_file():
            print(f"error: {path} does not exist; name a file under contracts/.", file=sys.stderr)
            return 2
        tests = args.tests or MAPPING.get(name)
        if not tests:
            print(f"error: no test files mapped to {name}; pass --tests.", file=sys.stderr)
            return 2
        for m, src in mutants_of(name, path.read_text()):
            current.add(m.id)
            if _selected(m, only) and (args.kind is None or m.kind == args.kind):
                plan.append((m, src, tests))
    # deletions first: a surviving deletion is a check no test needs, the finding that matters most
    plan.sort(key=lambda item: item[0].kind != "delete")
    if args.list:
        for m, _, tests in plan:
            print(f"{m.contract}:{m.line} {m.kind:6} {m.id}")
        return 0

    results: list[Mutant] = []
    work = Path(tempfile.mkdtemp(prefix="bisectml-mutants-"))
    slots: queue.Queue[Path] = queue.Queue()
    for k in range(max(1, args.jobs)):
        (work / f"slot{k}").mkdir()
        slots.put(work / f"slot{k}")

    def _term(signum, frame):  # noqa: ANN001, ANN202
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, _term)
    try:
        if not args.no_canary:
            for name in dict.fromkeys(m.contract for m, _, _ in plan):
                tests = args.tests or MAPPING[name]
                if not canary(name, work / "slot0", tests, args.timeout):
                    print(f"error: the tests {tests} pass without {name}: they do not read it from {ENV}; "
                          "make them load it through tests/contracts/conftest.py's CONTRACTS.", file=sys.stderr)
                    return 2
        total = len(plan)

        def one(i_item):  # noqa: ANN001, ANN202
            i, (m, src, tests) = i_item
            slot = slots.get()
            try:
                r = run_mutant(m, src, slot, tests, args.timeout)
            finally:
                slots.put(slot)
            print(f"[{i + 1}/{total}] {r.contract}:{r.line} {r.kind:6} {r.status:14} {r.seconds:6.1f}s  "
                  f"{r.statement[:70]}{'  <- ' + r.killed_by if r.killed_by else ''}", flush=True)
            return r

        started = time.monotonic()

        def due() -> bool:
            return args.budget is None or time.monotonic() - started < args.budget

        if args.jobs <= 1:
            for item in enumerate(plan):
                if not due():
                    break
                results.append(one(item))
        else:
            with ThreadPoolExecutor(max_workers=args.jobs) as pool:
                futures = [pool.submit(lambda it: one(it) if due() else None, item) for item in enumerate(plan)]
                try:
                    results.extend(r for f in futures if (r := f.result()) is not None)
                except BaseException:
                    for f in futures:
                        f.cancel()
                    for p in list(_RUNNING):
                        _kill(p)
                    raise
    except KeyboardInterrupt:
        print("interrupted: reporting the mutants run so far", file=sys.stderr)
        for p in list(_RUNNING):
            _kill(p)
    finally:
        signal.signal(signal.SIGTERM, old)
        shutil.rmtree(work, ignore_errors=True)

    not_run = [m.id for m, _, _ in plan[len(results):]] if args.jobs <= 1 else []
    if args.merge:
        # e.g. the survivors of a full run, run again after a test was added for them
        fresh = {r.id for r in results}
        names = {f.name for f in fields(Mutant)}
        earlier = [Mutant(**{k: v for k, v in d.items() if k in names}) for d in json.loads(args.merge.read_text())["mutants"]]
        # an earlier result of a check the named contracts no longer have (removed, or its
        # reason reworded) is dropped, not carried
        gone = {r.id for r in earlier if r.contract in args.contracts and r.id not in current}
        results = [r for r in earlier if r.id not in fresh and r.id not in gone] + results
        earlier_not_run = [i for i in json.loads(args.merge.read_text()).get("not_run", []) if i not in fresh and i not in gone]
        # what this run left out stays listed too (a --budget run in parts)
        not_run = earlier_not_run + [i for i in not_run if i not in earlier_not_run]
    unexplained = [r for r in results if r.status == SURVIVED and r.id not in allow]
    errors = [r for r in results if r.status == ERROR]
    summary = {}
    for name in dict.fromkeys(r.contract for r in results):
        rs = [r for r in results if r.contract == name]
        count = {s: sum(r.status == s for r in rs) for s in (KILLED, SURVIVED, TIMEOUT, NOT_COMPILABLE, ERROR)}
        explained = sum(r.status == SURVIVED and r.id in allow for r in rs)
        secs = [r.seconds for r in rs if r.status in (KILLED, SURVIVED)]
        summary[name] = {"mutants": len(rs), **count, "explained": explained,
                         "mean_seconds": round(sum(secs) / len(secs), 1) if secs else 0.0}
        print(f"{name}: {len(rs)} mutants, {count[KILLED]} killed, {count[SURVIVED]} survived "
              f"({explained} explained), {count[TIMEOUT]} timeout, {count[NOT_COMPILABLE]} not compilable, "
              f"{count[ERROR]} errors, {summary[name]['mean_seconds']}s per mutant")
    for r in unexplained:
        print(f"SURVIVED, unexplained: {r.id} (line {r.line}): {r.statement}")
    for r in errors:
        print(f"ERROR: {r.id} (line {r.line}): the test run itself failed:\n{r.detail}")
    if args.report:
        report = {
            "contracts": list(summary),
            "tests": {name: args.tests or MAPPING[name] for name in summary},
            "summary": summary,
            "not_run": not_run,
            "mutants": [{**asdict(r), "explained": allow.get(r.id, "")} for r in results],
        }
        for m in report["mutants"]:
            if m["status"] != NOT_COMPILABLE:
                m.pop("detail")
        args.report.write_text(json.dumps(report, indent=1) + "\n")
    return 1 if unexplained or errors else 0


if __name__ == "__main__":
    sys.exit(main())
