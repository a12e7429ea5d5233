"""Compensations: what an undo receives, and the durable rollback that runs them.

Invariants:
- The undo stack is rebuilt on every replay from the order the saga's steps were run and
  their recorded results; nothing about it is kept outside the journal.
- A rollback first records its plan (the ``saga:rollback`` step); on replay the rebuilt plan
  must equal the recorded one, otherwise the code changed under an in-flight saga and
  :class:`durable_core.NonDeterminismError` is raised instead of undoing the wrong steps.
- Each undo runs as its own checkpointed step ``compensate:<step>`` with its own retry
  policy, in reverse order of the forward steps. A recorded undo is never run again; an
  unrecorded one is never skipped (a crash resumes at the first unfinished undo).
- An undo that exhausts its policy parks the saga on the callback ``operator:<step>`` and
  waits for an operator decision (retry, skip, resolve), which is recorded as the callback's
  payload. A terminate request ends the wait (it is delivered at the callback's result).
- A cancellation (or the deadline) that arrives during the rollback is absorbed (the
  rollback must finish); only a terminate request (``ExecutionTerminatedError``, a request
  of its own kind, never recognised by its reason text) stops it.
- The rollback's order and decisions are one generator, :func:`rollback_loop`, that touches
  no durable context: it yields each durable operation it needs (:class:`RunStep`, always
  run shielded; :class:`Park`) and receives the outcome. Waiting for an operator is another,
  :func:`park_loop` (:class:`OpenCallback`, :class:`ReadCallback`). :func:`roll_back` (the
  sync context) and :func:`roll_back_async` (the async context) drive both the same way
  (:mod:`durable_core.plans`), so they write the same sequence of records; they differ only in
  whether an operation is awaited.
- A compensation may be ``async def`` in an async saga (awaited on the event loop); a sync
  one runs on a thread there, and inline in a sync saga (see :func:`step_body`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Generator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import ValidationError as PydanticValidationError

from durable_core import (
    AsyncDurableContext,
    CallbackFailedError,
    CallbackTimeoutError,
    DurableContext,
    ErrorInfo,
    ExecutionCancelledError,
    ExecutionTerminatedError,
    NonDeterminismError,
    RetryPolicy,
    StepConfig,
    StepContext,
    StepFailedError,
)
from durable_core.plans import drive, drive_async
from saga._records import (
    OperatorDecision,
    PlanItem,
    RollbackCause,
    RollbackPlan,
    compensate_name,
    operator_name,
    plan_name,
)

T = TypeVar("T")

ROLLBACK_PHASE = "saga.rollback"
"""The instrumentation phase (``ctx.phase``) a rollback runs in, named for the saga."""
COMPENSATION_PHASE = "saga.compensation"
"""The phase each compensation runs in, named for the step it undoes."""

Compensation = Callable[["CompensationContext"], object]
"""An undo: ``undo(c: CompensationContext) -> anything JSON-serializable``."""


@dataclass(frozen=True, kw_only=True)
class CompensationContext:
    """What an undo receives: everything it needs to find and reverse the step's effect."""

    saga: str
    """The saga's name."""
    execution_id: str
    """The execution being rolled back."""
    step: str
    """The forward step's saga path (``book-hotel``; ``trip/book-hotel`` inside a nested
    saga)."""
    idempotency_key: str
    """The forward step's idempotency key: the same value the action saw as
    ``sc.idempotency_key``, stable across retries and replays. Use it to look the effect up
    at the provider (did the booking land?) and as the undo's own idempotency key."""
    result: Any
    """The forward step's recorded result; ``None`` if the step did not succeed."""
    uncertain: bool
    """True if the forward step did not succeed but its undo was registered with
    ``compensate_uncertain=True``: the effect may or may not have happened."""
    error: ErrorInfo | None
    """For an uncertain step: the recorded error (type, message, traceback)."""
    forward_attempts: int | None
    """For an uncertain step: how many attempts the forward step made."""
    args: tuple[Any, ...]
    """The extra arguments the forward action was called with."""
    attempt: int
    """This compensation attempt's number (1-based)."""
    logger: Any = field(repr=False)
    """A structlog logger bound to the execution, the compensation step and attempt."""


