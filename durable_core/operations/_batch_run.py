"""The engine of ``ctx.parallel`` / ``ctx.map``: branches on threads, one decision, one record.

Journal shape: the batch is a CONTEXT operation (sub-type ``Parallel`` / ``Map``) in the
caller's scope; branch ``i`` is a CONTEXT child (``ParallelBranch`` / ``MapIteration``)
whose id is ``operation_id(batch_id, i + 1)`` and whose operations live in its own scope.

Invariants:
- Ids depend on the branch index only, never on completion order, so a replay allocates the
  same ids whatever finished first.
- A branch's CONTEXT record (SUCCEEDED or FAILED, with its value or error) is written when
  the branch finishes, so a crash never re-runs a finished branch. A waiting branch writes
  nothing of its own; it resumes from its inner records on the next invocation.
- Every decision is taken under ``journal.lock``, the lock that serializes checkpoint
  writes: a branch records its end only if the batch is still undecided, and the decision
  (the batch's SUCCEEDED record with its summary, plus CANCELLED records for branches that
  started but did not finish) is one atomic write. No record is written twice or lost.
- A finished batch replays from its record and its branches' records: no branch code runs.
- The batch suspends only when no branch can run and the policy is undecided, with the
  earliest ``wake_at`` of the waiting branches (``None`` when all wait for events).
- A branch still running when the batch is decided cannot be killed. Its journal view is
  closed: its next operation, or its next checkpoint write, raises :class:`BranchCancelled`
  (a ``BaseException``), which ends the thread; whatever it computed is discarded. It can
  never overwrite its CANCELLED record nor consume the execution's cancellation. (Pool
  threads are joined at interpreter exit, so a process waits for such a body to return.)
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

from pydantic import BaseModel, ConfigDict

from durable_core.errors import (
    CorruptRecordError,
    ExecutionCancelledError,
    LeaseLostError,
    NonDeterminismError,
    StoreError,
    SuspendExecution,
)
from durable_core.journal import Journal, stop_info
from durable_core.operations._batch_types import (
    BatchItem,
    BatchItemStatus,
    BatchResult,
    CompletionPolicy,
    CompletionReason,
)
from durable_core.operations._batch_view import BranchCancelled, BranchJournal, Gate
from durable_core.operations._core import DurableOp, Plan, RunBranches
from durable_core.records import (
    ErrorInfo,
    Operation,
    OperationStatus,
    OperationType,
)
from durable_core.replay import Scope, Slot, operation_id

_FATAL = (LeaseLostError, NonDeterminismError, StoreError)
"""Errors that say "this invocation cannot go on", never "this branch failed"."""


@dataclass(frozen=True)
class BranchSpec:
    """One branch to run: its name, its body and the type its value is serialized by."""

    name: str
    fn: Callable[[Any], Any]
    result_type: Any


class _Summary(BaseModel):
    """The batch record's result: how it ended, per branch (values stay in branch records)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    completion_reason: CompletionReason
    statuses: list[BatchItemStatus]


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
    workers = max(1, min(run.max_concurrency, len(pending)))
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
    DurableContext; an AsyncDurableContext for async branches).
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
        max_concurrency: int,
    ) -> None:
        super().__init__(scope, name, sub_type)
        self.make_context = make_context
        self.branch_sub_type = branch_sub_type
        self.specs = specs
        self.policy = policy
        self.max_concurrency = max_concurrency
        outer = self.journal
        self.root: Journal = outer._base if isinstance(outer, BranchJournal) else outer
        self.outer_gate = outer._gate if isinstance(outer, BranchJournal) else None
        n = len(specs)
        self.gates = [Gate(self.outer_gate) for _ in range(n)]
        self.status: list[BatchItemStatus | None] = [None] * n
        self.counts: Counter[BatchItemStatus] = Counter()
        self.started = [False] * n
        self.begun: list[datetime | None] = [None] * n
        self.suspended: dict[int, SuspendExecution] = {}
        self.decided: CompletionReason | None = None
        self.cancel: ExecutionCancelledError | None = None
        self.fatal: BaseException | None = None
        self.slot: Slot | None = None
        self.slots: list[Slot] = []

    # --- the call -------------------------------------------------------------------------

    def finished(self, rec: Operation) -> bool:
        return rec.status.is_terminal

    def replay(self, rec: Operation) -> BatchResult[Any]:
        if rec.status is OperationStatus.SUCCEEDED:
            return self._replay_finished(rec)
        raise CorruptRecordError(
            f"batch {self.name!r} of execution {self.journal.execution_id!r} is recorded "
            f"{rec.status.value} without a cancellation; the journal was altered"
        )

    def begin(self) -> Slot:
        self.slot = super().begin()
        return self.slot

    def execute(self, slot: Slot) -> Plan[BatchResult[Any]]:
        journal = self.journal
        rec = slot.recorded
        self._check_count(rec)
        try:
            bscope = Scope(journal, parent_id=slot.id, path=slot.position, replaying=False)
            self.slots = [
                bscope.begin(OperationType.CONTEXT, s.name, self.branch_sub_type, deliver=False)
                for s in self.specs
            ]
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

    def _check_count(self, rec: Operation | None) -> None:
        if rec is None or rec.payload is None:
            return
        recorded = int(json.loads(rec.payload).get("branches", -1))
        if recorded != len(self.specs):
            assert self.slot is not None
            raise self.scope.diverged(
                self.slot,
                NonDeterminismError(
                    execution_id=self.journal.execution_id,
                    position=self.slot.position,
                    expected=f"{self.sub_type} {self.name!r} with {recorded} branch(es)",
                    found=f"{self.sub_type} {self.name!r} with {len(self.specs)} branch(es)",
                ),
            )

    def _preload(self) -> None:
        """Take the outcomes of branches recorded by earlier invocations; decide if we can."""
        for i, s in enumerate(self.slots):
            r = s.recorded
            if r is None or not r.status.is_terminal:
                self.started[i] = self.root.get(operation_id(s.id, 1)) is not None
            elif r.status is OperationStatus.SUCCEEDED:
                self._finished(i, BatchItemStatus.SUCCEEDED)
            else:
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
        """Take the branches that may start now (call under ``root.lock``)."""
        taken: list[int] = []
        while not self.stopping() and pending and running + len(taken) < limit:
            i = pending.popleft()
            self.started[i] = True
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
        scope = Scope(view, parent_id=slot.id, path=slot.position, replaying=first is not None)
        return self.make_context(scope)

    def succeeded(self, i: int, value: Any) -> _Outcome:
        """The outcome of branch ``i`` that returned ``value`` (serialized now)."""
        spec = self.specs[i]
        what = f"{self.branch_sub_type} {spec.name!r} of {self.name!r}"
        return _Outcome(
            _Kind.SUCCEEDED, text=self.root.serde.dump(value, spec.result_type, what=what)
        )

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
            if outcome.kind is _Kind.SUCCEEDED:
                self.journal.checkpoint(
                    self._branch(i, OperationStatus.SUCCEEDED, result=outcome.text)
                )
                self._finished(i, BatchItemStatus.SUCCEEDED)
            else:
                assert isinstance(outcome.error, Exception)
                if isinstance(outcome.error, ExecutionCancelledError):
                    info = stop_info(outcome.error)
                    self.cancel = self.cancel or outcome.error
                else:
                    info = ErrorInfo.from_exception(outcome.error)
                self.journal.checkpoint(self._branch(i, OperationStatus.FAILED, error=info))
                self._finished(i, BatchItemStatus.FAILED)
            if self.fatal is None and self.decided is None and self.cancel is None:
                self.decided = self._decide()
            if self.decided is not None or self.cancel is not None:
                for j, status in enumerate(self.status):
                    if status is None:
                        self.gates[j].closed = True

    # --- ending ---------------------------------------------------------------------------

    def _unfinished_records(self) -> list[Operation]:
        """CANCELLED records for branches that started but did not finish; mark the rest."""
        ops = []
        for i, status in enumerate(self.status):
            if status is not None:
                continue
            self.gates[i].closed = True
            if self.started[i]:
                self.status[i] = BatchItemStatus.CANCELLED
                ops.append(self._branch(i, OperationStatus.CANCELLED))
            else:
                self.status[i] = BatchItemStatus.NOT_STARTED
        return ops

    def _record_decision(self, reason: CompletionReason) -> BatchResult[Any]:
        with self.root.lock:
            ops = self._unfinished_records()
            statuses = [s or BatchItemStatus.NOT_STARTED for s in self.status]
            summary = _Summary(completion_reason=reason, statuses=statuses)
            done = self._record(OperationStatus.SUCCEEDED, result=summary.model_dump_json())
            self.journal.checkpoint(*ops, done)
        return self._result(summary, [s.id for s in self.slots])

    def _record_cancelled(self, exc: ExecutionCancelledError) -> None:
        with self.root.lock:
            ops = self._unfinished_records() if self.slots else []
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

    def _replay_finished(self, rec: Operation) -> BatchResult[Any]:
        assert self.slot is not None
        what = f"batch {self.name!r}"
        summary = self.root.serde.load(rec.result or "null", _Summary, what=what)
        if len(summary.statuses) != len(self.specs):
            raise self.scope.diverged(
                self.slot,
                NonDeterminismError(
                    execution_id=self.journal.execution_id,
                    position=self.slot.position,
                    expected=f"{self.sub_type} {self.name!r} with {len(summary.statuses)} "
                    "branch(es)",
                    found=f"{self.sub_type} {self.name!r} with {len(self.specs)} branch(es)",
                ),
            )
        ids = [operation_id(self.slot.id, i + 1) for i in range(len(self.specs))]
        for i, op_id in enumerate(ids):
            branch = self.root.get(op_id)
            if branch is not None and branch.name != self.specs[i].name:
                raise self.scope.diverged(
                    self.slot,
                    NonDeterminismError(
                        execution_id=self.journal.execution_id,
                        position=f"{self.slot.position}.{i + 1}",
                        expected=f"branch {branch.name!r}",
                        found=f"branch {self.specs[i].name!r}",
                    ),
                )
        return self._result(summary, ids)

    def _result(self, summary: _Summary, ids: list[str]) -> BatchResult[Any]:
        items: list[BatchItem[Any]] = []
        serde = self.root.serde
        for i, (status, op_id) in enumerate(zip(summary.statuses, ids, strict=True)):
            spec = self.specs[i]
            value: Any = None
            error: ErrorInfo | None = None
            rec = self.root.get(op_id)
            if status is BatchItemStatus.SUCCEEDED and rec is not None:
                what = f"{self.branch_sub_type} {spec.name!r} of {self.name!r}"
                value = serde.load(rec.result or "null", spec.result_type, what=what)
            elif status is BatchItemStatus.FAILED and rec is not None:
                error = rec.error
            items.append(
                BatchItem(index=i, name=spec.name, status=status, value=value, error=error)
            )
        return BatchResult(name=self.name, items=items, completion_reason=summary.completion_reason)

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
