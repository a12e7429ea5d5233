"""``ctx.wait_for_condition``: durable polling with backoff and a deadline.

Each poll runs ``check(state, step_ctx) -> new_state``. While ``done(new_state)`` is false the
new state is checkpointed (status PENDING, the poll count, when the next poll is due) and
the invocation suspends; the next poll starts from the checkpointed state, even after a
crash. The backoff is a tenacity ``wait_*`` object evaluated on the poll count. Past the
deadline, or after ``max_attempts`` polls that all found the condition false, the operation
fails with :class:`~durable_core.errors.ConditionTimeoutError` (a condition met on the last
allowed poll succeeds).

Each poll's start is announced (``Journal.announce_start``: no durable write; AWS's service
shows it as ``StepStarted``). A ``serializer`` records the state as its own text.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from durable_core.errors import ConditionTimeoutError, SuspendExecution
from durable_core.logging import ReplayAwareLogger
from durable_core.operations._core import Call, DurableOp, Plan
from durable_core.operations.step import StepContext, failed_error
from durable_core.records import ErrorInfo, Operation, OperationStatus, OperationType
from durable_core.retry import retry_state
from durable_core.serde import Serializer, check_type, dump_value, load_value

if TYPE_CHECKING:
    from tenacity.wait import WaitBaseT

    from durable_core.replay import Scope, Slot

S = TypeVar("S")
SUB_TYPE = "WaitForCondition"
TIMEOUT_ERROR = "durable_core.ConditionTimeout"
"""The recorded error type of a condition past its deadline."""
ATTEMPTS_ERROR = "durable_core.errors.ConditionTimeoutError"
"""The recorded error type of a condition out of polls (``max_attempts``)."""


class ConditionOp(DurableOp[S]):
    """``ctx.wait_for_condition``: poll (or replay polls) until ``done(state)``."""

    op_type = OperationType.STEP

    def __init__(
        self,
        scope: Scope,
        logger: ReplayAwareLogger,
        name: str,
        check: Callable[[S, StepContext], S],
        *,
        initial_state: S,
        done: Callable[[S], bool],
        wait: WaitBaseT,
        timeout: timedelta,
        state_type: Any,
        max_attempts: int | None = None,
        serializer: Serializer | None = None,
    ) -> None:
        super().__init__(scope, name, SUB_TYPE)
        self.what = f"condition {name!r}"
        check_type(state_type, what=self.what)  # before the first poll runs
        self.logger = logger
        self.check = check
        self.initial_state = initial_state
        self.done = done
        self.wait = wait
        self.timeout = timeout
        self.state_type = state_type
        self.max_attempts = max_attempts
        self.serializer = serializer

    def _dump(self, state: S) -> str:
        return dump_value(
            self.journal.serde, state, self.state_type, what=self.what, serializer=self.serializer
        )

    def _load(self, text: str) -> S:
        return load_value(  # type: ignore[no-any-return]
            self.journal.serde, text, self.state_type, what=self.what, serializer=self.serializer
        )

    def replay(self, rec: Operation) -> S:
        journal = self.journal
        if rec.status is OperationStatus.SUCCEEDED:
            return self._load(rec.result or "null")
        err = rec.error
        if err is not None and err.type in (TIMEOUT_ERROR, ATTEMPTS_ERROR):
            raise ConditionTimeoutError(
                f"{self.what} of execution {journal.execution_id!r}: {err.message}"
            )
        raise failed_error(rec, journal.execution_id)

    def execute(self, slot: Slot) -> Plan[S]:
        journal, name, what = self.journal, self.name, self.what
        rec = slot.recorded
        now = journal.now()
        started = rec.started_at if rec is not None and rec.started_at else now
        polls = rec.attempt if rec is not None else 0
        if rec is not None and rec.next_attempt_at is not None and now < rec.next_attempt_at:
            raise SuspendExecution(f"poll {polls + 1} of {what}", wake_at=rec.next_attempt_at)
        state: S = (
            self._load(rec.payload)
            if rec is not None and rec.payload is not None
            else self.initial_state
        )

        def record(status: OperationStatus, **fields: Any) -> Operation:
            return Operation(
                id=slot.id,
                parent_id=slot.parent_id,
                type=OperationType.STEP,
                sub_type=SUB_TYPE,
                name=name,
                status=status,
                attempt=polls,
                started_at=started,
                **fields,
            )

        polls += 1
        if journal.announces_starts:  # the record costs a model build: only if heard
            journal.announce_start(record(OperationStatus.STARTED))
        ctx = StepContext.of(journal.execution_id, slot.id, name, polls, self.logger)
        try:
            state = yield Call(self.check, (state, ctx), what, offload=True)
            text = self._dump(state)
            state = self._load(text)
            finished = self.done(state)
        except Exception as exc:
            op = record(OperationStatus.FAILED, error=ErrorInfo.from_exception(exc), ended_at=now)
            journal.checkpoint(op)
            raise failed_error(op, journal.execution_id) from exc
        if finished:
            journal.checkpoint(record(OperationStatus.SUCCEEDED, result=text, ended_at=now))
            return state
        delay = self.wait(retry_state(polls, RuntimeError("condition not met"), 0.0))
        due = now + timedelta(seconds=max(1.0, float(delay)))
        out_of_polls = self.max_attempts is not None and polls >= self.max_attempts
        if out_of_polls or due > started + self.timeout:
            if out_of_polls:
                # AWS's SDK's message, so the service's history reads the same (the type is
                # each SDK's own)
                kind = ATTEMPTS_ERROR
                message = (
                    f"wait_for_condition exhausted {polls} attempts before the condition was met"
                )
            else:
                kind = TIMEOUT_ERROR
                message = f"condition still false after {polls} poll(s) and {self.timeout}"
            journal.checkpoint(
                record(
                    OperationStatus.FAILED,
                    payload=text,
                    error=ErrorInfo(type=kind, message=message),
                    ended_at=now,
                )
            )
            raise ConditionTimeoutError(f"{what} of execution {journal.execution_id!r}: {message}")
        journal.checkpoint(record(OperationStatus.PENDING, payload=text, next_attempt_at=due))
        raise SuspendExecution(f"poll {polls + 1} of {what}", wake_at=due)
