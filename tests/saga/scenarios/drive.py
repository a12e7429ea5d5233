"""Run a program under a schedule on the real runtime, and compare the end with the oracle.

:func:`run` starts the generated saga on a real :class:`durable_core.Runtime` over a
``MemoryStore`` (or a ``SQLiteStore`` file) with a :class:`VirtualClock`, and drives it as
workers, external systems and operators would:

- after every invocation that leaves the execution suspended it looks at what the journal
  says it waits on (a timer, a callback, a condition, a step or undo waiting to retry, an
  ``operator:`` callback) and fires the schedule's stop there if it targets that point
  (``Runtime.cancel`` - twice for a second cancel - or ``saga.operator.terminate``); a stop
  targeting ``before:``/``during:`` is fired from inside the run by the interpreter's
  hooks, which then move the clock 2 s, as real time passes while a worker runs (the engine
  re-reads a cancel request at most once per second of clock time);
- it completes each user callback as the program says (success, failure), or lets it time
  out; for a parked saga it applies the operator's decision (``retry`` after fixing the
  provider, ``skip``, ``resolve``, ``terminate``) through ``saga.operator``;
- otherwise it moves the clock to the execution's wake-up time;
- with ``schedule.crash`` it kills the worker once at that checkpoint write
  (:class:`durable_core.testing.CrashPoint` before or after the write, the testing kit's
  crashing store) and lets a new runtime take over after the dead worker's lease expired.

Invariants:
- One run = one fresh store, clock, ledger and saga object; nothing is shared between runs.
- :func:`problems` compares only observable results (ledger, journal-derived status)
  with :func:`scenarios.oracle.expect_all`; it never looks at how the engine got there.
- Every log line of an in-process run is captured (``structlog.testing.capture_logs``) and
  must not contain any callback or operator token of the execution (issue 11, item 3).
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog.testing

from durable_core import (
    DurableError,
    Execution,
    MemoryStore,
    OperationStatus,
    OperationType,
    Runtime,
    RuntimeOptions,
    SQLiteStore,
    Store,
)
from durable_core._context_base import CALLBACK_SUFFIX
from durable_core.errors import SimulatedCrash
from durable_core.testing import CrashPoint, VirtualClock
from durable_core.testing._stores import CrashingStore
from saga import operator, saga_status
from scenarios import oracle
from scenarios.interpret import Env, Ledger, MemoryLedger, build
from scenarios.interpret_async import build_async
from scenarios.programs import (
    Callback,
    Parallel,
    Program,
    Schedule,
    Stop,
    WaitForCallback,
    steps_of,
)

EXECUTION_ID = "scenario-1"
LEASE_TTL = timedelta(seconds=5)
MAX_ROUNDS = 400
HOOK_ADVANCE = timedelta(seconds=2)
STOP_SENT = "stop-sent"
STOP_REFUSED = "stop-refused"
TERMINATE_SENT = "terminate-sent"


@dataclass
class Observed:
    """What a run ended with, as the ledger and ``saga_status`` show it."""

    effects: list[tuple[str, str]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    execution_status: str = "?"
    status: str = "?"
    not_undone: list[str] = field(default_factory=list)
    cause_kind: str | None = None
    cause_message: str | None = None
    parked_on: str | None = None
    error: str | None = None
    """The execution's error (type: message), or what the driver itself hit."""
    refused: bool = False
    """The stop request was refused with a typed error."""
    writes: int = 0
    crashed: bool = False


def refusable(stop: Stop) -> bool:
    """May this stop request be refused with a typed error (an oversized reason, or a blank
    terminate reason)? Anything else must be accepted: free text never changes what
    happens, and a blank cancel reason is recorded as "no reason given"."""
    return len(stop.reason) > 1000 or (stop.kind == "terminate" and not stop.reason.strip())


