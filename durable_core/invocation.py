"""One invocation: load the journal, run the user's function from the top, report the end.

The outcome is one of: SUCCEEDED (result recorded), FAILED (error recorded), CANCELLED,
or still RUNNING (suspended: waiting for a time or an event). The caller writes it with
``Store.finish_invocation`` under the same lease, so it is atomic with releasing the lease.
A :class:`~durable_core.errors.LeaseLostError` is not an outcome: another worker owns the
execution, and this invocation stops without writing anything.

Invariants:
- A :class:`~durable_core.errors.NonDeterminismError` is never an outcome either, whether
  it escaped the function or was caught by it, nor an ``invoke`` of a function this worker
  does not have: the execution is *parked* (RUNNING, the error recorded on it, nothing
  undone; see :mod:`durable_core.parking`).
- An exception may name its outcome for the worker's log with the class attributes
  ``durable_outcome`` (e.g. ``"compensated"``) and ``durable_hint`` (what to do; may
  contain ``{execution_id}``). They are reported, never stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from durable_core.context import DurableContext
from durable_core.errors import (
    ExecutionCancelledError,
    LeaseLostError,
    NonDeterminismError,
    ReplayBoundary,
    StoreError,
    SuspendExecution,
)
from durable_core.journal import ErrorInfo, Execution, ExecutionStatus
from durable_core.parking import park_kind, park_summary
from durable_core.replay import Journal, Scope, operation_id
from durable_core.stores.base import InvocationEnd

if TYPE_CHECKING:
    from durable_core.function import DurableFunction


@dataclass(frozen=True)
class InvocationReport:
    """One invocation a worker ran, as it logs it."""

    execution: Execution
    """The execution as it stands after the invocation."""
    outcome: str | None = None
    """How the code or the runtime named the outcome (``compensated``, ``non-determinism``)."""
    hint: str | None = None
    """What to do about it, if the code said."""


Reporter = Callable[[InvocationReport], None]
"""Told about every invocation ``Runtime.tick`` runs."""


def run_invocation(fn: DurableFunction[Any, Any], journal: Journal) -> InvocationEnd:
    """Run ``fn`` once against ``journal`` and say how the execution stands afterwards."""
    end = _run(fn, journal)
    if journal.parked is None:
        return end
    error = ErrorInfo.from_exception(journal.parked, with_traceback=False)
    return InvocationEnd(
        status=ExecutionStatus.RUNNING,
        error=error,
        waiting_for=park_summary(error, journal.execution_id),
        outcome=park_kind(error.type),
    )


def _run(fn: DurableFunction[Any, Any], journal: Journal) -> InvocationEnd:
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
        end = _suspended(journal, s.reason, s.wake_at)
        return end.model_copy(update={"outcome": s.outcome}) if s.outcome else end
    except ReplayBoundary:
        return _suspended(journal, "replay boundary (always-replay test mode)", journal.now())
    except (LeaseLostError, StoreError):
        # Not an outcome of the function: another worker owns the execution, or the store
        # failed (e.g. stayed locked). Leave the execution as recorded; it is retried.
        raise
    except NonDeterminismError as e:
        journal.park(e)  # parked by run_invocation
        return InvocationEnd(status=ExecutionStatus.RUNNING)
    except ExecutionCancelledError as e:
        return InvocationEnd(
            status=ExecutionStatus.CANCELLED,
            error=ErrorInfo.from_exception(e, with_traceback=False),
            **_named(e, journal.execution_id),
        )
    except Exception as e:
        return InvocationEnd(
            status=ExecutionStatus.FAILED,
            error=ErrorInfo.from_exception(e),
            **_named(e, journal.execution_id),
        )
    return InvocationEnd(status=ExecutionStatus.SUCCEEDED, result=text)


def _named(exc: BaseException, execution_id: str) -> dict[str, str]:
    """The outcome name and hint an exception class declares for the worker's log."""
    named: dict[str, str] = {}
    outcome = getattr(type(exc), "durable_outcome", None)
    hint = getattr(type(exc), "durable_hint", None)
    if isinstance(outcome, str):
        named["outcome"] = outcome
    if isinstance(hint, str):
        named["hint"] = hint.replace("{execution_id}", execution_id)
    return named


def _suspended(journal: Journal, reason: str, wake_at: datetime | None) -> InvocationEnd:
    deadline = journal.execution.deadline
    if deadline is not None and not journal.cancel_delivered:
        wake_at = deadline if wake_at is None else min(wake_at, deadline)
    return InvocationEnd(status=ExecutionStatus.RUNNING, wake_at=wake_at, waiting_for=reason)
