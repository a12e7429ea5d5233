"""Operator actions on sagas, and the status query, through a :class:`durable_core.Runtime`.

A saga whose undo exhausted its policy is parked on the callback ``operator:<step>``. The
actions here find that callback in the journal and complete it with an
:class:`OperatorDecision`; the decision is the callback's payload, so it is recorded in the
journal like everything else. The saga resumes when a worker (or ``drive=True``) runs it.

Invariants:
- This module (and ``durable-saga``, built on it) is the only way to decide: the operator
  callback is privileged, so the generic callback paths (``durable callback``,
  ``Runtime.send_callback_*``, the DynamoDB-mode webhook) refuse it whoever holds the token;
  the decision is completed with ``Runtime.send_privileged_callback_success``.
- Arguments are checked first (reason or note, actor): a bad one raises
  :class:`InvalidOperatorActionError` and records nothing; an action on a saga that is not
  parked raises :class:`SagaNotParkedError` and records nothing.
- Every recorded decision names its actor: the ``actor`` given, else :func:`default_actor`
  (``user@host`` of the deciding process). The actor is what the caller says, for the audit
  trail; who may decide at all is whoever can open the saga's store.
- Completion goes through the store's conditional path: of two operators acting at once,
  one wins and the other gets :class:`SagaNotParkedError`.
- ``terminate`` (``Runtime.terminate``) is the only way to end a saga without finishing its
  rollback; ``cancel`` (``Runtime.cancel``) always compensates, whatever its reason says.
"""

from __future__ import annotations

from pydantic import ValidationError as PydanticValidationError

from durable_core import (
    CallbackAlreadyCompletedError,
    Operation,
    OperationStatus,
    OperationType,
    Runtime,
)
from durable_core.records import MAX_ACTOR_LENGTH, MAX_REASON_LENGTH
from durable_core.runtime import default_actor
from saga._records import OPERATOR_PREFIX, OperatorDecision
from saga.errors import InvalidOperatorActionError, SagaNotParkedError
from saga.outcome import SagaOutcome, derive_outcome

MAX_TEXT = MAX_REASON_LENGTH
"""Longest reason or note accepted (characters); an actor has durable_core's own bound,
``MAX_ACTOR_LENGTH``, as on every request it records."""

__all__ = [
    "default_actor",
    "resolve",
    "retry_compensation",
    "saga_status",
    "skip_compensation",
    "terminate",
]


def saga_status(runtime: Runtime, execution_id: str) -> SagaOutcome:
    """The saga's state, derived from its journal (works while it runs or is parked).

    Raises:
        ExecutionNotFoundError: no such execution in the runtime's store.
    """
    return derive_outcome(runtime.get(execution_id), runtime.operations(execution_id))


def retry_compensation(
    runtime: Runtime, execution_id: str, *, actor: str | None = None, drive: bool = False
) -> SagaOutcome:
    """Run the parked saga's failed compensation again, with its full retry policy.

    Args:
        runtime: a runtime on the saga's store.
        execution_id: the parked saga.
        actor: who decides (recorded); default :func:`default_actor`.
        drive: resume the saga in this process now instead of leaving it to a worker.

    Raises:
        InvalidOperatorActionError: ``actor`` is empty or not printable text (nothing
            recorded).
        SagaNotParkedError: the saga is not waiting for an operator (nothing recorded).
    """
    return _decide(runtime, execution_id, "retry", reason=None, actor=actor, drive=drive)


def skip_compensation(
    runtime: Runtime,
    execution_id: str,
    reason: str,
    *,
    actor: str | None = None,
    drive: bool = False,
) -> SagaOutcome:
    """Give up on the parked saga's failed compensation and continue rolling back the rest.

    The step's effect stays in place: the saga ends ``partially_compensated`` with the step
    and ``reason`` listed, never ``compensated``.

    Raises:
        InvalidOperatorActionError: ``reason`` is empty, or ``actor`` is not text (nothing
            recorded).
        SagaNotParkedError: the saga is not waiting for an operator (nothing recorded).
    """
    return _decide(
        runtime, execution_id, "skip", reason=_required(reason, "skip"), actor=actor, drive=drive
    )


