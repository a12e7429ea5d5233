"""Instrumentation hooks: what the engine tells an observer while it runs an execution.

An :class:`Instrumentation` is passed to a runtime (``RuntimeOptions(instrumentation=[...])``,
which the worker, the async worker, the testing runner and the DynamoDB Lambda handlers use)
or to the durable-service Lambda handler (``LambdaOptions(instrumentation=[...])``). It is
called on every store and on both surfaces, sync and async, from the one operation core, so
every operation type reports the same way. :mod:`durable_core.otel` is one, for
OpenTelemetry.

What is reported, per invocation (one run of the function from the top):

- ``invocation_started`` / ``invocation_finished``: the invocation, and how it ended
  (SUCCEEDED, FAILED, CANCELLED, SUSPENDED with what it waits for, PARKED, INTERRUPTED). The
  first invocation of an execution has ``InvocationInfo.first``; a finished status ends it.
- ``operation_replayed``: the code reached an operation whose record is finished; nothing
  runs. Replayed operations get no other hook.
- ``operation_started``: an attempt of an operation begins in this invocation (new, or
  resumed: a step's retry, a timer not yet due, a child context whose body runs again). It
  is called again for each further attempt this invocation makes (an inline retry).
- ``operation_retried``: that attempt failed and will be retried (inline, or on a durable
  timer: the invocation then suspends).
- ``operation_suspended`` / ``operation_ended``: the operation leaves the invocation, exactly
  one of the two for every operation started: it waits (a timer, a callback, a poll, an
  invoke, a retry timer, or something inside it waits), or it ended with a status.
- ``phase_started`` / ``phase_ended``: a named group of operations (``ctx.phase``); a saga's
  rollback and each compensation are phases (``saga.rollback``, ``saga.compensation``).

Invariants:
- A hook never changes an execution: what one raises is logged once per class and hook
  (its type, never its arguments) and ignored. Only ``BaseException`` signals that are not
  ``Exception`` (``KeyboardInterrupt``) propagate.
- Hooks run synchronously on the thread that runs the operation (batch branches run on
  their own threads, so an instrumentation guards shared state with a lock).
- With no instrumentation configured, the engine pays one attribute check per operation.
- Nothing secret is handed over unasked: infos carry ids, names, types, statuses, attempts
  and error types and messages, never payloads or callback tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class ErrorSummary:
    """An error, as instrumentation sees it: its qualified type and message (no traceback)."""

    type: str
    """The error's qualified type (``ValueError``, ``durable_core.errors.StepTimeoutError``)."""
    message: str
    """Its message (user text: an exporter should not record it unless asked to)."""


@dataclass(frozen=True)
class InvocationInfo:
    """One invocation of an execution."""

    execution_id: str
    """The execution being run."""
    function: str
    """The durable function's registered name."""
    first: bool
    """True if no operation was recorded yet: the execution's first invocation."""
    started_at: datetime
    """When the invocation started (the runtime's clock)."""
    execution_started_at: datetime
    """When the execution was created."""
    due_at: datetime | None = None
    """When the execution became due (its timer, retry or event), if the store says."""
    parent_execution_id: str | None = None
    """The execution that started this one with ``ctx.invoke``, if any."""

    @property
    def due_lag(self) -> timedelta | None:
        """How long the execution was due before this invocation ran it (never negative)."""
        if self.due_at is None:
            return None
        return max(self.started_at - self.due_at, timedelta(0))


@dataclass(frozen=True)
class InvocationOutcome:
    """How an invocation ended."""

    status: str
    """``SUCCEEDED``, ``FAILED``, ``CANCELLED`` (the execution finished), ``SUSPENDED`` (it
    waits), ``PARKED`` (it waits for an operator or fixed code), or ``INTERRUPTED`` (the
    invocation stopped without an outcome: a lost lease, a store error, a crash)."""
    error: ErrorSummary | None = None
    """The execution's error (FAILED, CANCELLED, PARKED) or the interruption's."""
    waiting_for: str | None = None
    """What a suspended or parked execution waits for (``timer 'cool-off' until ...``)."""
    wake_at: datetime | None = None
    """When a suspended execution is due again, if it waits for a time."""

    @property
    def finished(self) -> bool:
        """True if the execution ended with this invocation."""
        return self.status in ("SUCCEEDED", "FAILED", "CANCELLED")


