"""The engine of ``ctx.parallel`` / ``ctx.map``: branches on threads, one decision, one record.

Journal shape: the batch is a CONTEXT operation (sub-type ``Parallel`` / ``Map``) in the
caller's scope; branch ``i`` has the id ``operation_id(batch_id, i + 1)``. NESTED (the
default): branch ``i`` is a CONTEXT child (``ParallelBranch`` / ``MapIteration``) whose
operations live in its own scope. FLAT: the branch records nothing of its own; its
operations are children of the batch, with ids derived from the branch's id.

Invariants:
- Ids depend on the branch index only, never on completion order, so a replay allocates the
  same ids whatever finished first.
- A NESTED branch's CONTEXT record (SUCCEEDED or FAILED, with its value or error) is written
  when the branch finishes, so a crash never re-runs a finished branch. A FLAT branch, or a
  waiting one, writes nothing of its own; it resumes from its inner records on the next
  invocation (a finished FLAT branch runs again, replaying them).
- Every decision is taken under ``journal.lock``, the lock that serializes checkpoint
  writes: a branch records its end only if the batch is still undecided, and the decision
  is one write: the batch's SUCCEEDED record holding the whole result (see
  :mod:`~durable_core.operations._batch_text`). A finished batch replays from that record:
  no branch code runs. The value returned on the first run is the one read back from it.
- At most ``max_concurrency`` branches are in flight (started, not finished): a waiting
  branch keeps its slot, as in AWS's SDK. The batch suspends only when no branch can run
  and the policy is undecided, with the earliest ``wake_at`` of the waiting branches
  (``None`` when all wait for events).
- A branch still running when the batch is decided cannot be killed. It is left STARTED
  (no record of its end, as AWS's SDK leaves it) and its journal view is closed: its next
  operation, or its next checkpoint write, raises :class:`BranchCancelled` (a
  ``BaseException``), which ends the thread; whatever it computed is discarded. It can
  never record anything nor consume the execution's cancellation. (Pool threads are joined
  at interpreter exit, so a process waits for such a body to return.)
- Control-flow signals from a branch (ReplayBoundary, SimulatedCrash) and fatal errors
  (LeaseLostError, NonDeterminismError, StoreError) stop new branches from starting; the
  running ones finish, then the first signal is re-raised. Nothing is decided meanwhile.
"""

from __future__ import annotations

import contextvars
import json
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from durable_core.errors import (
    ExecutionCancelledError,
    LeaseLostError,
    NonDeterminismError,
    StoreError,
    SuspendExecution,
)
from durable_core.journal import Journal, stop_info
from durable_core.operations._batch_outcome import BatchOutcome
from durable_core.operations._batch_types import (
    BatchItemStatus,
    BatchResult,
    CompletionPolicy,
    CompletionReason,
    Nesting,
)
from durable_core.operations._batch_view import BranchCancelled, BranchJournal, Gate
from durable_core.operations._core import DurableOp, Plan, RunBranches
from durable_core.records import ErrorInfo, Operation, OperationStatus, OperationType
from durable_core.replay import Scope, Slot, operation_id
from durable_core.serde import Serializer, dump_value

_FATAL = (LeaseLostError, NonDeterminismError, StoreError)
"""Errors that say "this invocation cannot go on", never "this branch failed"."""

MAX_THREADS = 32
"""Threads per batch when ``max_concurrency`` is not given (fewer if there are fewer
branches). Branch bodies mostly wait on I/O; checkpoint writes are serialized anyway."""


@dataclass(frozen=True)
class BranchSpec:
    """One branch to run: its name, its body and the type its value is serialized by."""

    name: str
    fn: Callable[[Any], Any]
    result_type: Any


