"""Start, resume, inspect and cancel executions on a self-hosted store.

The :class:`Runtime` is the API the CLI, the worker and the testing kit share:

- ``start`` creates an execution idempotently by id; ``run`` starts and drives it.
- ``run_once`` takes the execution's lease (fencing out any other worker), runs one
  invocation and records how it ended, atomically with releasing the lease.
- ``tick`` claims every due execution (timers, retries, completed callbacks, expired leases
  of dead workers) and runs it; :mod:`durable_core.runtime.worker` loops over ``tick``.
- Callbacks are completed through the store's conditional path; ``cancel`` requests a
  cancellation that the function sees at its next operation boundary.
- Callback completions and cancel/terminate requests are the base class
  :class:`~durable_core.runtime.requests.ExecutionRequests` (see its invariants).
- A worker runs only functions registered with it, or under a module prefix it was told
  to trust (``RuntimeOptions.allowed_modules``); any other name a store record holds is
  parked as not registered and never imported.
- An execution a worker cannot run safely (non-determinism, function not registered or
  not found, version mismatch) is parked, not failed: ``retry`` resumes it, ``fail`` ends
  it (see :mod:`durable_core.parking`).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import structlog

from durable_core.clock import Clock, SystemClock
from durable_core.errors import (
    CorruptRecordError,
    ExecutionConflictError,
    ExecutionNotFoundError,
    FunctionNotFoundError,
    LeaseLostError,
    SerializationError,
    StoreError,
    ValidationError,
    VersionMismatchError,
)
from durable_core.function import (
    DurableFunction,
    FunctionRegistry,
)
from durable_core.journal import InvocationOptions, Journal
from durable_core.parking import park_kind, park_summary, request_fail, request_retry
from durable_core.records import (
    ErrorInfo,
    Execution,
    ExecutionStatus,
    Lease,
    Operation,
)
from durable_core.recovery import (
    recovery_end,
)
from durable_core.runtime.invocation import (
    InvocationReport,
    Reporter,
    run_invocation,
    run_invocation_async,
)
from durable_core.runtime.lease_keeper import LeaseKeeper
from durable_core.runtime.options import RuntimeOptions, default_worker_id
from durable_core.runtime.requests import ExecutionRequests, check_execution_id
from durable_core.serde import (
    PydanticSerde,
    Serde,
    loads_strict,
)
from durable_core.stores.base import InvocationEnd, Store

__all__ = ["Runtime"]

_log = structlog.get_logger("durable.runtime")


class Runtime(ExecutionRequests):
    """Runs durable functions against a store (and takes the requests of
    :class:`~durable_core.runtime.requests.ExecutionRequests`: callbacks, cancel, terminate)."""

    def __init__(
        self,
        store: Store,
        *,
        functions: Iterable[DurableFunction[Any, Any] | Any] = (),
        clock: Clock | None = None,
        options: RuntimeOptions | None = None,
        worker_id: str | None = None,
        serde: Serde | None = None,
    ) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.options = options or RuntimeOptions()
        self.worker_id = worker_id or default_worker_id()
        self.serde: Serde = serde or PydanticSerde(max_bytes=self.options.max_payload_bytes)
        self._functions = FunctionRegistry(self.options.allowed_modules)
        self._keeper = LeaseKeeper(self.options.lease_ttl)
        for fn in functions:
            self.register(fn)

    # --- functions ------------------------------------------------------------------------

    def register(self, fn: DurableFunction[Any, Any] | Any) -> DurableFunction[Any, Any]:
        """Make ``fn`` resolvable by name (for workers and ``invoke``)."""
        return self._functions.register(fn)

    def registered(self) -> list[str]:
        """The names of the functions registered (resolved ones included), sorted."""
        return self._functions.names()

    def resolve(self, name: str) -> DurableFunction[Any, Any]:
        """The function called ``name`` (see :meth:`FunctionRegistry.resolve`).

        Raises:
            FunctionNotRegisteredError: neither registered nor under an allowed module
                prefix (nothing was imported).
        """
        return self._functions.resolve(name)

    # --- starting and driving -------------------------------------------------------------

    def start(
        self,
        fn: DurableFunction[Any, Any] | Any | str,
        event: Any = None,
        *,
        execution_id: str | None = None,
        parent_execution_id: str | None = None,
        tenant_id: str | None = None,
    ) -> Execution:
        """Create an execution (idempotent by ``execution_id``) without running it;
        ``tenant_id`` is recorded on it (``ctx.invoke(tenant_id=)`` passes it on).

        Raises:
            ExecutionConflictError: the id exists for a different function or input.
        """
        eid = uuid.uuid4().hex if execution_id is None else check_execution_id(execution_id)
        durable_fn = self.resolve(fn) if isinstance(fn, str) else self.register(fn)
        what = f"input of {durable_fn.name!r}"
        # Validate the event against the function's input type now, so bad input fails at
        # start with an error naming the function instead of on the first invocation.
        try:
            value = self.serde.load(
                self.serde.dump(event, Any, what=what), durable_fn.input_type, what=what
            )
        except SerializationError as e:
            raise SerializationError(
                f"the input does not match the event type of {durable_fn.name!r} "
                f"({durable_fn.input_type!r}): {e.__cause__ or e}. Nothing was started.",
                operation=what,
            ) from e
        text = self.serde.dump(value, durable_fn.input_type, what=what)
        now = self.clock.now()
        record = Execution(
            id=eid,
            function=durable_fn.name,
            input=text,
            created_at=now,
            updated_at=now,
            wake_at=now,
            version=durable_fn.version,
            deadline=now + durable_fn.timeout if durable_fn.timeout else None,
            parent_execution_id=parent_execution_id,
            tenant_id=tenant_id,
        )
        return self._create(record)[0]

    def enqueue(
        self,
        function: str,
        input_json: str,
        *,
        execution_id: str | None = None,
        version: str | None = None,
    ) -> tuple[Execution, bool]:
        """Create an execution of the function *named* ``function`` for a worker to run,
        without resolving or importing it (a server that must not run user code); return it
        and whether it was created now (idempotent by ``execution_id``).

        ``input_json`` must be JSON text; the worker validates it against the function's
        event type on the first invocation (a mismatch fails the execution, naming the
        function). ``version`` pins the code version, as ``start`` does from the function
        (a worker running another version parks it); no deadline is set from the
        function's timeout, which only its code knows.

        Raises:
            ValidationError: the name, id or input is not valid (nothing recorded).
            ExecutionConflictError: the id exists for a different function or input.
        """
        eid = uuid.uuid4().hex if execution_id is None else check_execution_id(execution_id)
        if not isinstance(function, str) or not function.strip() or len(function) > 300:
            raise ValidationError(
                f"function must be the name of a durable function (1-300 characters, e.g. "
                f"'examples.order_processing.saga:process_order'), got {function!r:.80}"
            )
        if version is not None and (not isinstance(version, str) or not version.strip()):
            raise ValidationError(f"version must be non-empty text or none, got {version!r:.80}")
        try:
            value = loads_strict(input_json)
        except (ValueError, RecursionError, TypeError) as e:
            raise ValidationError(f"the input of {function!r} is not valid JSON: {e}") from e
        text = self.serde.dump(value, Any, what=f"input of {function!r}")
        now = self.clock.now()
        record = Execution(
            id=eid,
            function=function,
            input=text,
            created_at=now,
            updated_at=now,
            wake_at=now,
            version=version,
        )
        return self._create(record)

    def _create(self, record: Execution) -> tuple[Execution, bool]:
        """Store ``record`` unless its id exists (then the stored one, if it is the same
        start); return it and whether it was created now."""
        stored, created = self.store.create_execution(record)
        if not created and (
            stored.function != record.function or _stored_input(stored) != json.loads(record.input)
        ):
            raise ExecutionConflictError(
                f"execution id {record.id!r} already exists for {stored.function!r} with a "
                "different input; an id names one execution. Use a new id to start another."
            )
        return stored, created

    def run_once(self, execution_id: str) -> Execution | None:
        """Run one invocation if the lease can be taken; ``None`` if someone else holds it."""
        lease = self.store.acquire_lease(
            execution_id, self.worker_id, self.clock.now(), self.options.lease_ttl
        )
        if lease is None:
            return None
        return self._invoke(lease)

    def drive(self, execution_id: str, *, max_invocations: int = 10_000) -> Execution:
        """Run invocations while the execution is due now; return it when done or waiting."""
        ex = self.store.get_execution(execution_id)
        for _ in range(max_invocations):
            if not self._due(ex):
                if ex.status is ExecutionStatus.RUNNING and self._drive_children(ex.id):
                    ex = self.store.get_execution(execution_id)
                    continue
                return ex
            ran = self.run_once(execution_id)
            ex = ran if ran is not None else self.store.get_execution(execution_id)
            if ran is None:
                return ex
        return ex

    def _drive_children(self, execution_id: str) -> bool:
        """Drive the due children an execution waits for (``invoke``); True if any ran."""
        ran = False
        for op in self.store.load_operations(execution_id):
            child_id = op.child_execution_id
            if child_id is None or op.status.is_terminal:
                continue
            try:
                child = self.store.get_execution(child_id)
            except ExecutionNotFoundError:
                continue
            if self._due(child) or child.status is ExecutionStatus.RUNNING:
                before = child.updated_at
                child = self.drive(child_id)
                ran = ran or child.updated_at != before
        return ran

    def run(
        self,
        fn: DurableFunction[Any, Any] | Any | str,
        event: Any = None,
        *,
        execution_id: str | None = None,
    ) -> Execution:
        """Start (idempotently) and drive until the execution finishes or waits."""
        return self.drive(self.start(fn, event, execution_id=execution_id).id)

    def tick(self, *, limit: int = 16, concurrency: int = 1, report: Reporter | None = None) -> int:
        """Claim and run due executions once; return how many ran.

        Args:
            limit: how many due executions to claim at most.
            concurrency: how many of them to run at once on threads. Concurrent
                invocations let a store that groups commits (SQLite) share one durable
                commit between them: worth it where an fsync costs far more than the
                Python work of a step (slow disks); on fast disks threads only add GIL
                contention (see docs/benchmarks.md).
            report: called with each invocation's :class:`InvocationReport` (the worker
                logs its outcome with it).
        """
        if concurrency < 1:
            raise ValidationError(f"concurrency must be at least 1, got {concurrency}")
        leases = self.store.claim_due(
            self.worker_id, self.clock.now(), self.options.lease_ttl, limit
        )
        if concurrency == 1 or len(leases) < 2:
            failed: list[Exception] = []
            for lease in leases:
                try:
                    self._invoke(lease, report)
                except Exception as e:  # e.g. a corrupt journal: still run the others claimed
                    failed.append(e)
            if failed:
                raise failed[0]
        else:
            with ThreadPoolExecutor(
                max_workers=min(concurrency, len(leases)), thread_name_prefix="durable-tick"
            ) as pool:
                for future in [pool.submit(self._invoke, lease, report) for lease in leases]:
                    future.result()
        return len(leases)

    def _due(self, ex: Execution) -> bool:
        return (
            ex.status is ExecutionStatus.RUNNING
            and ex.wake_at is not None
            and ex.wake_at <= self.clock.now()
        )

    def _invoke(self, lease: Lease, report: Reporter | None = None) -> Execution:
        prepared = self._prepare(lease, report)
        if isinstance(prepared, Execution):
            return prepared
        fn, journal = prepared
        held = self._keeper.hold(journal, self.store)
        try:
            try:
                end = run_invocation(fn, journal)
            finally:
                self._keeper.release(held)
            return self._settle(journal, end, report)
        except LeaseLostError:
            return self.store.get_execution(lease.execution_id)
        except StoreError:  # a failed write (disk full): nothing half-written, lease given back
            self._give_back(journal.lease)
            raise

    async def invoke_async(self, lease: Lease, report: Reporter | None = None) -> Execution:
        """``_invoke`` on the running event loop: an async function is awaited on it, a
        sync one runs on a thread (see :mod:`durable_core.runtime.async_runtime`)."""
        prepared = self._prepare(lease, report)
        if isinstance(prepared, Execution):
            return prepared
        fn, journal = prepared
        held = self._keeper.hold(journal, self.store)
        try:
            try:
                if fn.is_async:
                    end = await run_invocation_async(fn, journal)
                else:
                    end = await asyncio.to_thread(run_invocation, fn, journal)
            finally:
                self._keeper.release(held)
            return self._settle(journal, end, report)
        except LeaseLostError:
            return self.store.get_execution(lease.execution_id)
        except StoreError:
            self._give_back(journal.lease)
            raise

    def _prepare(
        self, lease: Lease, report: Reporter | None
    ) -> Execution | tuple[DurableFunction[Any, Any], Journal]:
        """The function and journal to run under ``lease``, or the execution as it ended
        without running (parked: not found, version mismatch; over the recovery cap)."""
        store = self.store
        ex = store.get_execution(lease.execution_id)
        try:
            fn = self.resolve(ex.function)
        except FunctionNotFoundError as e:
            return self._park(lease, e, self.options.park_retry_delay, report)
        if fn.version != ex.version:
            mismatch = VersionMismatchError(
                f"execution {ex.id!r} started under version {ex.version!r} but this "
                f"worker runs {fn.name!r} version {fn.version!r}; run a worker with "
                "the original version (replaying other code could repeat effects)"
            )
            return self._park(lease, mismatch, self.options.version_retry_delay, report)
        if ex.recovery_attempts:
            given_up = recovery_end(ex, self.options.max_recovery_attempts)
            if given_up is not None:
                return self._finish(lease, given_up, report)
        journal = Journal(
            execution=ex,
            operations=store.load_operations(ex.id),
            store=store,
            lease=lease,
            clock=self.clock,
            serde=self.serde,
            options=InvocationOptions(
                lease_ttl=self.options.lease_ttl,
                inline_retry_threshold=self.options.inline_retry_threshold,
                max_recovery_attempts=self.options.max_recovery_attempts,
            ),
            services=self,
            instrumentation=self.options.instrumentation,
        )
        return fn, journal

    def _settle(self, journal: Journal, end: InvocationEnd, report: Reporter | None) -> Execution:
        if end.status is ExecutionStatus.RUNNING and end.error is not None:  # parked
            end = end.model_copy(
                update={"wake_at": self.clock.now() + self.options.park_retry_delay}
            )
        if journal.role is not None and journal.execution.role is None:
            end = end.model_copy(update={"role": journal.role})  # recorded once
        return self._finish(journal.lease, end, report)

    def _finish(self, lease: Lease, end: InvocationEnd, report: Reporter | None) -> Execution:
        done = self.store.finish_invocation(lease, end, self.clock.now())
        if report is not None:
            report(InvocationReport(done, end.outcome, end.hint))
        return done

    def _give_back(self, lease: Lease) -> None:
        """Release ``lease`` after a store error, so a worker may retry at once, not after
        the TTL. Safe: stores write all or nothing, so the journal is as last committed.
        Best effort: a store that cannot take this write either lets the lease expire."""
        try:
            self.store.release_lease(lease)
        except Exception as e:
            _log.warning(
                "could not release the lease after a store error; it expires after lease_ttl",
                execution_id=lease.execution_id,
                error=str(e),
            )

    def _park(
        self, lease: Lease, error: Exception, delay: timedelta, report: Reporter | None
    ) -> Execution:
        """Leave an execution RUNNING, not due for ``delay``, with ``error`` on it (parked)."""
        now = self.clock.now()
        info = ErrorInfo.from_exception(error, with_traceback=False)
        end = InvocationEnd(
            status=ExecutionStatus.RUNNING,
            wake_at=now + delay,
            waiting_for=park_summary(info, lease.execution_id),
            error=info,
        )
        done = self.store.finish_invocation(lease, end, now)
        if report is not None:
            report(InvocationReport(done, park_kind(info.type)))
        return done

    # --- parked executions ------------------------------------------------------------------

    def retry(self, execution_id: str, *, actor: str | None = None) -> Execution:
        """Offer a parked execution to workers now (after deploying fixed code).

        Raises ExecutionNotParkedError if it is not parked (see :mod:`durable_core.parking`).
        """
        return request_retry(
            self.store,
            execution_id,
            actor=actor,
            owner=self.worker_id,
            now=self.clock.now(),
            ttl=self.options.lease_ttl,
        )

    def fail(self, execution_id: str, reason: str, *, actor: str | None = None) -> Execution:
        """Fail an execution parked on non-determinism: a worker raises OperatorFailedError
        where its replay diverged (a plain function ends FAILED, a saga compensates).

        Raises ExecutionNotParkedError if it is not parked on non-determinism or was failed
        already, ValidationError for an empty reason (nothing recorded either way).
        """
        return request_fail(
            self.store,
            execution_id,
            reason,
            actor=actor,
            owner=self.worker_id,
            now=self.clock.now(),
            ttl=self.options.lease_ttl,
        )

    # --- inspecting -----------------------------------------------------------------------

    def get(self, execution_id: str) -> Execution:
        """The execution record (ExecutionNotFoundError if unknown)."""
        return self.store.get_execution(execution_id)

    def operations(self, execution_id: str) -> list[Operation]:
        """The execution's journal, in write order."""
        return self.store.load_operations(execution_id)

    def result(self, execution_id: str, result_type: Any = None) -> Any:
        """The deserialized result of a SUCCEEDED execution.

        Raises:
            ExecutionNotRunningError: it has not succeeded (the message says its status).
        """
        from durable_core.errors import ExecutionNotRunningError

        ex = self.get(execution_id)
        if ex.status is not ExecutionStatus.SUCCEEDED:
            detail = f": {ex.error.type}: {ex.error.message}" if ex.error else ""
            raise ExecutionNotRunningError(
                f"execution {execution_id!r} has no result; it is {ex.status.value}{detail}"
            )
        type_ = result_type if result_type is not None else Any
        return self.serde.load(ex.result or "null", type_, what=f"result of {execution_id!r}")


def _stored_input(ex: Execution) -> Any:
    try:
        return json.loads(ex.input)
    except (ValueError, RecursionError) as e:
        raise CorruptRecordError(
            f"the stored input of execution {ex.id!r} is not JSON ({e}); the record is damaged"
        ) from e
