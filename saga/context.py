"""``SagaContext``: what a saga function receives, and the runner that rolls it back.

``s.step(name, action, *args, compensate=undo)`` runs ``action(sc, *args)`` as a durable_core
step and, once it succeeded, pushes ``undo`` on the saga's undo stack. If the saga body then
raises (a step failed for good, the code raised, the saga was cancelled or its deadline
passed) the runner compensates the stack in reverse order (see :mod:`saga.compensation`).

The saga's state (names, undo stack, pivot, failure) is one :class:`saga._state.SagaState`;
a step's options are one :class:`saga.options.StepOptions`. ``s.step`` is the sync runner of
a step planned by :func:`saga._plan.prepare_step`: the plan, the one ``ctx.step`` call, then
the plan settled with its outcome. :class:`saga.AsyncSagaContext` is the same surface for an
``async def`` saga, awaited (see :mod:`saga._surface` for what the two share).

Invariants:
- The undo stack holds only values returned by recorded steps and the order the steps ran
  in; replay rebuilds it exactly. Nothing is ever read from closures over live state.
- Every check of a step declaration (name, callables, kind and pivot rules) happens before
  the step is started, so a bad declaration records nothing.
- Step names are unique within a saga; a step's saga path (``parent/child``) is unique within
  the execution and is the name of its journal record.
- The idempotency key a step's action sees (``sc.idempotency_key``) is
  ``"<execution id>:<saga path>"``; its compensation receives the same key.
- Once the pivot is declared, no step may be compensatable, and every later step is retried
  forward (``stop_never``); a failure after the pivot is never compensated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple

from durable_core import (
    DurableContext,
    ExecutionCancelledError,
    RetryPolicy,
    StepContext,
    StepFailedError,
    StepSemantics,
)
from saga._failure import rollback_cause, rolled_back
from saga._plan import StepPlan, prepare_step
from saga._surface import SagaSurface
from saga.compensation import Compensation, roll_back, shielded
from saga.options import StepOptions
from saga.parallel import SagaBranch, prepare_parallel, run_parallel
from saga.policy import StepKind

if TYPE_CHECKING:
    from saga.definition import SagaDefinition

T = TypeVar("T")
E = TypeVar("E")
R = TypeVar("R")
Ts = TypeVarTuple("Ts")


class SagaContext(SagaSurface[DurableContext]):
    """The handle a saga function uses: ``s.step(...)`` for steps, ``s.ctx`` for the rest.

    Use ``s.ctx`` (the :class:`durable_core.DurableContext`) for waits, callbacks and
    conditions; they are not compensated. The same determinism rules apply as for any
    durable function: code between steps must be deterministic, and a step must return its
    values rather than mutate variables outside it.
    """

    # --- steps -----------------------------------------------------------------------------

    def step(
        self,
        name: str,
        action: Callable[[StepContext, *Ts], T],
        /,
        *args: *Ts,
        compensate: Compensation | None = None,
        kind: StepKind | str | None = None,
        retry: RetryPolicy | None = None,
        compensation_retry: RetryPolicy | None = None,
        compensate_uncertain: bool = False,
        semantics: StepSemantics = StepSemantics.AT_LEAST_ONCE_PER_RETRY,
        result_type: Any = None,
        timeout: timedelta | None = None,
        compensation_timeout: timedelta | None = None,
    ) -> T:
        """Run ``action(sc, *args)`` as a checkpointed step; register ``compensate`` for it.

        Args:
            name: the step's name, unique within the saga.
            action: called as ``action(sc, *args)``; ``sc.idempotency_key`` is stable across
                retries and replays and is the key the compensation receives.
            args: extra arguments for ``action`` (they must be deterministic: values from the
                event or from earlier steps).
            compensate: ``undo(c: CompensationContext)``, run if the saga rolls back after
                this step succeeded. ``None``: the step has nothing to undo.
            kind: ``COMPENSATABLE`` (default before the pivot), ``PIVOT`` (the point of no
                return) or ``RETRIABLE`` (retried until it succeeds; default after the pivot).
            retry: the step's retry policy (default: durable_core's, 3 attempts). For a
                retriable step, its ``stop`` is replaced by ``stop_never``.
            compensation_retry: the undo's own policy (default: backoff up to 10 minutes for
                one day, then the saga parks for an operator).
            compensate_uncertain: also run ``compensate`` if this step itself fails for good
                (its effect may have happened: a timeout, an interrupted at-most-once
                attempt). The undo then gets ``uncertain=True`` and the error.
            semantics: durable_core's step semantics (at-least-once or at-most-once per retry).
            result_type: the type the result is recorded as (default: the return annotation).
            timeout: how long one attempt of ``action`` may run (``StepConfig.timeout``):
                past it the attempt fails with StepTimeoutError, is abandoned, and goes to
                the retry policy. ``None``: no limit.
            compensation_timeout: the same limit for one attempt of ``compensate``.

        Returns:
            The action's result (the recorded one when replaying).

        Raises:
            SagaDefinitionError: the declaration is invalid (nothing recorded).
            StepFailedError: the step failed for good; letting it propagate rolls the saga back.
        """
        options = StepOptions(
            compensate=compensate,
            kind=kind,
            retry=retry,
            compensation_retry=compensation_retry,
            compensate_uncertain=compensate_uncertain,
            semantics=semantics,
            result_type=result_type,
            timeout=timeout,
            compensation_timeout=compensation_timeout,
        )
        plan = prepare_step(self._state, name, action, args, options)
        try:
            if plan.forward:  # past the pivot: a stop here is absorbed, the step re-issued
                value = shielded(self._ctx, lambda: self._call(plan), plan.path)
            else:
                value = self._call(plan)
        except StepFailedError as exc:
            plan.on_failure(exc)
            raise
        except ExecutionCancelledError as exc:
            plan.on_stop(exc)
            raise
        return plan.on_success(value)

    def _call(self, plan: StepPlan[T]) -> T:
        """The one durable call of a planned step."""
        return self._ctx.step(plan.path, plan.run, plan.config)

    def child(self, name: str, saga: SagaDefinition[E, R], event: E) -> R:
        """Run another saga as one step of this one.

        The child's steps are recorded under ``<name>/<step>``. If the child fails it rolls
        its own steps back first, then this saga rolls back. If this saga rolls back after
        the child completed, the child is compensated as a unit: its compensations, in
        reverse order. A child saga may not declare a pivot (the top-level saga owns the
        point of no return), and may not run after this saga's pivot.

        Raises:
            SagaDefinitionError: bad declaration, or an async child saga (nothing recorded).
        """
        path = self._state.declare_child(name, saga)
        sub = SagaContext(self._ctx, saga=saga.name, path=path)
        try:
            value = run_saga(sub, saga.run_body, event)
        except Exception as exc:
            self._state.record_failure(exc, path)
            raise
        self._state.push_child(path, sub._state)
        return value

    def parallel(
        self,
        name: str,
        branches: Sequence[SagaBranch[T]],
        *,
        max_concurrency: int | None = None,
    ) -> list[T]:
        """Run saga steps concurrently (``ctx.parallel``); each keeps its own compensation.

        Every branch runs to its end. The branches that succeeded are registered for undo in
        branch order, so a rollback compensates them in reverse start order. If a branch
        failed, the saga raises that branch's StepFailedError (and rolls back, undoing the
        branches that succeeded). Branch steps are recorded as ``<name>/<branch>``.

        Returns:
            The branches' results, in branch order.

        Raises:
            SagaDefinitionError: a bad declaration (nothing recorded).
            StepFailedError: a branch failed for good.
        """
        plan = prepare_parallel(self._state, name, branches)
        return run_parallel(self._ctx, plan, max_concurrency=max_concurrency)


def run_saga(s: SagaContext, body: Callable[[SagaContext, E], R], event: E) -> R:
    """Run a saga body; on failure, cancellation or deadline roll it back and re-raise.

    Returns the body's result. After a failure and a full rollback raises
    :class:`SagaCompensated` (or :class:`SagaPartiallyCompensated`), chained to the error;
    after a cancellation or deadline re-raises the cancellation, so the execution ends
    CANCELLED. The errors of :data:`saga._failure.NO_ROLLBACK`, a terminate request, and
    anything after the pivot propagate without compensation (see :mod:`saga._failure`).
    """
    try:
        return body(s, event)
    except Exception as exc:
        state = s._state
        cause = rollback_cause(state, exc)
        if cause is None:
            raise
        report = roll_back(s.ctx, saga=state.saga, path=state.path, stack=state.stack, cause=cause)
        error = rolled_back(state, exc, cause, report)
        if error is None:
            raise
        raise error from exc
