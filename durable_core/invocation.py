"""One invocation: load the journal, run the user's function from the top, report the end.

The outcome is one of: SUCCEEDED (result recorded), FAILED (error recorded), CANCELLED,
or still RUNNING (suspended: waiting for a time or an event). The caller writes it with
``Store.finish_invocation`` under the same lease, so it is atomic with releasing the lease.
A :class:`~durable_core.errors.LeaseLostError` is not an outcome: another worker owns the
execution, and this invocation stops without writing anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from durable_core.context import DurableContext
from durable_core.errors import (
    ExecutionCancelledError,
    LeaseLostError,
    ReplayBoundary,
    SerializationError,
    StoreError,
    SuspendExecution,
)
from durable_core.journal import ErrorInfo, ExecutionStatus
from durable_core.replay import Journal, Scope, operation_id
from durable_core.stores.base import InvocationEnd

if TYPE_CHECKING:
    from durable_core.function import DurableFunction


def run_invocation(fn: DurableFunction[Any, Any], journal: Journal) -> InvocationEnd:
    """Run ``fn`` once against ``journal`` and say how the execution stands afterwards."""
    scope = Scope(
        journal,
        parent_id=None,
        path="",
        replaying=journal.get(operation_id(None, 1)) is not None,
    )
    ctx = DurableContext(journal, scope)
    what = f"input of execution {journal.execution_id!r}"
    try:
        event = journal.serde.load(journal.execution.input, fn.input_type, what=what)
        value = fn(ctx, event)
        what = f"result of execution {journal.execution_id!r}"
        text = journal.serde.dump(value, fn.result_type, what=what)
        journal.serde.load(text, fn.result_type, what=what)  # it must read back as its type
    except SuspendExecution as s:
        return _suspended(journal, s.reason, s.wake_at)
    except ReplayBoundary:
        return _suspended(journal, "replay boundary (always-replay test mode)", journal.now())
    except (LeaseLostError, StoreError):
        # Not an outcome of the function: another worker owns the execution, or the store
        # failed (e.g. stayed locked). Leave the execution as recorded; it is retried.
        raise
    except ExecutionCancelledError as e:
        return InvocationEnd(
            status=ExecutionStatus.CANCELLED,
            error=ErrorInfo.from_exception(e, with_traceback=False),
        )
    except SerializationError as e:
        return InvocationEnd(status=ExecutionStatus.FAILED, error=ErrorInfo.from_exception(e))
    except Exception as e:
        return InvocationEnd(status=ExecutionStatus.FAILED, error=ErrorInfo.from_exception(e))
    return InvocationEnd(status=ExecutionStatus.SUCCEEDED, result=text)


def _suspended(journal: Journal, reason: str, wake_at: datetime | None) -> InvocationEnd:
    deadline = journal.execution.deadline
    if deadline is not None and not journal.cancel_delivered:
        wake_at = deadline if wake_at is None else min(wake_at, deadline)
    return InvocationEnd(status=ExecutionStatus.RUNNING, wake_at=wake_at, waiting_for=reason)
