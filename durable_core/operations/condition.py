"""``ctx.wait_for_condition``: durable polling with backoff and a deadline.

Each poll runs ``check(state, step_ctx) -> new_state``. While ``done(new_state)`` is false the
new state is checkpointed (status PENDING, the poll count, when the next poll is due) and
the invocation suspends; the next poll starts from the checkpointed state, even after a
crash. The backoff is a tenacity ``wait_*`` object evaluated on the poll count. Past the
deadline the operation fails with :class:`~durable_core.errors.ConditionTimeoutError`.
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
from durable_core.serde import check_type

if TYPE_CHECKING:
    from tenacity.wait import WaitBaseT

    from durable_core.replay import Scope, Slot

S = TypeVar("S")
SUB_TYPE = "WaitForCondition"


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

    def replay(self, rec: Operation) -> S:
        journal = self.journal
        if rec.status is OperationStatus.SUCCEEDED:
            return journal.serde.load(rec.result or "null", self.state_type, what=self.what)  # type: ignore[no-any-return]
        err = rec.error
        if err is not None and err.type == "durable_core.ConditionTimeout":
            raise ConditionTimeoutError(
                f"{self.what} of execution {journal.execution_id!r}: {err.message}"
            )
        raise failed_error(rec, journal.execution_id)

    def execute(self, slot: Slot) -> Plan[S]:
        journal, name, what, state_type = self.journal, self.name, self.what, self.state_type
        rec = slot.recorded
        now = journal.now()
        started = rec.started_at if rec is not None and rec.started_at else now
        polls = rec.attempt if rec is not None else 0
        if rec is not None and rec.next_attempt_at is not None and now < rec.next_attempt_at:
            raise SuspendExecution(f"poll {polls + 1} of {what}", wake_at=rec.next_attempt_at)
        state: S = (
            journal.serde.load(rec.payload, state_type, what=what)
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
        ctx = StepContext.of(journal.execution_id, slot.id, name, polls, self.logger)
        try:
            state = yield Call(self.check, (state, ctx), what, offload=True)
            text = journal.serde.dump(state, state_type, what=what)
            state = journal.serde.load(text, state_type, what=what)
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
        if due > started + self.timeout:
            message = f"condition still false after {polls} poll(s) and {self.timeout}"
            journal.checkpoint(
                record(
                    OperationStatus.FAILED,
                    payload=text,
                    error=ErrorInfo(type="durable_core.ConditionTimeout", message=message),
                    ended_at=now,
                )
            )
            raise ConditionTimeoutError(f"{what} of execution {journal.execution_id!r}: {message}")
        journal.checkpoint(record(OperationStatus.PENDING, payload=text, next_attempt_at=due))
        raise SuspendExecution(f"poll {polls + 1} of {what}", wake_at=due)
