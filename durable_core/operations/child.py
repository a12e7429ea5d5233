"""``ctx.run_in_child_context``: a scope with its own operation-id space.

The child's operations get ids derived from the child's id, so they never collide with the
parent's. When the child finishes, its result (or failure) is checkpointed as one record;
on replay a finished child returns that record without running its body. A cancellation
delivered inside the child is recorded as a cancellation, so replay raises it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from durable_core.errors import ChildContextError, ExecutionCancelledError
from durable_core.journal import ErrorInfo, Operation, OperationStatus, OperationType
from durable_core.replay import Scope, operation_id, stop_info

if TYPE_CHECKING:
    from durable_core.context import DurableContext

T = TypeVar("T")


def child_error(op: Operation) -> ChildContextError:
    """Rebuild the ChildContextError recorded in ``op``."""
    err = op.error or ErrorInfo(type="Unknown", message="")
    return ChildContextError(
        f"child context {op.name!r} failed: {err.type}: {err.message}",
        name=op.name or op.id,
        error_type=err.type,
    )


def run_child(
    parent: DurableContext,
    name: str,
    fn: Callable[[DurableContext], T],
    *,
    sub_type: str = "RunInChildContext",
    result_type: Any = None,
) -> T:
    """Run (or replay) ``fn`` in a child scope and checkpoint its result as one value."""
    from durable_core.serde import check_type, return_type

    scope = parent._scope
    journal = scope.journal
    type_ = result_type if result_type is not None else return_type(fn)
    what = f"child context {name!r}"
    check_type(type_, what=what, fn=None if result_type is not None else fn)  # before the body
    slot = scope.begin(OperationType.CONTEXT, name, sub_type)
    rec = slot.recorded
    if rec is not None and rec.status is OperationStatus.SUCCEEDED:
        scope.after_replayed()
        return journal.serde.load(rec.result or "null", type_, what=what)  # type: ignore[no-any-return]
    if rec is not None and rec.status is OperationStatus.FAILED:
        scope.after_replayed()
        raise child_error(rec)
    started = journal.now()
    child = parent._child(
        Scope(
            journal,
            parent_id=slot.id,
            path=slot.position,
            replaying=journal.get(operation_id(slot.id, 1)) is not None,
        )
    )

    def record(status: OperationStatus, **fields: Any) -> Operation:
        return Operation(
            id=slot.id,
            parent_id=slot.parent_id,
            type=OperationType.CONTEXT,
            sub_type=sub_type,
            name=name,
            status=status,
            started_at=started,
            ended_at=journal.now(),
            **fields,
        )

    try:
        value = fn(child)
    except ExecutionCancelledError as exc:
        journal.checkpoint(record(OperationStatus.FAILED, error=stop_info(exc)))
        raise
    except Exception as exc:
        op = record(OperationStatus.FAILED, error=ErrorInfo.from_exception(exc))
        journal.checkpoint(op)
        raise child_error(op) from exc
    text = journal.serde.dump(value, type_, what=what)
    journal.checkpoint(record(OperationStatus.SUCCEEDED, result=text))
    return journal.serde.load(text, type_, what=what)  # type: ignore[no-any-return]
