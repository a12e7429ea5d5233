"""``ctx.step``: run a function once, record its result, retry it durably.

Invariants:
- A SUCCEEDED record is returned without running the body again.
- A FAILED record is re-raised as the same :class:`StepFailedError` on every replay.
- Every failed attempt is recorded (status PENDING, attempt n, the error, when the next
  attempt is due) before the next attempt, so the attempt count survives crashes.
- A retry delay above the inline threshold suspends the invocation (a durable timer)
  instead of sleeping.
- At-most-once: the attempt's start is recorded before the body runs; an attempt found
  STARTED on replay counts as failed with StepInterruptedError and is never re-run blindly.
  At-least-once: the start is only announced (``Journal.announce_start``, no durable
  write; AWS's service shows it as ``StepStarted``); an attempt found STARTED runs again.
- The result type is checked before anything else: a type that cannot cross the journal
  raises SerializationError naming the step and its function, with nothing run or recorded.
  A body whose value then does not serialize (or does not fit the type) fails the step for
  good with a SerializationError: its effect happened, so it is recorded, never lost.
- In an invocation past the recovery cap (``max_recovery_attempts``) the first attempt
  to run fails for good with RecoveryLimitError instead of running (see
  :mod:`durable_core.recovery`).
- An attempt past ``config.timeout`` fails with StepTimeoutError (see
  :mod:`durable_core.operations._attempt`); only this thread records, so the abandoned
  attempt's late outcome is never written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from durable_core.errors import (
    SerializationError,
    StepFailedError,
    StepInterruptedError,
    SuspendExecution,
)
from durable_core.logging import ReplayAwareLogger
from durable_core.operations._core import AwaitableReturnedError, Call, DurableOp, Plan, Sleep
from durable_core.records import ErrorInfo, Operation, OperationStatus, OperationType
from durable_core.retry import StepConfig, StepSemantics
from durable_core.serde import check_type, dump_value, load_value, return_type

if TYPE_CHECKING:
    from durable_core.journal import Journal
    from durable_core.replay import Scope, Slot

T = TypeVar("T")


@dataclass(frozen=True)
class StepContext:
    """What a step's body receives."""

    execution_id: str
    """The execution this step belongs to."""
    operation_id: str
    """The step's deterministic operation id."""
    name: str
    """The step's name."""
    attempt: int
    """1 for the first attempt, 2 for the first retry, ..."""
    idempotency_key: str
    """Stable across retries and replays: pass it to external APIs to deduplicate."""
    logger: ReplayAwareLogger
    """A structlog logger bound to the execution, step and attempt."""

    @classmethod
    def of(
        cls, execution_id: str, op_id: str, name: str, attempt: int, logger: ReplayAwareLogger
    ) -> StepContext:
        """The context of attempt ``attempt`` of the step (or poll) ``op_id``."""
        return cls(
            execution_id=execution_id,
            operation_id=op_id,
            name=name,
            attempt=attempt,
            idempotency_key=f"{execution_id}:{op_id}",
            logger=logger.bind(operation=name, attempt=attempt),
        )


def failed_error(op: Operation, execution_id: str) -> StepFailedError:
    """Rebuild the StepFailedError recorded in ``op``."""
    err = op.error or ErrorInfo(type="Unknown", message="(no error recorded)")
    return StepFailedError(
        err.message,
        step=op.name or op.id,
        error_type=err.type,
        attempts=op.attempt,
        traceback=err.traceback,
        execution_id=execution_id,
    )


