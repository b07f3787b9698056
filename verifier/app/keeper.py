"""The loop's keeper (`bisectml loop keeper run`): a daemon that makes each permissionless call
of a loop period when it falls due (docs/SPEC.md 12.3-12.5).

A period needs someone to open it, post its programs as tasks, record their finalized
results, read the entry price within `average` seconds of `trade_at` and the exit price within
`average` seconds of `end`, and settle or void it (which takes back the rewards of tasks nobody
solved; `bisectml loop sync` takes back any that become reclaimable later). Every one of these
calls is open to anyone, and the keeper is anyone who wants them made on time (a depositor, a
modeler). It re-derives
the next call from the loop's state on every tick, on the daemons' machinery (every
transaction recorded before it is broadcast, dry-run first, resumed after a crash), so two
keepers only race: the loser's dry run fails and nothing is sent. It needs ether for gas and no
BOND: the tasks' rewards come from the period's budget.
"""

from __future__ import annotations

from typing import Any

from verifier.court.states import TASK_DONE, TASK_FIELDS, TASK_RECLAIMED
from verifier.daemon.loop import Daemon
from verifier.daemon.records import DaemonError

PERIOD_OPEN = 1
TASK_STATE = TASK_FIELDS.index("state")
KINDS = ("metamodel", "scores", "data values")


class Keeper(Daemon):
    name = "keeper"

    def prepare(self) -> None:
        super().prepare()
        from verifier.market.loop_client import LoopClient

        address = self.court.deployment.addresses.get("Loop")
        if address is None:
            raise DaemonError("no loop in this chain's deployment; run `bisectml loop deploy --pool ADDRESS`, or give --deployment.")
        self.client = LoopClient.at(self.chain, address, self.court.deployment.block)
        self.loop_contract = self.client.loop
        self.terms = self.client.terms
        self._results: dict[tuple[int, int], tuple[bytes, list[bytes], list[int]]] = {}

    def tick(self) -> bool:
        f = self.loop_contract.functions
        pid = int(f.period_count().call())
        now = int(self.chain.w3.eth.get_block("latest")["timestamp"])
        per = self.client.period(pid) if pid else None
        if per is None or per["state"] != PERIOD_OPEN:
            if per is not None and per["position"] > 0:
                self._send(pid, f"unwind:{pid}:{per['position']}", f.unwind(pid))
            else:
                self._send(pid + 1, f"open:{pid + 1}", f.open_period())
            return False
        self._period(pid, per, now)
        return False

    def _period(self, pid: int, per: dict[str, Any], now: int) -> None:
        f = self.loop_contract.functions
        recorded = int(per["recorded"])
        metamodel_due = per["reveal_deadline"] <= now < per["end"] and per["revealed"] > 0
        if metamodel_due and not recorded & 1:
            self._task(pid, 0, now, per["end"])
        entry_due = per["entry_price"] == 0 and per["trade_at"] <= now < per["trade_at"] + self.terms.average
        buy_due = recorded & 1 and not per["traded"] and per["entry_price"] != 0 and now < per["end"]
        if entry_due or buy_due:
            self._send(pid, f"trade:{pid}:{'entry' if entry_due else 'buy'}", f.trade(pid))
            return
        if now >= per["end"] and not per["closed"]:
            self._send(pid, f"close:{pid}", f.close(pid))
            return
        if not per["closed"]:
            return
        if per["position"] > 0:
            self._send(pid, f"unwind:{pid}:{per['position']}", f.unwind(pid))
        # the data values are due too once a model naming a joined dataset revealed
        due = 2 | (4 if per["active"] > 0 else 0)
        if recorded & due == due:
            self._send(pid, f"settle:{pid}", f.settle(pid))
        elif now >= per["result_deadline"]:
            self._send(pid, f"void:{pid}", f.void(pid))
        else:
            for kind in (1, 2):
                if due & (1 << kind) and not recorded & (1 << kind):
                    self._task(pid, kind, now, per["result_deadline"])

    def _task(self, pid: int, kind: int, now: int, deadline: int) -> None:
        """Post the kind's task when none runs and a claim could still be final before the
        result is due (`deadline`), or record its result once it is DONE."""
        f = self.loop_contract.functions
        task_id = int(f.task_of(pid, kind).call())
        if task_id:
            state = int(self.court.tasks.functions.tasks(task_id).call()[TASK_STATE])
            if state == TASK_DONE:
                root, proof, values = self._result(pid, kind)
                self._send(pid, f"record:{pid}:{kind}", f.record(pid, kind, root, proof, values), values=values)
                return
            if state != TASK_RECLAIMED and not self.court.tasks.functions.reclaimable(task_id).call():
                return  # a solver is on it
        if now + self.terms.window >= deadline:
            return  # no claim made now could be final in time: the reward stays with the period
        slots = self.client.task_template(kind)
        self._send(pid, f"post:{pid}:{kind}:{task_id}", f.post_task(pid, kind, slots), kind=KINDS[kind])

    def _result(self, pid: int, kind: int) -> tuple[bytes, list[bytes], list[int]]:
        """The kind's final slot root, the opening of its result slot and its values, from a run
        of the program rebuilt from the chain (`record` checks them against the finalized claim)."""
        if (pid, kind) not in self._results:
            from verifier.engine.trace import Trace

            with Trace(self.client.program(pid, kind)) as trace:
                trace.run()
                self._results[pid, kind] = self.client.result(kind, trace)
        return self._results[pid, kind]

    def _send(self, pid: int, key: str, fn: Any, **context: Any) -> None:
        self.isolate("period", pid, lambda: self.sender.send(f"loop:{key}", fn, period=pid, **context))


__all__ = ["Keeper"]
