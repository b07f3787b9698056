"""`bisectml task post` with a result, `finalize` and `task result` against anvil (docs/SPEC.md
7.11): the claim is paid only once its result is on-chain, the result comes back checked and
named by the program's slots, and every refusal is one line that writes nothing."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from eth_account import Account
from typer.testing import CliRunner

from cli import app
from onnx_models.toy import accumulator_program
from verifier.app.session import deployments_path
from verifier.court.chain import Chain, deploy_suite
from verifier.court.play import Court
from verifier.engine.program import load_program
from verifier.engine.trace import Trace
from verifier.market import results
from verifier.market.content import ContentStore, cid_of

runner = CliRunner()
DAYS = 86_400


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BISECTML_HOME", str(tmp_path / "home"))
    for var in ("BISECTML_RPC_URL", "BISECTML_PRIVATE_KEY", "BISECTML_IPFS_API", "BISECTML_IPFS_GATEWAY"):
        monkeypatch.delenv(var, raising=False)


def _key_file(tmp_path, key: str, name: str):  # noqa: ANN001, ANN202
    path = tmp_path / name
    path.write_text(key)
    path.chmod(0o600)
    return path


def _run(*args: str) -> dict:
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, (res.stdout, res.stderr)
    return json.loads(res.stdout)


def _refused(args: list[str], want: str) -> None:
    res = runner.invoke(app, args)
    assert res.exit_code == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and want in lines[0], res.stderr


@pytest.fixture
def world(anvil, tmp_path):  # noqa: ANN001, ANN201
    owner = Chain.connect(anvil.url, key=anvil.keys[3])
    d = deploy_suite(owner)
    d.save(deployments_path())
    court = Court(owner, d)
    solver_key = anvil.keys[4]
    for who in (owner.account, Account.from_key(solver_key).address):
        owner.send(court.token.functions.mint(who, 100 * 10**18))
    model = accumulator_program(steps=6)
    path = tmp_path / "acc.onnx"
    onnx.save(model, path)
    rpc = ["--rpc-url", anvil.url]
    return {
        "anvil": anvil, "court": court, "path": path, "rpc": rpc, "program": load_program(path),
        "poster": [*rpc, "--key-file", str(_key_file(tmp_path, anvil.keys[3], "poster.key"))],
        "solver": court.as_account(owner.with_key(solver_key)),
    }  # fmt: skip


def _post(w: dict, *extra: str) -> dict:
    return _run("task", "post", str(w["path"]), "--reward", "10", "--solver-bond", "6", "--challenger-bond", "250",
                "--deadline", "30d", *w["poster"], *extra)  # fmt: skip


def _claim(w: dict, task_id: int) -> tuple[int, Trace]:
    solver = w["solver"]
    trace = Trace(w["program"])
    solver.chain.send(solver.token.functions.approve(solver.tasks.address, 6 * 10**18))
    return solver.claim(task_id, trace.run()), trace


def test_task_result__published_finalized_fetched_and_named(world, tmp_path) -> None:
    w, program = world, world["program"]
    posted = _post(w)
    tid = posted["task_id"]
    assert posted["result_slots"] == program.state_slots
    assert posted["program_cid"] == cid_of(w["path"].read_bytes())
    assert ContentStore().has(posted["program_cid"])  # the program is in the poster's content store
    cid, trace = _claim(w, tid)
    out = tmp_path / "result.npz"
    _refused(["task", "result", str(tid), "--out", str(out), *w["rpc"]], "no claim of it is final yet")
    w["anvil"].advance(2 * DAYS + 1)
    # the window has closed with no challenge, but the result is not on the chain yet
    _refused(["finalize", str(cid), *w["poster"]], "result not published")
    assert not out.exists()
    assert _run("claim", "show", str(cid), *w["rpc"])["published_slots"] == []
    receipts = results.publish(w["solver"], trace, cid, sum(1 << s for s in program.state_slots))
    assert len(receipts) == 2 * len(program.state_slots)  # bytes on Availability.vy, then the proof
    shown = _run("task", "show", str(tid), *w["rpc"])
    assert (shown["program_cid"], shown["result_slots"]) == (posted["program_cid"], program.state_slots)
    assert _run("claim", "show", str(cid), *w["rpc"])["published_slots"] == program.state_slots
    _run("finalize", str(cid), *w["poster"])
    got = _run("task", "result", str(tid), "--out", str(out), *w["rpc"])
    assert got["claim_id"] == cid and got["final_root"] == "0x" + trace.final_root.hex()
    saved = dict(np.load(out))
    final = trace.final_state()
    assert sorted(saved) == sorted(final)
    for name, value in final.items():
        assert saved[name].dtype == value.dtype and np.array_equal(saved[name], value)
    trace.close()

    # refusals, each writing nothing: no float model for a program not built by `build train`,
    # another program than the task's, a task that asked for no result
    for args, want in (
        (["--onnx", str(tmp_path / "m.onnx")], "not written by `bisectml build train`"),
        (["--program", str(_other(tmp_path))], "is not task"),
    ):
        _refused(["task", "result", str(tid), "--out", str(tmp_path / "x.npz"), *w["rpc"], *args], want)
        assert not (tmp_path / "x.npz").exists() and not (tmp_path / "m.onnx").exists()


def _other(tmp_path):  # noqa: ANN001, ANN202
    path = tmp_path / "other.onnx"
    onnx.save(accumulator_program(steps=6, seed=1), path)
    return path


def test_task_result__tampered_program_file__refused(world, tmp_path) -> None:
    """The content store holds other bytes under the program's CID: naming the tensors needs the
    program, and wrong bytes for a CID are refused in one line, nothing written."""
    w = world
    tid = _post(w)["task_id"]
    cid, trace = _claim(w, tid)
    results.publish(w["solver"], trace, cid, sum(1 << s for s in w["program"].state_slots))
    trace.close()
    w["anvil"].advance(2 * DAYS + 1)
    _run("finalize", str(cid), *w["poster"])
    store = ContentStore()
    program_cid = cid_of(w["path"].read_bytes())
    (store.root / program_cid).write_bytes(b"not the program")
    out = tmp_path / "r.npz"
    _refused(["task", "result", str(tid), "--out", str(out), *w["rpc"]], "does not hash to its content id")
    assert not out.exists()


def test_task_without_result__finalizes_on_the_root_and_has_no_result(world, tmp_path) -> None:
    w = world
    posted = _post(w, "--no-result")
    assert posted["result_slots"] == []
    cid, trace = _claim(w, posted["task_id"])
    trace.close()
    w["anvil"].advance(2 * DAYS + 1)
    _run("finalize", str(cid), *w["poster"])
    _refused(["task", "result", str(posted["task_id"]), "--out", str(tmp_path / "r.npz"), *w["rpc"]], "asked for no result slots")


def _solver_court(anvil):  # noqa: ANN001, ANN202
    """A fresh suite on anvil recorded in BISECTML_HOME (the poster is key 3) and the solver's
    court (key 4), both funded."""
    owner = Chain.connect(anvil.url, key=anvil.keys[3])
    d = deploy_suite(owner)
    d.save(deployments_path())
    court = Court(owner, d)
    solver = court.as_account(owner.with_key(anvil.keys[4]))
    for who in (owner.account, solver.chain.account):
        owner.send(court.token.functions.mint(who, 100 * 10**18))
    return solver


def test_task_result__above_one_publication__published_in_parts_and_read_back(anvil, tmp_path) -> None:
    """A 720,000-byte state tensor (above the 512 KiB of one publication, and the 128 KiB a
    node's mempool takes) is published in 64 KiB parts and assembled; `task result` reads it
    back from those transactions and it is the claimed slot, byte for byte."""
    solver = _solver_court(anvil)
    big = accumulator_program(steps=2, rows=2, width=300)  # its state w: 300 x 300 int64, 720,000 bytes
    path = tmp_path / "big.onnx"
    onnx.save(big, path)
    program = load_program(path)
    key = ["--rpc-url", anvil.url, "--key-file", str(_key_file(tmp_path, anvil.keys[3], "k"))]
    posted = _run("task", "post", str(path), "--reward", "10", "--solver-bond", "6", "--challenger-bond", "250",
                  "--deadline", "30d", *key)  # fmt: skip
    tid = posted["task_id"]
    trace = Trace(program)
    solver.chain.send(solver.token.functions.approve(solver.tasks.address, 6 * 10**18))
    cid = solver.claim(tid, trace.run())
    receipts = results.publish(solver, trace, cid, sum(1 << s for s in program.state_slots))
    # w: 11 parts and an assembly; acc: one publication; a proof for each slot
    assert len(receipts) == 11 + 1 + 1 + 2
    anvil.advance(2 * DAYS + 1)
    _run("finalize", str(cid), *key)
    out = tmp_path / "result.npz"
    got = _run("task", "result", str(tid), "--out", str(out), "--rpc-url", anvil.url)
    assert got["final_root"] == "0x" + trace.final_root.hex()
    saved = dict(np.load(out))
    for name, value in trace.final_state().items():
        assert np.array_equal(saved[name], value)
    assert saved["w"].nbytes == 720_000
    trace.close()


def test_task_post__state_too_large_to_publish__refused(anvil, tmp_path, monkeypatch) -> None:
    """A state tensor above what Availability.vy assembles (64 MiB; lowered here to keep the
    test small) cannot be a result: refused before any transaction, with what to do."""
    monkeypatch.setattr(results, "MAX_RESULT_BYTES", 700_000)
    owner = Chain.connect(anvil.url, key=anvil.keys[3])
    deploy_suite(owner).save(deployments_path())
    big = accumulator_program(steps=2, rows=2, width=300)  # its state w: 720,000 bytes
    path = tmp_path / "big.onnx"
    onnx.save(big, path)
    nonce = owner.w3.eth.get_transaction_count(owner.account)
    _refused(["task", "post", str(path), "--reward", "10", "--solver-bond", "6", "--challenger-bond", "250",
              "--rpc-url", anvil.url, "--key-file", str(_key_file(tmp_path, anvil.keys[3], "k"))], "--no-result")  # fmt: skip
    assert owner.w3.eth.get_transaction_count(owner.account) == nonce


def test_task_result__inference_with_labels__reports_the_verified_accuracy(anvil, tmp_path) -> None:
    """An imported classifier run over labelled rows as a task: the result is every row's
    prediction and the count of correct ones, and `task result` reports that verified accuracy,
    the same as the integer graph's on those rows."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "onnx_models"))
    from _imported import exported, split

    from onnx_models import importer

    solver = _solver_court(anvil)
    x_train, x_test, _, y_test = split("digits")
    imp = importer.import_model(exported("digits", "mlp"), x_train, batch=32)
    rows, labels = x_test[:100], y_test[:100]
    path = tmp_path / "infer.onnx"
    onnx.save(importer.inference_program(imp, importer.quantize_rows(rows, imp.input_scales), labels), path)
    program = load_program(path)
    key = ["--rpc-url", anvil.url, "--key-file", str(_key_file(tmp_path, anvil.keys[3], "k"))]
    terms = ["--reward", "10", "--solver-bond", "6", "--challenger-bond", "250", "--deadline", "30d", *key]
    for bad, want in ((["--result-state", "accuracy"], "no state named 'accuracy'; its state is outputs, correct"),
                      (["--result-state", "correct", "--no-result"], "drop one of them")):
        _refused(["task", "post", str(path), *terms, *bad], want)
    # only the count is asked for: the 100 predictions stay off the chain
    posted = _run("task", "post", str(path), *terms, "--result-state", "correct")
    tid = posted["task_id"]
    correct_slot = program.state_slots[program.state_names.index("correct")]
    assert posted["result_slots"] == [correct_slot]
    trace = Trace(program)
    solver.chain.send(solver.token.functions.approve(solver.tasks.address, 6 * 10**18))
    cid = solver.claim(tid, trace.run())
    assert len(results.publish(solver, trace, cid, 1 << correct_slot)) == 2
    anvil.advance(2 * DAYS + 1)
    _run("finalize", str(cid), *key)
    got = _run("task", "result", str(tid), "--out", str(tmp_path / "r.npz"), "--program", str(path), "--rpc-url", anvil.url)
    predicted = importer.run_integer(imp, rows)[imp.model.graph.output[0].name].reshape(-1)
    correct = int(np.sum(predicted == labels))
    assert got["accuracy"] == {"correct": correct, "rows": 100, "accuracy": correct / 100}
    assert 85 <= correct < 100
    human = runner.invoke(app, ["task", "result", str(tid), "--out", str(tmp_path / "s.npz"), "--program", str(path),
                                "--rpc-url", anvil.url])  # fmt: skip
    assert f"verified accuracy: {correct} of 100 labelled rows" in human.stdout + human.stderr
    assert sorted(np.load(tmp_path / "r.npz")) == ["correct"]
    trace.close()


def test_task_result__read_from_the_solvers_ipfs_mirror__a_wrong_mirror_refused(world, ipfs, tmp_path) -> None:
    """A solver with an IPFS node mirrors each result tensor and announces it; `task result` with
    a gateway reads the mirror, checked against the commitment Tasks.vy recorded. A wrong mirror
    (another tensor, announced by the solver itself or by anyone) is refused in one line and the
    next one, or the chain's copy, is read instead."""
    from verifier.commit.commitments import commit_tensor
    from verifier.market import mirrors
    from verifier.market.ipfs import IpfsContentStore

    w, solver = world, world["solver"]
    node = IpfsContentStore(tmp_path / "solver-content", api=ipfs.api)
    other = _other(tmp_path)
    tids, claims, finals = [], [], []
    for path, store in ((w["path"], node), (other, None)):  # the second solver mirrors nothing
        tid = _post({**w, "path": path})["task_id"]
        program = load_program(path)
        with Trace(program) as trace:
            solver.chain.send(solver.token.functions.approve(solver.tasks.address, 6 * 10**18))
            cid = solver.claim(tid, trace.run())
            mask = sum(1 << s for s in program.state_slots)
            published = results.publish(solver, trace, cid, mask, store)
            assert len(published) == (3 if store else 2) * len(program.state_slots)  # [mirror,] bytes, proof
            tids.append(tid), claims.append(cid), finals.append(trace.final_state())
    w["anvil"].advance(2 * DAYS + 1)
    for cid in claims:
        _run("finalize", str(cid), *w["poster"])
    gateway = ["--ipfs-gateway", ipfs.gateway]  # the programs come from the poster's content store, the same home

    def fetched(i: int, *args: str) -> dict:
        out = tmp_path / f"r{i}.npz"
        got = _run("task", "result", str(tids[i]), "--out", str(out), *w["rpc"], *args)
        saved = dict(np.load(out))
        assert sorted(saved) == sorted(finals[i]) and all(np.array_equal(saved[n], v) for n, v in finals[i].items())
        out.unlink()
        return got

    got = fetched(0, *gateway)
    assert {t["source"] for t in got["tensors"].values()} == {"ipfs"} and got["refused_mirrors"] == []
    assert {t["source"] for t in fetched(0)["tensors"].values()} == {"chain"}  # no IPFS configured

    # the solver's newest mirror of one tensor is another tensor of its type: refused, its older one
    # read; a newer wrong mirror from another account is not even tried (the solver's come first)
    name = w["program"].state_names[0]
    bad = mirrors.put(node, finals[0][name] + np.ones_like(finals[0][name]))
    solver.chain.send(mirrors.announce_call(solver.availability, commit_tensor(finals[0][name]), bad))
    poster = w["court"]
    other_bad = mirrors.put(node, finals[0][name] - np.ones_like(finals[0][name]))
    poster.chain.send(mirrors.announce_call(poster.availability, commit_tensor(finals[0][name]), other_bad))
    got = fetched(0, *gateway)
    assert {t["source"] for t in got["tensors"].values()} == {"ipfs"}
    assert len(got["refused_mirrors"]) == 1 and "holds another tensor" in got["refused_mirrors"][0]

    # the task whose solver mirrored nothing: another account's wrong mirrors are refused (one of
    # another type unread, against the header the chain logged), the chain read
    poster.chain.send(mirrors.announce_call(poster.availability, commit_tensor(finals[1][name]), bad))
    other_type = mirrors.put(node, np.zeros(7, np.int32))
    poster.chain.send(mirrors.announce_call(poster.availability, commit_tensor(finals[1][name]), other_type))
    got = fetched(1, *gateway)
    assert {t["source"] for t in got["tensors"].values()} == {"chain"}
    refused = got["refused_mirrors"]
    assert len(refused) == 2 and "another tensor type" in refused[0] and "holds another tensor" in refused[1]
    res = runner.invoke(app, ["task", "result", str(tids[1]), "--out", str(tmp_path / "h.npz"), *w["rpc"], *gateway])
    assert res.exit_code == 0 and "refused a mirror" in res.stdout and "from chain" in res.stdout, res.stdout
