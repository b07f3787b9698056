"""The market from Python: datasets, models, rounds, and the programs behind a round's tasks.

`MarketClient` wraps `contracts/Market.vy` for one account (docs/SPEC.md section 8). Secrets a
participant must keep between two calls (a modeler's predictions and salt between commit and
reveal, a sponsor's labels and salt between opening a round and revealing them) are written to
`$BISECTML_HOME/secrets/` with owner-only permissions before the commitment is sent, so a crash
between the two never loses a stake.

`RoundPrograms` rebuilds the program behind any task the market posted, from the chain (weights,
mask, revealed predictions and labels) and the content store (round features, datasets; read
back from their on-chain publications, SPEC 8.10, when the store lacks them), and checks it
against the task's program id: this is how a solver or a watchtower serves market tasks
without being handed program files.
"""

from __future__ import annotations

import json
import os
import secrets as _secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from verifier.commit import commitments as commit
from verifier.core.errors import BisectmlError
from verifier.court.chain import Chain, ChainError, Deployment
from verifier.engine.program import Program, load_program, step_slot_table
from verifier.market import availability
from verifier.market.content import (
    ContentError,
    ContentStore,
    as_int8,
    decode_dataset,
    decode_features,
    encode_dataset,
    encode_features,
)
from verifier.market.economics import (
    DatasetEntry,
    Economics,
    ModelEntry,
    labels_commitment,
    prediction_commitment,
    round_bounds_error,
)
from verifier.market.economics import mask as mask_vector
from verifier.market.economics import weights as weight_vector
from verifier.market.ipfs import content_store

KINDS = ("metamodel", "scores", "values")
METAMODEL, SCORES, VALUES = 0, 1, 2
ROUND_STATES = {0: "none", 1: "open", 2: "settled", 3: "void"}
ENTRY_REVEALED = 2  # Market.vy's ModelEntry.state of a revealed model
MODEL_KIND = 1  # Market.vy's kind of a model in Paid and Displaced events


class MarketError(BisectmlError, ValueError):
    """A market request that cannot be made: missing secret, wrong shape, round not ready."""


def kind_of(name: str | int) -> int:
    if isinstance(name, int) or str(name).isdigit():
        k = int(name)
        if 0 <= k < len(KINDS):
            return k
    elif name in KINDS:
        return KINDS.index(name)
    raise MarketError(f"unknown program kind '{name}'; use one of {', '.join(KINDS)}.")


# -- secrets kept between commit and reveal ----------------------------------------------------


class Secrets:
    """Predictions and salts a participant must reveal later, one JSON file each (mode 0600)."""

    def __init__(self, chain_id: int, market: str, root: Path | None = None) -> None:
        from verifier.core.paths import home

        self.dir = (root or home() / "secrets") / f"{chain_id}-{market.lower()}"

    def _path(self, name: str) -> Path:
        return self.dir / f"{name}.json"

    def save(self, name: str, data: dict[str, Any]) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        path = self._path(name)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    def load(self, name: str, what: str) -> dict[str, Any]:
        try:
            return json.loads(self._path(name).read_text())
        except OSError:
            raise MarketError(
                f"no saved {what} at {self._path(name)}; reveal from the machine (and BISECTML_HOME) that committed it."
            ) from None


def model_secret(round_id: int, model_id: int) -> str:
    return f"round-{round_id}-model-{model_id}"


def labels_secret(labels_hash: bytes) -> str:
    return f"labels-{bytes(labels_hash).hex()}"


def int8_bytes(values: np.ndarray, what: str) -> bytes:
    a = as_int8(values, what)
    if a.ndim != 1:
        raise MarketError(f"{what} must be a 1-D list of integers in -128..127.")
    return a.tobytes()


# -- reading a round -----------------------------------------------------------------------------


@dataclass
class RoundView:
    """A round as the chain has it, plus what its events carry."""

    round_id: int
    sponsor: str
    shape: Any  # onnx_models.market.Shape
    schedule: dict[str, int]
    economics: dict[str, int]
    terms: dict[str, int]
    programs: list[dict[str, Any]]
    features: bytes
    features_cid: str
    labels_hash: bytes
    pool: int
    budget: int
    max_stake: int  # the most a model may reserve in the round (SPEC 8.5)
    state: int
    labels_revealed: bool
    raw: dict[str, Any]


