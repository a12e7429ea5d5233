"""The engine's side of :mod:`durable_core.instrumentation`: one invocation's dispatcher.

A :class:`Hooks` is made per invocation (on the root :class:`~durable_core.journal.Journal`,
``journal.instrumentation``) only when instrumentation is configured; without it the
journal holds ``None`` and the engine checks that once per operation, nothing more.

Where the hooks are called from:
- the operation core (``DurableOp.plan``): :meth:`Hooks.replayed` for a finished record,
  :meth:`Hooks.observe` around the plan of an operation that runs, which watches the plan's
  effects and the journal's record of the operation to see attempts start, fail and retry;
- the batch engine, for each branch it runs (:meth:`Hooks.branch_started`,
  :meth:`Hooks.branch_ended`);
- the invocation (:mod:`durable_core.runtime.invocation`) at its start and end;
- ``ctx.phase`` (:meth:`Hooks.phase`).

Invariants:
- Every call is contained (:meth:`Hooks.emit`): an instrumentation that raises an
  ``Exception`` is logged once per class and hook, with its error's type only, and ignored.
- The observer changes nothing a plan sees: every effect, value and error is passed through
  unchanged, in order; it only reads the journal (the root journal, never a branch's
  closable view).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from durable_core.errors import SuspendExecution
from durable_core.instrumentation import (
    HOOKS,
    ErrorSummary,
    Instrumentation,
    InvocationInfo,
    InvocationOutcome,
    OperationInfo,
    PhaseInfo,
)
from durable_core.operations._core import Call
from durable_core.records import ErrorInfo, ExecutionStatus, Operation, OperationStatus

if TYPE_CHECKING:
    from durable_core.journal import Journal
    from durable_core.operations._batch_run import BatchRun
    from durable_core.operations._core import DurableOp, Plan
    from durable_core.replay import Scope, Slot
    from durable_core.stores.base import InvocationEnd

T = TypeVar("T")

_log = structlog.get_logger("durable.instrumentation")
_reported: set[tuple[str, str]] = set()
_reported_lock = threading.Lock()


def summary(error: ErrorInfo | BaseException) -> ErrorSummary:
    """The :class:`ErrorSummary` of a recorded error or an exception."""
    if isinstance(error, BaseException):
        error = ErrorInfo.from_exception(error, with_traceback=False)
    return ErrorSummary(type=error.type, message=error.message)


def _report(instrumentation: object, hook: str, error: Exception) -> None:
    """Log a failing hook once per class and hook: its type only (its text may hold data)."""
    key = (type(instrumentation).__qualname__, hook)
    with _reported_lock:
        if key in _reported:
            return
        _reported.add(key)
    _log.warning(
        "an instrumentation hook raised; ignored (reported once per class and hook)",
        instrumentation=key[0],
        hook=hook,
        error_type=type(error).__qualname__,
    )


class Hooks:
    """The instrumentations of one invocation, each call contained."""

    def __init__(self, instrumentations: Sequence[Any], journal: Journal) -> None:
        self.journal = journal
        ex = journal.execution
        self.invocation = InvocationInfo(
            execution_id=ex.id,
            function=ex.function,
            first=not journal.operations(),
            started_at=journal.now(),
            execution_started_at=ex.created_at,
            due_at=ex.wake_at,
            parent_execution_id=ex.parent_execution_id,
        )
        self._table: dict[str, list[tuple[object, Any]]] = {
            name: [(i, fn) for i in instrumentations if (fn := _hook(i, name)) is not None]
            for name in HOOKS
        }
        self._phase_ids = itertools.count(1)
        self._phases: dict[int, PhaseInfo] = {}
        self._ran: set[int] = set()

    def emit(self, hook: str, *args: Any) -> None:
        """Call ``hook`` on every instrumentation that has it; contain what one raises."""
        for instrumentation, fn in self._table[hook]:
            try:
                fn(*args)
            except Exception as e:
                _report(instrumentation, hook, e)

    # --- the invocation -------------------------------------------------------------------

    def invocation_started(self) -> None:
        """Report the invocation's start."""
        self.emit("invocation_started", self.invocation)

    def invocation_finished(self, end: InvocationEnd) -> None:
        """Report how the invocation ended."""
        error = summary(end.error) if end.error is not None else None
        if end.status is not ExecutionStatus.RUNNING:
            outcome = InvocationOutcome(status=end.status.value, error=error)
        else:
            outcome = InvocationOutcome(
                status="PARKED" if error is not None else "SUSPENDED",
                error=error,
                waiting_for=end.waiting_for,
                wake_at=end.wake_at,
            )
        self.emit("invocation_finished", self.invocation, outcome)

    def invocation_interrupted(self, error: BaseException) -> None:
        """Report an invocation that stopped without an outcome (``error`` propagates)."""
        outcome = InvocationOutcome(status="INTERRUPTED", error=summary(error))
        self.emit("invocation_finished", self.invocation, outcome)

    # --- operations -----------------------------------------------------------------------

    def info(self, op: DurableOp[Any], slot: Slot) -> OperationInfo:
        """What the hooks are told about ``op`` at ``slot``."""
        rec = slot.recorded
        attempt = 1
        if rec is not None and op.op_type.value == "STEP":
            # A step's (or poll's) next attempt, as the step counts it: after a recorded
            # failure the one after it; a STARTED attempt is resumed as itself.
            attempt = rec.attempt + 1 if rec.status is OperationStatus.PENDING else rec.attempt
        phase = op.scope.phase
        return OperationInfo(
            execution_id=self.invocation.execution_id,
            operation_id=slot.id,
            parent_id=slot.parent_id,
            phase_id=phase.phase_id if phase is not None else None,
            type=op.op_type.value,
            sub_type=op.sub_type,
            name=op.name,
            position=slot.position,
            attempt=max(attempt, 1),
        )

    def replayed(self, op: DurableOp[Any], slot: Slot) -> None:
        """Report an operation returned from its finished record."""
        assert slot.recorded is not None
        self.emit("operation_replayed", self.info(op, slot), slot.recorded.status.value)

    def started(self, info: OperationInfo) -> None:
        """Report an attempt's start; mark the phases around it as run."""
        phase_id = info.phase_id
        while phase_id is not None and phase_id not in self._ran:
            self._ran.add(phase_id)
            phase = self._phases.get(phase_id)
            phase_id = phase.parent_phase_id if phase is not None else None
        self.emit("operation_started", info)

    def ended(self, info: OperationInfo, error: BaseException | None) -> None:
        """Report the end of an operation (from its record, else from how its plan left)."""
        rec = self.journal.get(info.operation_id)
        if rec is not None and (rec.status.is_terminal or error is None):
            self.emit("operation_ended", info, rec.status.value, _recorded_error(rec))
        elif error is None:
            self.emit("operation_ended", info, "SUCCEEDED", None)
        else:
            status = "FAILED" if isinstance(error, Exception) else "INTERRUPTED"
            self.emit("operation_ended", info, status, summary(error))

    def suspended(self, info: OperationInfo, signal: SuspendExecution) -> None:
        """Report an operation that suspends the invocation."""
        self.emit("operation_suspended", info, signal.reason, signal.wake_at)

    def observe(self, op: DurableOp[T], slot: Slot, plan: Plan[T]) -> Plan[T]:
        """``plan``, unchanged, with its operation's attempts reported as they happen."""
        watch = _Watch(self, self.info(op, slot), slot.recorded)
        self.started(watch.info)
        reply: Any = None
        error: BaseException | None = None
        while True:
            try:
                effect = plan.send(reply) if error is None else plan.throw(error)
            except StopIteration as done:
                watch.look()
                self.ended(watch.info, None)
                return done.value  # type: ignore[no-any-return]
            except SuspendExecution as signal:
                watch.look()
                self.suspended(watch.info, signal)
                raise
            except BaseException as e:
                watch.look()
                self.ended(watch.info, e)
                raise
            watch.look()
            if isinstance(effect, Call):
                watch.next_attempt(effect.attempt)
            try:
                reply, error = (yield effect), None
            except BaseException as e:  # thrown into the plan at its yield, as by a driver
                reply, error = None, e

    # --- batch branches -------------------------------------------------------------------

    def branch_started(self, run: BatchRun, i: int) -> None:
        """Report that branch ``i`` of ``run`` starts running."""
        self.started(self._branch(run, i))

    def branch_ended(self, run: BatchRun, i: int, error: BaseException | None) -> None:
        """Report how branch ``i`` of ``run`` left (after its outcome was settled)."""
        from durable_core.operations._batch_view import BranchCancelled

        info = self._branch(run, i)
        if isinstance(error, SuspendExecution):
            self.suspended(info, error)
            return
        rec = self.journal.get(info.operation_id)
        if rec is not None and rec.status.is_terminal:
            self.emit("operation_ended", info, rec.status.value, _recorded_error(rec))
        elif isinstance(error, BranchCancelled) or run.gates[i].is_closed():
            self.emit("operation_ended", info, OperationStatus.CANCELLED.value, None)
        else:
            self.ended(info, error)

    def _branch(self, run: BatchRun, i: int) -> OperationInfo:
        slot = run.slots[i]
        return OperationInfo(
            execution_id=self.invocation.execution_id,
            operation_id=slot.id,
            parent_id=slot.parent_id,
            phase_id=None,
            type="CONTEXT",
            sub_type=run.branch_sub_type,
            name=run.specs[i].name,
            position=slot.position,
        )

    # --- phases ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def phase(
        self,
        scope: Scope,
        kind: str,
        name: str,
        attributes: Mapping[str, str | int | float | bool] | None,
    ) -> Iterator[None]:
        """Open a phase in ``scope`` for the ``with`` block (see ``ctx.phase``)."""
        outer = scope.phase
        info = PhaseInfo(
            execution_id=self.invocation.execution_id,
            phase_id=next(self._phase_ids),
            kind=kind,
            name=name,
            parent_id=scope.parent_id,
            parent_phase_id=outer.phase_id if outer is not None else None,
            attributes=dict(attributes or {}),
        )
        self._phases[info.phase_id] = info
        scope.phase = info
        self.emit("phase_started", info)
        outcome, error = "ok", None
        try:
            yield
        except SuspendExecution:
            outcome = "suspended"
            raise
        except BaseException as e:
            outcome, error = "failed", summary(e)
            raise
        finally:
            scope.phase = outer
            self.emit("phase_ended", info, outcome, error, info.phase_id not in self._ran)


