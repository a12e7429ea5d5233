"""The loaded journal of one invocation: checkpoints, stop delivery, parking.

A :class:`Journal` is shared by every scope of an invocation (see
:mod:`durable_core.replay` for scopes, ids and the consistency check); the records it
holds are :mod:`durable_core.records`.

Invariants:
- ``checkpoint`` returns only after the store has made the records durable; the caller may
  let user code depend on them only after that. Writes from concurrent branches are
  serialized by one lock, so no record is lost or interleaved.
- A stop request (cancel, deadline, terminate) is delivered once per kind, at the code's
  *frontier* only (``Scope.begin`` and ``Callback.result()`` decide where); the delivery
  is recorded on that operation (CANCELLED, with the kind's error type) so every replay
  raises it at the same place; a terminate is delivered even after a cancel.
- After the first divergence (or a function the worker does not have, for ``invoke``) an
  invocation records nothing more (every later operation and write raises it again,
  whatever user code caught): the execution is parked as it stood (see
  :mod:`durable_core.parking`).
- A journal uses only its store's :class:`~durable_core.stores.base.JournalStore` part
  (reads, fenced writes, the engine's own callback completions), never the scheduling part;
  the optional capabilities (``AssigningStore``, ``ScopeAnnouncingStore``,
  ``StartAnnouncingStore``) it detects on the store itself, so a backend declares each in
  one place.
"""

from __future__ import annotations

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
    RecoveryLimitError,
)
from durable_core.parking import FAIL_OPERATION_ID, read_fail_request
from durable_core.records import (
    CallbackOutcome,
    ErrorInfo,
    Execution,
    Lease,
    Operation,
    OperationStatus,
    OperationType,
    StopKind,
    role_of,
)
from durable_core.recovery import DEFAULT_MAX_RECOVERY_ATTEMPTS, recovery_limit
from durable_core.stores.base import AssigningStore, ScopeAnnouncingStore, StartAnnouncingStore

if TYPE_CHECKING:
    from durable_core._hooks import Hooks
    from durable_core.clock import Clock
    from durable_core.replay import Slot
    from durable_core.serde import Serde
    from durable_core.stores.base import JournalStore

Parking = TypeVar("Parking", bound=DurableError)
BeginHook = Callable[["Slot", OperationType, str, "str | None"], None]
"""``(slot, type, name, sub_type)``: told about every position a scope allocates."""

CANCEL_POLL_INTERVAL = timedelta(seconds=1)
"""How often (clock time) a running invocation re-reads its execution for a stop request."""


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
        store: JournalStore,
        lease: Lease,
        clock: Clock,
        serde: Serde,
        options: InvocationOptions,
        services: Any = None,
        instrumentation: Sequence[Any] = (),
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
        self.role = execution.role or role_of(self._ops.values())
        """The execution's role (``Execution.role``): recorded, or given by the first step
        role in the journal, read or written (the runtime records it when the invocation
        ends; see :func:`~durable_core.records.role_of`)."""
        self.writes = 0
        self._execution_read_at = clock.now()
        self.on_begin: BeginHook | None = (
            store.on_begin if isinstance(store, ScopeAnnouncingStore) else None
        )
        """The store's hook for every position a scope allocates, if it has one
        (:class:`~durable_core.stores.base.ScopeAnnouncingStore`)."""
        self._assigner = store if isinstance(store, AssigningStore) else None
        self._announcer = store if isinstance(store, StartAnnouncingStore) else None
        self.parked: DurableError | None = None
        """Why this invocation must park the execution (the first divergence, a function
        this worker does not have); from then on nothing is recorded."""
        self.fail_request = read_fail_request(self._ops.get(FAIL_OPERATION_ID), execution.id)
        """An operator's request to fail the execution (``Runtime.fail``), if any."""
        self._recovery_limit = recovery_limit(execution, options.max_recovery_attempts)
        self.instrumentation: Hooks | None = None
        if instrumentation:
            from durable_core._hooks import Hooks

            self.instrumentation = Hooks(instrumentation, self)
        """This invocation's instrumentation dispatcher, or None when none is configured
        (see :mod:`durable_core._hooks`)."""

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
            self.role = self.role or role_of(stored)
            self.writes += 1

    @property
    def announces_starts(self) -> bool:
        """Whether :meth:`announce_start` reaches a store (build the record only then)."""
        return self._announcer is not None

    def announce_start(self, op: Operation) -> None:
        """Tell a store that shows running attempts that ``op`` started (not durable).

        Only a :class:`~durable_core.stores.base.StartAnnouncingStore` hears it (AWS's
        service, in the background); the record is not kept in this journal, so replay
        never depends on it.
        """
        if self._announcer is not None and self.parked is None:
            self._announcer.announce_start(op)

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