class MarketClient:
    """The market contract seen from one account."""

    def __init__(self, chain: Chain, deployment: Deployment, store: ContentStore | None = None) -> None:
        if "Market" not in deployment.addresses:
            raise MarketError("this deployment has no Market contract; run `bisectml deploy` again to deploy the market.")
        self.chain = chain
        self.deployment = deployment
        c = deployment.contracts(chain)
        self.market, self.token, self.tasks = c["Market"], c["Token"], c["Tasks"]
        self.availability = c.get("Availability")
        self.store = store or content_store()  # the local directory, or IPFS when BISECTML_IPFS_* is set
        self.secrets = Secrets(chain.chain_id, self.market.address)

    def as_account(self, chain: Chain) -> MarketClient:
        return MarketClient(chain, self.deployment, self.store)

    @property
    def account(self) -> str:
        return self.chain.account

    def now(self) -> int:
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])

    def _send(self, fn: Any, what: str) -> Any:
        return self.chain.send(fn, what)

    def _approve(self, amount: int) -> None:
        if amount and self.token.functions.allowance(self.account, self.market.address).call() < amount:
            self._send(self.token.functions.approve(self.market.address, amount), "approve")

    def _receipt_events(self, name: str, receipt: Any) -> list[dict[str, Any]]:
        return [dict(log["args"]) for log in getattr(self.market.events, name)().process_receipt(receipt, errors=_discard())]

    def _event(self, name: str, receipt: Any) -> dict[str, Any]:
        logs = self._receipt_events(name, receipt)
        if not logs:
            raise ChainError(f"the transaction emitted no {name} event; check the deployment.")
        return logs[0]

    def _logs(self, name: str, **filters: Any) -> list[dict[str, Any]]:
        ev = getattr(self.market.events, name)()
        return [dict(log["args"]) for log in self.deployment.logs(ev, filters)]

    # -- datasets ------------------------------------------------------------------------------

    def publish_dataset(self, features: np.ndarray, labels: np.ndarray, stake: int) -> dict[str, Any]:
        data = encode_dataset(features, labels)
        x, y = decode_dataset(data)
        if not np.isin(y, (-1, 1)).all():
            raise MarketError("dataset labels must be -1 or 1 (SPEC 8.1); relabel the dataset.")
        cid = self.store.put(data)
        fc, lc = self._publish_bytes(x), self._publish_bytes(y)
        self._approve(stake)
        receipt = self._send(
            self.market.functions.publish_dataset(cid, commit.data_root(x), commit.data_root(y), x.shape[0], x.shape[1], stake),
            "publish dataset",
        )
        ev = self._event("DatasetPublished", receipt)
        return {"dataset_id": int(ev["dataset_id"]), "cid": cid, "features": fc, "labels": lc,
                "rows": x.shape[0], "n_features": x.shape[1], "stake": stake, "gas": receipt["gasUsed"]}  # fmt: skip

    def dataset(self, dataset_id: int) -> dict[str, Any]:
        logs = self._logs("DatasetPublished", dataset_id=dataset_id)
        if not logs:
            raise MarketError(f"no dataset {dataset_id} on this market; `bisectml data list` shows the datasets.")
        return logs[0] | self._dataset_state(dataset_id)

    def _dataset_state(self, dataset_id: int) -> dict[str, Any]:
        return _struct(self.market.functions.datasets(dataset_id).call(), self.market, "datasets")

    def _publish_bytes(self, array: np.ndarray) -> bytes:
        """Publishes `array`'s bytes on Availability.vy unless they are there already (the market
        takes only data a verifier can fetch from the chain, SPEC 8.10); its commitment."""
        c = commit.commit_tensor(array)
        if self.availability is None:
            raise MarketError("this deployment has no Availability contract; run `bisectml deploy` again.")
        if not self.availability.functions.available(c).call():
            availability.publish_tensor(self.chain, self.availability, array)  # in parts above 64 KiB
        return c

    def _content(self, cid: str, commitments: tuple[bytes, ...], decode: Any, encode: Any) -> tuple[np.ndarray, ...]:
        """The tensors of a content file: from the content store (the local directory or IPFS),
        or, when nobody serves the file, read from their publications on-chain (SPEC 8.10) and
        then kept in the store under their own content id."""
        try:
            out = decode(self.store.get(cid))
            return out if isinstance(out, tuple) else (out,)
        except ContentError:
            if self.availability is None:
                raise
        arrays = tuple(
            availability.fetch_tensor(self.chain.w3, self.availability, c, self.deployment.block) for c in commitments
        )
        self.store.put(encode(*arrays))  # under its own id, which a liar's cid is not
        return arrays

    def dataset_arrays(self, dataset_id: int) -> tuple[np.ndarray, np.ndarray]:
        """The dataset's tensors from the content store (or the chain, when the store lacks
        them), checked against its on-chain commitments."""
        d = self.dataset(dataset_id)
        x, y = self._content(d["cid"], (bytes(d["features"]), bytes(d["labels"])), decode_dataset, encode_dataset)
        if commit.commit_tensor(x) != bytes(d["features"]) or commit.commit_tensor(y) != bytes(d["labels"]):
            raise MarketError(f"dataset {dataset_id}'s file {d['cid']} does not match its on-chain commitments; it is unusable.")
        return x, y

    def stake_dataset(self, dataset_id: int, amount: int) -> Any:
        self._approve(amount)
        return self._send(self.market.functions.add_dataset_stake(dataset_id, amount), "add dataset stake")

    def withdraw_dataset(self, dataset_id: int, amount: int) -> Any:
        return self._send(self.market.functions.withdraw_dataset_stake(dataset_id, amount), "withdraw dataset stake")

    # -- models ----------------------------------------------------------------------------------

    def register_model(self, datasets: list[int], stake: int, description: bytes = b"") -> dict[str, Any]:
        cid = self.store.put(description or f"bisectml model trained on datasets {datasets}".encode())
        self._approve(stake)
        receipt = self._send(self.market.functions.register_model(cid, list(datasets), stake), "register model")
        ev = self._event("ModelRegistered", receipt)
        return {"model_id": int(ev["model_id"]), "cid": cid, "datasets": list(datasets), "stake": stake,
                "gas": receipt["gasUsed"]}  # fmt: skip

    def model(self, model_id: int) -> dict[str, Any]:
        logs = self._logs("ModelRegistered", model_id=model_id)
        if not logs:
            raise MarketError(f"no model {model_id} on this market; `bisectml model list` shows the models.")
        return logs[0] | _struct(self.market.functions.models(model_id).call(), self.market, "models")

    def stake_model(self, model_id: int, amount: int) -> Any:
        self._approve(amount)
        return self._send(self.market.functions.add_model_stake(model_id, amount), "add model stake")

    def withdraw_model(self, model_id: int, amount: int) -> Any:
        return self._send(self.market.functions.withdraw_model_stake(model_id, amount), "withdraw model stake")

    def join_round(self, round_id: int, dataset_id: int, amount: int | None = None) -> dict[str, Any]:
        """The dataset's owner puts it in the round (SPEC 8.5): `amount` of its free stake (all
        of it when None) is reserved there, at risk and earning, until the round is settled or
        void; no other round can use those tokens meanwhile."""
        if amount is None:
            amount = self.free_stake("dataset", dataset_id)
        receipt = self._send(self.market.functions.join_round(round_id, dataset_id, amount), "join round")
        ev = self._event("Joined", receipt)
        return {"round_id": round_id, "dataset_id": dataset_id, "slot": int(ev["slot"]), "stake": int(ev["stake"]),
                "displaced": self._displaced(receipt), "gas": receipt["gasUsed"]}  # fmt: skip

    def _displaced(self, receipt: Any) -> int | None:
        """The model or dataset whose slot the commit or join took, once the slots were full
        (SPEC 8.5), or None."""
        logs = self._receipt_events("Displaced", receipt)
        return int(logs[0]["id"]) if logs else None

    def free_stake(self, kind: str, id_: int) -> int:
        """The stake of a dataset or model that no round reserved: what a round can reserve and
        what can be withdrawn."""
        s = self._dataset_state(id_) if kind == "dataset" else _struct(self.market.functions.models(id_).call(), self.market, "models")
        return int(s["stake"]) - int(s["reserved"])

    # -- rounds: the sponsor -----------------------------------------------------------------------

    def open_round(
        self,
        shape: Any,
        schedule: dict[str, int],
        economics: dict[str, int],
        terms: dict[str, int],
        features: np.ndarray,
        labels: np.ndarray,
        pool: int,
        budget: int,
    ) -> dict[str, Any]:
        """Publish the round's features, commit its labels (kept in the secrets dir), open it."""
        from onnx_models import market as programs

        shape.check()
        schedule_t = tuple(schedule[k] for k in SCHEDULE_FIELDS)
        economics_t = tuple(economics.get(k, 0) for k in ECONOMICS_FIELDS)
        terms_t = tuple(terms[k] for k in TERMS_FIELDS)
        refused = round_bounds_error(self.now(), schedule_t, Economics(*economics_t), terms_t, budget)
        if refused is not None:
            raise MarketError(f"{refused.removeprefix('market: ')}; see docs/SPEC.md 8.1 for the protocol's bounds.")
        fdata = encode_features(features)
        x = decode_features(fdata)
        if x.shape != (shape.rows, shape.features):
            raise MarketError(f"features are {x.shape}, the round's shape says ({shape.rows}, {shape.features}).")
        label_bytes = int8_bytes(labels, "labels")
        if len(label_bytes) != shape.rows:
            raise MarketError(f"{len(label_bytes)} labels for a round of {shape.rows} rows.")
        cid = self.store.put(fdata)
        self._publish_bytes(x)
        salt = _secrets.token_bytes(32)
        refs = [programs.program_ref(k, shape) for k in range(3)]
        args = (
            _shape_tuple(shape),
            schedule_t,
            economics_t,
            terms_t,
            [_ref_tuple(r) for r in refs],
            commit.data_root(x),
            cid,
            labels_commitment(label_bytes, salt),
            pool,
            budget,
        )
        # saved under the commitment before it is sent: a crash here never strands the labels
        self.secrets.save(labels_secret(args[7]), {"labels": label_bytes.hex(), "salt": salt.hex()})
        self._approve(pool + budget)
        receipt = self._send(self.market.functions.open_round(*args), "open round")
        rid = int(self._event("RoundOpened", receipt)["round_id"])
        return {"round_id": rid, "features_cid": cid, "gas": receipt["gasUsed"]}

    def reveal_labels(self, round_id: int) -> Any:
        r = self.round(round_id)
        s = self.secrets.load(labels_secret(r.labels_hash), f"labels of round {round_id}")
        return self._send(
            self.market.functions.reveal_labels(round_id, bytes.fromhex(s["labels"]), bytes.fromhex(s["salt"])),
            "reveal labels",
        )

    # -- rounds: modelers ------------------------------------------------------------------------

    def commit(self, round_id: int, model_id: int, predictions: np.ndarray, amount: int | None = None) -> dict[str, Any]:
        """Commit predictions, reserving `amount` of the model's free stake (when None, all of it
        up to the round's `max_stake`) as its stake at risk in the round (SPEC 8.5); the
        predictions and salt are saved before the commitment is sent."""
        r = self.round(round_id)
        if amount is None:
            amount = min(self.free_stake("model", model_id), r.max_stake)
        data = int8_bytes(predictions, "predictions")
        if len(data) != r.shape.rows:
            raise MarketError(f"{len(data)} predictions for a round of {r.shape.rows} rows; predict every row.")
        self.verify_round(r)
        salt = _secrets.token_bytes(32)
        c = prediction_commitment(round_id, model_id, data, salt)
        fn = self.market.functions.commit(round_id, model_id, c, amount)
        self.chain.call(fn)  # a refused commit must not overwrite the secret of an earlier one
        self.secrets.save(model_secret(round_id, model_id), {"predictions": data.hex(), "salt": salt.hex()})
        receipt = self._send(fn, "commit predictions")
        ev = self._event("Committed", receipt)
        return {"round_id": round_id, "model_id": model_id, "slot": int(ev["slot"]), "stake": int(ev["stake"]),
                "commitment": c, "displaced": self._displaced(receipt), "gas": receipt["gasUsed"]}  # fmt: skip

    def reveal(self, round_id: int, model_id: int) -> Any:
        s = self.secrets.load(model_secret(round_id, model_id), f"predictions of model {model_id} in round {round_id}")
        state = int(self.market.functions.model_entries(round_id, model_id).call()[3])
        if state == 0 and any(e["kind"] == MODEL_KIND and e["id"] == model_id for e in self._logs("Displaced", round_id=round_id)):
            raise MarketError(f"model {model_id} was displaced from round {round_id} by a larger reservation; "
                              "commit again, with more stake, before the commit deadline.")  # fmt: skip
        return self._send(
            self.market.functions.reveal(round_id, model_id, bytes.fromhex(s["predictions"]), bytes.fromhex(s["salt"])),
            "reveal predictions",
        )

    def release(self, round_id: int, model_id: int) -> Any:
        return self._send(self.market.functions.release(round_id, model_id), "release stake")

    # -- rounds: anyone ----------------------------------------------------------------------------

    def round(self, round_id: int) -> RoundView:
        return read_round(self.market, round_id, self.deployment)

    def round_count(self) -> int:
        return int(self.market.functions.round_count().call())

    def verify_round(self, r: RoundView) -> None:
        """Refuse a round whose programs are not the canonical ones for its shape (SPEC 8.2)."""
        from onnx_models import market as programs

        for k in range(3):
            want = _ref_dict(programs.program_ref(k, r.shape))
            have = r.programs[k]
            bad = [f for f in want if _norm(have[f]) != _norm(want[f])]
            if bad:
                raise MarketError(
                    f"round {r.round_id}'s {KINDS[k]} program is not the canonical one for its shape "
                    f"({', '.join(bad)} differ); do not stake in it."
                )

    def post_task(self, round_id: int, kind: int) -> dict[str, Any]:
        from onnx_models import market as programs

        r = self.round(round_id)
        ref = programs.program_ref(kind, r.shape)
        receipt = self._send(self.market.functions.post_task(round_id, kind, list(ref.slots)), f"post {KINDS[kind]} task")
        ev = self._event("RoundTaskPosted", receipt)
        return {"round_id": round_id, "kind": KINDS[kind], "task_id": int(ev["task_id"]), "gas": receipt["gasUsed"]}

    def task_of(self, round_id: int, kind: int) -> int:
        return int(self.market.functions.task_of(round_id, kind).call())

    def record(self, round_id: int, kind: int, programs_: RoundPrograms | None = None) -> dict[str, Any]:
        """Prove the finalized result of the round's `kind` task and store it on the market."""
        rp = programs_ or RoundPrograms(self)
        task_id = self.task_of(round_id, kind)
        if task_id == 0:
            raise MarketError(f"round {round_id} has no {KINDS[kind]} task yet; `bisectml round post` it first.")
        program = rp.program(round_id, kind)
        final = program.run()
        state = [final[n] for n in program.state_names]
        table = step_slot_table(program, program.steps, state)
        ref_out = program.state_slots[0]
        opening = table.open(ref_out)
        if kind == METAMODEL:
            fn = self.market.functions.record_metamodel(round_id, table.root, list(opening.proof), opening.commitment)
        else:
            values = [int(v) for v in state[0].reshape(-1)]
            fn = self.market.functions.record(round_id, kind, table.root, list(opening.proof), values)
        receipt = self._send(fn, f"record {KINDS[kind]}")
        return {"round_id": round_id, "kind": KINDS[kind], "task_id": task_id, "gas": receipt["gasUsed"],
                "result": [int(v) for v in state[0].reshape(-1)[:16]]}  # fmt: skip

    def settle(self, round_id: int) -> dict[str, Any]:
        receipt = self._send(self.market.functions.settle(round_id), "settle round")
        paid = self._receipt_events("Paid", receipt)
        return {"round_id": round_id, "payments": paid, "settled": self._event("Settled", receipt), "gas": receipt["gasUsed"]}

    def void(self, round_id: int) -> Any:
        return self._send(self.market.functions.void_round(round_id), "void round")

    def sync(self, round_id: int) -> Any:
        return self._send(self.market.functions.sync(round_id), "sync round")

    def round_weights(self, r: RoundView) -> list[int]:
        """The weight vector w of SPEC 8.1 (the market computes the same when it posts a task)."""
        f = self.market.functions
        models = [ModelEntry(int(e[2]), 0, 0, int(e[3]) == ENTRY_REVEALED)
                  for e in (f.model_entries(r.round_id, int(mid)).call() for mid in f.round_models(r.round_id).call())]  # fmt: skip
        return weight_vector(models, r.shape.models)

    def round_mask(self, r: RoundView) -> list[int]:
        """The dataset mask a of SPEC 8.1."""
        f = self.market.functions
        datasets = [DatasetEntry(0, 0, 0, bool(f.dataset_entries(r.round_id, int(d)).call()[2]))
                    for d in f.round_datasets(r.round_id).call()]  # fmt: skip
        return mask_vector(datasets, r.shape.datasets)

    def revealed_predictions(self, round_id: int) -> dict[int, np.ndarray]:
        """Model slot -> revealed predictions, from the Revealed events."""
        out = {}
        for ev in self._logs("Revealed", round_id=round_id):
            out[int(ev["slot"])] = np.frombuffer(bytes(ev["predictions"]), np.int8).copy()
        return out

    def revealed_labels(self, round_id: int) -> np.ndarray | None:
        logs = self._logs("LabelsRevealed", round_id=round_id)
        return np.frombuffer(bytes(logs[0]["labels"]), np.int8).copy() if logs else None


