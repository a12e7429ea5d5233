"""Start, resume, inspect and cancel executions on a self-hosted store.

The :class:`Runtime` is the API the CLI, the worker and the testing kit share:

- ``start`` creates an execution idempotently by id; ``run`` starts and drives it.
- ``run_once`` takes the execution's lease (fencing out any other worker), runs one
  invocation and records how it ended, atomically with releasing the lease.
- ``tick`` claims every due execution (timers, retries, completed callbacks, expired leases
  of dead workers) and runs it; :mod:`durable_core.worker` loops over ``tick``.
- Callbacks are completed through the store's conditional path; ``cancel`` requests a
  cancellation that the function sees at its next operation boundary.
- The ``send_callback_*`` methods are the generic, token-holder path: they refuse a
  privileged callback (PrivilegedCallbackError, nothing changed). Only
  ``send_privileged_callback_success`` completes one; it is for the program that created the
  callback (its own validated API), never to be exposed to token holders.
- A worker runs only functions registered with it, or under a module prefix it was told
  to trust (``RuntimeOptions.allowed_modules``); any other name a store record holds is
  parked as not registered and never imported.
- An execution a worker cannot run safely (non-determinism, function not registered or
  not found, version mismatch) is parked, not failed: ``retry`` resumes it, ``fail`` ends
  it (see :mod:`durable_core.parking`).
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticSerializationError

from durable_core.clock import Clock, SystemClock
from durable_core.errors import (
    CorruptRecordError,
    ExecutionConflictError,
    ExecutionNotFoundError,
    FunctionNotFoundError,
    LeaseLostError,
    PayloadTooLargeError,
    SerializationError,
    StoreError,
    ValidationError,
    VersionMismatchError,
)
from durable_core.function import (
    DurableFunction,
    FunctionRegistry,
    check_module_prefixes,
    project_modules,
)
from durable_core.invocation import InvocationReport, Reporter, run_invocation
from durable_core.journal import (
    MAX_REASON_LENGTH,
    CallbackOutcome,
    ErrorInfo,
    Execution,
    ExecutionStatus,
    Lease,
    Operation,
    OperationStatus,
    StopKind,
    StopRequest,
)
from durable_core.lease_keeper import LeaseKeeper
from durable_core.parking import park_kind, park_summary, request_fail, request_retry
from durable_core.recovery import (
    DEFAULT_MAX_RECOVERY_ATTEMPTS,
    check_max_recovery_attempts,
    recovery_end,
)
from durable_core.replay import InvocationOptions, Journal
from durable_core.serde import (
    DEFAULT_MAX_BYTES,
    PydanticSerde,
    Serde,
    encodable,
    loads_strict,
)
from durable_core.stores.base import InvocationEnd, Store

MAX_CALLBACK_ERROR_BYTES = 32 * 1024
NO_REASON = "no reason given"
"""What a cancel request without a reason records."""
_log = structlog.get_logger("durable.runtime")


@dataclass(frozen=True, kw_only=True)
class RuntimeOptions:
    """Knobs of a runtime."""

    lease_ttl: timedelta = timedelta(seconds=60)
    """How long a worker owns an execution without renewing; a dead worker's executions are
    recovered after this."""
    inline_retry_threshold: timedelta = timedelta(seconds=1)
    """Retry delays up to this sleep in-process; longer ones become durable timers."""
    max_payload_bytes: int = DEFAULT_MAX_BYTES
    """Size limit of one serialized value."""
    version_retry_delay: timedelta = timedelta(minutes=1)
    """How soon an execution refused for a version mismatch is offered to workers again."""
    max_recovery_attempts: int = DEFAULT_MAX_RECOVERY_ATTEMPTS
    """How often in a row an execution is recovered after its worker died mid-invocation
    before the step that was running is failed for good with RecoveryLimitError (a saga
    then compensates); see :mod:`durable_core.recovery`."""
    park_retry_delay: timedelta = timedelta(hours=1)
    """How soon an execution parked for non-determinism or a function this worker cannot
    run is offered to workers again without ``retry``: long enough never to loop, short
    enough that a rolling deploy bringing the right code back resumes it by itself."""
    allowed_modules: tuple[str, ...] = ()
    """Module prefixes a worker may import a ``module:function`` from when a store record
    names a function not registered with it (``"myapp"`` allows ``myapp`` and
    ``myapp.*``). Empty: registered functions only."""

    def __post_init__(self) -> None:
        check_max_recovery_attempts(self.max_recovery_attempts)
        if self.lease_ttl < timedelta(seconds=1):
            raise ValidationError("lease_ttl must be at least 1 second")
        if self.inline_retry_threshold < timedelta(0):
            raise ValidationError("inline_retry_threshold must not be negative")
        if self.park_retry_delay < timedelta(minutes=1):
            raise ValidationError(
                f"park_retry_delay must be at least 1 minute, got {self.park_retry_delay}"
            )
        object.__setattr__(self, "allowed_modules", check_module_prefixes(self.allowed_modules))

    @classmethod
    def for_project(cls, folder: str | None = None, **knobs: Any) -> RuntimeOptions:
        """Options allowing the packages and modules in ``folder`` (default: the current
        directory), as the ``durable`` and ``durable-saga`` commands use by default."""
        return cls(allowed_modules=project_modules(Path(folder or os.getcwd())), **knobs)


def default_actor() -> str:
    """Who acts when no ``actor`` is given (the CLI, operator actions): ``user@host``.

    The user is the login name (``$USER``/``$LOGNAME``, else the account of the process id);
    a process without one is named by its uid.
    """
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (e.g. a bare container)
        user = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def default_worker_id() -> str:
    """host:pid:random, unique per process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Runtime:
    """Runs durable functions against a store."""

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
    ) -> Execution:
        """Create an execution (idempotent by ``execution_id``) without running it.

        Raises:
            ExecutionConflictError: the id exists for a different function or input.
        """
        eid = uuid.uuid4().hex if execution_id is None else _check_execution_id(execution_id)
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
        )
        stored, created = self.store.create_execution(record)
        if not created and (
            stored.function != record.function or _stored_input(stored) != json.loads(text)
        ):
            raise ExecutionConflictError(
                f"execution id {eid!r} already exists for {stored.function!r} with a different "
                "input; an id names one execution. Use a new id to start another."
            )
        return stored

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
        )
        held = self._keeper.hold(journal)
        try:
            try:
                end = run_invocation(fn, journal)
            finally:
                self._keeper.release(held)
            if end.status is ExecutionStatus.RUNNING and end.error is not None:  # parked
                end = end.model_copy(
                    update={"wake_at": self.clock.now() + self.options.park_retry_delay}
                )
            return self._finish(journal.lease, end, report)
        except LeaseLostError:
            return store.get_execution(ex.id)
        except StoreError:  # a failed write (disk full): nothing half-written, lease given back
            self._give_back(journal.lease)
            raise

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

    # --- external events ------------------------------------------------------------------

    def send_callback_success(self, token: str, result: Any = None) -> Operation:
        """Complete a callback with a JSON-serializable ``result``.

        Raises:
            CallbackNotFoundError: no callback has this token.
            PrivilegedCallbackError: the callback is privileged (nothing changed).
            CallbackAlreadyCompletedError: it completed before (nothing changed).
        """
        text = self.serde.dump(result, Any, what="callback result")
        return self._complete(token, CallbackOutcome(status=OperationStatus.SUCCEEDED, result=text))

    def send_privileged_callback_success(self, token: str, result: Any = None) -> Operation:
        """Complete a callback, privileged or not, with a JSON-serializable ``result``.

        The one way to complete a callback created with ``privileged=True``. It is for the
        code that owns the callback and has validated and attributed ``result`` itself (a
        saga's operator decisions go through ``saga.operator``); holding the token must not
        be enough, so never wire this to a webhook or a generic command. A callback recorded
        without the flag (e.g. before it existed) is completed the same way.

        Raises:
            CallbackNotFoundError: no callback has this token.
            CallbackAlreadyCompletedError: it completed before (nothing changed).
        """
        text = self.serde.dump(result, Any, what="callback result")
        outcome = CallbackOutcome(status=OperationStatus.SUCCEEDED, result=text)
        return self._complete(token, outcome, privileged=True)

    def send_callback_success_json(self, token: str, payload: str) -> Operation:
        """Complete a callback with raw JSON text (validated as JSON first)."""
        if not isinstance(payload, str):
            raise ValidationError(
                f"callback payload must be JSON text (a str), got {type(payload).__name__}"
            )
        try:
            size = len(payload.encode())
        except UnicodeEncodeError as e:
            raise ValidationError(f"callback payload is not valid Unicode text: {e}") from e
        if size > self.options.max_payload_bytes:
            raise PayloadTooLargeError(
                f"callback result: payload is {size} bytes, over the limit of "
                f"{self.options.max_payload_bytes}. Send a reference to large data instead.",
                operation="callback result",
            )
        try:
            loads_strict(payload)
        except (ValueError, RecursionError) as e:
            raise ValidationError(f"callback payload is not valid JSON: {e}") from e
        return self._complete(
            token, CallbackOutcome(status=OperationStatus.SUCCEEDED, result=payload)
        )

    def send_callback_failure(
        self,
        token: str,
        message: str,
        *,
        error_type: str = "CallbackFailure",
        data: str | None = None,
    ) -> Operation:
        """Fail a callback; ``callback.result()`` raises CallbackFailedError."""
        try:
            error = ErrorInfo(type=error_type, message=message, data=data)
            size = len(error.model_dump_json())
        except (PydanticValidationError, PydanticSerializationError) as e:
            raise ValidationError(
                "callback error: message and error_type must be text, data text or None "
                f"(valid Unicode): {e}"
            ) from e
        if size > MAX_CALLBACK_ERROR_BYTES:
            raise ValidationError(f"callback error is over {MAX_CALLBACK_ERROR_BYTES} bytes")
        return self._complete(token, CallbackOutcome(status=OperationStatus.FAILED, error=error))

    def send_callback_heartbeat(self, token: str) -> Operation:
        """Tell a callback with a heartbeat timeout that the external work is alive."""
        _check_token(token)
        return self.store.heartbeat_callback(token, self.clock.now())

    def _complete(
        self, token: str, outcome: CallbackOutcome, *, privileged: bool = False
    ) -> Operation:
        _check_token(token)
        return self.store.complete_callback(token, outcome, self.clock.now(), privileged=privileged)

    def cancel(
        self, execution_id: str, reason: str | None = None, *, actor: str | None = None
    ) -> Execution:
        """Ask a running execution to stop at its next operation boundary; a saga compensates.

        The first cancel request takes effect; a later one is recorded beside it (see
        ``Execution.stop_requests``) and changes nothing. A blank ``reason`` is recorded as
        :data:`NO_REASON`. The reason is free text: it never changes what happens.

        Raises:
            ExecutionNotFoundError: no such execution.
            ExecutionNotRunningError: it already finished (nothing recorded).
            ValidationError: ``reason`` or ``actor`` is not text of a valid size.
        """
        text = (
            NO_REASON
            if reason is None or (isinstance(reason, str) and not reason.strip())
            else reason
        )
        return self._stop(execution_id, StopKind.CANCEL, text, actor)

    def terminate(self, execution_id: str, reason: str, *, actor: str | None = None) -> Execution:
        """End a running execution at its next operation boundary WITHOUT cleaning up.

        A saga stops compensating (or does not start): what is not undone stays listed by
        its status. Delivered also after a cancel, e.g. to stop a rollback in progress.

        Raises:
            ExecutionNotFoundError: no such execution.
            ExecutionNotRunningError: it already finished (nothing recorded).
            ValidationError: ``reason`` is blank (a terminate must say why), or ``reason``
                or ``actor`` is not text of a valid size.
        """
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError(
                f"terminate needs a non-empty reason (it is recorded so the next person knows "
                f"why nothing was cleaned up); got {reason!r:.80}. Nothing was recorded."
            )
        return self._stop(execution_id, StopKind.TERMINATE, reason, actor)

    def _stop(self, execution_id: str, kind: StopKind, reason: object, actor: object) -> Execution:
        eid = _check_execution_id(execution_id)
        for what, text, limit in (("reason", reason, MAX_REASON_LENGTH), ("actor", actor, 200)):
            if text is None and what == "actor":
                continue
            if not isinstance(text, str) or len(text) > limit or not encodable(text):
                raise ValidationError(
                    f"a {kind.value} {what} must be valid text of at most {limit} characters; "
                    f"got {type(text).__name__} {str(text)[:40]!r}... Nothing was recorded."
                )
        now = self.clock.now()
        request = StopRequest(
            kind=kind,
            reason=str(reason).strip(),
            actor=None if actor is None else str(actor),
            requested_at=now,
        )
        return self.store.request_stop(eid, request, now)