class Driver:
    """Drives one run; :mod:`scenarios.processes` swaps the in-process invocation for real
    worker processes (override :meth:`invoke`)."""

    def __init__(
        self,
        program: Program,
        schedule: Schedule,
        *,
        store: Store,
        clock: Any,
        ledger: Ledger,
        surface: str = "sync",
    ) -> None:
        self.program = program
        self.schedule = schedule
        self.clock = clock
        self.ledger = ledger
        self.obs = Observed()
        self.base = store
        crash_at, point = schedule.crash or (0, "after")
        self.store = CrashingStore(store, crash_at=crash_at, point=CrashPoint(point))
        make = build_async if surface == "async" else build
        self.saga = make(program, self.env(), deadline_s=oracle.deadline_s(program, schedule))
        self.rt = self.runtime()
        self.callbacks = dict(_callbacks(program))
        self.groups = {
            f"{op.name}/{b.name}": op.name
            for op in program.ops
            if isinstance(op, Parallel)
            for b in op.branches
        }
        self.group_rounds: dict[str, int] = {}

    def env(self) -> Env:
        """What the saga's bodies talk to (the ledger, the stop hooks, the journal probe)."""
        return Env(self.ledger, before=self.hook, recorded=self.recorded)

    def runtime(self) -> Runtime:
        return Runtime(
            self.store,
            clock=self.clock,
            functions=[self.saga],
            options=RuntimeOptions(lease_ttl=LEASE_TTL),
        )

    # --- hooks ---------------------------------------------------------------------------

    def recorded(self, name: str) -> bool:
        return any(
            op.name == name
            and op.type is OperationType.STEP
            and op.status is OperationStatus.SUCCEEDED
            for op in self.base.load_operations(EXECUTION_ID)
        )

    def hook(self, label: str) -> None:
        stop = self.schedule.stop
        if stop is None or self.ledger.marked(STOP_SENT) or stop.at != label:
            return
        self.fire(stop)
        self.clock.advance(HOOK_ADVANCE)

    def terminate_at(self, labels: list[str]) -> bool:
        """Send the schedule's later terminate if the run is at its point; True if sent."""
        at = self.schedule.terminate_at
        if (
            at is None
            or self.ledger.marked(TERMINATE_SENT)
            or at.removeprefix("wait:") not in labels
        ):
            return False
        self.ledger.mark(TERMINATE_SENT)
        self.rt.terminate(EXECUTION_ID, self.schedule.note, actor="scenario-operator")
        return True

    def fire(self, stop: Stop) -> None:
        self.ledger.mark(STOP_SENT)
        try:
            if stop.kind == "cancel":
                self.rt.cancel(EXECUTION_ID, stop.reason)
            elif stop.kind == "terminate" and stop.at.startswith("wait:operator:"):
                operator.terminate(self.rt, EXECUTION_ID, stop.reason, actor="scenario")
            elif stop.kind == "terminate":
                self.rt.terminate(EXECUTION_ID, stop.reason, actor="scenario")
            else:
                return  # a deadline is time, not a request
        except DurableError as e:
            self.ledger.mark(STOP_REFUSED)  # in the ledger: a worker process may send it
            if not refusable(stop):
                self.ledger.violation(f"{stop.kind} refused: {type(e).__name__}: {e}")
            return
        if stop.kind == "terminate" and not stop.reason.strip():
            self.ledger.violation("terminate accepted a blank reason")
        if stop.second is not None:
            # Reported as already requested, or refused: fine, as long as the first stands.
            with contextlib.suppress(DurableError):
                self.rt.cancel(EXECUTION_ID, stop.second)

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> Observed:
        """Drive the run to its end; every log line it wrote is checked for tokens."""
        with structlog.testing.capture_logs() as logs:
            observed = self._run()
        tokens = {
            op.callback_id for op in self.base.load_operations(EXECUTION_ID) if op.callback_id
        }
        for entry in logs:
            text = repr(entry)
            if any(token in text for token in tokens):
                observed.violations.append(
                    f"a callback token is in a log line ({entry.get('log_level')}: "
                    f"{entry.get('event')!r})"
                )
                break
        self.base.close()
        return observed

    def _run(self) -> Observed:
        self.rt.start(self.saga, None, execution_id=EXECUTION_ID)
        for _ in range(MAX_ROUNDS):
            ex = self.invoke()
            if ex is None:
                continue
            if ex.status.is_terminal:
                break
            if not self.suspended():
                break
        else:
            self.obs.error = f"driver: not settled after {MAX_ROUNDS} rounds"
        return self.finish()

    def invoke(self) -> Execution | None:
        """Let a worker run the execution while it is due; ``None`` if the worker died."""
        try:
            return self.rt.drive(EXECUTION_ID)
        except SimulatedCrash:
            self.recover()
            return None

    def recover(self) -> None:
        """A worker died holding the lease: a new one takes over once it expired."""
        self.obs.crashed = True
        self.rt = self.runtime()
        ex = self.base.get_execution(EXECUTION_ID)
        if ex.lease_expires is not None:
            self.clock.set(max(self.clock.now(), ex.lease_expires) + timedelta(seconds=1))

    def suspended(self) -> bool:
        """Act on a suspended execution; False when nothing more will happen."""
        ops = self.base.load_operations(EXECUTION_ID)
        open_ops = [
            i
            for i, op in enumerate(ops)
            if (
                op.type in (OperationType.WAIT, OperationType.CALLBACK)
                and op.status is OperationStatus.STARTED
            )
            or (op.type is OperationType.STEP and op.status is OperationStatus.PENDING)
        ]
        # A callback created earlier is waited on only once nothing after it is open (the
        # saga may be suspended on a step between creation and .result()).
        waiting = [
            (ops[i].name or "").removesuffix(CALLBACK_SUFFIX)  # wait_for_callback's by its name
            for i in open_ops
            if ops[i].type is not OperationType.CALLBACK or i == open_ops[-1]
        ]
        for group in sorted({self.groups[n] for n in waiting if n in self.groups}):
            self.group_rounds[group] = self.group_rounds.get(group, 0) + 1
            waiting.append(f"{group}#{self.group_rounds[group]}")
        stop = self.schedule.stop
        if (
            stop is not None
            and not self.ledger.marked(STOP_SENT)
            and stop.at.removeprefix("wait:") in waiting
        ):
            self.fire(stop)
            return True
        if self.terminate_at(waiting):
            return True
        started = [
            op
            for op in ops
            if op.type is OperationType.CALLBACK and op.status is OperationStatus.STARTED
        ]
        for op in reversed(started):  # a parked saga waits on its latest operator callback
            if (op.name or "").startswith("operator:"):
                return self.decide((op.name or "").removeprefix("operator:"))
        for op in started:
            name = (op.name or "").removesuffix(CALLBACK_SUFFIX)  # wait_for_callback's own
            spec = self.callbacks.get(name)
            early = isinstance(spec, Callback) and spec.early
            if name not in waiting and not early:
                continue  # created, but the saga is not at its .result() yet
            outcome = spec.outcome if spec is not None else None
            if stop is not None and stop.kind == "deadline" and stop.at == f"wait:{name}":
                continue  # let the deadline pass while it waits
            if outcome == "success":
                self.rt.send_callback_success(op.callback_id or "", {"ok": True})
                return True
            if outcome == "failure":
                self.rt.send_callback_failure(op.callback_id or "", "the provider said no")
                return True
        ex = self.base.get_execution(EXECUTION_ID)
        if ex.wake_at is None:
            return False
        if ex.wake_at > self.clock.now():
            self.clock.set(ex.wake_at)
        return True

    def decide(self, path: str) -> bool:
        decision = self.schedule.decision(path)
        note = self.schedule.note
        actor = "scenario-operator"
        if decision == "leave":
            return False
        if decision == "retry":
            self.ledger.mark(f"fixed:{path}")
            operator.retry_compensation(self.rt, EXECUTION_ID, actor=actor)
        elif decision == "skip":
            operator.skip_compensation(self.rt, EXECUTION_ID, note, actor=actor)
        elif decision == "resolve":
            operator.resolve(self.rt, EXECUTION_ID, note, actor=actor)
        else:
            operator.terminate(self.rt, EXECUTION_ID, note, actor=actor)
        return True

    def finish(self) -> Observed:
        obs = self.obs
        state = self.ledger.snapshot()
        obs.effects = state.effects
        obs.requests = state.requests
        obs.violations.extend(state.violations)
        obs.refused = self.ledger.marked(STOP_REFUSED)
        obs.writes = self.store.calls
        ex = self.base.get_execution(EXECUTION_ID)
        obs.execution_status = ex.status.value
        if ex.error is not None and obs.error is None:
            obs.error = f"{ex.error.type}: {ex.error.message[:300]}"
        outcome = saga_status(self.rt, EXECUTION_ID)
        obs.status = outcome.status.value
        obs.not_undone = list(outcome.not_undone)
        obs.parked_on = outcome.parked_on
        if outcome.cause is not None:
            obs.cause_kind = outcome.cause.kind
            obs.cause_message = outcome.cause.message
        return obs


