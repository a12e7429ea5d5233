"""``AsyncSagaContext``: what an ``async def`` saga receives, and the runner that rolls it back.

``await s.step(name, action, *args, compensate=undo)`` runs ``action(sc, *args)`` as a
step of the :class:`durable_core.AsyncDurableContext` (``s.ctx``) and, once it succeeded,
pushes ``undo`` on the saga's undo stack; ``await s.parallel(name, [s.branch(...), ...])``
runs steps as asyncio tasks; ``await s.child(name, other_async_saga, event)`` nests a saga.
An action or a compensation may be ``async def`` (awaited on the event loop, cancelled past
its timeout) or sync (run on a thread, so blocking client code does not stall the loop).

Everything but the ``await`` is :class:`saga.SagaContext`'s: the same plans
(:func:`saga._plan.prepare_step`, :func:`saga.parallel.prepare_parallel`), the same
settling, the same failure rules (:mod:`saga._failure`) and the same rollback loop
(:func:`saga.compensation.roll_back_async`). So an async saga writes the same journal
records, in the same order, as the same saga written sync, and a journal written by one
replays under the other; ``saga_status``, ``saga.operator`` and ``durable-saga`` read it
the same way.

Invariants:
- A saga operation (``s.step``, ``s.parallel``, ``s.child``) is declared and checked when
  it is called (a bad declaration raises at once, records nothing) and runs when it is
  awaited, once (a second ``await`` of it is refused).
- One saga operation at a time: calling one while another of the same saga was called and
  has not finished (not awaited, or running concurrently, e.g. under ``asyncio.gather``) is
  a :class:`SagaDefinitionError` naming both, raised before the second is declared; so is
  a saga body that returns with an operation never awaited. Use ``s.parallel`` to run
  steps concurrently. (Steps would otherwise take their journal positions in timing
  order.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar, TypeVarTuple

from durable_core import (
    AsyncDurableContext,
    ExecutionCancelledError,
    RetryPolicy,
    StepContext,
    StepFailedError,
    StepSemantics,
)
from saga._failure import rollback_cause, rolled_back
from saga._plan import StepPlan, prepare_step
from saga._surface import SagaSurface
from saga.compensation import Compensation, roll_back_async, shielded_async
from saga.errors import SagaDefinitionError
from saga.options import StepOptions
from saga.parallel import SagaBranch, prepare_parallel, run_parallel_async
from saga.policy import StepKind

if TYPE_CHECKING:
    from saga.definition import SagaDefinition

T = TypeVar("T")
E = TypeVar("E")
R = TypeVar("R")
Ts = TypeVarTuple("Ts")


class SagaOperation(Generic[T]):
    """A saga operation that was called: it runs when awaited (see the module docstring)."""

    __slots__ = ("_make", "_owner", "what")

    def __init__(self, owner: AsyncSagaContext, what: str, make: Callable[[], Awaitable[T]]):
        self._owner = owner
        self._make: Callable[[], Awaitable[T]] | None = make
        self.what = what
        """The operation, for errors (``step 'book-hotel'``)."""

    def __await__(self) -> Generator[Any, None, T]:
        make, self._make = self._make, None
        if make is None:
            raise SagaDefinitionError(
                f"saga {self._owner.name!r}: {self.what} was awaited twice; an operation runs "
                "once (keep the value of the first await)"
            )
        return self._run(make).__await__()

    async def _run(self, make: Callable[[], Awaitable[T]]) -> T:
        try:
            return await make()
        finally:
            self._owner._finished(self)


class AsyncSagaContext(SagaSurface[AsyncDurableContext]):
    """The handle an ``async def`` saga uses: ``await s.step(...)``, ``s.ctx`` for the rest.

    As :class:`saga.SagaContext`, awaited. ``s.ctx`` is the
    :class:`durable_core.AsyncDurableContext` (waits, callbacks, conditions: awaited, not
    compensated). Code between steps must be deterministic and must not block the loop.
    """

    is_async = True

    def __init__(self, ctx: AsyncDurableContext, *, saga: str, path: str = "") -> None:
        super().__init__(ctx, saga=saga, path=path)
        self._open: SagaOperation[Any] | None = None

    # --- steps -----------------------------------------------------------------------------

    def step(
        self,
        name: str,
        action: Callable[[StepContext, *Ts], Any],
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
    ) -> Awaitable[Any]:
        """As :meth:`saga.SagaContext.step`, awaited: ``value = await s.step(...)``.

        ``action`` and ``compensate`` may be ``async def`` (awaited on the event loop; past
        ``timeout`` / ``compensation_timeout`` the attempt is cancelled) or sync (run on a
        thread). The value is the recorded result (annotate the variable to type it).

        Raises:
            SagaDefinitionError: the declaration is invalid, or another operation of this
                saga has not finished (raised at the call; nothing recorded).
            StepFailedError: the step failed for good (at the ``await``); letting it
                propagate rolls the saga back.
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
        what = f"step {name!r}"
        self._check_idle(what)
        plan = prepare_step(self._state, name, action, args, options)
        return self._open_operation(what, lambda: self._run_step(plan))

    async def _run_step(self, plan: StepPlan[Any]) -> Any:
        try:
            if plan.forward:  # past the pivot: a stop here is absorbed, the step re-issued
                value = await shielded_async(self._ctx, lambda: self._call(plan), plan.path)
            else:
                value = await self._call(plan)
        except StepFailedError as exc:
            plan.on_failure(exc)
            raise
        except ExecutionCancelledError as exc:
            plan.on_stop(exc)
            raise
        return plan.on_success(value)

    def _call(self, plan: StepPlan[Any]) -> Awaitable[Any]:
        """The one durable call of a planned step."""
        return self._ctx.step(plan.path, plan.run, plan.config)

    def child(self, name: str, saga: SagaDefinition[E, R], event: E) -> Awaitable[R]:
        """As :meth:`saga.SagaContext.child`, awaited; ``saga`` must be an async saga too
        (``@saga async def``): its steps run on this saga's async context.

        Raises:
            SagaDefinitionError: bad declaration, or a sync child saga (nothing recorded).
        """
        what = f"nested saga {name!r}"
        self._check_idle(what)
        path = self._state.declare_child(name, saga)
        return self._open_operation(what, lambda: self._run_child(path, saga, event))

    async def _run_child(self, path: str, saga: SagaDefinition[E, R], event: E) -> R:
        sub = AsyncSagaContext(self._ctx, saga=saga.name, path=path)
        try:
            value = await run_saga_async(sub, saga.run_body_async, event)
        except Exception as exc:
            self._state.record_failure(exc, path)
            raise
        self._state.push_child(path, sub._state)
        return value

    def parallel(
        self,
        name: str,
        branches: Sequence[SagaBranch[Any]],
        *,
        max_concurrency: int | None = None,
    ) -> Awaitable[list[Any]]:
        """As :meth:`saga.SagaContext.parallel`, awaited; the branches run as asyncio tasks
        (at most ``max_concurrency`` at once), each keeping its own compensation.

        Raises:
            SagaDefinitionError: a bad declaration (at the call; nothing recorded).
            StepFailedError: a branch failed for good (at the ``await``).
        """
        what = f"parallel {name!r}"
        self._check_idle(what)
        plan = prepare_parallel(self._state, name, branches)
        return self._open_operation(
            what, lambda: run_parallel_async(self._ctx, plan, max_concurrency=max_concurrency)
        )

    # --- one operation at a time -------------------------------------------------------------

    def _check_idle(self, what: str) -> None:
        if self._open is not None:
            raise SagaDefinitionError(
                f"saga {self.name!r}: {what} was called while {self._open.what} had not "
                "finished (not awaited, or running concurrently): await each saga operation "
                "before calling the next (`await s.step(...)`); to run steps concurrently "
                "use s.parallel"
            )

    def _open_operation(self, what: str, make: Callable[[], Awaitable[T]]) -> SagaOperation[T]:
        operation = SagaOperation(self, what, make)
        self._open = operation
        return operation

    def _finished(self, operation: SagaOperation[Any]) -> None:
        if self._open is operation:
            self._open = None

    def _check_awaited(self) -> None:
        if self._open is not None:
            raise SagaDefinitionError(
                f"saga {self.name!r}: {self._open.what} was called but never awaited, so it "
                "never ran: write `await s.step(...)`"
            )


async def run_saga_async(
    s: AsyncSagaContext, body: Callable[[AsyncSagaContext, E], Awaitable[R]], event: E
) -> R:
    """:func:`saga.context.run_saga` for an async saga: the same rules (see
    :mod:`saga._failure`), the rollback awaited on ``s.ctx``."""
    try:
        value = await body(s, event)
        s._check_awaited()
        return value
    except Exception as exc:
        state = s._state
        cause = rollback_cause(state, exc)
        if cause is None:
            raise
        report = await roll_back_async(
            s.ctx, saga=state.saga, path=state.path, stack=state.stack, cause=cause
        )
        error = rolled_back(state, exc, cause, report)
        if error is None:
            raise
        raise error from exc