@dataclass(frozen=True)
class Undo:
    """One entry of a saga's undo stack: a completed (or uncertain) step with a compensation,
    or a nested saga's stack compensated as one unit."""

    step: str
    key: str
    compensate: Compensation | None
    policy: RetryPolicy
    result: Any = None
    error: ErrorInfo | None = None
    forward_attempts: int | None = None
    args: tuple[Any, ...] = ()
    children: tuple[Undo, ...] = ()
    timeout: timedelta | None = None
    """The limit of one attempt of ``compensate`` (``compensation_timeout=``)."""

    def flatten(self) -> list[Undo]:
        """The compensations this entry stands for, in the order they run."""
        if self.compensate is not None:
            return [self]
        out: list[Undo] = []
        for child in reversed(self.children):
            out.extend(child.flatten())
        return out


@dataclass
class RollbackReport:
    """How a rollback ended (the journal holds the details; see ``saga_status``)."""

    compensated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def is_terminate(exc: ExecutionCancelledError) -> bool:
    """True if the stop asks to end the saga without compensation (a terminate request)."""
    return isinstance(exc, ExecutionTerminatedError)


def absorbed(logger: Any, exc: ExecutionCancelledError, what: str) -> bool:
    """Whether a stop delivered at the rollback operation ``what`` is absorbed (logged; the
    operation is then re-issued): every stop but a terminate request."""
    if is_terminate(exc):
        return False
    logger.warning(
        "saga cancellation absorbed: the rollback runs to the end",
        operation=what,
        reason=exc.reason,
    )
    return True


def shielded(ctx: DurableContext, call: Callable[[], T], what: str) -> T:
    """Run one operation of a rollback; absorb a cancellation delivered at its boundary.

    durable_core records a cancellation at the position where it is delivered, so replay
    raises it there again and this loop re-issues the operation at the next position: the
    same sequence every time. A terminate request is not absorbed.
    """
    while True:
        try:
            return call()
        except ExecutionCancelledError as exc:
            if not absorbed(ctx.logger, exc, what):
                raise


async def shielded_async(
    ctx: AsyncDurableContext, call: Callable[[], Awaitable[T]], what: str
) -> T:
    """:func:`shielded` for an operation of the async context (``call`` makes it anew)."""
    while True:
        try:
            return await call()
        except ExecutionCancelledError as exc:
            if not absorbed(ctx.logger, exc, what):
                raise


def step_body(
    fn: Callable[..., Any], arguments: Callable[[StepContext], tuple[Any, ...]]
) -> Callable[[StepContext], Any]:
    """``fn(*arguments(sc))`` as a step body; ``async def`` when ``fn`` is, so the async
    context awaits it on the event loop (cancelled past its timeout) and runs a sync one on
    a thread."""
    if inspect.iscoroutinefunction(fn):

        async def run_async(sc: StepContext) -> Any:
            return await fn(*arguments(sc))

        return run_async

    def run(sc: StepContext) -> Any:
        return fn(*arguments(sc))

    return run


@dataclass(frozen=True)
class RunStep:
    """A request of :func:`rollback_loop`: run the step ``ctx.step(name, run, config)``,
    absorbing a cancellation at its boundary (:func:`shielded`). Send its value back, or
    throw its error back in."""

    name: str
    run: Callable[[StepContext], Any]
    config: StepConfig
    compensates: str | None = None
    """The forward step this step undoes (its runs are a ``saga.compensation`` phase)."""


@dataclass(frozen=True)
class Park:
    """A request of :func:`rollback_loop`: the compensation of ``undo`` failed for good
    with ``error``; wait for an operator's decision (:func:`park_loop`) and send the
    OperatorDecision back."""

    undo: Undo
    error: StepFailedError


@dataclass(frozen=True)
class OpenCallback:
    """A request of :func:`park_loop`: create the privileged callback ``name``, absorbing a
    cancellation at its boundary (:func:`shielded`), and send it back."""

    name: str


@dataclass(frozen=True)
class ReadCallback:
    """A request of :func:`park_loop`: the result of ``callback`` (a created callback of
    either context); send its payload back, or throw its error back in."""

    callback: Any