# -- rebuilding a round's programs ---------------------------------------------------------------


class RoundPrograms:
    """The program behind each market task, rebuilt from the chain and the content store."""

    def __init__(self, client: MarketClient) -> None:
        self.client = client
        self._cache: dict[tuple[int, int], Program] = {}
        self._tasks: dict[int, tuple[int, int]] = {}
        self._by_program: dict[bytes, tuple[int, int]] = {}

    def _refresh(self) -> None:
        for ev in self.client._logs("RoundTaskPosted"):
            tid = int(ev["task_id"])
            if tid not in self._tasks:
                self._tasks[tid] = (int(ev["round_id"]), int(ev["kind"]))
                pid = bytes(self.client.tasks.functions.tasks(tid).call()[1])
                self._by_program[pid] = self._tasks[tid]

    def task_kind(self, task_id: int) -> tuple[int, int] | None:
        """(round_id, kind) of a task the market posted, or None."""
        if task_id not in self._tasks:
            self._refresh()
        return self._tasks.get(task_id)

    def inputs(self, r: RoundView, kind: int) -> dict[str, Any]:
        c = self.client
        round_id, s = r.round_id, r.shape
        m = c.market.functions
        if kind == METAMODEL or kind == SCORES:
            weights = np.array(c.round_weights(r), dtype=np.int64)
            revealed = c.revealed_predictions(round_id)
            preds = [revealed.get(i, np.zeros(s.rows, np.int8)) for i in range(s.models)]
            data: dict[str, Any] = {"weights": weights, "predictions": preds}
            if kind == SCORES:
                data["labels"] = self._labels(round_id)
            return data
        mask = np.array(c.round_mask(r), dtype=np.int64)
        ids = list(m.round_datasets(round_id).call())
        datasets: list[Any] = []
        for d in range(s.datasets):
            if d < len(ids) and ids[d] != 0 and mask[d]:
                datasets.append(c.dataset_arrays(int(ids[d])))
            else:
                datasets.append(None)
        (features,) = c._content(r.features_cid, (bytes(r.features),), decode_features, encode_features)
        if commit.commit_tensor(features) != bytes(r.features):
            raise MarketError(f"round {round_id}'s features file {r.features_cid} does not match its commitment.")
        return {"mask": mask, "labels": self._labels(round_id), "features": features, "datasets": datasets}

    def _labels(self, round_id: int) -> np.ndarray:
        y = self.client.revealed_labels(round_id)
        if y is None:
            raise MarketError(f"round {round_id}'s labels are not revealed yet; wait for the sponsor (or void the round).")
        return y

    def program(self, round_id: int, kind: int) -> Program:
        key = (round_id, kind)
        if key not in self._cache:
            from onnx_models import market as programs

            r = self.client.round(round_id)
            model = programs.program(kind, r.shape, **self.inputs(r, kind))
            p = load_program(model)
            task_id = self.client.task_of(round_id, kind)
            if task_id:
                want = bytes(self.client.tasks.functions.tasks(task_id).call()[1])
                if p.id != want:
                    raise MarketError(
                        f"the {KINDS[kind]} program rebuilt for round {round_id} has id 0x{p.id.hex()[:16]}…, "
                        f"but task {task_id} says 0x{want.hex()[:16]}…; the chain and the content store disagree."
                    )
            self._cache[key] = p
        return self._cache[key]

    def for_task(self, task: Any) -> Program | None:
        """The daemons' hook: the program of a market task (matched by program id), or None."""
        pid = bytes(task.program_id)
        if pid not in self._by_program:
            self._refresh()
        found = self._by_program.get(pid)
        if found is None:
            return None
        p = self.program(*found)
        return p if p.id == pid else None


