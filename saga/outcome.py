"""``SagaOutcome``: a saga's state, derived from its execution record and journal alone.

Works at any time: while the saga runs, while it is parked for an operator, and after it
ended, in the process that ran it or in another one (the CLI), without importing the saga's
code.

Invariants:
- Nothing here writes anything; the outcome is a pure function of the records.
- A saga is reported ``compensated`` only if every compensation in its rollback plan
  succeeded or an operator resolved it; a skipped undo makes it ``partially_compensated``,
  a parked one ``compensation_failed``.
- ``not_undone`` lists every step whose effect may still be in place after a rollback
  stopped, was skipped, or never ran (a failure with no rollback, or a terminate), and the
  steps an operator's ``fail`` under changed code left behind (the code cannot know them).
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from durable_core import (
    ErrorInfo,
    Execution,
    ExecutionStatus,
    ExecutionTerminatedError,
    Operation,
    OperationStatus,
    OperationType,
    StopKind,
)
from durable_core.parking import FAIL_OPERATION_ID, read_fail_request
from saga._records import (
    COMPENSATE_PREFIX,
    OPERATOR_PREFIX,
    PLAN_NAME,
    RESERVED_PREFIXES,
    OperatorDecision,
    RollbackCause,
    RollbackPlan,
)
from saga.errors import SagaCompensated, SagaPartiallyCompensated


class SagaStatus(StrEnum):
    """Where a saga stands."""

    RUNNING = "running"
    """Running its forward steps (or waiting between them)."""
    COMPENSATING = "compensating"
    """Rolling back: compensations are running or retrying."""
    COMPENSATION_FAILED = "compensation_failed"
    """Parked: an undo exhausted its policy; an operator must retry, skip or resolve it."""
    COMPLETED = "completed"
    """Every step ran; the execution succeeded with the saga's result."""
    COMPENSATED = "compensated"
    """Rolled back to the end: a step failed, the saga was cancelled or its deadline passed
    (``cause`` says which), and every completed step was undone (or resolved by an
    operator)."""
    PARTIALLY_COMPENSATED = "partially_compensated"
    """Rolled back, but an operator skipped at least one undo, or failed the saga under
    changed code that cannot undo some old steps: see ``not_undone``."""
    CANCELLED = "cancelled"
    """Cancelled (or past its deadline) without a rollback: past the pivot, where nothing is
    ever undone."""
    FAILED = "failed"
    """Failed without a rollback (a definition error, non-determinism, or a failure after the
    pivot): see ``not_undone``."""
    TERMINATED = "terminated"
    """Ended by ``terminate``: nothing more was compensated; see ``not_undone``."""

    @property
    def is_final(self) -> bool:
        """True once the saga will not change by itself (parked is not final)."""
        return self not in (
            SagaStatus.RUNNING,
            SagaStatus.COMPENSATING,
            SagaStatus.COMPENSATION_FAILED,
        )


class StepReport(BaseModel):
    """One forward operation of the saga (a step, or a wait/callback on ``s.ctx``)."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: str
    status: str
    attempts: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: ErrorInfo | None = None


class CompensationReport(BaseModel):
    """One compensation of a rollback plan, merged over its attempts and operator decisions."""

    model_config = ConfigDict(frozen=True)

    step: str
    """The forward step's saga path."""
    status: str
    """compensated, resolved, skipped, failed (parked or stopped), running, pending, not_run."""
    idempotency_key: str
    uncertain: bool = False
    attempts: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: ErrorInfo | None = None
    note: str | None = None
    """An operator's reason (skip) or note (resolve)."""


class OperatorActionReport(BaseModel):
    """An operator decision recorded in the journal."""

    model_config = ConfigDict(frozen=True)

    step: str
    action: str
    reason: str | None = None
    actor: str | None = None
    at: datetime | None = None


class SagaOutcome(BaseModel):
    """A saga's state, derived from the journal (see :func:`saga.saga_status`)."""

    model_config = ConfigDict(frozen=True)

    execution_id: str
    saga: str
    """The durable function's name."""
    status: SagaStatus
    execution_status: ExecutionStatus
    result: Any = None
    """The saga's result, when completed."""
    error: ErrorInfo | None = None
    """The execution's error, when it ended with one."""
    cause: RollbackCause | None = None
    """Why the (top-level) rollback started, if one did."""
    steps: list[StepReport] = Field(default_factory=list)
    """The forward path, in the order it ran."""
    compensations: list[CompensationReport] = Field(default_factory=list)
    """The rollback path, in the order it runs."""
    not_undone: list[str] = Field(default_factory=list)
    parked_on: str | None = None
    """The step whose undo waits for an operator (status compensation_failed)."""
    operator_actions: list[OperatorActionReport] = Field(default_factory=list)

    @property
    def compensated(self) -> list[str]:
        """Steps undone (by their compensation, or resolved by an operator)."""
        return [c.step for c in self.compensations if c.status in ("compensated", "resolved")]