def _callbacks(program: Program) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []

    def walk(ops: tuple[Any, ...], prefix: str) -> None:
        for op in ops:
            if isinstance(op, Callback | WaitForCallback):
                out.append((prefix + op.name, op))
            elif hasattr(op, "ops"):
                walk(op.ops, f"{prefix}{op.name}/")

    walk(program.ops, "")
    return out


def run(
    program: Program, schedule: Schedule, *, sqlite: bool = False, surface: str = "sync"
) -> Observed:
    """Run ``program`` under ``schedule`` once, as a sync or an ``async def`` saga
    (``surface``); return what it ended with."""
    if not sqlite:
        return Driver(
            program,
            schedule,
            store=MemoryStore(),
            clock=VirtualClock(),
            ledger=MemoryLedger(),
            surface=surface,
        ).run()
    with tempfile.TemporaryDirectory(prefix="scenario-") as tmp:
        store = SQLiteStore(Path(tmp) / "durable.sqlite3", durability="normal")
        return Driver(
            program,
            schedule,
            store=store,
            clock=VirtualClock(),
            ledger=MemoryLedger(),
            surface=surface,
        ).run()


def expected_for(program: Program, schedule: Schedule, observed: Observed) -> list[oracle.Expected]:
    """The ends the oracle allows; a refused stop request (see :func:`refusable`) counts
    as never sent."""
    if observed.refused and schedule.stop is not None and refusable(schedule.stop):
        schedule = replace(schedule, stop=None)
    return oracle.expect_all(program, schedule)


