"""``ctx.run_in_child_context``: a scope with its own operation-id space.

The child's operations get ids derived from the child's id, so they never collide with the
parent's. When the child finishes, its result (or failure) is checkpointed as one record;
on replay a finished child returns that record without running its body. A cancellation
delivered inside the child is recorded as a cancellation, so replay raises it again. A
``serializer`` records the result as its own text (recorded raw, read back raw).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from durable_core.errors import ChildContextError, ExecutionCancelledError
from durable_core.journal import stop_info
from durable_core.operations._core import Call, DurableOp, Plan
from durable_core.records import ErrorInfo, Operation, OperationStatus, OperationType
from durable_core.replay import Scope, operation_id
from durable_core.serde import Serializer, check_type, dump_value, load_value, return_type

if TYPE_CHECKING:
    from durable_core.replay import Slot

T = TypeVar("T")


def child_error(op: Operation) -> ChildContextError:
    """Rebuild the ChildContextError recorded in ``op``."""
    err = op.error or ErrorInfo(type="Unknown", message="")
    return ChildContextError(
        f"child context {op.name!r} failed: {err.type}: {err.message}",
        name=op.name or op.id,
        error_type=err.type,
    )


class ChildOp(DurableOp[T]):
    """``ctx.run_in_child_context``: run (or replay) ``fn`` in a child scope; its result is
    checkpointed as one value. ``make_context`` makes the context ``fn`` receives for the
    child scope (a DurableContext, or an AsyncDurableContext for an async body)."""

    op_type = OperationType.CONTEXT

    def __init__(
        self,
        scope: Scope,
        name: str,
        fn: Callable[[Any], T],
        make_context: Callable[[Scope], Any],
        *,
        sub_type: str = "RunInChildContext",
        result_type: Any = None,
        serializer: Serializer | None = None,
    ) -> None:
        super().__init__(scope, name, sub_type)
        self.what = f"child context {name!r}"
        self.result_type = result_type if result_type is not None else return_type(fn)
        check_type(self.result_type, what=self.what, fn=None if result_type is not None else fn)
        self.fn = fn
        self.make_context = make_context
        self.serializer = serializer

    def replay(self, rec: Operation) -> T:
        if rec.status is OperationStatus.SUCCEEDED:
            return self._load(rec.result or "null")
        raise child_error(rec)

    def _load(self, text: str) -> T:
        return load_value(  # type: ignore[no-any-return]
            self.journal.serde, text, self.result_type, what=self.what, serializer=self.serializer
        )

    def execute(self, slot: Slot) -> Plan[T]:
        journal, what, type_ = self.journal, self.what, self.result_type
        started = journal.now()
        child = self.make_context(
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
                sub_type=self.sub_type,
                name=self.name,
                status=status,
                started_at=started,
                ended_at=journal.now(),
                **fields,
            )

        try:
            value = yield Call(self.fn, (child,), what)
        except ExecutionCancelledError as exc:
            journal.checkpoint(record(OperationStatus.FAILED, error=stop_info(exc)))
            raise
        except Exception as exc:
            op = record(OperationStatus.FAILED, error=ErrorInfo.from_exception(exc))
            journal.checkpoint(op)
            raise child_error(op) from exc
        text = dump_value(journal.serde, value, type_, what=what, serializer=self.serializer)
        journal.checkpoint(record(OperationStatus.SUCCEEDED, result=text))
        return self._load(text)
