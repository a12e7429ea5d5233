"""Scopes: operation-id allocation, the consistency check, replay mode, stop delivery points.

Invariants:
- An operation's id depends only on its parent scope and its position in that scope
  (``blake2b(parent_id + "-" + n)``), never on timing, so concurrent branches and replays
  allocate the same ids.
- Before a recorded operation is used, its type, sub-type and name must match what the code
  asks for now; otherwise :class:`~durable_core.errors.NonDeterminismError` names the
  execution, the position, the recorded and the requested operation. A callback's
  ``privileged`` flag is not compared: it is fixed when the callback is created and the
  record governs (a journal written before the flag existed replays unchanged).
- A stop request is delivered at the code's *frontier* only: an operation with no record
  yet, an unfinished step, wait, condition or invoke (where the code would run or block),
  or ``Callback.result()`` of an unfinished callback. Never at an unfinished child
  context, batch or created callback whose later operations are already recorded:
  replaying those must reach the same operations again (the delivery itself is
  :meth:`~durable_core.records.Journal.stop_at`). In an invocation that recovers from a
  dead worker, a scope's first unrecorded step is not a delivery point: it may be the step
  that was running, and it runs again first.
- An operator's fail request is raised at one position, recorded in the request, and
  every replay raises it there; the scope then allocates from a fresh id space.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from durable_core.errors import (
    DurableError,
    NonDeterminismError,
    OperatorFailedError,
    ValidationError,
)
from durable_core.journal import Journal, recorded_stop
from durable_core.parking import fail_record, fresh_space
from durable_core.records import Operation, OperationStatus, OperationType

if TYPE_CHECKING:
    from durable_core.instrumentation import PhaseInfo

_INTERRUPTIBLE = frozenset({OperationType.STEP, OperationType.WAIT, OperationType.CHAINED_INVOKE})
"""Types whose unfinished record is the code's frontier (it runs or blocks there)."""
CANCEL_SUB_TYPE = "Cancellation"
MAX_NAME_LENGTH = 256


def operation_id(parent_id: str | None, position: int) -> str:
    """The deterministic id of the ``position``-th operation (1-based) of a scope."""
    raw = f"{parent_id}-{position}" if parent_id else str(position)
    return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()


