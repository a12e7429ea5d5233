"""One invocation: load the journal, run the user's function from the top, report the end.

The outcome is one of: SUCCEEDED (result recorded), FAILED (error recorded), CANCELLED,
or still RUNNING (suspended: waiting for a time or an event). The caller writes it with
``SchedulingStore.finish_invocation`` under the same lease, so it is atomic with releasing
the lease (the Lambda durable service's handler answers it instead).
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

import asyncio
import contextvars
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from durable_core.async_context import AsyncDurableContext, check_awaited, is_unawaited_error
from durable_core.context import DurableContext
from durable_core.errors import (
    ExecutionCancelledError,
    LeaseLostError,
    NonDeterminismError,
    ReplayBoundary,
    StoreError,
    SuspendExecution,
    ValidationError,
)
from durable_core.journal import Journal
from durable_core.parking import park_kind, park_summary
from durable_core.records import ErrorInfo, Execution, ExecutionStatus
from durable_core.replay import Scope, operation_id
from durable_core.serde import external
from durable_core.stores.base import InvocationEnd

if TYPE_CHECKING:
    from durable_core.function import DurableFunction

T = TypeVar("T")


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
    """Run ``fn`` once against ``journal`` and say how the execution stands afterwards.

    An async ``fn`` runs on an event loop of its own (:func:`run_blocking`); on a loop,
    await :func:`run_invocation_async` instead.
    """
    if fn.is_async:
        return run_blocking(run_invocation_async(fn, journal))
    hooks = journal.instrumentation
    if hooks is not None:
        hooks.invocation_started()
    try:
        try:
            ctx = DurableContext(journal, _root_scope(journal))
            end = _succeeded(fn, journal, fn(ctx, _event(fn, journal)))
        except BaseException as e:
            end = _ended(journal, e)
        end = _parked(journal, end)
    except BaseException as e:
        if hooks is not None:
            hooks.invocation_interrupted(e)
        raise
    if hooks is not None:
        hooks.invocation_finished(end)
    return end


async def run_invocation_async(fn: DurableFunction[Any, Any], journal: Journal) -> InvocationEnd:
    """:func:`run_invocation` for an async ``fn``, awaited on the running loop.

    An operation the function called but never awaited fails the execution with an error
    naming it (see :mod:`durable_core.async_context`), whatever else it raised.
    """
    hooks = journal.instrumentation
    if hooks is not None:
        hooks.invocation_started()
    try:
        try:
            ctx = AsyncDurableContext(journal, _root_scope(journal))
            value = await fn.fn(ctx, _event(fn, journal))
            check_awaited(journal)
            end = _succeeded(fn, journal, value)
        except BaseException as e:
            end = _ended(journal, _unawaited(journal, e))
        end = _parked(journal, end)
    except BaseException as e:
        if hooks is not None:
            hooks.invocation_interrupted(e)
        raise
    if hooks is not None:
        hooks.invocation_finished(end)
    return end


def run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end on a new event loop, blocking the caller.

    Called from a thread that already runs a loop (sync code inside an async app), the
    coroutine runs on a loop in a helper thread instead: ``asyncio.run`` cannot nest. That
    blocks the caller's loop meanwhile; an app on a loop should use the async API instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    box: list[T] = []
    errors: list[BaseException] = []
    context = contextvars.copy_context()

    def run() -> None:
        try:
            box.append(context.run(asyncio.run, coroutine))
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run, name="durable-async-invocation")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return box[0]


def _root_scope(journal: Journal) -> Scope:
    return Scope(
        journal,
        parent_id=None,
        path="",
        replaying=journal.get(operation_id(None, 1)) is not None,
    )


def _event(fn: DurableFunction[Any, Any], journal: Journal) -> Any:
    what = f"input of execution {journal.execution_id!r}"
    return external(journal.serde).load(journal.execution.input, fn.input_type, what=what)


def _succeeded(fn: DurableFunction[Any, Any], journal: Journal, value: Any) -> InvocationEnd:
    what = f"result of execution {journal.execution_id!r}"
    serde = external(journal.serde)  # another program reads it
    text = serde.dump(value, fn.result_type, what=what)
    serde.load(text, fn.result_type, what=what)  # it must read back as its type
    return InvocationEnd(status=ExecutionStatus.SUCCEEDED, result=text)


def _unawaited(journal: Journal, error: BaseException) -> BaseException:
    """The un-awaited operation's error instead of ``error``, if there is one (an error
    about an operation not awaited stays: it names it already, and says what to do). Only
    an outcome is replaced (an error, a suspension): a signal that leaves the invocation (a
    simulated crash, a cancelled task, a replay boundary) leaves it as it came."""
    if (
        isinstance(error, LeaseLostError | StoreError)
        or not isinstance(error, Exception | SuspendExecution)  # a signal, not an outcome
        or not journal.unawaited
        or is_unawaited_error(error)
    ):
        return error
    try:
        check_awaited(journal)
    except ValidationError as e:
        e.__cause__ = error
        return e
    return error


def _ended(journal: Journal, error: BaseException) -> InvocationEnd:
    """How an invocation that raised ``error`` ended; re-raises what is not an outcome."""
    if isinstance(error, SuspendExecution):
        end = _suspended(journal, error.reason, error.wake_at)
        return end.model_copy(update={"outcome": error.outcome}) if error.outcome else end
    if isinstance(error, ReplayBoundary):
        return _suspended(journal, "replay boundary (always-replay test mode)", journal.now())
    if isinstance(error, LeaseLostError | StoreError) or not isinstance(error, Exception):
        # Not an outcome of the function: another worker owns the execution, or the store
        # failed (e.g. stayed locked), or a signal (a simulated crash). Leave the execution
        # as recorded; it is retried.
        raise error
    if isinstance(error, NonDeterminismError):
        journal.park(error)  # parked by _parked
        return InvocationEnd(status=ExecutionStatus.RUNNING)
    status = (
        ExecutionStatus.CANCELLED
        if isinstance(error, ExecutionCancelledError)
        else ExecutionStatus.FAILED
    )
    return InvocationEnd(
        status=status,
        error=ErrorInfo.from_exception(error, with_traceback=status is ExecutionStatus.FAILED),
        **_named(error, journal.execution_id),
    )


def _parked(journal: Journal, end: InvocationEnd) -> InvocationEnd:
    if journal.parked is None:
        return end
    error = ErrorInfo.from_exception(journal.parked, with_traceback=False)
    return InvocationEnd(
        status=ExecutionStatus.RUNNING,
        error=error,
        waiting_for=park_summary(error, journal.execution_id),
        outcome=park_kind(error.type),
    )


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
