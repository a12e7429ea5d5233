"""The durable execution service as the journal's store: one invocation's view of it.

:class:`ServiceStore` keeps the service's operations of one execution (from the invocation
envelope, its pages and every checkpoint response) and their translation into our records,
and turns the engine's checkpoint writes into ``checkpoint_durable_execution`` calls. It is
a :class:`~durable_core.stores.base.JournalStore` only (plus the optional
``AssigningStore`` and ``ScopeAnnouncingStore``): the service creates, schedules, leases and
ends executions itself, so the ``SchedulingStore`` part has nothing to do here.

Invariants:
- **Strict token chaining.** One service call is in flight at a time (one lock); each
  checkpoint uses the token the previous response returned. Every checkpoint carries a fresh
  ``ClientToken``, so a retried request (botocore's standard mode retries throttling, 5xx and
  transport errors) is answered from the service's idempotency cache, never applied twice.
- **All or nothing.** A write is planned and checked against the limits as a whole before
  anything is sent; a write the service cannot take yet raises ``SuspendExecution`` without
  sending anything.
- **The response is a delta**: it is merged into local state, never replaces it. A delta
  that carries news this invocation did not write (a callback completed, a timer fired) is
  remembered, so the handler replays instead of returning PENDING over a change.
- **A failed call voids the invocation.** After a service error every later write raises
  the same error and the handler raises it, so an outcome computed after a failed checkpoint
  is never reported. A response without a token (execution paused or invocation
  superseded) makes every later write suspend; the handler returns PENDING.
- The journal keeps the service's record of every operation the response echoed (the
  callback id it minted, the timer it set); a CALLBACK the response does not echo fails the
  invocation rather than hand out a token the service never issued.
- A CONTEXT is started (``on_begin``, the ``ScopeAnnouncingStore`` hook, learnt its name)
  before the first update whose ``ParentId`` names it, in the same checkpoint.
- A chained invoke's START is *staged*: kept locally until ``start_invoke`` sends it with the
  target's function name, which the engine passes to ``Runtime.start`` right after.
- **An at-least-once attempt's START never blocks** (``StartAnnouncingStore``): it is queued
  and sent by a background sender while the body runs, as AWS's SDK does. Queued updates
  always go out before, or in the same checkpoint as, the next write, so the service sees
  them in order; :meth:`ServiceStore.flush` sends what is left before the handler reads the
  outcome, and :meth:`ServiceStore.close` stops the sender when the invocation ends.
  A START the service could not take (the retry not released yet) is dropped, never sent
  out of order.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from durable_core.aws_lambda import wire
from durable_core.aws_lambda.errors import CheckpointTokenError, ServiceError
from durable_core.clock import Clock
from durable_core.errors import (
    CallbackAlreadyCompletedError,
    CallbackNotFoundError,
    ExecutionNotFoundError,
    StoreError,
    SuspendExecution,
)
from durable_core.records import (
    CallbackOutcome,
    Execution,
    ExecutionStatus,
    Lease,
    Operation,
    OperationStatus,
    OperationType,
)
from durable_core.replay import Slot

_INVALID_TOKEN = "Invalid checkpoint token"  # noqa: S105 - an error message, not a secret
_CHILD_STATUS = {
    OperationStatus.SUCCEEDED: ExecutionStatus.SUCCEEDED,
    OperationStatus.CANCELLED: ExecutionStatus.CANCELLED,
}


class DurableServiceClient(Protocol):
    """The two calls a handler makes (a boto3 ``lambda`` client has them)."""

    def checkpoint_durable_execution(self, **kwargs: Any) -> Mapping[str, Any]:
        """CheckpointDurableExecution."""
        ...

    def get_durable_execution_state(self, **kwargs: Any) -> Mapping[str, Any]:
        """GetDurableExecutionState."""
        ...


class ServiceClock:
    """A clock that never runs behind the service's timestamps.

    The service decides when timers and retries are due, and under the emulator's time
    skipping its time runs ahead of the wall clock; deadlines are measured on its time.
    """

    def __init__(self, base: Clock) -> None:
        self._base = base
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def learn(self, moment: datetime | None) -> None:
        """Note a moment the service says has passed."""
        if moment is None:
            return
        gap = moment - self._base.now()
        with self._lock:
            self._offset = max(self._offset, gap)

    def now(self) -> datetime:
        """The base clock's time, moved up to the latest service time seen."""
        with self._lock:
            return self._base.now() + self._offset

    def sleep(self, seconds: float) -> None:
        """Sleep on the base clock."""
        self._base.sleep(seconds)