class StepOp(DurableOp[T]):
    """``ctx.step``: see the module docstring for the rules."""

    op_type = OperationType.STEP

    def __init__(
        self,
        scope: Scope,
        logger: ReplayAwareLogger,
        name: str,
        fn: Callable[[StepContext], T],
        config: StepConfig,
        *,
        sub_type: str = "Step",
    ) -> None:
        super().__init__(scope, name, sub_type)
        self.what = f"step {name!r}"
        self.result_type = config.result_type if config.result_type is not None else return_type(fn)
        check_type(
            self.result_type, what=self.what, fn=None if config.result_type is not None else fn
        )
        self.logger = logger
        self.fn = fn
        self.config = config

    def replay(self, rec: Operation) -> T:
        if rec.status is OperationStatus.SUCCEEDED:
            return self._load(rec.result or "null")
        raise failed_error(rec, self.journal.execution_id)

    def _load(self, text: str) -> T:
        return load_value(  # type: ignore[no-any-return]
            self.journal.serde,
            text,
            self.result_type,
            what=self.what,
            serializer=self.config.serializer,
        )

    def execute(self, slot: Slot) -> Plan[T]:
        journal, name, config = self.journal, self.name, self.config
        rec = slot.recorded
        run = _StepRun(journal, slot, name, self.sub_type, config)
        attempt = 1
        if rec is not None and rec.status is OperationStatus.PENDING:
            due = rec.next_attempt_at
            if due is not None and journal.now() < due:
                raise SuspendExecution(
                    f"retry of step {name!r} (attempt {rec.attempt + 1})", wake_at=due
                )
            attempt = rec.attempt + 1
        elif rec is not None and rec.status is OperationStatus.STARTED:
            attempt = rec.attempt
            if config.semantics is StepSemantics.AT_MOST_ONCE_PER_RETRY:
                interrupted = StepInterruptedError(
                    f"attempt {attempt} of at-most-once step {name!r} was interrupted before "
                    "it finished; its effect is unknown, so it is not re-run blindly"
                )
                attempt = yield from run.retry(attempt, interrupted)
        crash_looping = journal.take_recovery_limit()
        if crash_looping is not None:  # this step was running each time the worker died
            raise run.fail(attempt, crash_looping) from None

        while True:
            if config.semantics is StepSemantics.AT_MOST_ONCE_PER_RETRY:
                journal.checkpoint(run.record(OperationStatus.STARTED, attempt))
            elif journal.announces_starts:  # the record costs a model build: only if heard
                journal.announce_start(run.record(OperationStatus.STARTED, attempt))
            ctx = StepContext.of(journal.execution_id, slot.id, name, attempt, self.logger)
            try:
                value = yield Call(
                    self.fn,
                    (ctx,),
                    self.what,
                    offload=True,
                    timeout=config.timeout,
                    step=name,
                    attempt=attempt,
                )
            except AwaitableReturnedError as exc:  # a programming error: retrying cannot help
                raise run.fail(attempt, exc) from exc
            except Exception as exc:
                attempt = yield from run.retry(attempt, exc)
                continue
            try:
                text = dump_value(
                    journal.serde,
                    value,
                    self.result_type,
                    what=self.what,
                    serializer=config.serializer,
                )
                result = self._load(text)
            except SerializationError as exc:
                # Retrying cannot make the value serializable: fail for good, naming the step.
                raise run.fail(attempt, exc) from exc
            journal.checkpoint(
                run.record(OperationStatus.SUCCEEDED, attempt, result=text, ended_at=journal.now())
            )
            return result


class _StepRun:
    """The durable state of one step's attempts within an invocation."""

    def __init__(
        self, journal: Journal, slot: Slot, name: str, sub_type: str, config: StepConfig
    ) -> None:
        self.journal = journal
        self.slot = slot
        self.name = name
        self.sub_type = sub_type
        self.config = config
        rec = slot.recorded
        self.started = rec.started_at if rec is not None and rec.started_at else journal.now()

    def record(self, status: OperationStatus, attempt: int, **fields: Any) -> Operation:
        return Operation(
            id=self.slot.id,
            parent_id=self.slot.parent_id,
            type=OperationType.STEP,
            sub_type=self.sub_type,
            name=self.name,
            status=status,
            attempt=attempt,
            started_at=self.started,
            role=self.config.role,
            **fields,
        )

    def fail(self, attempt: int, exc: BaseException) -> StepFailedError:
        """Record the step as failed for good; return the error to raise."""
        op = self.record(
            OperationStatus.FAILED,
            attempt,
            error=ErrorInfo.from_exception(exc),
            ended_at=self.journal.now(),
        )
        self.journal.checkpoint(op)
        return failed_error(op, self.journal.execution_id)

    def retry(self, attempt: int, exc: BaseException) -> Plan[int]:
        """Record a failed attempt; return the next attempt number, suspend, or raise.

        A short delay is slept inline (a :class:`Sleep` effect); a stop that arrived
        meanwhile ends the retries there.
        """
        journal = self.journal
        now = journal.now()
        delay = self.config.retry.next_delay(
            attempt=attempt, error=exc, elapsed=(now - self.started).total_seconds()
        )
        if delay is None:
            raise self.fail(attempt, exc) from exc
        due = now + timedelta(seconds=delay)
        pending = self.record(
            OperationStatus.PENDING,
            attempt,
            error=ErrorInfo.from_exception(exc),
            next_attempt_at=due,
        )
        journal.checkpoint(pending)
        if timedelta(seconds=delay) > journal.options.inline_retry_threshold:
            raise SuspendExecution(
                f"retry of step {self.name!r} (attempt {attempt + 1})", wake_at=due
            )
        yield Sleep(journal.clock, delay)
        journal.stop_at(pending)  # a stop that arrived meanwhile ends the retries here
        return attempt + 1