_FORWARD_TYPES = (OperationType.STEP, OperationType.WAIT, OperationType.CALLBACK)
_COMPENSATED_TYPE = f"{SagaCompensated.__module__}.{SagaCompensated.__qualname__}"
_PARTIAL_TYPE = f"{SagaPartiallyCompensated.__module__}.{SagaPartiallyCompensated.__qualname__}"


def derive_outcome(execution: Execution, operations: list[Operation]) -> SagaOutcome:
    """Read a saga's outcome from its execution record and journal (write order)."""
    plans: list[tuple[str, RollbackPlan]] = []
    steps: list[StepReport] = []
    events: dict[str, list[tuple[Operation, OperatorDecision | None]]] = {}
    parked: str | None = None
    actions: list[OperatorActionReport] = []
    terminated = _mentions_terminate(execution.error)
    for op in operations:
        name = op.name or ""
        terminated = terminated or _mentions_terminate(op.error)
        if op.type is OperationType.STEP and (
            name == PLAN_NAME or name.startswith(PLAN_NAME + ":")
        ):
            if op.status is OperationStatus.SUCCEEDED and op.result is not None:
                plans.append((name, RollbackPlan.model_validate_json(op.result)))
        elif op.type is OperationType.STEP and name.startswith(COMPENSATE_PREFIX):
            if op.status is not OperationStatus.CANCELLED:
                events.setdefault(name[len(COMPENSATE_PREFIX) :], []).append((op, None))
        elif op.type is OperationType.CALLBACK and name.startswith(OPERATOR_PREFIX):
            path = name[len(OPERATOR_PREFIX) :]
            if op.status is OperationStatus.STARTED:
                parked = path
            decision = _decision(op)
            if decision is not None:
                events.setdefault(path, []).append((op, decision))
                actions.append(
                    OperatorActionReport(
                        step=path,
                        action=decision.action,
                        reason=decision.reason,
                        actor=decision.actor,
                        at=decision.at or op.ended_at,
                    )
                )
        elif op.type in _FORWARD_TYPES and not name.startswith(RESERVED_PREFIXES):
            steps.append(_step_report(op))
    running = execution.status is ExecutionStatus.RUNNING
    if not running:
        parked = None
    compensations = [
        _compensation_report(
            item.step, item.key, item.uncertain, events.get(item.step, []), running
        )
        for _, plan in plans
        for item in plan.steps
    ]
    status = _status(execution, plans, compensations, parked, terminated)
    top = next((p for n, p in plans if n == PLAN_NAME), None)
    not_undone = _not_undone(status, steps, compensations, top_plan=top is not None)
    left = [name for name in _left_behind(operations, execution.id) if name not in not_undone]
    if left:  # failed by an operator under changed code that cannot know these steps
        not_undone += left
        if status is SagaStatus.COMPENSATED:
            status = SagaStatus.PARTIALLY_COMPENSATED
    root = top or (plans[-1][1] if plans else None)
    return SagaOutcome(
        execution_id=execution.id,
        saga=execution.function,
        status=status,
        execution_status=execution.status,
        result=json.loads(execution.result) if execution.result is not None else None,
        error=execution.error,
        cause=root.cause if root is not None else None,
        steps=steps,
        compensations=compensations,
        not_undone=not_undone,
        parked_on=parked,
        operator_actions=actions,
    )


_TERMINATED_TYPE = f"{ExecutionTerminatedError.__module__}.{ExecutionTerminatedError.__qualname__}"


def _mentions_terminate(error: ErrorInfo | None) -> bool:
    """True if ``error`` records a terminate: delivered at an operation, or the execution's."""
    if error is None:
        return False
    return StopKind.of_error(error) is StopKind.TERMINATE or error.type == _TERMINATED_TYPE


def _left_behind(operations: list[Operation], execution_id: str) -> list[str]:
    """Steps an operator's fail (``durable fail``) named as unknown to the changed code."""
    record = next((op for op in operations if op.id == FAIL_OPERATION_ID), None)
    request = read_fail_request(record, execution_id)
    return list(request.left_behind) if request is not None else []


