"""``ctx.wait``: a durable timer from one second to one year.

The timer's end is recorded when it starts; the invocation suspends until then and the
worker (or the Lambda service) resumes it. A finished timer is recorded SUCCEEDED.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from durable_core.errors import InvalidDurationError, SuspendExecution
from durable_core.operations._core import InstantOp
from durable_core.records import Operation, OperationStatus, OperationType

if TYPE_CHECKING:
    from durable_core.replay import Scope, Slot

MIN_WAIT = timedelta(seconds=1)
MAX_WAIT = timedelta(days=365)


def check_duration(
    duration: object,
    what: str,
    *,
    low: timedelta = MIN_WAIT,
    high: timedelta = MAX_WAIT,
) -> timedelta:
    """Accept a timedelta or seconds within [low, high]; raise InvalidDurationError otherwise."""
    if isinstance(duration, bool) or not isinstance(duration, timedelta | int | float):
        raise InvalidDurationError(
            f"{what}: duration must be a timedelta or a number of seconds, got {duration!r}"
        )
    if not isinstance(duration, timedelta) and not (
        low.total_seconds() <= duration <= high.total_seconds()
    ):  # compare as numbers first: NaN, infinities and huge ones cannot become a timedelta
        raise InvalidDurationError(
            f"{what}: duration {duration!r} seconds is out of range; it must be between "
            f"{low} and {high}."
        )
    value = duration if isinstance(duration, timedelta) else timedelta(seconds=duration)
    if not low <= value <= high:
        raise InvalidDurationError(
            f"{what}: duration {value} is out of range; it must be between {low} and {high}."
        )
    return value


class WaitOp(InstantOp[None]):
    """``ctx.wait``: start (or replay) a durable timer and suspend until it has elapsed."""

    op_type = OperationType.WAIT

    def __init__(self, scope: Scope, name: str, duration: timedelta) -> None:
        super().__init__(scope, name, "Wait")
        self.duration = duration

    def finished(self, rec: Operation) -> bool:
        return rec.status is OperationStatus.SUCCEEDED

    def replay(self, rec: Operation) -> None:
        return None

    def settle(self, slot: Slot) -> None:
        journal, name = self.journal, self.name
        rec = slot.recorded
        now = journal.now()
        if rec is None:
            rec = Operation(
                id=slot.id,
                parent_id=slot.parent_id,
                type=OperationType.WAIT,
                sub_type="Wait",
                name=name,
                status=OperationStatus.STARTED,
                started_at=now,
                scheduled_end=now + self.duration,
            )
            journal.checkpoint(rec)
        end = rec.scheduled_end or now
        if now < end:
            raise SuspendExecution(f"timer {name!r} until {end.isoformat()}", wake_at=end)
        journal.checkpoint(rec.evolve(status=OperationStatus.SUCCEEDED, ended_at=now))
