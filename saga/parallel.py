"""Parallel saga steps: ``s.parallel(name, [s.branch(...), ...])``.

Each branch is one saga step (an action with its own compensation) run in a branch of
``ctx.parallel``. A branch never fails the batch: a step that fails for good is recorded
FAILED inside the branch, and the branch returns that outcome, so every branch runs to its
end and has a definite outcome. Then the branches that succeeded are pushed on the undo
stack in branch order (the order they were started), so a rollback compensates them in
reverse start order; if a branch failed, the saga raises its StepFailedError and rolls
back.

As for a sequential step (:mod:`saga._plan`) a group runs in halves: ``prepare_parallel``
checks every branch and plans its step; the one durable call is ``ctx.parallel`` of one
:func:`branch_body` per planned step (:func:`run_parallel`; :func:`run_parallel_async` and
:func:`branch_body_async` on the async context, branches as asyncio tasks);
:meth:`ParallelPlan.settle` reads the recorded outcomes into the saga's state. Only the
middle touches a durable context, so both surfaces record the same batch.

Invariants:
- This module runs part of both saga contexts: it receives the saga's
  :class:`saga._state.SagaState` and settles the branches into it (names, undo stack,
  failure) only through that object's transitions.
- The undo entries come from the recorded batch result, never from what the branch threads
  did in memory: replay rebuilds them without re-running a finished batch.
- A cancellation delivered inside a branch (at its step, new or waiting to retry) ends that
  branch's step there, as for a sequential step: it does not run again, and the branch
  records the cancellation in its result (with the attempts made, so an uncertain undo
  can be registered). The other branches, which never see a cancellation twice, run to their
  end. After the batch the saga raises the cancellation, so it rolls back knowing every
  branch's outcome. A terminate is not absorbed: it stops the group and the saga.
- durable_core never delivers a stop at an unfinished group itself (only inside its
  branches, or at a group not yet started), so every branch that finished is always read
  back from its own record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter

from durable_core import (
    AsyncDurableContext,
    DurableContext,
    ErrorInfo,
    ExecutionCancelledError,
    StepFailedError,
)
from saga._plan import StepPlan, plan_step
from saga._records import PATH_SEPARATOR
from saga.compensation import is_terminate, shielded, shielded_async
from saga.errors import SagaDefinitionError
from saga.options import StepOptions
from saga.policy import StepKind
from saga.rules import check_step, check_step_name, resolve_kind

if TYPE_CHECKING:
    from saga._state import SagaState

T = TypeVar("T")


@dataclass(frozen=True)
class SagaBranch(Generic[T]):
    """One step of a parallel group; made by :meth:`SagaContext.branch`."""

    name: str
    """Unique within its parallel group; the step's path is ``<group>/<name>``."""
    action: Callable[..., T]
    """Called as ``action(sc, *args)``."""
    args: tuple[Any, ...]
    options: StepOptions
    """The step's options, as given to ``s.branch`` (checked by ``s.parallel``)."""


class BranchOutcome(BaseModel):
    """What a saga branch records as its result: the step's value, and a cancellation it
    absorbed (so the saga can roll back once the whole group is known)."""

    model_config = ConfigDict(frozen=True)

    value: Any = None
    cancelled: str | None = None
    error: ErrorInfo | None = None
    """The step's recorded error, if it failed for good."""
    attempts: int | None = None
    stop_kind: str = "cancel"
    """``cancel`` or ``deadline``: the kind of the cancellation in ``cancelled``."""
    interrupted: bool = False
    """The cancellation reached this branch's own step, which then never finished."""

    @classmethod
    def failed(cls, exc: StepFailedError) -> BranchOutcome:
        """The outcome of a branch whose step failed for good."""
        error = ErrorInfo(type=exc.error_type, message=exc.args[0], traceback=exc.traceback)
        return cls(error=error, attempts=exc.attempts)

    @classmethod
    def stopped(cls, exc: ExecutionCancelledError) -> BranchOutcome:
        """The outcome of a branch whose step a cancellation (or the deadline) ended."""
        return cls(
            cancelled=exc.reason, stop_kind=exc.kind, attempts=exc.attempts, interrupted=True
        )

    @classmethod
    def ended(cls, exc: ExecutionCancelledError | StepFailedError) -> BranchOutcome | None:
        """The outcome of a branch whose step raised ``exc``; ``None`` if the branch does
        not absorb it (a terminate request: re-raise it)."""
        if isinstance(exc, StepFailedError):
            return cls.failed(exc)
        return None if is_terminate(exc) else cls.stopped(exc)


