"""What the API returns: executions, operations and sagas as JSON documents.

Invariants:
- A callback token (``Operation.callback_id``) never appears in a view: not as a field, and
  not inside a payload or a reason that happens to carry it (a step that returned the
  token, say): :func:`without_tokens` masks every token of the execution in the answer.
- Payloads (input, results) are the JSON text the store holds, passed on as text.
- ``saga_status`` of a listing row is derived from the row alone (no journal read), from
  what the saga library leaves on it: its role, its waiting reason, its error (see
  :func:`row_saga_status`); the execution page reads the journal and says more
  (:mod:`durable_core.server.sagas`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from durable_core.cli.render import mask_token, mask_tokens_in
from durable_core.records import ErrorInfo, Execution, ExecutionStatus, Operation, OperationType
from durable_core.stores.search import ExecutionQuery, is_parked

SagaStatusName = Literal[
    "running",
    "compensating",
    "compensated",
    "partially_compensated",
    "compensation_failed",
    "parked",
    "completed",
]

OPERATOR_CALLBACK = "callback 'operator:"
"""How ``waiting_for`` starts while a saga waits for an operator (its undo exhausted its
policy): the saga library names that callback ``operator:<step>``."""
COMPENSATION_RETRY = "of step 'compensate:"
"""What ``waiting_for`` holds while a saga's undo waits to be retried."""
SAGA_ROLE = "saga"
"""The execution role the saga library's steps give a saga (``saga.policy.ROLE``)."""
ROW_SAGA_FILTERS: dict[str, dict[str, Any]] = {
    "compensation_failed": {
        "status": ExecutionStatus.RUNNING,
        "waiting_contains": (OPERATOR_CALLBACK,),
    },
    "compensating": {"status": ExecutionStatus.RUNNING, "waiting_contains": (COMPENSATION_RETRY,)},
    "compensated": {"status": ExecutionStatus.FAILED, "error_type": "saga.errors.SagaCompensated"},
    "partially_compensated": {
        "status": ExecutionStatus.FAILED,
        "error_type": "saga.errors.SagaPartiallyCompensated",
    },
    "parked": {"parked": True},
    "running": {
        "status": ExecutionStatus.RUNNING,
        "role": SAGA_ROLE,
        "parked": False,
        "waiting_excludes": (OPERATOR_CALLBACK, COMPENSATION_RETRY),
    },
    "completed": {"status": ExecutionStatus.SUCCEEDED, "role": SAGA_ROLE},
}
"""The store filters that select each saga status a row shows, disjoint, in the order
:func:`row_saga_status` tries them. ``running`` and ``completed`` need the execution's role
(``Execution.role``), which a saga gets when its first invocation that recorded a step
ends: until then, and for sagas recorded before roles existed, the row shows no saga
status (the execution page reads the journal and does)."""


def row_saga_status(ex: Execution) -> str | None:
    """The saga status a listing row shows, from the row alone; None when the row has no
    saga marker (a plain function, a saga whose first invocation has not ended yet, or a
    saga that ended failed, cancelled or terminated without a rollback)."""
    for name, filters in ROW_SAGA_FILTERS.items():
        if ExecutionQuery(**filters).matches(ex):
            return name
    return None


class ExecutionSummary(BaseModel):
    """One execution as the listing shows it."""

    id: str
    function: str
    status: ExecutionStatus
    saga_status: str | None
    waiting_for: str | None
    created_at: datetime
    updated_at: datetime
    wake_at: datetime | None


class OperationView(BaseModel):
    """One journal record, without its callback token."""

    id: str
    parent_id: str | None
    type: str
    sub_type: str | None
    name: str | None
    status: str
    attempt: int
    started_at: datetime | None
    ended_at: datetime | None
    result: str | None
    error: ErrorInfo | None
    next_attempt_at: datetime | None
    wait_until: datetime | None


class CompensationView(BaseModel):
    """The undo of one saga step."""

    name: str
    status: str


class SagaStepView(BaseModel):
    """One forward step of a saga and its compensation."""

    name: str
    status: str
    pivot: bool
    compensation: CompensationView | None


class ParkedView(BaseModel):
    """Why a saga waits for an operator, and what the operator may do."""

    step: str
    error: ErrorInfo | None
    actions: list[str]


class SagaView(BaseModel):
    """A saga read from its journal."""

    status: str
    steps: list[SagaStepView]
    parked: ParkedView | None


class PendingCallback(BaseModel):
    """A callback the execution waits for (never its token)."""

    name: str | None
    operation_id: str
    privileged: bool
    timeout_at: datetime | None


class ExecutionDetail(ExecutionSummary):
    """One execution with its payloads, journal, saga and pending callbacks."""

    input: str
    result: str | None
    error: ErrorInfo | None
    operations: list[OperationView]
    saga: SagaView | None
    pending_callbacks: list[PendingCallback]


def without_tokens(doc: BaseModel | list[OperationView], ops: list[Operation]) -> str:
    """``doc`` as JSON text with each callback token of ``ops`` (and any ``token X`` in a
    reason) masked as the CLI masks them."""
    if isinstance(doc, list):
        text = "[" + ",".join(v.model_dump_json() for v in doc) + "]"
    else:
        text = doc.model_dump_json()
    for op in ops:
        if op.callback_id:
            text = text.replace(op.callback_id, mask_token(op.callback_id))
    return mask_tokens_in(text)


def summary(ex: Execution) -> ExecutionSummary:
    """The listing row of ``ex``."""
    return ExecutionSummary(
        id=ex.id,
        function=ex.function,
        status=ex.status,
        saga_status=row_saga_status(ex),
        waiting_for=mask_tokens_in(ex.waiting_for) if ex.waiting_for else None,
        created_at=ex.created_at,
        updated_at=ex.updated_at,
        wake_at=ex.wake_at,
    )


def operation_view(op: Operation) -> OperationView:
    """``op`` without its token."""
    return OperationView(
        id=op.id,
        parent_id=op.parent_id,
        type=op.type.value,
        sub_type=op.sub_type,
        name=op.name,
        status=op.status.value,
        attempt=op.attempt,
        started_at=op.started_at,
        ended_at=op.ended_at,
        result=op.result,
        error=op.error,
        next_attempt_at=op.next_attempt_at,
        wait_until=op.scheduled_end,
    )


def detail(ex: Execution, ops: list[Operation], saga: SagaView | None) -> ExecutionDetail:
    """The execution page of ``ex``; ``saga`` from :func:`durable_core.server.sagas.saga_view`."""
    pending = [
        PendingCallback(
            name=op.name,
            operation_id=op.id,
            privileged=bool(op.privileged),
            timeout_at=op.timeout_at,
        )
        for op in ops
        if op.type is OperationType.CALLBACK and not op.status.is_terminal
    ]
    head = summary(ex).model_dump()
    if saga is not None and not is_parked(ex):
        head["saga_status"] = saga.status
    return ExecutionDetail(
        **head,
        input=ex.input,
        result=ex.result,
        error=ex.error,
        operations=[operation_view(op) for op in ops],
        saga=saga,
        pending_callbacks=pending,
    )
