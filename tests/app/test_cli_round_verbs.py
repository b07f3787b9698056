"""The market's verbs as users run them (`bisectml data|model|round ...` as separate processes on
anvil): the happy path of a round up to its tasks, and every refusal as one line that changes
nothing."""

from __future__ import annotations

import dataclasses
import json
import os
import time

import numpy as np
import pytest
from test_cli_market import User

from onnx_models.market_data import demo_round
from verifier.court.chain import Chain, deploy_suite

TOKEN = 10**18
DAY = 86_400
ROLES = ("sponsor", "clean", "noise", "alice", "bob")


@pytest.fixture(scope="module")
def world(anvil, tmp_path_factory):  # noqa: ANN201
    root = tmp_path_factory.mktemp("round-verbs")
    chain = Chain.connect(anvil.url, key=anvil.keys[0])
    d = deploy_suite(chain)
    d.save(root / "home" / "deployments.json")
    token = chain.contract("Token", d.addresses["Token"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("BISECTML_")}
    env |= {"BISECTML_HOME": str(root / "home"), "BISECTML_RPC_URL": anvil.url, "COLUMNS": "200"}
    users = {}
    for i, name in enumerate(ROLES, start=1):
        key = root / f"{name}.key"
        key.write_text(anvil.keys[i] + "\n")
        key.chmod(0o600)
        users[name] = User(env, key)
        chain.send(token.functions.mint(chain.with_key(anvil.keys[i]).account, 1_000 * TOKEN), "mint")
    data = demo_round()
    files = {}
    for name, (x, y) in zip(("clean", "noise"), data.datasets):
        files[name] = root / f"{name}.npz"
        np.savez(files[name], features=x, labels=y)
    np.save(root / "X.npy", data.features)
    np.save(root / "y.npy", data.labels)
    for i, p in enumerate(data.predictions):
        np.save(root / f"p{i}.npy", p)
    (root / "short.txt").write_text("1\n2\n3\n")
    (root / "bad.npz").write_bytes(b"not a zip")
    return {"root": root, "users": users, "data": data, "files": files, "anvil": anvil, "d": d, "chain": chain}


def _error(res) -> str:  # noqa: ANN001
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


def test_a_round_from_the_command_line(world):
    u, root, data = world["users"], world["root"], world["data"]
    clean = u["clean"].json("data", "publish", str(world["files"]["clean"]), "--stake", "100")
    noise = u["noise"].json("data", "publish", str(world["files"]["noise"]), "--stake", "50")
    assert clean["cid"].startswith("bafkrei") and clean["rows"] == data.shape.dataset_rows
    listed = u["sponsor"].json("data", "list")
    assert {r["dataset_id"] for r in listed} >= {clean["dataset_id"], noise["dataset_id"]}

    alice = u["alice"].json("model", "register", "--dataset", str(clean["dataset_id"]), "--stake", "200")
    bob = u["bob"].json("model", "register", "--dataset", str(noise["dataset_id"]), "--stake", "100")
    r = u["sponsor"].json(
        "round", "open", str(root / "X.npy"), str(root / "y.npy"), "--pool", "300", "--budget", "30",
        "--task-reward", "10", "--solver-bond", "500", "--challenger-bond", "250", "--models", "4", "--datasets", "4",
        "--dataset-rows", str(data.shape.dataset_rows), "--k", str(data.shape.k),
    )  # fmt: skip
    rid = str(r["round_id"])
    shown = u["bob"].json("round", "show", rid)
    assert shown["programs"] == "canonical programs" and shown["state"] == "open"
    # for people: deadlines as UTC times with what is left, amounts in BOND, not wei and Unix times
    text = u["bob"].run("round", "show", rid).stdout
    commit_at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(shown["schedule"]["commit_deadline"]))
    assert f"{commit_at}, in " in text and "300 BOND" in text and "2,500 bps" in text
    assert str(shown["schedule"]["commit_deadline"]) not in text and shown["pool"] not in text
    # a dataset is only ever at risk in rounds its owner put it in: a stranger cannot join it
    assert "market: " in _error(u["bob"].run("data", "join", rid, str(clean["dataset_id"])))
    for who, ds in (("clean", clean), ("noise", noise)):
        joined = u[who].json("data", "join", rid, str(ds["dataset_id"]))
        assert joined["round_id"] == int(rid) and joined["dataset_id"] == ds["dataset_id"]
    assert "market: " in _error(u["clean"].run("data", "join", rid, str(clean["dataset_id"])))  # twice

    # refusals: one line, nothing changes
    assert "every row" in _error(u["alice"].run("model", "commit", rid, str(alice["model_id"]), str(root / "short.txt")))
    assert "market: " in _error(u["bob"].run("model", "commit", rid, str(alice["model_id"]), str(root / "p0.npy")))
    assert "no saved predictions" in _error(u["alice"].run("model", "reveal", rid, str(alice["model_id"])))
    assert u["sponsor"].json("round", "show", rid)["models"] == []

    u["alice"].json("model", "commit", rid, str(alice["model_id"]), str(root / "p0.npy"))
    u["bob"].json("model", "commit", rid, str(bob["model_id"]), str(root / "p2.npy"))
    # a second commit is refused and leaves the first one's secret alone (the reveal below works)
    assert "market: " in _error(u["alice"].run("model", "commit", rid, str(alice["model_id"]), str(root / "p1.npy")))
    assert "exceeds the free stake" in _error(u["alice"].run("model", "withdraw", str(alice["model_id"]), "1"))
    assert "market: " in _error(u["alice"].run("model", "reveal", rid, str(alice["model_id"])))  # too early
    world["anvil"].advance(DAY)
    u["alice"].run("model", "reveal", rid, str(alice["model_id"])).check_returncode()
    u["bob"].run("model", "reveal", rid, str(bob["model_id"])).check_returncode()
    assert "market: " in _error(u["bob"].run("model", "reveal", rid, str(bob["model_id"])))  # twice
    assert "exceeds the free stake" in _error(u["noise"].run("data", "withdraw", str(noise["dataset_id"]), "1"))
    assert "market: " in _error(u["sponsor"].run("round", "post", rid, "scores"))  # labels not revealed
    assert "unknown program kind" in _error(u["sponsor"].run("round", "post", rid, "everything"))
    world["anvil"].advance(DAY)
    u["sponsor"].run("round", "reveal-labels", rid).check_returncode()
    posted = [u["bob"].json("round", "post", rid, k)["task_id"] for k in ("metamodel", "scores", "values")]
    shown = u["sponsor"].json("round", "show", rid)
    assert list(shown["tasks"].values()) == posted
    assert shown["weights"][:2] == [200_000, 100_000]
    assert shown["models"] == [alice["model_id"], bob["model_id"]]
    assert "market: " in _error(u["bob"].run("round", "post", rid, "values"))  # one live task per kind
    assert "market: " in _error(u["bob"].run("round", "settle", rid))  # nothing recorded yet


