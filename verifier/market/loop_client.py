"""A deployed closed loop (docs/SPEC.md 12) from one account, over any chain `Chain` reaches:
deploying the vault and the loop, depositing, staking models, the calls of a period, and
rebuilding a period's three programs from the chain exactly as the loop posts them, so that a
solver can run them and anyone can record their results."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from web3.logs import DISCARD

from verifier.commit import commitments as commit
from verifier.core.errors import BisectmlError
from verifier.court.chain import Chain, Deployment
from verifier.market import availability as availability_calls
from verifier.market import economics as econ
from verifier.market.loop import (
    LoopTerms,
    Schedule,
    prediction_byte,
    prediction_commitment,
    program_refs,
    shape,
)

METAMODEL, SCORES, VALUES = 0, 1, 2
KIND_NAMES = ("metamodel", "scores", "data values")
PERIOD_STATES = {1: "open", 2: "settled", 3: "void"}
OPEN = 1
# the most datasets a model names (Loop.vy)
MODEL_DATASETS = 8
REVEALED = 2


class LoopError(BisectmlError, ValueError):
    """A loop call that cannot be made as asked."""


def bond(amount: int) -> str:
    """Base units of the bond token as BOND, exactly."""
    whole, frac = divmod(int(amount), 10**18)
    return f"{whole:,}" + (f".{frac:018d}".rstrip("0") if frac else "") + " BOND"


@dataclass
class LoopClient:
    """`addresses` names the deployment: Token, Asset, Pool, Tasks, Vault, Loop."""

    chain: Chain
    addresses: dict[str, str]
    # no publication on the loop's Availability.vy and no loop event is older (the suite's
    # deployment block): reads start there, never at block 0
    from_block: int
    # (period, model) -> (prediction, salt) of this account's commitments, to reveal them
    secrets: dict[tuple[int, int], tuple[int, bytes]] = field(default_factory=dict)
    # tensors read from Availability.vy, by commitment
    _tensors: dict[bytes, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        c = self.chain
        self.token = c.contract("Token", self.addresses["Token"])
        self.asset = c.contract("Token", self.addresses["Asset"])
        self.pool = c.contract("Pool", self.addresses["Pool"])
        self.tasks = c.contract("Tasks", self.addresses["Tasks"])
        self.vault = c.contract("Vault", self.addresses["Vault"])
        self.loop = c.contract("Loop", self.addresses["Loop"])
        self.availability = c.contract("Availability", self.loop.functions.availability().call())

    @classmethod
    def at(cls, chain: Chain, loop: str, from_block: int) -> LoopClient:
        """The loop deployed at `loop`, with the contracts it names; `from_block` as the field."""
        f = chain.contract("Loop", loop).functions
        try:
            addresses = {"Token": f.token().call(), "Asset": f.asset().call(), "Pool": f.pool().call(),
                         "Tasks": f.tasks().call(), "Vault": f.vault().call(), "Loop": loop}  # fmt: skip
        except Exception as e:  # noqa: BLE001 - no contract, or another contract, at that address
            raise LoopError(f"{loop} is not a loop ({type(e).__name__}); give the address `bisectml loop deploy` printed.") from None
        return cls(chain, addresses, from_block)

    @classmethod
    def deploy(
        cls, chain: Chain, terms: LoopTerms, token: str, tasks: str, asset: str, pool: str, from_block: int
    ) -> LoopClient:
        """Deploys a vault and a loop with the market's programs for `terms.models` models over an
        existing token, task registry, asset and pool, and binds the vault to the loop."""
        vault = chain.deploy("Vault", token)
        loop = chain.deploy("Loop", token, asset, pool, tasks, vault.address, terms.as_tuple(), program_refs(terms))
        chain.send(vault.functions.set_manager(loop.address), "bind the vault to the loop")
        addresses = {"Token": token, "Asset": asset, "Pool": pool, "Tasks": tasks, "Vault": vault.address, "Loop": loop.address}
        return cls(chain, addresses, from_block)

    def as_account(self, address: str) -> LoopClient:
        return LoopClient(self.chain.as_account(address), self.addresses, self.from_block)

    @property
    def account(self) -> str:
        return self.chain.account

    @cached_property
    def terms(self) -> LoopTerms:
        # set at deployment and never changed: one read per client
        return LoopTerms(*[int(v) for v in self.loop.functions.terms().call()])

    def _approve(self, spender: str, amount: int) -> None:
        if int(self.token.functions.allowance(self.account, spender).call()) < amount:
            self.chain.send(self.token.functions.approve(spender, 2**256 - 1), "approve")

    # -- the vault
    def deposit(self, amount: int) -> Any:
        self._approve(self.vault.address, amount)
        return self.chain.send(self.vault.functions.deposit(amount), "deposit")

    def withdraw(self, shares: int) -> Any:
        return self.chain.send(self.vault.functions.withdraw(shares), "withdraw")

    def claim(self, account: str | None = None) -> Any:
        return self.chain.send(self.vault.functions.claim(account or self.account), "claim")

    def shares(self, account: str | None = None) -> int:
        return int(self.vault.functions.shares(account or self.account).call())

    def equity(self, account: str | None = None) -> int:
        """What `account`'s shares are worth at the vault's price now (bond token units)."""
        assets, supply = int(self.vault.functions.assets().call()), int(self.vault.functions.total_shares().call())
        return self.shares(account) * (assets + 1) // (supply + 1_000)

    # -- models
    def register(self, stake: int, datasets: tuple[int, ...] = ()) -> int:
        """A model trained on `datasets` (their share of its gains, SPEC 12.5), staked `stake`.
        The loop takes any list; this refuses ids it never published, which could never join."""
        named = [int(d) for d in datasets]
        count = self.dataset_count()
        unknown = [d for d in named if not 1 <= d <= count]
        if unknown:
            raise LoopError(
                f"dataset {unknown[0]} is not published on this loop (it has {count}); name only published "
                f"datasets (`bisectml loop data list`), or publish it first with `bisectml loop data publish`."
            )
        if len(named) > MODEL_DATASETS:
            raise LoopError(f"a model names at most {MODEL_DATASETS} datasets; got {len(named)}.")
        self._require_balance(stake, "--stake")
        register = self.loop.get_function_by_signature("register(uint256[])")
        receipt = self.chain.send(register(named), "register a model")
        model_id = int(self.loop.events.ModelRegistered().process_receipt(receipt, errors=DISCARD)[0]["args"]["model_id"])
        if stake:
            self.add_stake(model_id, stake)
        return model_id

    def add_stake(self, model_id: int, amount: int) -> Any:
        self._approve(self.loop.address, amount)
        return self.chain.send(self.loop.functions.add_stake(model_id, amount), "stake")

    def stake(self, model_id: int) -> tuple[int, int]:
        """(stake, reserved) of a model."""
        m = self.loop.functions.models(model_id).call()
        return int(m[1]), int(m[2])

    # -- datasets
    def publish_dataset(self, features: np.ndarray, labels: np.ndarray, stake: int) -> int:
        """Publishes a dataset of the loop's shape (its bytes on Availability.vy first, unless
        they are there) and stakes `stake` on it; its id. Every check comes before anything is
        sent: a refused dataset changes nothing."""
        x, y = self.dataset_of_shape(features, labels)
        self._require_balance(stake, "--stake")
        for a in (x, y):
            if not self.availability.functions.available(commit.commit_tensor(a)).call():
                availability_calls.publish_tensor(self.chain, self.availability, a)
        self._approve(self.loop.address, stake)
        receipt = self.chain.send(
            self.loop.functions.publish_dataset(commit.data_root(x), commit.data_root(y), stake), "publish a dataset"
        )
        return int(self.loop.events.DatasetPublished().process_receipt(receipt, errors=DISCARD)[0]["args"]["dataset_id"])

    def dataset_of_shape(self, features: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
        """`features` and `labels` as the int8 arrays a dataset of this loop is, or LoopError."""
        from verifier.market.content import ContentError, as_int8

        t = self.terms
        try:
            x, y = as_int8(features, "dataset features"), as_int8(labels, "dataset labels")
        except ContentError as e:
            raise LoopError(str(e)) from None
        if x.shape != (t.dataset_rows, t.features) or y.shape != (t.dataset_rows,):
            raise LoopError(
                f"a dataset of this loop is features [{t.dataset_rows}, {t.features}] and labels [{t.dataset_rows}] "
                f"(its terms' dataset_rows and features); got {list(x.shape)} and {list(y.shape)}: reshape the dataset."
            )
        if not np.isin(y, (-1, 1)).all():
            raise LoopError("dataset labels must be -1 or 1 (SPEC 8.1); relabel the dataset.")
        return x, y

    def dataset_count(self) -> int:
        return int(self.loop.functions.dataset_count().call())

    def dataset(self, dataset_id: int) -> dict[str, Any]:
        """A dataset's owner, commitments (features, labels), stake and reserved stake."""
        owner, features, labels, stake, reserved = self.loop.functions.datasets(dataset_id).call()
        if int(owner, 16) == 0:
            raise LoopError(
                f"there is no dataset {dataset_id} on this loop (it has {self.dataset_count()}); "
                f"`bisectml loop data list` lists them."
            )
        return {"owner": owner, "features": bytes(features), "labels": bytes(labels), "stake": int(stake), "reserved": int(reserved)}

    def _own_dataset(self, dataset_id: int) -> dict[str, Any]:
        d = self.dataset(dataset_id)
        if d["owner"].lower() != self.account.lower():
            raise LoopError(
                f"dataset {dataset_id} is owned by {d['owner']}, not {self.account}; use the owner's --key-file."
            )
        return d

    def _require_balance(self, amount: int, what: str) -> None:
        held = int(self.token.functions.balanceOf(self.account).call())
        if amount > held:
            raise LoopError(
                f"{what}: {self.account} holds {bond(held)}, less than {bond(amount)}; "
                f"stake less or fund the account first."
            )

    def add_data_stake(self, dataset_id: int, amount: int) -> Any:
        self._own_dataset(dataset_id)
        self._require_balance(amount, "amount")
        self._approve(self.loop.address, amount)
        return self.chain.send(self.loop.functions.add_data_stake(dataset_id, amount), "stake a dataset")

    def withdraw_data_stake(self, dataset_id: int, amount: int) -> Any:
        """Takes back free stake of the dataset (what no open period reserved)."""
        d = self._own_dataset(dataset_id)
        free = d["stake"] - d["reserved"]
        if amount > free:
            raise LoopError(
                f"dataset {dataset_id} has {bond(free)} free ({bond(d['reserved'])} reserved by an open period); "
                f"withdraw at most that, or wait until the period is settled or void."
            )
        return self.chain.send(self.loop.functions.withdraw_data_stake(dataset_id, amount), "withdraw data stake")

    def join(self, period_id: int, dataset_id: int, amount: int | None = None) -> Any:
        """The dataset's owner puts it in the period before the commit deadline, reserving
        `amount` of its free stake (all of it when None) until the period ends."""
        d = self._own_dataset(dataset_id)
        per = self.period(period_id)
        if not per["state"]:
            raise LoopError(f"there is no period {period_id}; `bisectml loop show` shows the latest.")
        if per["state"] != OPEN:
            raise LoopError(f"period {period_id} has ended; join the next one once it opens (`bisectml loop open`).")
        now = int(self.chain.w3.eth.get_block("latest")["timestamp"])
        if now >= per["commit_deadline"]:
            raise LoopError(
                f"period {period_id}'s commit deadline passed {now - per['commit_deadline']} s ago; "
                f"datasets join before it: join the next period once it opens."
            )
        if self.loop.functions.data_entries(period_id, dataset_id).call()[2]:
            raise LoopError(f"dataset {dataset_id} already joined period {period_id}; nothing to do.")
        free = d["stake"] - d["reserved"]
        amount = free if amount is None else amount
        least = self.terms.min_stake
        if amount < least or amount > free:
            raise LoopError(
                f"a dataset joins with {bond(least)} (min_stake) to {bond(free)} (its free stake); got "
                f"{bond(amount)}: give another --stake, or add stake with `bisectml loop data stake`."
            )
        return self.chain.send(self.loop.functions.join(period_id, dataset_id, amount), "join a period")

    def dataset_arrays(self, dataset_id: int) -> tuple[np.ndarray, np.ndarray]:
        """The dataset's features and labels, read from their publications on-chain (once per
        commitment: a tensor's bytes never change)."""
        d = self.loop.functions.datasets(dataset_id).call()
        out = []
        for c in (bytes(d[1]), bytes(d[2])):
            if c not in self._tensors:
                self._tensors[c] = availability_calls.fetch_tensor(self.chain.w3, self.availability, c, self.from_block)
            out.append(self._tensors[c].copy())
        return out[0], out[1]

    def dataset_slots(self, period_id: int) -> list[tuple[int, int, bool]]:
        """(dataset id, reservation, active) of each dataset slot, in slot order."""
        f = self.loop.functions
        out = []
        for s in range(int(self.period(period_id)["datasets"])):
            did = int(f.slot_dataset(period_id, s).call())
            e = f.data_entries(period_id, did).call()
            out.append((did, int(e[1]), bool(e[3])))
        return out

    def values(self, period_id: int) -> list[int] | None:
        """The D recorded data values of the period's dataset slots, or None before they are."""
        if not int(self.period(period_id)["recorded"]) & (1 << VALUES):
            return None
        return [int(v) for v in self.loop.functions.values(period_id).call()]

    def features(self, period_id: int) -> np.ndarray:
        """The period's features X, int8 [1, F] (SPEC 12.5)."""
        word = bytes(self.loop.functions.features(period_id).call())
        return np.frombuffer(word[: self.terms.features], np.int8).reshape(1, -1).copy()

    # -- periods
    def open_period(self) -> int:
        receipt = self.chain.send(self.loop.functions.open_period(), "open a period")
        return int(self.loop.events.PeriodOpened().process_receipt(receipt, errors=DISCARD)[0]["args"]["period_id"])

    def period(self, period_id: int) -> dict[str, Any]:
        names = [o["name"] for o in next(x for x in self.loop.abi if x.get("name") == "periods")["outputs"][0]["components"]]
        return dict(zip(names, self.loop.functions.periods(period_id).call(), strict=True))

    def schedule(self, period_id: int) -> Schedule:
        p = self.period(period_id)
        if not p["state"]:
            raise LoopError(f"there is no period {period_id}; `bisectml loop show` lists the periods.")
        return Schedule(p["commit_deadline"], p["reveal_deadline"], p["trade_at"], p["end"], p["result_deadline"])

    def commit(self, period_id: int, model_id: int, prediction: int, amount: int, salt: bytes | None = None) -> Any:
        """Commits `prediction` (kept here with its salt for `reveal`); a random salt unless given."""
        salt = salt or secrets.token_bytes(32)
        self.secrets[period_id, model_id] = (prediction, salt)
        com = prediction_commitment(period_id, model_id, prediction, salt)
        return self.chain.send(self.loop.functions.commit(period_id, model_id, com, amount), "commit a prediction")

    def reveal(self, period_id: int, model_id: int) -> Any:
        if (period_id, model_id) not in self.secrets:
            raise LoopError(f"no commitment of model {model_id} in period {period_id} is known to this client.")
        if int(self.loop.functions.entries(period_id, model_id).call()[2]) == 0:
            raise LoopError(
                f"model {model_id} holds no slot in period {period_id}: a larger reservation displaced it "
                f"(SPEC 12.2); before the commit deadline, commit again with a larger --stake."
            )
        prediction, salt = self.secrets[period_id, model_id]
        return self.chain.send(self.loop.functions.reveal(period_id, model_id, prediction_byte(prediction), salt), "reveal")

    def slots(self, period_id: int) -> list[tuple[int, int, int | None]]:
        """(model id, reserved amount, revealed prediction or None) of each slot, in slot order."""
        f = self.loop.functions
        out = []
        for s in range(int(self.period(period_id)["models"])):
            mid = int(f.slot_model(period_id, s).call())
            entry = f.entries(period_id, mid).call()
            pred = None
            if int(entry[2]) == REVEALED:
                pred = int.from_bytes(bytes(f.predictions(period_id, s).call()), "big", signed=True)
            out.append((mid, int(entry[1]), pred))
        return out

    def program_data(self, period_id: int, kind: int) -> dict[str, Any]:
        """The data of the period's program of `kind`, as the loop writes it (SPEC 12.5)."""
        m = self.terms.models
        weights = np.zeros(m, np.int64)
        preds = [None] * m
        for s, (_, amount, pred) in enumerate(self.slots(period_id)):
            if pred is not None:
                weights[s] = econ.weight(amount)
                preds[s] = np.array([pred], np.int8)
        data: dict[str, Any] = {"weights": weights, "predictions": preds}
        if kind in (SCORES, VALUES):
            label = int(self.period(period_id)["label"])
            if label == 0:
                raise LoopError(f"period {period_id} has no label yet; close it after its end first.")
            data["labels"] = np.array([label], np.int8)
        if kind == VALUES:
            mask = np.zeros(self.terms.datasets, np.int64)
            sets: list[Any] = [None] * self.terms.datasets
            for s, (did, _, active) in enumerate(self.dataset_slots(period_id)):
                if active:
                    mask[s] = 1
                    sets[s] = self.dataset_arrays(did)
            return {"mask": mask, "labels": data["labels"], "features": self.features(period_id), "datasets": sets}
        return data

    def program(self, period_id: int, kind: int) -> Any:
        """The period's program of `kind` (a verifier Program), rebuilt from the chain."""
        from onnx_models.market import program
        from verifier.engine.program import load_program

        return load_program(program(kind, shape(self.terms), **self.program_data(period_id, kind)))

    def task_template(self, kind: int) -> list[bytes]:
        """The slot template `post_task` takes for the kind's program (the loop checks its hash)."""
        from onnx_models.market import program_ref

        return list(program_ref(kind, shape(self.terms)).slots)

    def post_task(self, period_id: int, kind: int) -> int:
        if kind in (SCORES, VALUES):
            per = self.period(period_id)
            if per["state"] == OPEN and not per["closed"]:
                raise LoopError(
                    f"period {period_id}'s position is not closed; post its {KIND_NAMES[kind]} after "
                    f"`bisectml loop close {period_id}` (from its end)."
                )
            if kind == VALUES and per["state"] == OPEN and per["active"] == 0:
                raise LoopError(
                    f"no dataset of period {period_id} is named by a revealed model: it has no data values "
                    f"to post; settle it once its scores are recorded."
                )
        slots = self.task_template(kind)
        receipt = self.chain.send(self.loop.functions.post_task(period_id, kind, slots), "post the task")
        return int(self.loop.events.TaskPosted().process_receipt(receipt, errors=DISCARD)[0]["args"]["task_id"])

    def result(self, kind: int, trace: Any) -> tuple[bytes, list[bytes], list[int]]:
        """What `record` takes from `trace`, a run of the kind's program: the final slot root, the
        opening of the result slot and its values."""
        from onnx_models.market import program_ref

        steps = trace.program.steps
        out_slot = program_ref(kind, shape(self.terms)).out_slot
        table = trace.slot_table_at(steps, 0)
        values = [int(v) for v in np.asarray(trace.values_at(steps, 0)[out_slot]).reshape(-1)]
        return table.root, list(table.open(out_slot).proof), values

    def recordable(self, period_id: int, kind: int) -> int:
        """The kind's task of the period, once its result can be recorded (DONE, not yet
        recorded); LoopError, saying what to do, before that."""
        from verifier.court.states import TASK_DONE, TASK_FIELDS

        name = KIND_NAMES[kind]
        per = self.period(period_id)
        if per["state"] != OPEN:
            state = PERIOD_STATES.get(per["state"])
            raise LoopError(f"period {period_id} is {state}; nothing to record." if state else f"there is no period {period_id}.")
        if int(per["recorded"]) & (1 << kind):
            raise LoopError(f"period {period_id}'s {name} result already recorded; nothing to do.")
        task_id = int(self.loop.functions.task_of(period_id, kind).call())
        if task_id == 0:
            verb = ("metamodel", "scores", "values")[kind]
            raise LoopError(f"period {period_id} has no {name} task; post it first (`bisectml loop post {period_id} {verb}`).")
        if int(self.tasks.functions.tasks(task_id).call()[TASK_FIELDS.index("state")]) != TASK_DONE:
            raise LoopError(f"{name} task {task_id} of period {period_id}: task not done; finalize a claim first.")
        return task_id

    def record(self, period_id: int, kind: int, trace: Any) -> list[int]:
        """Records the result of the kind's finalized task from `trace`, a run of its program."""
        root, proof, values = self.result(kind, trace)
        self.chain.send(self.loop.functions.record(period_id, kind, root, proof, values), "record the result")
        return values

    def trade(self, period_id: int) -> Any:
        return self.chain.send(self.loop.functions.trade(period_id), "trade")

    def close(self, period_id: int) -> Any:
        return self.chain.send(self.loop.functions.close(period_id), "close")

    def settle(self, period_id: int) -> Any:
        return self.chain.send(self.loop.functions.settle(period_id), "settle")

    def void(self, period_id: int) -> Any:
        return self.chain.send(self.loop.functions.void(period_id), "void")


