"""The loaded journal of one invocation: id allocation, consistency checks, replay mode.

Invariants:
- An operation's id depends only on its parent scope and its position in that scope
  (``blake2b(parent_id + "-" + n)``), never on timing, so concurrent branches and replays
  allocate the same ids.
- Before a recorded operation is used, its type, sub-type and name must match what the code
  asks for now; otherwise :class:`~durable_core.errors.NonDeterminismError` names the
  execution, the position, the recorded and the requested operation. A callback's
  ``privileged`` flag is not compared: it is fixed when the callback is created and the
  record governs (a journal written before the flag existed replays unchanged).
- ``checkpoint`` returns only after the store has made the records durable; the caller may
  let user code depend on them only after that. Writes from concurrent branches are
  serialized by one lock, so no record is lost or interleaved.
- A stop request (cancel, deadline, terminate) is delivered once per kind, at the code's
  *frontier* only: an operation with no record yet, an unfinished step, wait, condition or
  invoke (where the code would run or block), or ``Callback.result()`` of an unfinished
  callback. Never at an unfinished child context, batch or created callback whose later
  operations are already recorded: replaying those must reach the same operations again.
  The delivery is recorded on that operation (CANCELLED, with the kind's error type) so
  every replay raises it at the same place; a terminate is delivered even after a cancel.
  In an invocation that recovers from a dead worker, a scope's first unrecorded step is not
  a delivery point: it may be the step that was running, and it runs again first.
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
    ExecutionTerminatedError,
    NonDeterminismError,
    OperatorFailedError,
    RecoveryLimitError,
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
    StopKind,
)
from durable_core.parking import FAIL_OPERATION_ID, fail_record, fresh_space, read_fail_request
from durable_core.recovery import DEFAULT_MAX_RECOVERY_ATTEMPTS, recovery_limit
from durable_core.stores.base import AssigningStore

if TYPE_CHECKING:
    from durable_core.clock import Clock
    from durable_core.serde import Serde
    from durable_core.stores.base import Store

Parking = TypeVar("Parking", bound=DurableError)
BeginHook = Callable[["Slot", OperationType, str, "str | None"], None]
"""``(slot, type, name, sub_type)``: told about every position a scope allocates."""

CANCEL_POLL_INTERVAL = timedelta(seconds=1)
"""How often (clock time) a running invocation re-reads its execution for a stop request."""
_INTERRUPTIBLE = frozenset({OperationType.STEP, OperationType.WAIT, OperationType.CHAINED_INVOKE})
"""Types whose unfinished record is the code's frontier (it runs or blocks there)."""
CANCEL_SUB_TYPE = "Cancellation"
MAX_NAME_LENGTH = 256


def operation_id(parent_id: str | None, position: int) -> str:
    """The deterministic id of the ``position``-th operation (1-based) of a scope."""
    raw = f"{parent_id}-{position}" if parent_id else str(position)
    return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()


def stop_error(
    kind: StopKind, reason: str, execution_id: str, *, attempts: int = 0
) -> ExecutionCancelledError:
    """The exception that delivers a stop of ``kind`` (the same on every replay)."""
    what = {
        StopKind.CANCEL: "was cancelled",
        StopKind.DEADLINE: "passed its deadline",
        StopKind.TERMINATE: "was terminated",
    }[kind]
    klass = ExecutionTerminatedError if kind is StopKind.TERMINATE else ExecutionCancelledError
    return klass(
        f"execution {execution_id!r} {what} ({reason})",
        reason=reason,
        kind=kind.value,
        attempts=attempts,
    )


def stop_info(exc: ExecutionCancelledError) -> ErrorInfo:
    """The record of a stop that propagated out of a scope (a child context, a batch)."""
    return ErrorInfo(type=StopKind(exc.kind).error_type, message=exc.reason)