def outcome_of(exc: BaseException) -> _Outcome:
    """How a branch that raised ``exc`` ended."""
    if isinstance(exc, BranchCancelled):
        return _Outcome(_Kind.ABANDONED)
    if isinstance(exc, SuspendExecution):
        return _Outcome(_Kind.SUSPENDED, error=exc)
    if isinstance(exc, ExecutionCancelledError):
        return _Outcome(_Kind.CANCELLED, error=exc)
    if isinstance(exc, _FATAL) or not isinstance(exc, Exception):
        return _Outcome(_Kind.FATAL, error=exc)  # ReplayBoundary, SimulatedCrash: re-raised
    return _Outcome(_Kind.FAILED, error=exc)


def run_branches_on_threads(run: BatchRun) -> None:
    """The sync driver's :class:`RunBranches`: undecided branches on a thread pool."""
    pending = deque(i for i, s in enumerate(run.status) if s is None)
    cap = run.max_concurrency or MAX_THREADS
    workers = max(1, min(cap, len(pending)))
    pool = ThreadPoolExecutor(
        max_workers=workers, thread_name_prefix=f"durable-{run.sub_type.lower()}"
    )
    running: set[Future[None]] = set()
    try:
        while True:
            with run.root.lock:
                for i in run.next_branches(pending, len(running), workers):
                    ctx = contextvars.copy_context()
                    running.add(pool.submit(ctx.run, _run_branch, run, i))
                stop = run.stopping()
            if not running or (stop and run.fatal is None):
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            running -= done
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if run.outer_gate is not None:
        run.outer_gate.check()  # an enclosing batch gave this branch up meanwhile


def _run_branch(run: BatchRun, i: int) -> None:
    """Run branch ``i`` on a pool thread and settle its outcome (never raises)."""
    try:
        outcome = run.succeeded(i, run.specs[i].fn(run.enter(i)))
    except BaseException as exc:
        outcome = outcome_of(exc)
    run.settle_safely(i, outcome)


class _Kind(Enum):
    SUCCEEDED = 1
    FAILED = 2
    CANCELLED = 3  # the execution was cancelled inside the branch
    SUSPENDED = 4
    FATAL = 5
    ABANDONED = 6


@dataclass(frozen=True)
class _Outcome:
    kind: _Kind
    text: str | None = None
    error: BaseException | None = None