def branch_body(plan: StepPlan[Any]) -> Callable[[DurableContext], BranchOutcome]:
    """The function one ``ctx.parallel`` branch runs: the saga step and how it ended.

    Past the pivot (``plan.forward``) a cancellation is absorbed and the step re-issued.
    """

    def call(ctx: DurableContext) -> Any:
        return ctx.step(plan.path, plan.run, plan.config)

    def body(ctx: DurableContext) -> BranchOutcome:
        try:
            value = shielded(ctx, lambda: call(ctx), plan.path) if plan.forward else call(ctx)
        except (ExecutionCancelledError, StepFailedError) as exc:
            outcome = BranchOutcome.ended(exc)
            if outcome is None:
                raise
            return outcome
        return BranchOutcome(value=value)

    return body


def branch_body_async(
    plan: StepPlan[Any],
) -> Callable[[AsyncDurableContext], Awaitable[BranchOutcome]]:
    """:func:`branch_body` for the async context: the branch runs as an asyncio task; an
    async action is awaited on the loop, a sync one runs on a thread."""

    def call(ctx: AsyncDurableContext) -> Awaitable[Any]:
        return ctx.step(plan.path, plan.run, plan.config)

    async def body(ctx: AsyncDurableContext) -> BranchOutcome:
        try:
            if plan.forward:
                value = await shielded_async(ctx, lambda: call(ctx), plan.path)
            else:
                value = await call(ctx)
        except (ExecutionCancelledError, StepFailedError) as exc:
            outcome = BranchOutcome.ended(exc)
            if outcome is None:
                raise
            return outcome
        return BranchOutcome(value=value)

    return body


def typed(value: Any, result_type: Any) -> Any:
    """A branch's recorded value validated into the action's result type."""
    return TypeAdapter(result_type).validate_python(value)


def first_cancel(outcomes: Sequence[BranchOutcome]) -> BranchOutcome | None:
    """The outcome of the first branch a cancellation reached, if any."""
    return next((o for o in outcomes if o.cancelled), None)


def branch_failure(path: str, outcome: BranchOutcome, execution_id: str) -> StepFailedError:
    """The StepFailedError a failed branch recorded, rebuilt to be raised by the saga."""
    error = outcome.error or ErrorInfo(type="Unknown", message="(no error recorded)")
    return StepFailedError(
        error.message,
        step=path,
        error_type=error.type,
        attempts=outcome.attempts or 0,
        traceback=error.traceback,
        execution_id=execution_id,
    )


@dataclass(frozen=True, eq=False)
class ParallelPlan(Generic[T]):
    """A declared parallel group, ready for its one durable call (``ctx.parallel`` of one
    :func:`branch_body` per branch); settle it with the branches' recorded outcomes."""

    state: SagaState
    path: str
    """The group's saga path: the name of its journal record."""
    names: list[str]
    """The branch names, in branch order."""
    steps: list[StepPlan[Any]]
    """Each branch's step, in branch order."""
    types: list[Any]
    """The type each branch's value is read back as."""
    forward: bool
    """The pivot is declared: a stop is absorbed, at the group and in its branches."""

    def settle(self, outcomes: Sequence[BranchOutcome]) -> list[T]:
        """Register the branches' undos in branch order; return their values.

        Raises:
            ExecutionCancelledError: a cancellation reached a branch (before the pivot).
            StepFailedError: the first branch that failed for good.
        """
        values: list[T] = []
        failure: StepFailedError | None = None
        for plan, result_type, outcome in zip(self.steps, self.types, outcomes, strict=True):
            if outcome.error is None and not outcome.interrupted:
                values.append(plan.on_success(typed(outcome.value, result_type)))
            elif outcome.error is not None:
                failure = failure or branch_failure(plan.path, outcome, self.state.execution_id)
                plan.undo_failed(outcome.error, outcome.attempts)
            else:
                plan.undo_stopped(outcome.stop_kind, outcome.cancelled or "", outcome.attempts)
        stopped = first_cancel(outcomes)
        if stopped is not None and stopped.cancelled is not None and not self.forward:
            raise ExecutionCancelledError(
                f"execution {self.state.execution_id!r} was cancelled ({stopped.cancelled})",
                reason=stopped.cancelled,
                kind=stopped.stop_kind,
            )
        if failure is not None:
            self.state.record_failure(failure, self.path)
            raise failure
        return values