def recorded_stop(op: Operation, execution_id: str) -> ExecutionCancelledError | None:
    """The stop delivered at ``op``, rebuilt, if ``op`` records one."""
    kind = StopKind.of_error(op.error)
    if kind is None or op.error is None:
        return None
    return stop_error(kind, op.error.message, execution_id, attempts=op.attempt)


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
    max_recovery_attempts: int = DEFAULT_MAX_RECOVERY_ATTEMPTS
    """Recoveries after a worker death before the next step to run fails instead."""


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
        self.unawaited: dict[int, str] = {}
        """Operations an async function called and has not awaited yet (see
        :mod:`durable_core.async_context`), by the id of their awaitable."""
        self.lock = threading.RLock()
        self._ops: dict[str, Operation] = {op.id: op for op in operations}
        self.delivered: set[StopKind] = {
            kind for op in self._ops.values() if (kind := StopKind.of_error(op.error)) is not None
        }
        """The stop kinds already delivered in this execution (read back from the records)."""
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
        self._recovery_limit = recovery_limit(execution, options.max_recovery_attempts)

    def take_recovery_limit(self) -> RecoveryLimitError | None:
        """The error the next step attempt fails with instead of running, once, if any.

        Set when this invocation recovers the execution more than ``max_recovery_attempts``
        times in a row (each time its worker died mid-invocation): the step that was
        running then is the next one to run now, and it must not kill another worker.
        """
        with self.lock:
            error, self._recovery_limit = self._recovery_limit, None
            return error

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

        The engine itself ends the callback here, so this is a privileged completion (a
        privileged callback still times out and is cancelled). If an external completion
        won the race, the stored outcome is returned instead.
        """
        from durable_core.errors import (
            CallbackAlreadyCompletedError,
            CallbackNotFoundError,
            CorruptRecordError,
        )

        assert op.callback_id is not None
        with self.lock:
            try:
                done = self.store.complete_callback(
                    op.callback_id, outcome, self.clock.now(), privileged=True
                )
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

    @property
    def cancel_delivered(self) -> bool:
        """True once a cancel or the deadline was delivered (neither is delivered again)."""
        return bool(self.delivered & {StopKind.CANCEL, StopKind.DEADLINE})

    def pending_stop(self) -> tuple[StopKind, str] | None:
        """The stop to deliver at the next frontier, if any (not yet marked delivered).

        A terminate comes first and is delivered even after a cancel; a cancel request comes
        before the deadline; each kind once. The execution is re-read at most once per
        :data:`CANCEL_POLL_INTERVAL` so a request made while this invocation runs is seen at
        its next boundary, not only at its next invocation.
        """
        now = self.clock.now()
        ex = self.execution
        if (
            StopKind.TERMINATE not in self.delivered
            and ex.stop_request(StopKind.TERMINATE) is None
            and now - self._execution_read_at >= CANCEL_POLL_INTERVAL
        ):
            self._execution_read_at = now
            fresh = self.store.get_execution(self.execution_id)
            if fresh.stop_requests != ex.stop_requests:
                ex = self.execution = ex.evolve(stop_requests=fresh.stop_requests)
        terminate = ex.stop_request(StopKind.TERMINATE)
        if terminate is not None and StopKind.TERMINATE not in self.delivered:
            return StopKind.TERMINATE, terminate.reason
        if self.cancel_delivered or StopKind.TERMINATE in self.delivered:
            return None
        cancel = ex.stop_request(StopKind.CANCEL)
        if cancel is not None:
            return StopKind.CANCEL, cancel.reason
        if ex.deadline is not None and now >= ex.deadline:
            return StopKind.DEADLINE, "deadline"
        return None

    def stop_at(self, op: Operation) -> None:
        """Deliver a pending stop at ``op`` (new or unfinished): record it there and raise.

        Returns without doing anything if no stop is pending, or if ``op`` is a callback an
        external system completed first (its result is returned; the stop waits for the
        next boundary).

        Raises:
            ExecutionCancelledError: the stop (``ExecutionTerminatedError`` for a terminate).
        """
        with self.lock:
            stop = self.pending_stop()
            if stop is None:
                return
            kind, reason = stop
            now = self.clock.now()
            error = ErrorInfo(type=kind.error_type, message=reason)
            if op.type is OperationType.CALLBACK and op.callback_id is not None:
                done = self.complete_callback(
                    op, CallbackOutcome(status=OperationStatus.CANCELLED, error=error)
                )
                if StopKind.of_error(done.error) is not kind:
                    return  # completed from outside first: deliver at the next boundary
            else:
                self.checkpoint(
                    op.evolve(
                        status=OperationStatus.CANCELLED,
                        error=error,
                        started_at=op.started_at or now,
                        ended_at=now,
                    )
                )
            self.delivered.add(kind)
        raise stop_error(kind, reason, self.execution_id, attempts=op.attempt)


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
        self._went_new = False  # True once this scope began an operation with no record

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