def test_bad_files_are_refused_in_one_line(world):
    u, root = world["users"], world["root"]
    assert "error: " in _error(u["clean"].run("data", "publish", str(root / "bad.npz"), "--stake", "1"))
    assert "not a list of integers" in _error(
        u["sponsor"].run("round", "open", str(root / "clean.npz"), str(root / "y.npy"), "--pool", "1", "--budget", "1",
                         "--task-reward", "1", "--solver-bond", "1", "--challenger-bond", "1")  # fmt: skip
    )


def test_a_round_with_foreign_programs_is_flagged_and_refused(world):
    """A sponsor who names programs other than the canonical ones: `show` says so and a
    modeler's client refuses to commit to the round."""
    from verifier.market.client import MarketClient
    from verifier.market.content import ContentStore

    u, root, data, chain = world["users"], world["root"], world["data"], world["chain"]
    client = MarketClient(chain.with_key(world["anvil"].keys[1]), world["d"], ContentStore(root / "home" / "content"))
    import onnx_models.market as mk

    real = mk.program_ref
    try:
        # a sponsor's own (foreign) values program: a different graph root
        mk.program_ref = lambda kind, shape: (
            real(kind, shape) if kind != 2 else dataclasses.replace(real(kind, shape), graph_root=b"\x11" * 32)
        )
        now = client.now()
        sched = {"commit_deadline": now + DAY, "reveal_deadline": now + 2 * DAY, "labels_deadline": now + 3 * DAY,
                 "result_deadline": now + 30 * DAY}  # fmt: skip
        econ = {"factor_bps": 10_000, "cap_bps": 2_500, "data_share_bps": 2_000, "data_slash_bps": 1_000, "bonus_bps": 500}
        terms = {"reward": TOKEN, "window": 2 * DAY, "clock": 2 * DAY, "solver_bond": 250 * TOKEN, "challenger_bond": 250 * TOKEN,
                 "arity": 8, "duration": 7 * DAY}  # fmt: skip
        rid = client.open_round(data.shape, sched, econ, terms, data.features, data.labels, TOKEN, 3 * TOKEN)["round_id"]
    finally:
        mk.program_ref = real
    shown = u["alice"].json("round", "show", str(rid))
    assert shown["programs"].startswith("NOT CANONICAL") and "values" in shown["programs"]
    ds = u["clean"].json("data", "list")[0]["dataset_id"]
    model = u["alice"].json("model", "register", "--dataset", str(ds), "--stake", "10")["model_id"]
    line = _error(u["alice"].run("model", "commit", str(rid), str(model), str(root / "p0.npy")))
    assert "not the canonical one" in line
    assert [m["model_id"] for m in u["alice"].json("model", "list")].count(model) == 1
    assert json.dumps(shown)  # plain JSON