# -- ABI plumbing ------------------------------------------------------------------------------

SHAPE_FIELDS = ("models", "datasets", "rows", "features", "dataset_rows", "k")
SCHEDULE_FIELDS = ("commit_deadline", "reveal_deadline", "labels_deadline", "result_deadline")
ECONOMICS_FIELDS = ("factor_bps", "cap_bps", "data_share_bps", "data_slash_bps", "bonus_bps", "min_stake")
TERMS_FIELDS = ("reward", "window", "clock", "solver_bond", "challenger_bond", "arity", "duration")
REF_FIELDS = ("graph_root", "n_nodes", "n_slots", "steps", "data_base", "out_slot", "template")


def _shape_tuple(shape: Any) -> tuple[int, ...]:
    return tuple(int(getattr(shape, f)) for f in SHAPE_FIELDS)


def _ref_tuple(ref: Any) -> tuple[Any, ...]:
    return tuple(getattr(ref, f) for f in REF_FIELDS)


def _ref_dict(ref: Any) -> dict[str, Any]:
    return {f: getattr(ref, f) for f in REF_FIELDS}


def _norm(v: Any) -> Any:
    return bytes(v) if isinstance(v, (bytes, bytearray)) else int(v)


def _discard() -> Any:
    from web3.logs import DISCARD

    return DISCARD