Request = RunStep | Park | OpenCallback | ReadCallback
"""What a driver performs for :func:`rollback_loop` and :func:`park_loop`."""
RollbackLoop = Generator[RunStep | Park, Any, RollbackReport]
"""A rollback as a generator of the durable operations it needs, ending with its report."""
ParkLoop = Generator[OpenCallback | ReadCallback, Any, OperatorDecision]
"""A park as a generator of the callback operations it needs, ending with the decision."""


def roll_back(
    ctx: DurableContext,
    *,
    saga: str,
    path: str,
    stack: Sequence[Undo],
    cause: RollbackCause,
) -> RollbackReport:
    """Compensate ``stack`` (entries in forward order) in reverse, durably.

    The sync driver of :func:`rollback_loop`: it performs each request with ``ctx``.

    Raises:
        ExecutionTerminatedError: a terminate request stopped the rollback; what was not
            undone stays listed by ``saga_status``.
        NonDeterminismError: the rebuilt plan differs from the recorded one.
    """
    loop = rollback_loop(
        saga=saga,
        path=path,
        stack=stack,
        cause=cause,
        execution_id=ctx.execution_id,
        logger=ctx.logger,
    )
    with ctx.phase(ROLLBACK_PHASE, saga, _rollback_attributes(cause)):
        return drive(loop, lambda request: _perform(ctx, saga, request))


async def roll_back_async(
    ctx: AsyncDurableContext,
    *,
    saga: str,
    path: str,
    stack: Sequence[Undo],
    cause: RollbackCause,
) -> RollbackReport:
    """:func:`roll_back` on the async context: the same loop, so the same records; async
    compensations are awaited on the event loop, sync ones run on a thread."""
    loop = rollback_loop(
        saga=saga,
        path=path,
        stack=stack,
        cause=cause,
        execution_id=ctx.execution_id,
        logger=ctx.logger,
    )
    with ctx.phase(ROLLBACK_PHASE, saga, _rollback_attributes(cause)):
        return await drive_async(loop, lambda request: _perform_async(ctx, saga, request))


def _rollback_attributes(cause: RollbackCause) -> dict[str, str | int | float | bool]:
    """What a rollback phase says about itself: why it started (no payloads)."""
    attributes: dict[str, str | int | float | bool] = {
        "saga.cause": cause.kind,
        "saga.error_type": cause.error_type,
    }
    if cause.step is not None:
        attributes["saga.failed_step"] = cause.step
    return attributes


def _perform(ctx: DurableContext, saga: str, request: Request) -> Any:
    """Carry out one request with the sync context."""
    if isinstance(request, RunStep):
        with _compensation_phase(ctx, request):
            return shielded(
                ctx, lambda: ctx.step(request.name, request.run, request.config), request.name
            )
    if isinstance(request, Park):
        park = park_loop(saga, request, execution_id=ctx.execution_id, logger=ctx.logger)
        return drive(park, lambda r: _perform(ctx, saga, r))
    if isinstance(request, OpenCallback):
        name = request.name
        return shielded(ctx, lambda: ctx.create_callback(name, privileged=True), name)
    return request.callback.result()


async def _perform_async(ctx: AsyncDurableContext, saga: str, request: Request) -> Any:
    """Carry out one request with the async context (as :func:`_perform`, awaited)."""
    if isinstance(request, RunStep):
        with _compensation_phase(ctx, request):
            return await shielded_async(
                ctx, lambda: ctx.step(request.name, request.run, request.config), request.name
            )
    if isinstance(request, Park):
        park = park_loop(saga, request, execution_id=ctx.execution_id, logger=ctx.logger)
        return await drive_async(park, lambda r: _perform_async(ctx, saga, r))
    if isinstance(request, OpenCallback):
        name = request.name
        return await shielded_async(ctx, lambda: ctx.create_callback(name, privileged=True), name)
    return await request.callback.result()


def _compensation_phase(
    ctx: DurableContext | AsyncDurableContext, request: RunStep
) -> AbstractContextManager[None]:
    """The ``saga.compensation`` phase around a compensation step (none for the plan)."""
    if request.compensates is None:
        return nullcontext()
    return ctx.phase(COMPENSATION_PHASE, request.compensates)


