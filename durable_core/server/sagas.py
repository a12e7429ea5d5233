"""The saga part of the API: a saga's view and its operator actions, through ``saga``.

``durable_core`` never imports ``saga`` (dependencies point one way); the server is a host
program, like the ``durable-saga`` command, so this module — and only it — imports ``saga``
when a request needs it. Without the package installed, executions show no saga and the
operator actions answer 404.

Invariants:
- A saga is recognised from its records alone: its role (``Execution.role``, or a step
  whose ``Operation.role`` starts with ``saga.``), the records the saga library names
  with its reserved prefixes (``saga:``, ``compensate:``, ``operator:``), or a saga
  outcome error. The last two also cover sagas recorded before steps carried roles.
- ``pivot`` is true on the step whose role is ``saga.pivot`` (false on older records).
- An operator action goes through ``saga.operator`` (the one way to decide), which refuses
  a saga that is not parked (409, nothing recorded).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from durable_core.records import Execution, Operation, role_of
from durable_core.server.views import (
    SAGA_ROLE,
    CompensationView,
    ParkedView,
    SagaStepView,
    SagaView,
)

if TYPE_CHECKING:
    from durable_core.runtime import Runtime

_MARKERS = ("saga:", "compensate:", "operator:")
_PIVOT_ROLE = f"{SAGA_ROLE}.pivot"  # saga.StepKind.PIVOT.role
_OUTCOME_ERRORS = ("saga.errors.SagaCompensated", "saga.errors.SagaPartiallyCompensated")
ACTIONS = ("retry", "skip", "resolve")


def is_saga(ex: Execution, ops: list[Operation]) -> bool:
    """True if the execution, its journal or its outcome carries a saga marker (module
    docstring)."""
    if ex.role == SAGA_ROLE or (ex.error is not None and ex.error.type in _OUTCOME_ERRORS):
        return True
    return any(role_of([op]) == SAGA_ROLE or (op.name or "").startswith(_MARKERS) for op in ops)


def saga_view(ex: Execution, ops: list[Operation]) -> SagaView | None:
    """The saga view of ``ex``, or None if it is no (recognisable) saga."""
    if not is_saga(ex, ops):
        return None
    try:
        from saga.outcome import derive_outcome
    except ImportError:
        return None
    outcome = derive_outcome(ex, ops)
    undo = {c.step: c for c in outcome.compensations}
    pivots = {op.name for op in ops if op.role == _PIVOT_ROLE}
    steps = [
        SagaStepView(
            name=step.name,
            status=step.status.lower(),
            pivot=step.name in pivots,
            compensation=CompensationView(
                name=f"compensate:{step.name}", status=undo[step.name].status
            )
            if step.name in undo
            else None,
        )
        for step in outcome.steps
    ]
    parked = None
    if outcome.parked_on is not None:
        failed = undo.get(outcome.parked_on)
        parked = ParkedView(
            step=outcome.parked_on,
            error=failed.error if failed is not None else None,
            actions=list(ACTIONS),
        )
    return SagaView(status=outcome.status.value, steps=steps, parked=parked)


def decide(runtime: Runtime, execution_id: str, action: str, reason: str, actor: str) -> None:
    """Apply the operator ``action`` (retry, skip, resolve) to a parked saga.

    Raises LookupError if the ``saga`` package is missing; the saga library's
    SagaNotParkedError (409) and InvalidOperatorActionError (422) otherwise.
    """
    try:
        from saga import operator
    except ImportError as e:
        raise LookupError("the saga package is not installed; there are no sagas here") from e
    act: dict[str, Any] = {
        "retry": lambda: operator.retry_compensation(runtime, execution_id, actor=actor),
        "skip": lambda: operator.skip_compensation(runtime, execution_id, reason, actor=actor),
        "resolve": lambda: operator.resolve(runtime, execution_id, reason, actor=actor),
    }
    act[action]()