def _decision(op: Operation) -> OperatorDecision | None:
    if op.status is not OperationStatus.SUCCEEDED or op.result is None:
        return None
    try:
        return OperatorDecision.model_validate_json(op.result)
    except PydanticValidationError:
        return None  # the saga ignored it too, and parked again


def _step_report(op: Operation) -> StepReport:
    status = {
        OperationStatus.STARTED: "running",
        OperationStatus.PENDING: "retrying",
        OperationStatus.SUCCEEDED: "succeeded",
        OperationStatus.FAILED: "failed",
        OperationStatus.CANCELLED: "cancelled",
        OperationStatus.TIMED_OUT: "timed_out",
    }.get(op.status, op.status.value.lower())
    if op.type is not OperationType.STEP and op.status is OperationStatus.STARTED:
        status = "waiting"
    return StepReport(
        name=op.name or op.id,
        type=op.type.value.lower(),
        status=status,
        attempts=op.attempt,
        started_at=op.started_at,
        ended_at=op.ended_at,
        error=op.error,
    )


def _compensation_report(
    step: str,
    key: str,
    uncertain: bool,
    events: list[tuple[Operation, OperatorDecision | None]],
    running: bool,
) -> CompensationReport:
    status = "pending" if running else "not_run"
    note = None
    error = None
    attempts = 0
    started: datetime | None = None
    ended: datetime | None = None
    for op, decision in events:
        if decision is not None:
            if decision.action in ("skip", "resolve"):
                status = "skipped" if decision.action == "skip" else "resolved"
                note = decision.reason
                ended = op.ended_at
            elif decision.action == "retry":
                status = "pending" if running else "not_run"
            continue
        attempts += op.attempt
        started = started or op.started_at
        ended = op.ended_at
        error = op.error or error
        status = {
            OperationStatus.SUCCEEDED: "compensated",
            OperationStatus.FAILED: "failed",
        }.get(op.status, "running")
    return CompensationReport(
        step=step,
        status=status,
        idempotency_key=key,
        uncertain=uncertain,
        attempts=attempts,
        started_at=started,
        ended_at=ended,
        error=error if status != "compensated" else None,
        note=note,
    )


def _status(
    execution: Execution,
    plans: list[tuple[str, RollbackPlan]],
    compensations: list[CompensationReport],
    parked: str | None,
    terminated: bool,
) -> SagaStatus:
    skipped = any(c.status == "skipped" for c in compensations)
    match execution.status:
        case ExecutionStatus.SUCCEEDED:
            return SagaStatus.COMPLETED
        case ExecutionStatus.RUNNING:
            if parked is not None:
                return SagaStatus.COMPENSATION_FAILED
            return SagaStatus.COMPENSATING if plans else SagaStatus.RUNNING
        case ExecutionStatus.CANCELLED:
            if terminated:
                return SagaStatus.TERMINATED
            if skipped:
                return SagaStatus.PARTIALLY_COMPENSATED
            # Rolled back to the end: the cause (cancelled / deadline) says why.
            return SagaStatus.COMPENSATED if plans else SagaStatus.CANCELLED
    error_type = execution.error.type if execution.error else ""
    if skipped and error_type in (_COMPENSATED_TYPE, _PARTIAL_TYPE):
        return SagaStatus.PARTIALLY_COMPENSATED  # a nested saga's skip counts for the whole
    if error_type == _COMPENSATED_TYPE:
        return SagaStatus.COMPENSATED
    if error_type == _PARTIAL_TYPE:
        return SagaStatus.PARTIALLY_COMPENSATED
    return SagaStatus.FAILED


def _not_undone(
    status: SagaStatus,
    steps: list[StepReport],
    compensations: list[CompensationReport],
    *,
    top_plan: bool,
) -> list[str]:
    """Steps whose effect may remain: see ``SagaOutcome.not_undone`` in docs/sagas.md."""
    if status in (SagaStatus.RUNNING, SagaStatus.COMPLETED):
        return []
    undone = {c.step for c in compensations if c.status in ("compensated", "resolved")}
    if not top_plan and status in (
        SagaStatus.FAILED,
        SagaStatus.TERMINATED,
        SagaStatus.COMPENSATION_FAILED,
        SagaStatus.COMPENSATING,
    ):
        # The saga itself has not planned a rollback (at most a nested saga did its own, or
        # is doing it): every step that succeeded and was not undone stays in place.
        names = [
            s.name
            for s in steps
            if s.type == "step" and s.status == "succeeded" and s.name not in undone
        ]
        # A nested plan's uncertain undo stands for a step that did not succeed.
        return names + [c.step for c in compensations if c.step not in undone | set(names)]
    return [c.step for c in compensations if c.step not in undone]