def rollback_loop(
    *,
    saga: str,
    path: str,
    stack: Sequence[Undo],
    cause: RollbackCause,
    execution_id: str,
    logger: Any,
) -> RollbackLoop:
    """The rollback of :func:`roll_back`, apart from how its durable operations are run.

    It yields a :class:`RunStep` for the plan and for each compensation attempt run, and a
    :class:`Park` when a compensation failed for good; a driver (:func:`roll_back`,
    :func:`roll_back_async`) performs each and sends the outcome back. It returns the report.

    Raises:
        NonDeterminismError: the rebuilt plan differs from the recorded one.
    """
    todo: list[Undo] = []
    for entry in reversed(stack):
        todo.extend(entry.flatten())
    plan = RollbackPlan(
        saga=saga,
        cause=cause,
        steps=[PlanItem(step=u.step, key=u.key, uncertain=u.error is not None) for u in todo],
    )
    name = plan_name(path)
    recorded = yield RunStep(
        name,
        lambda _sc: plan,
        StepConfig(retry=RetryPolicy.no_retry(), result_type=RollbackPlan),
    )
    if recorded.steps != plan.steps:
        raise NonDeterminismError(
            execution_id=execution_id,
            position=f"rollback plan {name!r}",
            expected=f"compensations {[i.step for i in recorded.steps]}",
            found=f"compensations {[i.step for i in plan.steps]}",
        )
    logger.warning(
        "saga rolling back",
        saga=saga,
        cause=cause.kind,
        failed_step=cause.step,
        compensations=[u.step for u in todo],
    )
    report = RollbackReport()
    for undo in todo:
        if (yield from _compensate(saga, undo)):
            report.compensated.append(undo.step)
        else:
            report.skipped.append(undo.step)
    return report


def _compensate(saga: str, undo: Undo) -> Generator[RunStep | Park, Any, bool]:
    """Run one undo until it succeeds or an operator decides; True unless skipped."""
    assert undo.compensate is not None

    def context(sc: StepContext) -> tuple[CompensationContext]:
        return (
            CompensationContext(
                saga=saga,
                execution_id=sc.execution_id,
                step=undo.step,
                idempotency_key=undo.key,
                result=undo.result,
                uncertain=undo.error is not None,
                error=undo.error,
                forward_attempts=undo.forward_attempts,
                args=undo.args,
                attempt=sc.attempt,
                logger=sc.logger,
            ),
        )

    config = StepConfig(retry=undo.policy, result_type=Any, timeout=undo.timeout)
    request = RunStep(
        compensate_name(undo.step), step_body(undo.compensate, context), config, undo.step
    )
    while True:
        try:
            yield request
        except StepFailedError as exc:
            decision: OperatorDecision = yield Park(undo, exc)
            if decision.action == "retry":
                continue
            return decision.action == "resolve"
        return True


def park_loop(saga: str, park: Park, *, execution_id: str, logger: Any) -> ParkLoop:
    """Wait (durably, without limit) for an operator to decide what to do with ``park.undo``.

    The decision-reading of both drivers; they differ only in how the callback is created
    (:class:`OpenCallback`) and its result read (:class:`ReadCallback`). The callback is
    privileged: only ``saga.operator`` (which validates the decision and records its actor)
    completes it; the generic callback paths refuse it whoever holds the token, and the
    token is never logged. A callback recorded before the flag existed replays as it is
    (the flag is not part of the replay check).
    """
    name = operator_name(park.undo.step)
    while True:
        callback = yield OpenCallback(name)
        logger.error(
            "saga compensation failed; parked for an operator",
            saga=saga,
            step=park.undo.step,
            error=str(park.error),
            hint=f"durable-saga status {execution_id}; then retry, skip or resolve",
        )
        try:
            raw = yield ReadCallback(callback)
        except (CallbackFailedError, CallbackTimeoutError):
            continue  # not a decision (e.g. `durable callback fail`): wait again
        except ExecutionCancelledError as stop:
            if is_terminate(stop):
                raise
            # Delivered here (recorded on this callback): the rollback must finish, so
            # park again on a fresh callback at the next position.
            logger.warning("saga cancellation absorbed while parked", operation=name)
            continue
        try:
            return OperatorDecision.model_validate(raw)
        except PydanticValidationError as bad:
            logger.error("ignored an invalid operator decision", payload=raw, error=str(bad))