def problems(program: Program, schedule: Schedule, observed: Observed) -> list[str]:
    """Every way ``observed`` differs from the oracle (empty: the run is right). Where the
    rules allow several ends, the closest one is reported."""
    found = [compare(program, want, observed) for want in expected_for(program, schedule, observed)]
    return min(found, key=len)


def compare(program: Program, want: oracle.Expected, observed: Observed) -> list[str]:
    """Every way ``observed`` differs from one allowed end."""
    out = [f"violation: {v}" for v in observed.violations]
    dos = [p for a, p in observed.effects if a == "do"]
    undos = [p for a, p in observed.effects if a == "undo"]
    if sorted(dos) != sorted(want.dos):
        out.append(f"effects: done {sorted(dos)}, expected {sorted(want.dos)}")
    if undos != want.undos:
        out.append(f"undos: undone {undos}, expected {want.undos} in this order")
    first_undo = next((i for i, (a, _) in enumerate(observed.effects) if a == "undo"), None)
    if first_undo is not None and any(a == "do" for a, _ in observed.effects[first_undo:]):
        out.append("order: a forward effect happened after the rollback had started")
    if observed.execution_status != want.execution_status:
        out.append(f"execution: {observed.execution_status}, expected {want.execution_status}")
    if observed.status != want.status:
        out.append(f"status: {observed.status}, expected {want.status}")
    undoable = {p for p, s in steps_of(program.ops) if s.has_undo}
    if want.not_undone is not None:
        got = set(observed.not_undone) & undoable
        if got - want.maybe_not_undone != want.not_undone - want.maybe_not_undone:
            out.append(f"not_undone: {sorted(got)}, expected {sorted(want.not_undone)}")
    if want.cause_kind is not None and observed.cause_kind != want.cause_kind:
        out.append(f"cause: {observed.cause_kind}, expected {want.cause_kind}")
    message = want.cause_message
    seen = (observed.cause_message or "").strip()
    if message is not None and len(message) <= 1000 and seen != message.strip():
        out.append(f"cause_message: {observed.cause_message!r:.80}, expected {message!r:.80}")
    if want.parked_on != observed.parked_on:
        out.append(f"parked_on: {observed.parked_on}, expected {want.parked_on}")
    if out and observed.error:
        out.append(f"error: {observed.error}")
    return out


def signature(found: list[str]) -> str:
    """A failure's class: which checks failed and the statuses (for grouping and shrinking)."""
    codes = sorted({p.split(":", 1)[0] for p in found} - {"error"})
    statuses = [p for p in found if p.startswith(("status:", "execution:"))]
    return " ".join(codes) + (" | " + "; ".join(sorted(statuses)) if statuses else "")