@dataclass(frozen=True)
class OperationInfo:
    """One operation of an execution, as the code reached it in this invocation."""

    execution_id: str
    """The execution it belongs to."""
    operation_id: str
    """Its deterministic operation id (the same in every invocation)."""
    parent_id: str | None
    """The enclosing operation (child context, batch or branch); ``None`` at the top."""
    phase_id: int | None
    """The innermost open :class:`PhaseInfo` of its scope, if any."""
    type: str
    """``STEP``, ``WAIT``, ``CALLBACK``, ``CONTEXT`` or ``CHAINED_INVOKE``."""
    sub_type: str | None
    """``Step``, ``WaitForCondition``, ``RunInChildContext``, ``Parallel``, ``MapIteration``..."""
    name: str
    """Its name in the code."""
    position: str
    """Where it is (``3``, ``2.1``): the position non-determinism errors name."""
    attempt: int = 1
    """The attempt (a step's, a condition's poll number; 1 for other operations)."""


@dataclass(frozen=True)
class PhaseInfo:
    """A named group of operations in one scope (``ctx.phase``), in this invocation."""

    execution_id: str
    """The execution it belongs to."""
    phase_id: int
    """Its id, unique within the invocation."""
    kind: str
    """What it is (``saga.rollback``, ``saga.compensation``, or the caller's own kind)."""
    name: str
    """Which one (the saga's name, the compensated step)."""
    parent_id: str | None
    """The enclosing operation of its scope; ``None`` at the top."""
    parent_phase_id: int | None
    """The enclosing phase of the same scope, if any."""
    attributes: dict[str, str | int | float | bool] = field(default_factory=dict)
    """What the caller said about it (no payloads)."""


class Instrumentation:
    """The hooks, each a no-op: subclass and override the ones you need.

    Any object with some of these methods works too (a missing one is not called). Hooks
    must be fast: they run on the thread that runs the operation. See the module docstring
    for when each is called.
    """

    def invocation_started(self, invocation: InvocationInfo) -> None:
        """An invocation starts (``invocation.first``: the execution starts)."""

    def invocation_finished(self, invocation: InvocationInfo, outcome: InvocationOutcome) -> None:
        """The invocation ended (``outcome.finished``: so did the execution)."""

    def operation_started(self, op: OperationInfo) -> None:
        """An attempt of ``op`` begins (never for a replayed operation)."""

    def operation_retried(
        self, op: OperationInfo, error: ErrorSummary, next_attempt_at: datetime | None
    ) -> None:
        """Attempt ``op.attempt`` failed with ``error``; the next is due at ``next_attempt_at``."""

    def operation_suspended(
        self, op: OperationInfo, waiting_for: str, wake_at: datetime | None
    ) -> None:
        """``op`` suspends the invocation until ``wake_at`` (or an event)."""

    def operation_ended(self, op: OperationInfo, status: str, error: ErrorSummary | None) -> None:
        """``op`` ended in this invocation: ``status`` is its record's (``SUCCEEDED``,
        ``FAILED``, ``CANCELLED``, ``TIMED_OUT``; ``STARTED`` for a created callback, whose
        result is waited for by ``result()``), or ``INTERRUPTED`` (no outcome)."""

    def operation_replayed(self, op: OperationInfo, status: str) -> None:
        """The code reached ``op``, finished with ``status`` in an earlier invocation."""

    def phase_started(self, phase: PhaseInfo) -> None:
        """A phase opens (its operations may all be replayed: see ``phase_ended``)."""

    def phase_ended(
        self, phase: PhaseInfo, outcome: str, error: ErrorSummary | None, replayed: bool
    ) -> None:
        """The phase closed: ``outcome`` is ``ok``, ``failed`` or ``suspended``;
        ``replayed`` if no operation in it ran in this invocation."""


HOOKS = (
    "invocation_started",
    "invocation_finished",
    "operation_started",
    "operation_retried",
    "operation_suspended",
    "operation_ended",
    "operation_replayed",
    "phase_started",
    "phase_ended",
)
"""The names of the hooks (the methods of :class:`Instrumentation`)."""


def check_instrumentation(items: Any, what: str = "instrumentation") -> tuple[Any, ...]:
    """``items`` as a tuple of instrumentation objects; ValidationError naming a bad one.

    Each must be an instance (not a class) with at least one hook method.
    """
    from durable_core.errors import ValidationError

    if isinstance(items, str | bytes) or not hasattr(items, "__iter__"):
        raise ValidationError(
            f"{what} must be a list of Instrumentation objects, got {type(items).__name__}"
        )
    out = tuple(items)
    for i, item in enumerate(out):
        if isinstance(item, type):
            raise ValidationError(
                f"{what}[{i}] is the class {item.__qualname__}, not an instance: "
                f"pass {item.__qualname__}(...)"
            )
        if not any(callable(getattr(item, name, None)) for name in HOOKS):
            raise ValidationError(
                f"{what}[{i}] ({type(item).__qualname__}) has none of the hook methods "
                f"({', '.join(HOOKS)}); subclass durable_core.Instrumentation"
            )
    return out
