"""Run a durable function in-process on a virtual clock, as a test would.

:class:`DurableTestRunner` drives an execution through the same
:class:`~durable_core.runtime.Runtime` the CLI and the worker use; it adds only time
control. Whenever the execution is suspended on a timer or a retry it moves the virtual
clock to the time it is due and goes on, so a 30-day wait passes instantly.

Invariants:
- The runner stops when the execution finishes, or when nothing it could do by moving time
  would help: the execution waits only for an external event (a callback, a child
  execution that waits for one), or no runtime can run it (a version mismatch, an unknown
  function).
- Skipping time never makes a callback time out by itself: when the next thing due is a
  callback's timeout or heartbeat deadline, the runner stops so the test can complete it,
  heartbeat it, or let it time out (``advance_time``). ``skip_callback_timeouts=True``
  skips to those deadlines too.
- An expired lease of a worker that died (a :class:`~durable_core.errors.SimulatedCrash`)
  is waited out on the virtual clock, so ``resume()`` after a crash recovers like a new
  worker would.
- In always-replay mode the function is restarted from the top after every checkpoint
  write; its outcome must equal a normal run, or the function is not replay-safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from durable_core._context_base import CALLBACK_SUFFIX
from durable_core.context import DurableContext
from durable_core.errors import (
    CallbackAlreadyCompletedError,
    DurableError,
    FunctionNotFoundError,
    ValidationError,
)
from durable_core.function import DurableFunction
from durable_core.parking import NON_DETERMINISM, is_parked
from durable_core.records import (
    Execution,
    ExecutionStatus,
    Operation,
    OperationStatus,
    OperationType,
)
from durable_core.runtime import Runtime, RuntimeOptions
from durable_core.stores.base import Store
from durable_core.stores.memory import MemoryStore
from durable_core.testing._stores import ReplayBoundaryStore
from durable_core.testing.clock import VirtualClock
from durable_core.testing.result import RecordedOperation, TestResult

E = TypeVar("E")
R = TypeVar("R")

DEFAULT_MAX_ROUNDS = 1000


class RunawayExecutionError(DurableError):
    """The test runner skipped time (or delivered callbacks) too often without an end."""


@dataclass(frozen=True)
class CallbackFailure:
    """A failure to deliver for a callback in ``callbacks={...}`` (instead of a value)."""

    message: str
    """What went wrong, as the external system would report it."""
    error_type: str = "CallbackFailure"
    """The error type recorded for the callback."""
    data: str | None = None
    """Optional detail text."""


class DurableTestRunner(Generic[E, R]):
    """Start, drive and inspect one execution of a durable function, on a virtual clock.

    Example::

        runner = DurableTestRunner(order_workflow)
        result = runner.run({"order_id": "o-1"})       # runs until it waits for "shipper"
        runner.send_callback_success("shipper", {"delivered": True})
        result = runner.resume()
        assert result.status is ExecutionStatus.SUCCEEDED

    Args:
        fn: the durable function (decorated with ``@durable`` or plain ``(ctx, event)``).
        store: where executions live; default a fresh :class:`MemoryStore`.
        clock: the virtual clock to drive; default a fresh :class:`VirtualClock`.
        always_replay: restart the function from the top after every checkpoint write.
        functions: more durable functions to register (for ``invoke``).
        options: runtime options (lease TTL, inline retry threshold, payload limit).
        callbacks: callbacks to complete by name whenever the execution waits for them:
            a value completes it with success, a :class:`CallbackFailure` with failure.
            A privileged callback (a saga's ``operator:<step>``) is completed through the
            privileged path, as its owner would; ``send_callback_success`` refuses it.
        max_rounds: how many times the runner may skip time or deliver callbacks in one
            ``run``/``resume`` before raising :class:`RunawayExecutionError`.
        skip_callback_timeouts: also skip time to a callback's timeout or heartbeat
            deadline (the callback then times out) instead of stopping there.
    """

    def __init__(
        self,
        fn: DurableFunction[E, R] | Callable[[DurableContext, E], R],
        *,
        store: Store | None = None,
        clock: VirtualClock | None = None,
        always_replay: bool = False,
        functions: Iterable[DurableFunction[Any, Any] | Any] = (),
        options: RuntimeOptions | None = None,
        callbacks: Mapping[str, Any] | None = None,
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        skip_callback_timeouts: bool = False,
    ) -> None:
        if max_rounds < 1:
            raise ValidationError("max_rounds must be at least 1")
        self.clock = clock if clock is not None else VirtualClock()
        self.store: Store = store if store is not None else MemoryStore()
        self.always_replay = always_replay
        backing: Store = ReplayBoundaryStore(self.store) if always_replay else self.store
        self.runtime = Runtime(backing, functions=functions, clock=self.clock, options=options)
        self.function: DurableFunction[E, R] = self.runtime.register(fn)
        self.callbacks: dict[str, Any] = dict(callbacks or {})
        self.max_rounds = max_rounds
        self.skip_callback_timeouts = skip_callback_timeouts
        self._execution_id: str | None = None

    @property
    def execution_id(self) -> str:
        """The id of the execution this runner drives.

        Raises:
            ValidationError: nothing was run yet.
        """
        if self._execution_id is None:
            raise ValidationError(
                "this runner has no execution yet: call run(event) first "
                "(or resume(execution_id=...) for an existing one)"
            )
        return self._execution_id

    # --- driving --------------------------------------------------------------------------

    def run(
        self, event: E, *, execution_id: str | None = None, skip_time: bool = True
    ) -> TestResult:
        """Start an execution (idempotent by id) and drive it as far as it can go.

        Args:
            event: the input.
            execution_id: the id (default: a random one); starting it again is a no-op.
            skip_time: move the virtual clock to each timer or retry; with ``False`` run
                only what is due now and return (to look at a suspended execution).

        Raises:
            ExecutionConflictError: ``execution_id`` exists with a different input.
            SimulatedCrash: a crash was injected (the execution is left with its lease).
        """
        started = self.runtime.start(self.function, event, execution_id=execution_id)
        self._execution_id = started.id
        return self._drive(skip_time)

    def resume(self, *, execution_id: str | None = None, skip_time: bool = True) -> TestResult:
        """Drive the execution again (after a callback, a cancel or a crash).

        Args:
            execution_id: adopt this execution of the store instead (e.g. one a crashed
                runner or another runtime started).
            skip_time: as for :meth:`run`.

        Raises:
            ExecutionNotFoundError: ``execution_id`` is not in the store.
        """
        if execution_id is not None:
            self.store.get_execution(execution_id)  # ExecutionNotFoundError if unknown
            self._execution_id = execution_id
        return self._drive(skip_time)

    def advance_time(self, delta: timedelta) -> TestResult:
        """Move the virtual clock forward by ``delta``, then ``resume()``.

        Use it to let a callback time out, or to heartbeat a callback partway.
        """
        self.clock.advance(delta)
        return self._drive(skip_time=True)

    def snapshot(self) -> TestResult:
        """The execution's current state, without driving it."""
        return self._result(self.store.get_execution(self.execution_id))

    def _drive(self, skip_time: bool) -> TestResult:
        eid = self.execution_id
        for _ in range(self.max_rounds):
            family = self._family(eid)
            for ex in family:
                if ex.status is ExecutionStatus.RUNNING:
                    self.runtime.drive(ex.id)  # runs it if due (or parks it if it cannot)
            root = self.store.get_execution(eid)
            if root.status.is_terminal:
                return self._result(root)
            family = self._family(eid)
            if self._deliver_callbacks(family):
                continue
            wake = self._next_wake(family)
            if wake is None:
                return self._result(root)
            if wake > self.clock.now():
                if not skip_time:
                    return self._result(root)
                self.clock.set(wake)
        raise RunawayExecutionError(
            f"execution {eid!r} is still running after {self.max_rounds} rounds of skipping "
            "time; it may retry or poll forever. Give the step a stop condition, or pass a "
            "larger max_rounds to the runner."
        )

    def _family(self, root_id: str) -> list[Execution]:
        """The execution and its running descendants (executions started by ``invoke``)."""
        root = self.store.get_execution(root_id)
        running = self.store.list_executions(status=ExecutionStatus.RUNNING, limit=100_000)
        members = [root]
        ids = {root.id}
        grew = True
        while grew:
            grew = False
            for ex in running:
                if ex.id not in ids and ex.parent_execution_id in ids:
                    members.append(ex)
                    ids.add(ex.id)
                    grew = True
        return members

    def _runnable(self, ex: Execution) -> bool:
        """Whether this runtime can run ``ex`` at all (else skipping time cannot help)."""
        if is_parked(ex) and ex.error is not None and ex.error.type == NON_DETERMINISM:
            return False  # waits for an operator's retry or fail
        try:
            fn = self.runtime.resolve(ex.function)
        except FunctionNotFoundError:
            return False
        return fn.version == ex.version

    def _next_wake(self, family: list[Execution]) -> datetime | None:
        now = self.clock.now()
        times: list[datetime] = []
        for ex in family:
            if ex.status is not ExecutionStatus.RUNNING or ex.wake_at is None:
                continue
            if not self._runnable(ex) or self._awaits_callback(ex):
                continue
            wake = ex.wake_at
            if ex.lease_owner is not None and ex.lease_expires is not None:
                wake = max(wake, ex.lease_expires)  # a dead worker's lease must expire first
            times.append(max(wake, now))
        return min(times) if times else None

    def _awaits_callback(self, ex: Execution) -> bool:
        """True when ``ex`` is next due at a callback's timeout or heartbeat deadline."""
        if self.skip_callback_timeouts or ex.wake_at is None or ex.wake_at <= self.clock.now():
            return False
        return any(
            ex.wake_at in (op.timeout_at, op.heartbeat_deadline)
            for op in self.store.load_operations(ex.id)
            if op.type is OperationType.CALLBACK and op.status is OperationStatus.STARTED
        )

    def _deliver_callbacks(self, family: list[Execution]) -> bool:
        delivered = False
        if not self.callbacks:
            return False
        for ex in family:
            if ex.status is not ExecutionStatus.RUNNING:
                continue
            for op in self.store.load_operations(ex.id):
                if (
                    op.type is OperationType.CALLBACK
                    and op.status is OperationStatus.STARTED
                    and (name := _given_name(op, self.callbacks)) is not None
                    and op.callback_id is not None
                ):
                    try:
                        self._send(op, self.callbacks[name])
                    except CallbackAlreadyCompletedError:
                        continue
                    delivered = True
        return delivered

    def _send(self, op: Operation, value: Any) -> Operation:
        """Deliver a ``callbacks={...}`` value; the test stands in for the callback's owner.

        A privileged callback is completed through the privileged path (its owner's), with a
        value only: there is no privileged failure.
        """
        token = op.callback_id
        assert token is not None
        if op.privileged:
            if isinstance(value, CallbackFailure):
                raise ValidationError(
                    f"callback {op.name!r} is privileged: callbacks={{...}} can complete it "
                    "with a value only, not a CallbackFailure"
                )
            return self.runtime.send_privileged_callback_success(token, value)
        if isinstance(value, CallbackFailure):
            return self.runtime.send_callback_failure(
                token, value.message, error_type=value.error_type, data=value.data
            )
        return self.runtime.send_callback_success(token, value)

    def _result(self, ex: Execution) -> TestResult:
        ops = [RecordedOperation(op) for op in self.store.load_operations(ex.id)]
        value: Any = None
        if ex.status is ExecutionStatus.SUCCEEDED:
            type_ = (
                self.function.result_type
                if ex.function == self.function.name
                else self.runtime.resolve(ex.function).result_type
            )
            value = self.runtime.serde.load(
                ex.result or "null", type_, what=f"result of execution {ex.id!r}"
            )
        return TestResult(execution=ex, operations=ops, result=value)

    # --- external events ------------------------------------------------------------------

    def send_callback_success(self, name_or_token: str, value: Any = None) -> Operation:
        """Complete a callback with ``value`` (JSON-serializable). Call ``resume()`` next.

        Args:
            name_or_token: the callback's operation name (the one waiting now; for
                ``wait_for_callback(name, ...)`` its ``name``), or its token.

        Raises:
            CallbackNotFoundError: no callback has that token.
            CallbackAlreadyCompletedError: it was completed before (nothing changed).
        """
        return self.runtime.send_callback_success(self._token(name_or_token), value)

    def send_callback_failure(
        self,
        name_or_token: str,
        message: str = "callback failed",
        *,
        error_type: str = "CallbackFailure",
        data: str | None = None,
    ) -> Operation:
        """Fail a callback; the function's ``result()`` raises CallbackFailedError."""
        return self.runtime.send_callback_failure(
            self._token(name_or_token), message, error_type=error_type, data=data
        )

    def send_callback_heartbeat(self, name_or_token: str) -> Operation:
        """Push a callback's heartbeat deadline forward (now + its heartbeat timeout)."""
        return self.runtime.send_callback_heartbeat(self._token(name_or_token))

    def cancel(self, reason: str | None = "cancelled by test", *, actor: str = "test") -> Execution:
        """Request cancellation; the function sees it at its next operation boundary.

        Call ``resume()`` to let it happen.

        Raises:
            ExecutionNotRunningError: the execution has already finished.
        """
        return self.runtime.cancel(self.execution_id, reason, actor=actor)

    def terminate(self, reason: str = "terminated by test", *, actor: str = "test") -> Execution:
        """Request termination (no clean-up; a saga does not compensate); see ``cancel``."""
        return self.runtime.terminate(self.execution_id, reason, actor=actor)

    def _token(self, name_or_token: str) -> str:
        """Resolve a callback name to its token; anything else is taken as a token."""
        if self._execution_id is None:
            return name_or_token
        named = [
            op
            for ex in self._family(self._execution_id)
            for op in self.store.load_operations(ex.id)
            if op.type is OperationType.CALLBACK and _called(op, name_or_token) and op.callback_id
        ]
        waiting = [op for op in named if op.status is OperationStatus.STARTED]
        if len(waiting) > 1:
            raise ValidationError(
                f"{len(waiting)} callbacks named {name_or_token!r} are waiting; pass the token "
                "instead (snapshot().operations lists them with .token)"
            )
        chosen = waiting or named[-1:]
        if chosen and chosen[0].callback_id is not None:
            return chosen[0].callback_id
        return name_or_token


def _called(op: Operation, name: str) -> bool:
    """True if callback ``op`` is ``name``, or the callback of ``wait_for_callback(name)``."""
    return op.name in (name, f"{name}{CALLBACK_SUFFIX}")


def _given_name(op: Operation, given: Mapping[str, Any]) -> str | None:
    """The key of ``given`` that names callback ``op`` (see :func:`_called`), if any."""
    return next((name for name in given if _called(op, name)), None)