class BatchRun(DurableOp[BatchResult[Any]]):
    """One call of ``parallel`` / ``map`` within one invocation.

    ``make_context`` makes the context a branch body receives for its scope (a
    DurableContext; an AsyncDurableContext for async branches). ``max_concurrency`` is
    ``None`` for no limit (every branch may be in flight; at most :data:`MAX_THREADS`
    threads run bodies at once).
    """

    op_type = OperationType.CONTEXT

    def __init__(
        self,
        scope: Scope,
        name: str,
        make_context: Callable[[Scope], Any],
        *,
        sub_type: str,
        branch_sub_type: str,
        specs: list[BranchSpec],
        policy: CompletionPolicy,
        max_concurrency: int | None,
        nesting: Nesting = Nesting.NESTED,
        serializer: Serializer | None = None,
        item_serializer: Serializer | None = None,
    ) -> None:
        super().__init__(scope, name, sub_type)
        self.make_context = make_context
        self.branch_sub_type = branch_sub_type
        self.specs = specs
        self.policy = policy
        self.max_concurrency = max_concurrency
        self.nesting = nesting
        self.item_serializer = item_serializer
        outer = self.journal
        self.root: Journal = outer._base if isinstance(outer, BranchJournal) else outer
        self.outer_gate = outer._gate if isinstance(outer, BranchJournal) else None
        n = len(specs)
        self.gates = [Gate(self.outer_gate) for _ in range(n)]
        self.status: list[BatchItemStatus | None] = [None] * n
        self.texts: list[str | None] = [None] * n
        self.errors: list[ErrorInfo | None] = [None] * n
        self.counts: Counter[BatchItemStatus] = Counter()
        self.started = [False] * n
        self.in_flight = 0
        self.begun: list[datetime | None] = [None] * n
        self.suspended: dict[int, SuspendExecution] = {}
        self.decided: CompletionReason | None = None
        self.cancel: ExecutionCancelledError | None = None
        self.fatal: BaseException | None = None
        self.slot: Slot | None = None
        self.slots: list[Slot] = []
        self.outcome = BatchOutcome(self, serializer)

    # --- the call -------------------------------------------------------------------------

    def finished(self, rec: Operation) -> bool:
        return rec.status.is_terminal

    def replay(self, rec: Operation) -> BatchResult[Any]:
        assert self.slot is not None
        return self.outcome.replay(rec)

    def begin(self) -> Slot:
        self.slot = super().begin()
        return self.slot

    def execute(self, slot: Slot) -> Plan[BatchResult[Any]]:
        journal = self.journal
        rec = slot.recorded
        self._check_count(rec)
        try:
            self.slots = self._branch_slots(slot)
        except ExecutionCancelledError as exc:
            self._record_cancelled(exc)
            raise
        self._preload()
        if self.decided is None:
            if rec is None:
                journal.checkpoint(self._record(OperationStatus.STARTED))
            yield RunBranches(self)
        if self.fatal is not None:
            raise self.fatal
        if self.cancel is not None:
            self._record_cancelled(self.cancel)
            raise self.cancel
        if self.decided is not None:
            return self._record_decision(self.decided)
        raise self._suspension()

    def _branch_slots(self, slot: Slot) -> list[Slot]:
        bscope = Scope(self.journal, parent_id=slot.id, path=slot.position, replaying=False)
        if self.nesting is Nesting.NESTED:
            return [
                bscope.begin(OperationType.CONTEXT, s.name, self.branch_sub_type, deliver=False)
                for s in self.specs
            ]
        slots = []
        for i, spec in enumerate(self.specs):  # FLAT: the ids, and no record may be there
            op_id = operation_id(slot.id, i + 1)
            rec = self.root.get(op_id)
            if rec is not None:
                raise self.diverged(
                    f"{slot.position}.{i + 1}",
                    expected=f"{rec.sub_type} {rec.name!r} (a NESTED branch)",
                    found=f"FLAT branch {spec.name!r} (no record of its own)",
                )
            slots.append(Slot(op_id, f"{slot.position}.{i + 1}", None, slot.id))
        return slots

    def diverged(self, position: str, *, expected: str, found: str) -> BaseException:
        """The NonDeterminismError for this batch's journal disagreeing with the code."""
        assert self.slot is not None
        return self.scope.diverged(
            self.slot,
            NonDeterminismError(
                execution_id=self.journal.execution_id,
                position=position,
                expected=expected,
                found=found,
            ),
        )

    def _check_count(self, rec: Operation | None) -> None:
        if rec is None or rec.payload is None:
            return
        recorded = int(json.loads(rec.payload).get("branches", -1))
        if recorded != len(self.specs):
            assert self.slot is not None
            raise self.diverged(
                self.slot.position,
                expected=f"{self.sub_type} {self.name!r} with {recorded} branch(es)",
                found=f"{self.sub_type} {self.name!r} with {len(self.specs)} branch(es)",
            )

    def _preload(self) -> None:
        """Take the outcomes of branches recorded by earlier invocations; decide if we can."""
        for i, s in enumerate(self.slots):
            r = s.recorded
            if r is None or not r.status.is_terminal:
                self.started[i] = self.root.get(operation_id(s.id, 1)) is not None
            elif r.status is OperationStatus.SUCCEEDED:
                self.started[i] = True
                self.texts[i] = r.result or "null"
                self._finished(i, BatchItemStatus.SUCCEEDED)
            else:
                self.started[i] = True
                self.errors[i] = r.error or ErrorInfo(type="Error", message="")
                self._finished(i, BatchItemStatus.FAILED)
        self.decided = self._decide()

    def _finished(self, i: int, status: BatchItemStatus) -> None:
        self.status[i] = status
        self.counts[status] += 1

    def _decide(self) -> CompletionReason | None:
        return self.policy.decide(
            succeeded=self.counts[BatchItemStatus.SUCCEEDED],
            failed=self.counts[BatchItemStatus.FAILED],
            total=len(self.specs),
        )

    # --- running branches -----------------------------------------------------------------

    def stopping(self) -> bool:
        """True once no branch may start: decided, cancelled or a fatal error (under lock)."""
        return self.decided is not None or self.cancel is not None or self.fatal is not None

    def next_branches(self, pending: deque[int], running: int, limit: int) -> list[int]:
        """Take the branches that may start now: a free runner (``running`` of ``limit``)
        and a free slot of ``max_concurrency`` (call under ``root.lock``)."""
        taken: list[int] = []
        slots = self.max_concurrency or len(self.specs)
        while (
            not self.stopping()
            and pending
            and running + len(taken) < limit
            and self.in_flight < slots
        ):
            i = pending.popleft()
            self.started[i] = True
            self.in_flight += 1
            self.suspended.pop(i, None)
            taken.append(i)
        return taken

    def enter(self, i: int) -> Any:
        """The context branch ``i``'s body receives (BranchCancelled if given up meanwhile)."""
        slot = self.slots[i]
        view = BranchJournal(self.root, self.gates[i])
        self.gates[i].check()  # decided while this branch sat in the queue
        with self.root.lock:
            self.begun[i] = self.root.now()
        if (hooks := self.root.instrumentation) is not None:
            hooks.branch_started(self, i)
        first = self.root.get(operation_id(slot.id, 1))
        if self.nesting is Nesting.FLAT:
            if first is not None and first.parent_id != slot.parent_id:
                raise self.diverged(
                    slot.position,
                    expected=f"NESTED branch {self.specs[i].name!r} (its own record)",
                    found=f"FLAT branch {self.specs[i].name!r}",
                )
            parent = slot.parent_id
        else:
            if slot.recorded is None and first is not None and first.parent_id != slot.id:
                raise self.diverged(
                    slot.position,
                    expected=f"FLAT branch {self.specs[i].name!r} (no record of its own)",
                    found=f"NESTED branch {self.specs[i].name!r}",
                )
            parent = slot.id
        scope = Scope(
            view, parent_id=parent, path=slot.position, replaying=first is not None, space=slot.id
        )
        return self.make_context(scope)

    def succeeded(self, i: int, value: Any) -> _Outcome:
        """The outcome of branch ``i`` that returned ``value`` (serialized now)."""
        spec = self.specs[i]
        text = dump_value(
            self.root.serde,
            value,
            spec.result_type,
            what=self.branch_what(i),
            serializer=self.item_serializer,
        )
        return _Outcome(_Kind.SUCCEEDED, text=text)

    def branch_what(self, i: int) -> str:
        """Branch ``i`` as error messages name it."""
        return f"{self.branch_sub_type} {self.specs[i].name!r} of {self.name!r}"

    def settle_safely(self, i: int, outcome: _Outcome) -> None:
        """Settle branch ``i`` (never raises: a failed write is kept as the fatal error)."""
        try:
            self._settle(i, outcome)
        except BranchCancelled:
            pass
        except BaseException as exc:  # the write failed: the invocation cannot go on
            with self.root.lock:
                if self.fatal is None:
                    self.fatal = exc
        if (hooks := self.root.instrumentation) is not None and self.begun[i] is not None:
            hooks.branch_ended(self, i, outcome.error)

    def _settle(self, i: int, outcome: _Outcome) -> None:
        """Record how branch ``i`` ended and re-evaluate the policy, atomically."""
        with self.root.lock:
            if self.gates[i].is_closed() or outcome.kind is _Kind.ABANDONED:
                return  # decided without this branch: its result is discarded
            if outcome.kind is _Kind.SUSPENDED:
                assert isinstance(outcome.error, SuspendExecution)
                self.suspended[i] = outcome.error
                return
            if outcome.kind is _Kind.FATAL:
                if self.fatal is None:
                    self.fatal = outcome.error
                return
            self._record_end(i, outcome)
            self.in_flight -= 1
            if self.fatal is None and self.decided is None and self.cancel is None:
                self.decided = self._decide()
            if self.decided is not None or self.cancel is not None:
                for j, status in enumerate(self.status):
                    if status is None:
                        self.gates[j].closed = True

    def _record_end(self, i: int, outcome: _Outcome) -> None:
        """Keep (and, NESTED, record) branch ``i``'s value or error (under the lock)."""
        nested = self.nesting is Nesting.NESTED
        if outcome.kind is _Kind.SUCCEEDED:
            if nested:
                self.journal.checkpoint(
                    self._branch(i, OperationStatus.SUCCEEDED, result=outcome.text)
                )
            self.texts[i] = outcome.text
            self._finished(i, BatchItemStatus.SUCCEEDED)
            return
        assert isinstance(outcome.error, Exception)
        if isinstance(outcome.error, ExecutionCancelledError):
            info = stop_info(outcome.error)
            self.cancel = self.cancel or outcome.error
        else:
            info = ErrorInfo.from_exception(outcome.error)
        if nested:
            self.journal.checkpoint(self._branch(i, OperationStatus.FAILED, error=info))
        self.errors[i] = info
        self._finished(i, BatchItemStatus.FAILED)

    # --- ending ---------------------------------------------------------------------------

    def _record_decision(self, reason: CompletionReason) -> BatchResult[Any]:
        with self.root.lock:
            for gate in self.gates:
                gate.closed = True
            text = self.outcome.text(reason)
            done = self._record(OperationStatus.SUCCEEDED, result=text)
            self.journal.checkpoint(done)
        return self.outcome.recorded_now(text)

    def _record_cancelled(self, exc: ExecutionCancelledError) -> None:
        with self.root.lock:
            ops = []
            for i, status in enumerate(self.status):
                self.gates[i].closed = True
                if status is None and self.started[i] and self.nesting is Nesting.NESTED:
                    ops.append(self._branch(i, OperationStatus.CANCELLED))
            self.journal.checkpoint(
                *ops, self._record(OperationStatus.FAILED, error=stop_info(exc))
            )

    def _suspension(self) -> SuspendExecution:
        waits = [s.wake_at for s in self.suspended.values() if s.wake_at is not None]
        first = next(iter(self.suspended.values()), None)
        detail = f"; first: {first.reason}" if first is not None else ""
        return SuspendExecution(
            f"{self.sub_type.lower()} {self.name!r}: {len(self.suspended)} branch(es) "
            f"waiting{detail}",
            wake_at=min(waits) if waits else None,
        )

    # --- records --------------------------------------------------------------------------

    def _record(self, status: OperationStatus, **fields: Any) -> Operation:
        slot = self.slot
        assert slot is not None
        now = self.root.now()
        rec = slot.recorded
        return Operation(
            id=slot.id,
            parent_id=slot.parent_id,
            type=OperationType.CONTEXT,
            sub_type=self.sub_type,
            name=self.name,
            status=status,
            payload=json.dumps({"branches": len(self.specs)}),
            started_at=rec.started_at if rec is not None and rec.started_at else now,
            ended_at=now if status.is_terminal else None,
            **fields,
        )

    def _branch(self, i: int, status: OperationStatus, **fields: Any) -> Operation:
        slot = self.slots[i]
        now = self.root.now()
        return Operation(
            id=slot.id,
            parent_id=slot.parent_id,
            type=OperationType.CONTEXT,
            sub_type=self.branch_sub_type,
            name=self.specs[i].name,
            status=status,
            started_at=self.begun[i],
            ended_at=now,
            **fields,
        )
