"""The loaded journal of one invocation: id allocation, consistency checks, replay mode.

Invariants:
- An operation's id depends only on its parent scope and its position in that scope
  (``blake2b(parent_id + "-" + n)``), never on timing, so concurrent branches and replays
  allocate the same ids.
- Before a recorded operation is used, its type, sub-type and name must match what the code
  asks for now; otherwise :class:`~durable_core.errors.NonDeterminismError` names the
  execution, the position, the recorded and the requested operation.
- ``checkpoint`` returns only after the store has made the records durable; the caller may
  let user code depend on them only after that. Writes from concurrent branches are
  serialized by one lock, so no record is lost or interleaved.
- A cancellation is delivered exactly once, at an operation boundary, and recorded at that
  position so every replay raises it at the same place.
- After the first divergence (or a function the worker does not have, for ``invoke``) an
  invocation records nothing more (every later operation and write raises it again,
  whatever user code caught): the execution is parked as it stood (see
  :mod:`durable_core.parking`).
- An operator's fail request is raised at one position, recorded in the request, and
  every replay raises it there; the scope then allocates from a fresh id space.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from durable_core.errors import (
    DurableError,
    ExecutionCancelledError,
    NonDeterminismError,
    OperatorFailedError,
    ValidationError,
)
from durable_core.journal import (
    CallbackOutcome,
    ErrorInfo,
    Execution,
    Lease,
    Operation,
    OperationStatus,
    OperationType,
)
from durable_core.parking import FAIL_OPERATION_ID, fail_record, fresh_space, read_fail_request
from durable_core.stores.base import AssigningStore

if TYPE_CHECKING:
    from durable_core.clock import Clock
    from durable_core.serde import Serde
    from durable_core.stores.base import Store

Parking = TypeVar("Parking", bound=DurableError)
BeginHook = Callable[["Slot", OperationType, str, "str | None"], None]
"""``(slot, type, name, sub_type)``: told about every position a scope allocates."""

CANCEL_ERROR_TYPE = "durable_core.Cancelled"
CANCEL_POLL_INTERVAL = timedelta(seconds=1)
"""How often (clock time) a running invocation re-reads its execution for a cancel request."""
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


@dataclass(frozen=True, kw_only=True)
class InvocationOptions:
    """Knobs of one invocation, set by the runtime."""

    lease_ttl: timedelta
    inline_retry_threshold: timedelta


class Journal:
    """The journal of one execution as seen by one invocation (shared by all its scopes)."""

    def __init__(
        self,
        *,
        execution: Execution,
        operations: Iterable[Operation],
        store: Store,
        lease: Lease,
        clock: Clock,
        serde: Serde,
        options: InvocationOptions,
        services: Any = None,
    ) -> None:
        self.execution = execution
        self.store = store
        self.lease = lease
        self.clock = clock
        self.serde = serde
        self.options = options
        self.services = services
        """The runtime (for ``invoke``); typed loosely to keep this module at the bottom."""
        self.lock = threading.RLock()
        self._ops: dict[str, Operation] = {op.id: op for op in operations}
        self.cancel_delivered = any(
            op.error is not None and op.error.type == CANCEL_ERROR_TYPE for op in self._ops.values()
        )
        self.writes = 0
        self._execution_read_at = clock.now()
        self.on_begin: BeginHook | None = None
        """Set by a backend that must announce a scope before its children's records (the
        Lambda durable service needs a CONTEXT started before its first child)."""
        self._assigner = store if isinstance(store, AssigningStore) else None
        self.parked: DurableError | None = None
        """Why this invocation must park the execution (the first divergence, a function
        this worker does not have); from then on nothing is recorded."""
        self.fail_request = read_fail_request(self._ops.get(FAIL_OPERATION_ID), execution.id)
        """An operator's request to fail the execution (``Runtime.fail``), if any."""

    @property
    def execution_id(self) -> str:
        """The id of the execution being run."""
        return self.execution.id

    def now(self) -> datetime:
        """The clock's current time."""
        return self.clock.now()

    def get(self, op_id: str) -> Operation | None:
        """The recorded operation with this id, if any."""
        return self._ops.get(op_id)

    def operations(self) -> list[Operation]:
        """A snapshot of all records (write order)."""
        with self.lock:
            return list(self._ops.values())

    def checkpoint(self, *ops: Operation) -> None:
        """Durably write ``ops`` (all or nothing), then make them visible to the code.

        A store that assigns fields while writing (``AssigningStore``) returns the records
        as stored; those are the ones kept (e.g. a callback id minted by the service).
        """
        with self.lock:
            self.refuse_if_parked()
            stored: Sequence[Operation] = ops
            if self._assigner is not None:
                self.lease, stored = self._assigner.write_operations_assigned(
                    self.lease, ops, self.clock.now(), self.options.lease_ttl
                )
            else:
                self.lease = self.store.write_operations(
                    self.lease, ops, self.clock.now(), self.options.lease_ttl
                )
            for op in stored:
                self._ops[op.id] = op
            self.writes += 1

    def park(self, error: Parking) -> Parking:
        """Remember the first reason to park (the invocation records nothing after it)."""
        with self.lock:
            if self.parked is None:
                self.parked = error
        return error

    def refuse_if_parked(self) -> None:
        """Raise the reason to park again, if any: code that caught it cannot go on."""
        d = self.parked
        if isinstance(d, NonDeterminismError):
            raise NonDeterminismError(
                execution_id=d.execution_id, position=d.position, expected=d.expected, found=d.found
            )
        if d is not None:
            raise type(d)(str(d))

    def complete_callback(self, op: Operation, outcome: CallbackOutcome) -> Operation:
        """Complete a callback through the store's conditional path (timeouts, cancels).

        If an external completion won the race, the stored outcome is returned instead.
        """
        from durable_core.errors import (
            CallbackAlreadyCompletedError,
            CallbackNotFoundError,
            CorruptRecordError,
        )

        assert op.callback_id is not None
        with self.lock:
            try:
                done = self.store.complete_callback(op.callback_id, outcome, self.clock.now())
            except CallbackNotFoundError as e:  # the journal has it: the store's index does not
                raise CorruptRecordError(
                    f"callback {op.name!r} of execution {self.execution_id!r} is in its journal "
                    "but the store finds no callback with its token: the store is damaged. "
                    "Restore it from a backup."
                ) from e
            except CallbackAlreadyCompletedError:
                done = next(
                    o for o in self.store.load_operations(self.execution_id) if o.id == op.id
                )
            self._ops[done.id] = done
            return done

    def refresh(self, op_id: str) -> Operation | None:
        """Re-read one record from the store (records that external events change)."""
        fresh = {o.id: o for o in self.store.load_operations(self.execution_id)}
        with self.lock:
            if op_id in fresh:
                self._ops[op_id] = fresh[op_id]
            return self._ops.get(op_id)

    def cancel_reason(self) -> str | None:
        """Why the execution should be cancelled now, if it should and was not yet told."""
        if self.cancel_delivered:
            return None
        now = self.clock.now()
        if (
            not self.execution.cancel_requested
            and now - self._execution_read_at >= CANCEL_POLL_INTERVAL
        ):
            # A cancel requested while this invocation runs must be seen at the next
            # boundary, not only at the next invocation (a function that never suspends
            # would otherwise run to the end). Re-read at most once per interval.
            self._execution_read_at = now
            fresh = self.store.get_execution(self.execution_id)
            if fresh.cancel_requested:
                self.execution = self.execution.evolve(cancel_requested=fresh.cancel_requested)
        ex = self.execution
        if ex.cancel_requested:
            return ex.cancel_requested
        if ex.deadline is not None and now >= ex.deadline:
            return "deadline"
        return None


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
        self, journal: Journal, *, parent_id: str | None, path: str, replaying: bool
    ) -> None:
        self.journal = journal
        self.parent_id = parent_id
        self.path = path
        self._counter = 0
        self._space = parent_id  # the id space positions are hashed in (see parking)
        self.replaying = replaying
        self._next: tuple[int, str] = (0, "")  # (position, id): peek_id's, reused by begin

    def peek_id(self) -> str:
        """The id the next operation of this scope will get."""
        position = self._counter + 1
        if self._next[0] != position:
            self._next = (position, operation_id(self._space, position))
        return self._next[1]

    def begin(self, type_: OperationType, name: str, sub_type: str | None) -> Slot:
        """Allocate the next position, check it against the journal, deliver a cancellation.

        Raises:
            NonDeterminismError: the journal recorded a different operation here.
            ExecutionCancelledError: a cancellation is due (or was recorded) at this position.
        """
        journal = self.journal
        journal.refuse_if_parked()
        op_id = self.peek_id()
        self._counter += 1
        position = f"{self.path}.{self._counter}" if self.path else str(self._counter)
        recorded = journal.get(op_id)
        if (
            recorded is not None
            and recorded.error is not None
            and recorded.error.type == CANCEL_ERROR_TYPE
        ):
            raise ExecutionCancelledError(
                f"execution {journal.execution_id!r} was cancelled ({recorded.error.message})",
                reason=recorded.error.message,
            )
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
            self._deliver_cancel(op_id, type_, name, sub_type, recorded)
            recorded = journal.get(op_id)  # a lost cancel race may have completed it
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

    def _deliver_cancel(
        self,
        op_id: str,
        type_: OperationType,
        name: str,
        sub_type: str | None,
        recorded: Operation | None,
    ) -> None:
        journal = self.journal
        with journal.lock:
            reason = journal.cancel_reason()
            if reason is None:
                return
            journal.cancel_delivered = True
            now = journal.now()
            error = ErrorInfo(type=CANCEL_ERROR_TYPE, message=reason)
            if recorded is not None and recorded.type is OperationType.CALLBACK:
                done = journal.complete_callback(
                    recorded, CallbackOutcome(status=OperationStatus.CANCELLED, error=error)
                )
                if done.status is not OperationStatus.CANCELLED:
                    # The external system completed it first: let this operation return its
                    # result and deliver the cancellation at the next boundary instead.
                    journal.cancel_delivered = False
                    return
            elif recorded is not None:
                journal.checkpoint(
                    recorded.evolve(status=OperationStatus.CANCELLED, error=error, ended_at=now)
                )
            else:
                journal.checkpoint(
                    Operation(
                        id=op_id,
                        parent_id=self.parent_id,
                        type=type_,
                        sub_type=sub_type,
                        name=name,
                        status=OperationStatus.CANCELLED,
                        error=error,
                        started_at=now,
                        ended_at=now,
                    )
                )
        raise ExecutionCancelledError(
            f"execution {journal.execution_id!r} was cancelled ({reason})", reason=reason
        )


def _describe(type_: OperationType, name: str | None, sub_type: str | None) -> str:
    kind = f"{type_.value}/{sub_type}" if sub_type else type_.value
    return f"operation {name!r} of type {kind}"