def check_name(name: object, what: str = "operation") -> str:
    """Validate an operation name: a non-empty printable string of at most 256 characters."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(
            f"{what} name must be a non-empty string, got {name!r}. Names identify operations "
            "in the journal and in `durable show`."
        )
    if len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise ValidationError(
            f"{what} name {name[:40]!r}... must be at most {MAX_NAME_LENGTH} printable characters."
        )
    return name


@dataclass(frozen=True)
class Slot:
    """An allocated position: its id, where it is, and what the journal recorded there."""

    id: str
    position: str
    recorded: Operation | None
    parent_id: str | None


class Scope:
    """The id space of one context: the root, a child context or a batch branch."""

    def __init__(
        self,
        journal: Journal,
        *,
        parent_id: str | None,
        path: str,
        replaying: bool,
        space: str | None = None,
    ) -> None:
        """``space``: the id the positions are hashed under, when it is not ``parent_id`` (a
        FLAT batch branch: its operations are children of the batch, ids of the branch)."""
        self.journal = journal
        self.parent_id = parent_id
        self.path = path
        self._counter = 0
        self._space = space or parent_id  # the id space positions are hashed in (see parking)
        self.replaying = replaying
        self._next: tuple[int, str] = (0, "")  # (position, id): peek_id's, reused by begin
        self._went_new = False  # True once this scope began an operation with no record
        self.phase: PhaseInfo | None = None
        """The innermost open ``ctx.phase`` of this scope (instrumentation only)."""

    def peek_id(self) -> str:
        """The id the next operation of this scope will get."""
        position = self._counter + 1
        if self._next[0] != position:
            self._next = (position, operation_id(self._space, position))
        return self._next[1]

    def begin(
        self, type_: OperationType, name: str, sub_type: str | None, *, deliver: bool = True
    ) -> Slot:
        """Allocate the next position, check it against the journal, deliver a pending stop.

        Args:
            deliver: False where the position is not the code's frontier even when new (a
                batch allocating its branches: the batch's own position took the stop).

        Raises:
            NonDeterminismError: the journal recorded a different operation here.
            ExecutionCancelledError: a stop is due (or was recorded) at this position.
        """
        journal = self.journal
        journal.refuse_if_parked()
        op_id = self.peek_id()
        self._counter += 1
        position = f"{self.path}.{self._counter}" if self.path else str(self._counter)
        recorded = journal.get(op_id)
        if recorded is not None and not (
            recorded.type is OperationType.CALLBACK and recorded.callback_id is not None
        ):
            stopped = recorded_stop(recorded, journal.execution_id)
            if stopped is not None:  # delivered here before: raise it here again
                raise stopped
        mismatch = recorded is not None and (
            recorded.type != type_ or recorded.name != name or recorded.sub_type != sub_type
        )
        if journal.fail_request is not None:
            self._fail_here(op_id, position, recorded, mismatch)
        if recorded is not None and mismatch:
            raise journal.park(
                NonDeterminismError(
                    execution_id=journal.execution_id,
                    position=position,
                    expected=_describe(recorded.type, recorded.name, recorded.sub_type),
                    found=_describe(type_, name, sub_type),
                )
            )
        hook = journal.on_begin
        if hook is not None:
            hook(Slot(op_id, position, recorded, self.parent_id), type_, name, sub_type)
        if recorded is None or not recorded.status.is_terminal:
            self.replaying = False
            frontier = recorded is None or recorded.type in _INTERRUPTIBLE
            if recorded is None and not self._went_new:
                self._went_new = True
                # After a worker death, this scope's first unrecorded step may be the one
                # that was running (an at-least-once step records nothing before its
                # body): it runs again, as at-least-once promises, and the stop lands at
                # the next operation, so an effect that happened is never left unknown.
                if type_ is OperationType.STEP and journal.execution.recovery_attempts:
                    frontier = False
            if deliver and frontier and journal.pending_stop():
                journal.stop_at(
                    recorded
                    or Operation(
                        id=op_id,
                        parent_id=self.parent_id,
                        type=type_,
                        sub_type=sub_type,
                        name=name,
                        status=OperationStatus.STARTED,
                    )
                )
                recorded = journal.get(op_id)
        return Slot(op_id, position, recorded, self.parent_id)

    def diverged(self, slot: Slot, error: NonDeterminismError) -> DurableError:
        """What to raise for a divergence found at ``slot`` after ``begin`` matched it (a
        batch whose branches changed): the operator's failure if it belongs here (raised
        from this call), else ``error``, which parks the execution."""
        if self.journal.fail_request is not None:
            self._fail_here(slot.id, slot.position, slot.recorded, mismatch=True)
        return self.journal.park(error)

    def _fail_here(
        self, op_id: str, position: str, recorded: Operation | None, mismatch: bool
    ) -> None:
        """Raise the operator's failure if it belongs at this position (see parking).

        Not yet raised anywhere: it belongs at the first position where the code diverges
        or that the journal has not finished (new territory); the position is recorded
        first. Once recorded, it belongs there only, on every replay.
        """
        journal = self.journal
        with journal.lock:
            request = journal.fail_request
            assert request is not None
            if request.delivered_to is None:
                if recorded is not None and not mismatch and recorded.status.is_terminal:
                    return
                left = self._left_behind() if mismatch else []
                request = request.model_copy(
                    update={"delivered_to": op_id, "position": position, "left_behind": left}
                )
                journal.checkpoint(fail_record(request, journal.now()))
                journal.fail_request = request
            elif request.delivered_to != op_id:
                return
        self._space = fresh_space(self._space, self._counter)
        self._next = (0, "")
        who = f" by {request.actor}" if request.actor else ""
        left = request.left_behind
        unknown = (
            f"; steps the old code recorded there or after it are unknown to this code and "
            f"NOT undone: {', '.join(left)}"
            if left
            else ""
        )
        raise OperatorFailedError(
            f"execution {journal.execution_id!r} was failed{who} at position {position}: "
            f"{request.reason}{unknown}",
            reason=request.reason,
            actor=request.actor,
            left_behind=tuple(left),
        )

    def _left_behind(self) -> list[str]:
        """Names of the step records at this scope's current position and after it, with
        everything under them: what the old code did that the diverging code cannot know."""
        journal = self.journal
        ids: set[str] = set()
        n = self._counter
        while (op := journal.get(operation_id(self._space, n))) is not None:
            ids.add(op.id)
            n += 1
        ops = journal.operations()
        grew = True
        while grew:
            below = {op.id for op in ops if op.parent_id in ids} - ids
            grew = bool(below)
            ids |= below
        return [op.name or op.id for op in ops if op.id in ids and op.type is OperationType.STEP]

    def after_replayed(self) -> None:
        """Call after returning a recorded result: leave replay mode at new territory."""
        if self.replaying and self.journal.get(self.peek_id()) is None:
            self.replaying = False


def _describe(type_: OperationType, name: str | None, sub_type: str | None) -> str:
    kind = f"{type_.value}/{sub_type}" if sub_type else type_.value
    return f"operation {name!r} of type {kind}"