def test_a_larger_reservation_takes_the_slot_of_a_full_round(world):
    """Slots are not first come (SPEC 8.5): with the round's one model slot taken, a commit that
    reserves no more is refused in one line, a larger one takes the slot and says whose, and the
    displaced model's reveal says what happened and what to do."""
    u, root, data = world["users"], world["root"], world["data"]
    # its own dataset: the test does not lean on an earlier one's (it runs alone too)
    ds = str(u["clean"].json("data", "publish", str(world["files"]["clean"]), "--stake", "100")["dataset_id"])
    alice = str(u["alice"].json("model", "register", "--dataset", ds, "--stake", "20")["model_id"])
    bob = str(u["bob"].json("model", "register", "--dataset", ds, "--stake", "20")["model_id"])
    rid = str(u["sponsor"].json(
        "round", "open", str(root / "X.npy"), str(root / "y.npy"), "--pool", "300", "--budget", "30",
        "--task-reward", "10", "--solver-bond", "500", "--challenger-bond", "250", "--models", "1", "--datasets", "1",
        "--dataset-rows", str(data.shape.dataset_rows), "--k", str(data.shape.k),
    )["round_id"])  # fmt: skip
    u["alice"].json("model", "commit", rid, alice, str(root / "p0.npy"), "--stake", "10")
    line = _error(u["bob"].run("model", "commit", rid, bob, str(root / "p2.npy"), "--stake", "10"))
    assert "model slots full of reservations at least as large" in line
    took = u["bob"].run("model", "commit", rid, bob, str(root / "p2.npy"), "--stake", "11")
    took.check_returncode()
    assert f"the slot of model {alice}" in took.stdout
    assert u["sponsor"].json("round", "show", rid)["models"] == [int(bob)]
    world["anvil"].advance(DAY)
    line = _error(u["alice"].run("model", "reveal", rid, alice))
    assert f"model {alice} was displaced from round {rid}" in line and "commit again" in line
    u["bob"].run("model", "reveal", rid, bob).check_returncode()