class LoopPrograms:
    """The daemons' hook for a loop's tasks: the program of a task the loop posted, rebuilt from
    the chain (matched by program id), or None."""

    def __init__(self, client: LoopClient, from_block: int | None = None) -> None:
        """`from_block`: no loop task was posted before it (by default the client's)."""
        from_block = client.from_block if from_block is None else from_block
        self.client = client
        self._by_program: dict[bytes, tuple[int, int]] = {}
        self._cache: dict[bytes, Any] = {}
        # read in ranges a node serves, from where the loop can have logged anything
        self._logs = Deployment(client.chain.chain_id, client.addresses, from_block).logs
        self._from_block = from_block

    def _refresh(self) -> None:
        w3 = self.client.chain.w3
        head = int(w3.eth.block_number)
        if head < self._from_block:
            return
        for log in self._logs(self.client.loop.events.TaskPosted(), None, self._from_block, head):
            a = log["args"]
            pid = bytes(self.client.tasks.functions.tasks(int(a["task_id"])).call()[1])
            self._by_program[pid] = (int(a["period_id"]), int(a["kind"]))
        self._from_block = head + 1

    def for_task(self, task: Any) -> Any:
        pid = bytes(task.program_id)
        if pid in self._cache:
            return self._cache[pid]
        if pid not in self._by_program:
            self._refresh()
        found = self._by_program.get(pid)
        if found is None:
            return None
        p = self.client.program(*found)
        if p.id != pid:
            raise LoopError(
                f"the loop's {KIND_NAMES[found[1]]} program of period {found[0]} rebuilt from the chain has "
                f"id 0x{p.id.hex()[:16]}…, not its task's 0x{pid.hex()[:16]}…; the node's state is inconsistent."
            )
        self._cache[pid] = p
        return p


__all__ = ["LoopClient", "LoopError", "LoopPrograms"]
