"""What the crash harness checks after a run: the journal and the ledger against a reference.

A run's outcome is read from its own SQLite store (through ``durable_core``'s store, which
validates every record; nothing is unpickled) and from the example services' ledger file,
read directly with ``sqlite3``. ``compare`` counts, against an uninterrupted run of the same
scenario with the same execution id:

- ``lost``: the execution is missing or not finished.
- ``wrong_outcomes``: it finished with another status, saga status or result.
- ``duplicated_effects``: a forward effect (booking, charge, reservation, e-mail, pickup)
  landed more often than in the uninterrupted run (a request re-sent with the same key and
  absorbed by the service as a duplicate does not count: it had no effect).
- ``reruns_after_checkpoint``: a step's request sent again after the worker had been told
  its outcome was durable (``write_operations`` returned) - recording-exactly-once broken,
  even if the service absorbed the repeat.
- ``compensations_twice``: an undo effect landed more often than in the uninterrupted run,
  or an undo ran again after its success was durable.
- ``compensations_skipped``: an undo of the uninterrupted run whose effect is missing or
  whose compensation is not recorded as done.
- ``ledger_mismatches``: the ordered list of effects differs from the uninterrupted run.
- ``worker_errors``: a worker exited with an error instead of finishing or being killed.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from durable_core import Runtime
from durable_core.errors import ExecutionNotFoundError
from durable_core.records import OperationType
from durable_core.stores.sqlite import SQLiteStore
from saga import saga_status

UNDO_ACTIONS = frozenset({"cancel", "noop", "refund", "release", "cancellation", "cancel-pickup"})
COUNTS = (
    "lost",
    "duplicated_effects",
    "compensations_twice",
    "compensations_skipped",
    "ledger_mismatches",
    "wrong_outcomes",
    "reruns_after_checkpoint",
    "worker_errors",
)
"""Every count that must be 0, in the order the summary prints them."""
_TOKEN = re.compile(r"token \S+")
Effect = tuple[str, ...]
"""One request that had an effect: (service, action, idempotency key, details...)."""


@dataclass
class Outcome:
    """What a finished (or abandoned) run left behind."""

    status: str | None
    saga_status: str | None = None
    result: str | None = None
    compensated: tuple[str, ...] = ()
    """Steps whose compensation the journal records as done, in rollback order."""
    effects: list[Effect] = field(default_factory=list)
    repeated_requests: int = 0
    """Requests a service received again with a key it had seen (absorbed, no effect)."""


def ledger_rows(path: Path) -> list[tuple[Any, ...]]:
    """Every row of a service ledger file, in order: (service, action, key, ..., duplicate)."""
    if not path.exists():
        return []
    with closing(sqlite3.connect(path, timeout=30)) as db:
        names = [r[1] for r in db.execute("PRAGMA table_info(ledger)")]
        if not names:
            return []
        service = "provider" if "provider" in names else "service"
        columns = [service, "action", "idempotency_key"]
        columns += [c for c in ("ref", "detail") if c in names] + ["duplicate"]
        return list(db.execute(f"SELECT {', '.join(columns)} FROM ledger ORDER BY seq"))


def read_outcome(store_path: Path, ledger: Path, execution_id: str) -> Outcome:
    """The execution's status, saga outcome and the effects the services recorded."""
    rows = ledger_rows(ledger)
    effects = [
        tuple(_TOKEN.sub("token <token>", str(v)) for v in r[:-1]) for r in rows if not r[-1]
    ]
    repeated = sum(1 for r in rows if r[-1])
    store = SQLiteStore(store_path)
    try:
        rt = Runtime(store)
        try:
            ex = rt.get(execution_id)
        except ExecutionNotFoundError:
            return Outcome(status=None, effects=effects, repeated_requests=repeated)
        outcome = saga_status(rt, execution_id)
        done = tuple(c.step for c in outcome.compensations if c.status == "compensated")
        return Outcome(
            status=ex.status.value,
            saga_status=outcome.status.value,
            result=ex.result,
            compensated=done,
            effects=effects,
            repeated_requests=repeated,
        )
    finally:
        store.close()