def _check_execution_id(eid: object) -> str:
    """``eid`` if it can name an execution, else ValidationError (nothing is written)."""
    if not isinstance(eid, str) or not eid.strip() or len(eid) > 200:
        text = repr(eid)
        shown = text if len(text) <= 80 else f"{text[:80]}... ({len(text)} characters)"
        raise ValidationError(
            f"execution id must be a str of 1-200 characters, not only spaces; got {shown}"
        )
    if not encodable(eid):
        raise ValidationError(f"execution id {eid!r} is not valid Unicode text (lone surrogate)")
    return eid


def _stored_input(ex: Execution) -> Any:
    try:
        return json.loads(ex.input)
    except (ValueError, RecursionError) as e:
        raise CorruptRecordError(
            f"the stored input of execution {ex.id!r} is not JSON ({e}); the record is damaged"
        ) from e


def _check_token(token: object) -> None:
    from durable_core.errors import CallbackNotFoundError

    if not isinstance(token, str) or not 20 <= len(token) <= 128 or not encodable(token):
        raise CallbackNotFoundError(
            "that is not a callback token (tokens are 43 URL-safe characters); check that it "
            "was copied whole"
        )


def utcnow_iso(dt: datetime | None) -> str:
    """ISO text for a datetime, or '-'."""
    return dt.isoformat(timespec="seconds") if dt else "-"