def resolve(
    runtime: Runtime,
    execution_id: str,
    note: str,
    *,
    actor: str | None = None,
    drive: bool = False,
) -> SagaOutcome:
    """Mark the parked saga's failed compensation as done by hand, and continue the rollback.

    Use it after undoing the effect yourself (or confirming there was none). The step counts
    as undone, with ``note`` recorded.

    Raises:
        InvalidOperatorActionError: ``note`` is empty, or ``actor`` is not text (nothing
            recorded).
        SagaNotParkedError: the saga is not waiting for an operator (nothing recorded).
    """
    return _decide(
        runtime,
        execution_id,
        "resolve",
        reason=_required(note, "resolve"),
        actor=actor,
        drive=drive,
    )


def terminate(
    runtime: Runtime,
    execution_id: str,
    reason: str,
    *,
    actor: str | None = None,
    drive: bool = False,
) -> SagaOutcome:
    """End a saga WITHOUT compensating (what is not undone stays listed in its status).

    ``Runtime.cancel`` rolls a saga back; this does not: it is ``Runtime.terminate``, a
    request of its own kind recorded with ``actor`` and ``reason``. It takes effect at the
    saga's next operation boundary — at once for a parked saga, and also during a rollback
    (which then stops) — and the saga ends ``terminated``.

    Raises:
        InvalidOperatorActionError: ``reason`` is empty (nothing recorded).
        ExecutionNotRunningError: the saga already ended (nothing recorded).
    """
    runtime.terminate(
        execution_id, _required(reason, "terminate"), actor=_actor(actor, "terminate")
    )
    if drive:
        runtime.drive(execution_id)
    return saga_status(runtime, execution_id)


def _required(text: object, action: str) -> str:
    what = "note" if action == "resolve" else "reason"
    if not isinstance(text, str) or not text.strip():
        raise InvalidOperatorActionError(
            f"{action} needs a non-empty {what}; it is recorded in the saga's journal so "
            "the next person knows why. Nothing was recorded."
        )
    return _bounded(text.strip(), f"the {what} of {action}")


def _actor(actor: object, action: str) -> str:
    if actor is None:
        return default_actor()
    if not isinstance(actor, str) or not actor.strip() or not actor.strip().isprintable():
        raise InvalidOperatorActionError(
            f"{action}: actor must be non-empty printable text (who decides, e.g. "
            f"'ana@ops'), got {actor!r:.80}. Nothing was recorded."
        )
    return _bounded(actor.strip(), f"the actor of {action}", MAX_ACTOR_LENGTH)


def _bounded(text: str, what: str, limit: int = MAX_TEXT) -> str:
    if len(text) > limit:
        raise InvalidOperatorActionError(
            f"{what} is {len(text)} characters, over the limit of {limit}; keep it short "
            "and link to details. Nothing was recorded."
        )
    return text


def _parked_callback(runtime: Runtime, execution_id: str) -> Operation | None:
    ex = runtime.get(execution_id)
    if ex.status.is_terminal:
        return None
    return next(
        (
            op
            for op in reversed(runtime.operations(execution_id))
            if op.type is OperationType.CALLBACK
            and (op.name or "").startswith(OPERATOR_PREFIX)
            and op.status is OperationStatus.STARTED
        ),
        None,
    )


def _decide(
    runtime: Runtime,
    execution_id: str,
    action: str,
    *,
    reason: str | None,
    actor: str | None,
    drive: bool,
) -> SagaOutcome:
    who = _actor(actor, action)
    callback = _parked_callback(runtime, execution_id)
    if callback is None or callback.callback_id is None:
        status = saga_status(runtime, execution_id).status
        raise SagaNotParkedError(
            f"saga {execution_id!r} is not parked (status: {status.value}); {action} applies "
            "only to a saga waiting for an operator in compensation_failed. Nothing was "
            "recorded. See `durable-saga status ID`."
        )
    try:
        decision = OperatorDecision.model_validate(
            {"action": action, "reason": reason, "actor": who, "at": runtime.clock.now()}
        )
    except PydanticValidationError as e:  # the public functions rule this out; be loud
        raise InvalidOperatorActionError(
            f"not a valid operator decision for saga {execution_id!r}: {e}. Nothing was recorded."
        ) from e
    payload = decision.model_dump(mode="json")
    try:
        runtime.send_privileged_callback_success(callback.callback_id, payload)
    except CallbackAlreadyCompletedError as e:
        raise SagaNotParkedError(
            f"saga {execution_id!r}: another decision was recorded first for "
            f"{callback.name!r}; nothing was recorded. Check `durable-saga status ID`."
        ) from e
    if drive:
        runtime.drive(execution_id)
    return saga_status(runtime, execution_id)
