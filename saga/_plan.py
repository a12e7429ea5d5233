"""A saga step in two halves around its one durable call.

``prepare_step`` does everything before the call: the declaration checks, the step's path
and idempotency key, its ``StepConfig`` and its undo entry; it returns a :class:`StepPlan`.
The caller then makes the call, ``ctx.step(plan.path, plan.run, plan.config)`` (shielded
when ``plan.forward``), and settles the plan with its outcome: ``on_success``,
``on_failure`` or ``on_stop`` push the undo, record the failure and mark the pivot. Nothing
here touches a durable context, so a sync and an async runner share it; ``s.step`` is the
sync runner, and ``s.parallel`` plans each branch the same way.

Invariants:
- A plan is made only for a declaration that passed every check; preparing records
  nothing in the journal (it only takes the name, and marks a pivot as declared).
- Settling reads only the recorded outcome (the value, the error, the attempts), so replay
  settles the same plan the same way.
- An undo is pushed for a step that succeeded and has a compensation; for a step that
  failed for good only if :func:`saga.rules.undo_on_failure` says so; for a step a stop
  ended only with ``compensate_uncertain=True`` and after at least one attempt. An
  uncertain undo carries the error and the attempts made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, TypeVarTuple

from durable_core import (
    ErrorInfo,
    ExecutionCancelledError,
    StepConfig,
    StepContext,
    StepFailedError,
)
from saga._state import SagaState
from saga.compensation import Undo, step_body
from saga.options import StepOptions
from saga.policy import StepKind
from saga.rules import stopped_error, undo_on_failure

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


@dataclass(frozen=True, eq=False)
class StepPlan(Generic[T]):
    """A declared saga step, ready for its durable call; settle it with the outcome."""

    state: SagaState
    """The saga the step belongs to (settling updates it)."""
    path: str
    """The step's saga path: the name of its journal record."""
    kind: StepKind
    """The effective kind."""
    run: Callable[[StepContext], T]
    """The step's body for ``ctx.step``: the action with its arguments and idempotency key
    (``async def`` when the action is, see :func:`saga.compensation.step_body`)."""
    config: StepConfig
    undo: Undo
    """The undo entry, without the outcome (added when the step settles)."""
    compensate_uncertain: bool
    forward: bool
    """A pivot was declared before this step: a stop delivered at it is absorbed and the
    step re-issued (call it through :func:`saga.compensation.shielded`)."""

    def on_success(self, value: T) -> T:
        """The step succeeded with ``value``: register its undo; a pivot is now done."""
        if self.undo.compensate is not None:
            self.state.push(dataclasses.replace(self.undo, result=value))
        if self.kind is StepKind.PIVOT:
            self.state.mark_pivot_done()
        return value

    def on_failure(self, exc: StepFailedError) -> None:
        """The step failed for good (the caller re-raises ``exc``)."""
        self.state.record_failure(exc, self.path)
        if self._undone_after_failure(exc.error_type):
            error = ErrorInfo(type=exc.error_type, message=exc.args[0], traceback=exc.traceback)
            self._push_uncertain(error, exc.attempts)

    def on_stop(self, exc: ExecutionCancelledError) -> None:
        """A stop ended the step while it waited to retry (or with an at-most-once attempt
        unfinished): it never runs again, and attempts that failed may have had an effect
        (the caller re-raises ``exc``)."""
        self.undo_stopped(exc.kind, exc.reason, exc.attempts)

    def undo_failed(self, error: ErrorInfo, attempts: int | None) -> None:
        """Register the uncertain undo of a step that failed for good with the recorded
        ``error``, if it gets one."""
        if self._undone_after_failure(error.type):
            self._push_uncertain(error, attempts)

    def undo_stopped(self, kind: str, reason: str, attempts: int | None) -> None:
        """Register the uncertain undo of a step a stop ended, if it gets one."""
        if self.undo.compensate is not None and self.compensate_uncertain and (attempts or 0) > 0:
            self._push_uncertain(stopped_error(kind, reason), attempts)

    def _undone_after_failure(self, error_type: str) -> bool:
        return self.undo.compensate is not None and undo_on_failure(
            error_type, self.compensate_uncertain
        )

    def _push_uncertain(self, error: ErrorInfo, attempts: int | None) -> None:
        self.state.push(dataclasses.replace(self.undo, error=error, forward_attempts=attempts))


def prepare_step(
    state: SagaState,
    name: str,
    action: Callable[[StepContext, *Ts], T],
    args: tuple[*Ts],
    options: StepOptions,
) -> StepPlan[T]:
    """Check and plan the sequential step ``name`` of the saga ``state``.

    Raises:
        SagaDefinitionError: the declaration is invalid (nothing recorded).
        SerializationError: the step's result type cannot cross the journal.
    """
    kind = state.declare_step(name, action, options)
    forward = state.pivot is not None and kind is not StepKind.PIVOT
    return plan_step(
        state, state.child_path(name), action, args, options, kind=kind, forward=forward
    )


def plan_step(
    state: SagaState,
    path: str,
    action: Callable[[StepContext, *Ts], T],
    args: tuple[*Ts],
    options: StepOptions,
    *,
    kind: StepKind,
    forward: bool,
) -> StepPlan[T]:
    """The plan of a step whose declaration was checked (as :func:`prepare_step` or a
    parallel group does)."""
    key = state.key(path)

    def arguments(sc: StepContext) -> tuple[Any, ...]:
        return (dataclasses.replace(sc, idempotency_key=key), *args)

    return StepPlan(
        state=state,
        path=path,
        kind=kind,
        run=step_body(action, arguments),
        config=options.step_config(kind, action),
        undo=options.undo(path, key, args),
        compensate_uncertain=options.compensate_uncertain,
        forward=forward,
    )