def _struct(values: Any, contract: Any, fn_name: str) -> dict[str, Any]:
    """A struct returned by a view, as a dict keyed by the ABI's component names."""
    for item in contract.abi:
        if item.get("type") == "function" and item.get("name") == fn_name:
            outs = item["outputs"]
            if len(outs) == 1 and outs[0].get("components"):
                return {c["name"]: v for c, v in zip(outs[0]["components"], values)}
            return {o["name"] or str(i): v for i, (o, v) in enumerate(zip(outs, values))}
    raise ChainError(f"the market ABI has no view {fn_name}; rebuild the artifacts.")


def _features_cid(market: Any, round_id: int, deployment: Deployment) -> str:
    """The content id of the round's features: only the RoundOpened event carries it."""
    logs = deployment.logs(market.events.RoundOpened(), {"round_id": round_id})
    return str(logs[0]["args"]["features_cid"]) if logs else ""


def read_round(market: Any, round_id: int, deployment: Deployment) -> RoundView:
    from onnx_models.market import Shape

    raw = _struct(market.functions.rounds(round_id).call(), market, "rounds")
    if not raw.get("sponsor") or int(raw["sponsor"], 16) == 0:
        raise MarketError(f"no round {round_id} on this market; `bisectml round list` shows the rounds.")

    def sub(name: str, fields: tuple[str, ...]) -> dict[str, int]:
        v = raw[name]
        return dict(zip(fields, v)) if not isinstance(v, dict) else v

    shape = Shape(**sub("shape", SHAPE_FIELDS))
    progs = [dict(zip(REF_FIELDS, market.functions.round_program(round_id, k).call())) for k in range(3)]
    return RoundView(
        round_id=round_id,
        sponsor=raw["sponsor"],
        shape=shape,
        schedule=sub("schedule", SCHEDULE_FIELDS),
        economics=sub("economics", ECONOMICS_FIELDS),
        terms=sub("terms", TERMS_FIELDS),
        programs=progs,
        features=bytes(raw["features"]),
        features_cid=raw.get("features_cid") or _features_cid(market, round_id, deployment),
        labels_hash=bytes(raw["labels_hash"]),
        pool=int(raw["pool"]),
        budget=int(raw["budget"]),
        max_stake=int(raw["max_stake"]),
        state=int(raw["state"]),
        labels_revealed=bool(raw.get("labels_revealed", False)),
        raw=raw,
    )


__all__ = [
    "KINDS",
    "MarketClient",
    "MarketError",
    "RoundPrograms",
    "RoundView",
    "kind_of",
    "labels_commitment",
    "prediction_commitment",
]