class ServiceStore:
    """A :class:`~durable_core.stores.base.JournalStore` over one invocation of the service."""

    def __init__(
        self,
        client: DurableServiceClient,
        *,
        arn: str,
        token: str,
        execution_id: str,
        clock: ServiceClock,
        token_retry_delays: Sequence[float] = (0.2, 1.0),
        page_size: int = 1000,
    ) -> None:
        self._client = client
        self.arn = arn
        self._token = token
        self.execution_id = execution_id
        self.clock = clock
        self._retry_delays = tuple(token_retry_delays)
        self._page_size = page_size
        self._lock = threading.RLock()
        self._service: dict[str, Mapping[str, Any]] = {}
        self._ops: dict[str, Operation] = {}
        self._contexts: dict[str, tuple[str | None, str, str | None]] = {}
        self._staged: dict[str, Operation] = {}
        self._queued: list[wire.Wire] = []
        """STARTs announced and not sent yet (with the CONTEXT STARTs they need)."""
        self._sender: threading.Thread | None = None
        self._wake = threading.Event()
        self._closed = False
        self._changed = False
        self.execution: Execution | None = None
        self.failure: ServiceError | None = None
        """The first service error of this invocation; it voids the invocation."""
        self.paused = False
        """The service answered without a token: stop and return PENDING."""
        self.calls = 0
        """Service calls made (checkpoints and state pages)."""

    # --- loading ---------------------------------------------------------------------------

    def load(self, operations: Sequence[Mapping[str, Any]], next_marker: str | None) -> None:
        """Merge the envelope's operations and page in the rest (before any checkpoint)."""
        self._merge(operations, sent=None)
        marker = next_marker
        while marker:
            page = self._call(
                "get_durable_execution_state",
                DurableExecutionArn=self.arn,
                CheckpointToken=self._token,
                Marker=marker,
                MaxItems=self._page_size,
            )
            self._merge(page.get("Operations") or [], sent=None)
            marker = page.get("NextMarker")

    def service_operations(self) -> list[Mapping[str, Any]]:
        """The service's operations as last seen (wire shape)."""
        with self._lock:
            return list(self._service.values())

    def _merge(
        self, ops: Sequence[Mapping[str, Any]], *, sent: Mapping[str, str] | None
    ) -> set[str]:
        """Merge service operations into local state; return their ids."""
        seen: set[str] = set()
        with self._lock:
            for raw in ops:
                self.clock.learn(wire.timestamp(raw.get("StartTimestamp")))
                self.clock.learn(wire.timestamp(raw.get("EndTimestamp")))
                op_id = str(raw["Id"])
                seen.add(op_id)
                self._service[op_id] = raw
                rec = wire.to_record(raw, execution_id=self.execution_id, now=self.clock.now())
                if rec is None:
                    continue
                if sent is not None and sent.get(op_id) != raw.get("Status"):
                    self._changed = True
                self._ops[op_id] = rec
        return seen

    def take_changes(self) -> bool:
        """True (once) if a response carried news this invocation did not write."""
        with self._lock:
            changed, self._changed = self._changed, False
            return changed

    def on_begin(self, slot: Slot, type_: OperationType, name: str, sub_type: str | None) -> None:
        """``ScopeAnnouncingStore.on_begin``: remember every CONTEXT, to start it on demand."""
        if type_ is OperationType.CONTEXT:
            with self._lock:
                self._contexts[slot.id] = (slot.parent_id, name, sub_type)

    # --- writing ---------------------------------------------------------------------------

    def write_operations_assigned(
        self, lease: Lease, operations: Sequence[Operation], now: datetime, ttl: timedelta
    ) -> tuple[Lease, list[Operation]]:
        """Checkpoint ``operations``; return them as the service stored them."""
        with self._lock:
            self._check_usable()
            plans = [
                (op, wire.plan(op, self._service.get(op.id), now=self.clock.now()))
                for op in operations
            ]
            deferred = [p.defer for _, p in plans if p.defer]
            if deferred:
                raise SuspendExecution(deferred[0])
            updates, self._queued = self._queued, []
            started = {u["Id"] for u in updates if u["Action"] == "START"}
            for _, p in plans:
                for update in p.updates:
                    if update["Action"] == "START" and update["Id"] in started:
                        continue  # already queued, or started for a child in this checkpoint
                    self._start_parents(update.get("ParentId"), updates, started)
                    updates.append(update)
                    if update["Action"] == "START":
                        started.add(update["Id"])
            echoed = self._checkpoint(updates) if updates else set()
            stored: list[Operation] = []
            for op, p in plans:
                if p.stage:
                    self._staged[op.id] = op
                    stored.append(op)
                elif not p.updates or op.id in echoed:
                    stored.append(self._ops.get(op.id, op))  # what the service holds
                elif op.type is OperationType.CALLBACK and not self.paused:
                    raise self._fail(
                        ServiceError(
                            f"the checkpoint response did not include callback {op.name!r}, "
                            "so its id is unknown; the invocation fails and is retried",
                            api="checkpoint_durable_execution",
                            code="MissingCallbackId",
                        )
                    )
                else:
                    stored.append(op)  # written, but not echoed: the record we sent
            if self.paused:
                raise SuspendExecution("the service paused this execution (no checkpoint token)")
            return lease, stored

    def announce_start(self, op: Operation) -> None:
        """``StartAnnouncingStore.announce_start``: queue the attempt's START; never blocks."""
        with self._lock:
            if self.failure is not None or self.paused or self._closed:
                return
            current = self._service.get(op.id)
            if current is not None and current.get("Status") not in ("READY", None):
                return  # already STARTED, or a retry the service has not released
            queued = {u["Id"] for u in self._queued if u["Action"] == "START"}
            if op.id in queued:
                return
            self._start_parents(op.parent_id, self._queued, queued)
            self._queued.append(wire.header(op, "START"))
            if self._sender is None:
                self._sender = threading.Thread(
                    target=self._send_loop, name="durable-start-sender", daemon=True
                )
                self._sender.start()
        self._wake.set()

    def _send_loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                if self._closed:
                    return
                self._send_queued()

    def _send_queued(self) -> None:
        """Send the queued STARTs, if any (under the lock); a failure voids the invocation."""
        if not self._queued or self.failure is not None or self.paused:
            return
        updates, self._queued = self._queued, []
        # A failure is recorded in self.failure: the next write, or the handler, raises it.
        with contextlib.suppress(ServiceError):
            self._checkpoint(updates)

    def flush(self) -> None:
        """Send what is still queued now (before the handler reads the outcome)."""
        with self._lock:
            self._send_queued()

    def close(self) -> None:
        """Send what is still queued and stop the background sender (the invocation ends)."""
        with self._lock:
            self._send_queued()
            self._closed = True
        self._wake.set()
        if self._sender is not None:
            self._sender.join(timeout=30)

    def write_operations(
        self, lease: Lease, operations: Sequence[Operation], now: datetime, ttl: timedelta
    ) -> Lease:
        """``JournalStore.write_operations`` (the records as stored are dropped)."""
        return self.write_operations_assigned(lease, operations, now, ttl)[0]

    def _start_parents(
        self, parent_id: str | None, out: list[wire.Wire], started: set[str]
    ) -> None:
        """Append CONTEXT STARTs for ``parent_id`` and its unstarted ancestors, outermost first."""
        chain: list[str] = []
        while parent_id is not None and parent_id not in started and parent_id not in self._service:
            chain.append(parent_id)
            known = self._contexts.get(parent_id)
            if known is None:
                raise StoreError(
                    f"a record of execution {self.execution_id!r} names parent {parent_id!r}, "
                    "a context this invocation never began; this is a bug in durable_core"
                )
            parent_id = known[0]
        for ctx_id in reversed(chain):
            parent, name, sub_type = self._contexts[ctx_id]
            out.append(wire.context_start(ctx_id, parent, name, sub_type))
            started.add(ctx_id)

    def _checkpoint(self, updates: list[wire.Wire]) -> set[str]:
        """Send one checkpoint; merge the response; return the ids the response carried."""
        for update in updates:
            wire.check_update(update)
        response = self._call(
            "checkpoint_durable_execution",
            DurableExecutionArn=self.arn,
            CheckpointToken=self._token,
            Updates=updates,
            ClientToken=uuid.uuid4().hex,
        )
        sent = {u["Id"]: wire.expected_status(u["Action"]) for u in updates}
        state = response.get("NewExecutionState") or {}
        echoed = self._merge(state.get("Operations") or [], sent=sent)
        token = response.get("CheckpointToken")
        if not token:
            if updates[-1]["Type"] != "EXECUTION":
                self.paused = True
            return echoed
        self._token = str(token)
        marker = state.get("NextMarker")
        while marker:
            page = self._call(
                "get_durable_execution_state",
                DurableExecutionArn=self.arn,
                CheckpointToken=self._token,
                Marker=marker,
                MaxItems=self._page_size,
            )
            echoed |= self._merge(page.get("Operations") or [], sent={})
            marker = page.get("NextMarker")
        return echoed

    def _check_usable(self) -> None:
        if self.failure is not None:
            raise self.failure
        if self.paused:
            raise SuspendExecution("the service paused this execution (no checkpoint token)")

    def _call(self, api: str, **request: Any) -> Mapping[str, Any]:
        """One service call; an identical retry only for a rejected token (see module doc)."""
        delays = iter(self._retry_delays)
        while True:
            self.calls += 1
            try:
                return getattr(self._client, api)(**request)  # type: ignore[no-any-return]
            except Exception as exc:
                code, message = _describe(exc)
                rejected = _INVALID_TOKEN in message
                delay = next(delays, None) if rejected else None
                if delay is not None:
                    # The same request with the same ClientToken: answered from the cache if
                    # it was applied, refused again if the token really is stale. Safe.
                    time.sleep(delay)
                    continue
                raise self._fail(_service_error(api, code, message, token=rejected)) from exc

    def _fail(self, error: ServiceError) -> ServiceError:
        """Record ``error`` as the invocation's failure (the first one wins); return it."""
        if self.failure is None:
            self.failure = error
        return self.failure

    # --- the end of the execution and chained invokes --------------------------------------

    def finish_execution(self, execution_op_id: str, result: str) -> None:
        """Checkpoint the result on the EXECUTION operation (a result too big to return)."""
        with self._lock:
            self._check_usable()
            update = {"Id": execution_op_id, "Type": "EXECUTION", "Action": "SUCCEED"}
            self._checkpoint([update | {"Payload": result}])

    def start_invoke(self, child_id: str, function_name: str) -> Execution:
        """Send a staged chained invoke's START; return the child's summary."""
        with self._lock:
            staged = next(
                (op for op in self._staged.values() if op.child_execution_id == child_id), None
            )
            if staged is not None:
                self._check_usable()
                updates: list[wire.Wire] = []
                self._start_parents(staged.parent_id, updates, set())
                self._checkpoint([*updates, wire.invoke_start(staged, function_name)])
                del self._staged[staged.id]
            return self.get_execution(child_id)

    # --- the rest of the JournalStore protocol --------------------------------------------

    def load_operations(self, execution_id: str) -> list[Operation]:
        """Our records of every operation seen (the EXECUTION operation excluded)."""
        with self._lock:
            return [*self._ops.values(), *self._staged.values()]

    def get_execution(self, execution_id: str) -> Execution:
        """The execution being run, or the summary of a chained invoke's child."""
        if self.execution is not None and execution_id == self.execution.id:
            return self.execution
        with self._lock:
            found = next(
                (o for o in self._ops.values() if o.child_execution_id == execution_id), None
            )
        if found is None and not any(
            o.child_execution_id == execution_id for o in self._staged.values()
        ):
            raise ExecutionNotFoundError(execution_id)
        now = self.clock.now()
        status = ExecutionStatus.RUNNING
        if found is not None and found.status.is_terminal:
            status = _CHILD_STATUS.get(found.status, ExecutionStatus.FAILED)
        return Execution(
            id=execution_id,
            function=(found.name if found is not None else None) or "chained-invoke",
            input="null",
            status=status,
            result=found.result if found is not None else None,
            error=found.error if found is not None and status.is_terminal else None,
            created_at=now,
            updated_at=now,
        )

    def complete_callback(
        self,
        callback_id: str,
        outcome: CallbackOutcome,
        now: datetime,
        *,
        privileged: bool = False,
    ) -> Operation:
        """Only the service completes callbacks here; report whatever it says now.

        ``privileged`` changes nothing: the service completes callbacks through its own API
        (``SendDurableExecutionCallback*``, authorised by IAM), which cannot be refused here.

        Raises:
            CallbackAlreadyCompletedError: always (the journal then re-reads the record), so
                a local timeout or cancellation never overrides the service.
        """
        with self._lock:
            if not any(o.callback_id == callback_id for o in self._ops.values()):
                raise CallbackNotFoundError(  # the id is a token: never in a message
                    "no callback with this id in this execution"
                )
        raise CallbackAlreadyCompletedError(
            "on the durable execution service, callbacks are completed and timed out by the "
            "service; this invocation keeps the service's record"
        )


def _describe(exc: Exception) -> tuple[str, str]:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error") or {}
        return str(error.get("Code") or type(exc).__name__), str(error.get("Message") or exc)
    return type(exc).__name__, str(exc)


def _service_error(api: str, code: str, message: str, *, token: bool) -> ServiceError:
    if token:
        return CheckpointTokenError(
            f"{api}: {code}: {message}. This invocation was superseded or the execution "
            "ended; Lambda retries the invocation with a fresh token.",
            api=api,
            code=code,
        )
    return ServiceError(
        f"{api} failed: {code}: {message}. Throttling, 5xx and transport errors were already "
        "retried with backoff; the invocation fails so Lambda retries it.",
        api=api,
        code=code,
    )
