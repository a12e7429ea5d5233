"""What a saga does when its body raises: whether it rolls back, why, and what it raises after.

Both runners, :func:`saga.context.run_saga` (sync) and
:func:`saga.async_context.run_saga_async`, call the body and, when it raises, ask
:func:`rollback_cause` whether to roll back; if so they run the rollback with their own
driver (:func:`saga.compensation.roll_back` or :func:`saga.compensation.roll_back_async`)
and raise what :func:`rolled_back` says. So the rules below exist once for both surfaces.

Invariants:
- No rollback after the pivot succeeded, for a terminate request, or for an error of
  ``NO_ROLLBACK`` (the code or the infrastructure is wrong, and undoing steps chosen by
  wrong code is not safe): the error propagates, the execution fails (or ends terminated)
  and ``saga_status`` lists what was not undone.
- After a rollback caused by a cancellation or the deadline the cancellation is re-raised,
  so the execution ends CANCELLED; after one caused by a failure the saga raises
  :class:`SagaCompensated`, or :class:`SagaPartiallyCompensated` if an operator skipped an
  undo (of this saga, or of a nested saga that rolled back first), chained to the error.
"""

from __future__ import annotations

from durable_core import (
    ErrorInfo,
    ExecutionCancelledError,
    LeaseLostError,
    NonDeterminismError,
    StepFailedError,
    StoreError,
    VersionMismatchError,
)
from saga._records import RollbackCause
from saga._state import SagaState
from saga.compensation import RollbackReport, is_terminate
from saga.errors import (
    SagaCompensated,
    SagaDefinitionError,
    SagaPartiallyCompensated,
    SagaRolledBackError,
)

NO_ROLLBACK = (
    SagaDefinitionError,
    NonDeterminismError,
    LeaseLostError,
    StoreError,
    VersionMismatchError,
)
"""Errors that never start a rollback (see the module docstring)."""


def rollback_cause(state: SagaState, exc: Exception) -> RollbackCause | None:
    """Why the saga ``state`` rolls back now that its body raised ``exc``; ``None`` if it
    does not (the runner re-raises ``exc``)."""
    if isinstance(exc, ExecutionCancelledError):
        if is_terminate(exc) or state.pivot_done:
            return None
        kind = "deadline" if exc.kind == "deadline" else "cancelled"
        return RollbackCause(kind=kind, error_type="Cancelled", message=exc.reason)
    if isinstance(exc, NO_ROLLBACK) or state.pivot_done:
        return None
    step = state.failed_step(exc)
    if isinstance(exc, StepFailedError):
        return RollbackCause(
            kind="failure", step=step, error_type=exc.error_type, message=exc.args[0]
        )
    info = ErrorInfo.from_exception(exc, with_traceback=False)
    return RollbackCause(kind="failure", step=step, error_type=info.type, message=info.message)


def rolled_back(
    state: SagaState, exc: Exception, cause: RollbackCause, report: RollbackReport
) -> SagaRolledBackError | None:
    """What the saga raises (chained to ``exc``) after the rollback ``cause`` started ended
    with ``report``; ``None`` after a cancellation or the deadline (re-raise ``exc``)."""
    if isinstance(exc, ExecutionCancelledError):
        return None
    # A nested saga that rolled back first may have skipped some: they come first.
    nested = exc.skipped if isinstance(exc, SagaPartiallyCompensated) else ()
    skipped = [*nested, *report.skipped]
    where = f"step {cause.step!r} failed" if cause.step else "the saga body raised"
    done = ", ".join(report.compensated) or "nothing to undo"
    saga = state.saga
    message = f"saga {saga!r} rolled back: {where} ({cause.error_type}: {cause.message})"
    if skipped:
        return SagaPartiallyCompensated(
            f"{message}; compensated: {done}; SKIPPED by an operator (not undone): "
            f"{', '.join(skipped)}",
            saga=saga,
            failed_step=cause.step,
            compensated=report.compensated,
            skipped=skipped,
        )
    return SagaCompensated(
        f"{message}; compensated: {done}",
        saga=saga,
        failed_step=cause.step,
        compensated=report.compensated,
    )