class _Watch:
    """What :meth:`Hooks.observe` knows of one operation: its current attempt, whether it
    is open, and the record it last saw (a new PENDING record with an error is a retry)."""

    def __init__(self, hooks: Hooks, info: OperationInfo, seen: Operation | None) -> None:
        self.hooks = hooks
        self.info = info
        self.seen = seen
        self.open = True

    def look(self) -> None:
        """After each step of the plan: report a retry it recorded meanwhile."""
        rec = self.hooks.journal.get(self.info.operation_id)
        if rec is self.seen:
            return
        self.seen = rec
        if (
            self.open
            and rec is not None
            and rec.status is OperationStatus.PENDING
            and rec.error is not None
            and rec.attempt == self.info.attempt
        ):
            self.open = False
            self.hooks.emit("operation_retried", self.info, summary(rec.error), rec.next_attempt_at)

    def next_attempt(self, attempt: int) -> None:
        """The plan calls user code: after a retry, that is the next attempt's start."""
        if not self.open:
            self.info = replace(self.info, attempt=attempt or self.info.attempt + 1)
            self.open = True
            self.hooks.started(self.info)


def _recorded_error(rec: Operation) -> ErrorSummary | None:
    if rec.error is None or rec.status is OperationStatus.SUCCEEDED:
        return None
    return summary(rec.error)


def _hook(instrumentation: object, name: str) -> Any:
    """The bound hook ``name`` of ``instrumentation``, or None if absent or the no-op base."""
    fn = getattr(instrumentation, name, None)
    if not callable(fn):
        return None
    if getattr(type(instrumentation), name, None) is getattr(Instrumentation, name):
        return None  # not overridden: skip the call
    return fn