def waiting_callback(store_path: Path, execution_id: str, name: str) -> str | None:
    """The token of the execution's callback ``name`` if it is created and not completed."""
    store = SQLiteStore(store_path)
    try:
        for op in store.load_operations(execution_id):
            if op.type is OperationType.CALLBACK and op.name == name:
                return op.callback_id if op.status.value == "STARTED" else None
        return None
    finally:
        store.close()


def _op_of(event: dict[str, Any]) -> str:
    """The journal operation a ledger request belongs to (the key is ``<id>:<step>``)."""
    step = str(event["key"]).split(":", 1)[-1]
    return f"compensate:{step}" if event["act"] in UNDO_ACTIONS else step


def reruns_after_checkpoint(trace: Iterable[dict[str, Any]]) -> tuple[int, int]:
    """(forward, undo) requests sent for an operation already durably recorded as ended.

    ``trace`` is every probe of every worker of a run, in order (workers never overlap).
    """
    durable: set[str] = set()
    forward = undo = 0
    for ev in trace:
        if ev["k"] == "write" and ev["w"] == "after":
            durable.update(name for name, status in ev["ops"] if status in ("SUCCEEDED", "FAILED"))
        elif ev["k"] == "ledger" and ev["w"] == "before" and _op_of(ev) in durable:
            if ev["act"] in UNDO_ACTIONS:
                undo += 1
            else:
                forward += 1
    return forward, undo


def compare(
    run: Outcome, ref: Outcome, trace: Sequence[dict[str, Any]], worker_errors: int
) -> Counter[str]:
    """The counts of one run (see the module docstring); all 0 for a correct run."""
    counts: Counter[str] = Counter(dict.fromkeys(COUNTS, 0))
    counts["worker_errors"] = worker_errors
    if run.status is None or run.status == "RUNNING":
        counts["lost"] = 1
    elif (run.status, run.saga_status, run.result) != (ref.status, ref.saga_status, ref.result):
        counts["wrong_outcomes"] = 1
    landed = Counter(e[:2] for e in run.effects)
    for what, n in Counter(e[:2] for e in ref.effects).items():
        landed[what] -= n
    for (_service, action), extra in landed.items():
        if extra > 0:
            counts["compensations_twice" if action in UNDO_ACTIONS else "duplicated_effects"] += (
                extra
            )
    forward, undo = reruns_after_checkpoint(trace)
    counts["reruns_after_checkpoint"] += forward
    counts["compensations_twice"] += undo
    run_undos = {e[:3] for e in run.effects if e[1] in UNDO_ACTIONS}
    for step in ref.compensated:
        ref_undos = {e[:3] for e in ref.effects if e[1] in UNDO_ACTIONS and _step(e) == step}
        if step not in run.compensated or not ref_undos <= run_undos:
            counts["compensations_skipped"] += 1
    if run.status is not None and run.effects != ref.effects:
        counts["ledger_mismatches"] = 1
    return counts


def _step(effect: Effect) -> str:
    return effect[2].split(":", 1)[-1]


def kill_position(history: Sequence[dict[str, Any]], mine: Sequence[dict[str, Any]]) -> str:
    """Where a worker was when it was killed: ``mine`` are its probes, ``history`` the run's."""
    if not mine:
        return "before claiming"
    last = mine[-1]
    rollback = any(
        ev["k"] == "write" and any(n == "saga:rollback" for n, _ in ev["ops"]) for ev in history
    )
    phase = "rollback" if rollback else "forward"
    kind, when = last["k"], last["w"]
    if kind == "ledger":
        where = "compensation" if last["act"] in UNDO_ACTIONS else "step"
        return f"in a {where}, " + (
            "during its request" if when == "before" else "after its effect"
        )
    if kind == "write":
        return f"{phase}: {'inside' if when == 'before' else 'after'} a journal commit"
    if kind == "finish":
        return "ending the invocation" if when == "before" else "after the invocation ended"
    return f"{phase}: replaying after a claim"