def prepare_parallel(
    state: SagaState, name: str, branches: Sequence[SagaBranch[T]]
) -> ParallelPlan[T]:
    """Check and plan the parallel group ``name`` of the saga ``state``.

    Raises:
        SagaDefinitionError: a bad declaration (nothing recorded).
    """
    state.check_name(name)
    items = list(branches) if isinstance(branches, list | tuple) else None
    if not items:
        raise SagaDefinitionError(
            f"saga {state.saga!r}, parallel {name!r}: give a non-empty list of s.branch(...)"
        )
    kinds = [_declare(state, name, b, {x.name for x in items[:i]}) for i, b in enumerate(items)]
    path = state.claim(name)
    forward = state.pivot is not None
    steps = [
        plan_step(
            state,
            f"{path}{PATH_SEPARATOR}{b.name}",
            b.action,
            b.args,
            b.options,
            kind=k,
            forward=forward,
        )
        for b, k in zip(items, kinds, strict=True)
    ]
    return ParallelPlan(
        state=state,
        path=path,
        names=[b.name for b in items],
        steps=steps,
        types=[b.options.recorded_type(b.action) for b in items],
        forward=forward,
    )


def run_parallel(
    ctx: DurableContext, plan: ParallelPlan[T], *, max_concurrency: int | None
) -> list[T]:
    """The durable call of :meth:`SagaContext.parallel`, settled into the plan's state."""
    bodies = [branch_body(step) for step in plan.steps]

    def run() -> Any:  # durable_core BatchResult[BranchOutcome]
        return ctx.parallel(
            bodies, name=plan.path, max_concurrency=max_concurrency, branch_names=plan.names
        )

    # Past the point of no return a cancellation is absorbed; before it, a stop delivered at
    # the group's own position means no branch ran: there is nothing to learn.
    batch = shielded(ctx, run, plan.path) if plan.forward else run()
    return plan.settle(batch.raise_if_failed().values())


async def run_parallel_async(
    ctx: AsyncDurableContext, plan: ParallelPlan[T], *, max_concurrency: int | None
) -> list[T]:
    """:func:`run_parallel` for :meth:`AsyncSagaContext.parallel` (branches as tasks)."""
    bodies = [branch_body_async(step) for step in plan.steps]

    def run() -> Awaitable[Any]:
        return ctx.parallel(
            bodies, name=plan.path, max_concurrency=max_concurrency, branch_names=plan.names
        )

    batch = await shielded_async(ctx, run, plan.path) if plan.forward else await run()
    return plan.settle(batch.raise_if_failed().values())


def _declare(state: SagaState, group: str, branch: object, taken: set[str]) -> StepKind:
    where = f"saga {state.saga!r}, parallel {group!r}"
    if not isinstance(branch, SagaBranch):
        raise SagaDefinitionError(
            f"{where}: each branch must be made with s.branch(name, action, ...), got "
            f"{type(branch).__name__}"
        )
    check_step_name(state.saga, branch.name, taken)
    check_step(
        state.saga,
        f"{group}{PATH_SEPARATOR}{branch.name}",
        branch.action,
        branch.options,
        pivot=state.pivot,
        nested=state.nested,
        is_async=state.is_async,
    )
    kind = resolve_kind(branch.options, pivot=state.pivot)
    if kind is StepKind.PIVOT:
        raise SagaDefinitionError(
            f"{where}: branch {branch.name!r} cannot be the pivot; the point of no return is "
            "one sequential step"
        )
    return kind
