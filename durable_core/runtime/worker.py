"""The worker loop: resume due executions (timers, retries, callbacks, dead workers' leases).

A :class:`Worker` repeatedly asks its :class:`~durable_core.runtime.Runtime` to ``tick``:
claim one due execution, run one invocation of it, record the outcome. With
``concurrency=N`` it runs N such loops on threads of one process, sharing the runtime and
its store, so up to N executions advance at once and a store that groups commits (SQLite)
shares one durable commit between their checkpoints. Several workers (in one process or
many) may share a store; the store's leases and fences make sure only one of them
advances an execution at a time.

Invariants:
- The stop event is only looked at *between* invocations. An invocation that has started
  finishes: its outcome is recorded and its lease released before the loop exits, so a
  graceful stop never leaves an execution waiting for a lease to expire.
- ... within a bound: :meth:`Worker.run_forever` gives the running invocations
  ``shutdown_grace`` seconds after SIGTERM/SIGINT; past it (a hung step) a watchdog ends
  the process (exit status 1) without them. Their leases are *left to expire*, not
  released: the hung body may still be running in this process until it exits, and a
  released lease would let another worker start the same step next to it. Once the
  process is gone nothing of the invocation runs and the lease ends at most ``lease_ttl``
  later; the execution is then recovered (a counted recovery, see
  :mod:`durable_core.recovery`).
- Executions are claimed one at a time per loop (``tick(limit=1)``), so a stop request
  never strands executions that were claimed but not run.
- Idle waiting is an ``Event.wait``: a stop request wakes the loop at once.
- Every invocation's outcome is one log line (``execution completed``, ``... failed``,
  ``... compensated``, ``... parked``, ``... waiting``) with the execution id, the function
  and what to do; never a token, an input or a result.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from datetime import datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

import structlog

from durable_core.errors import ValidationError
from durable_core.parking import is_parked, park_hint, park_kind
from durable_core.records import ExecutionStatus

if TYPE_CHECKING:
    from durable_core.runtime import Runtime
    from durable_core.runtime.invocation import InvocationReport

DEFAULT_SHUTDOWN_GRACE_S = 30.0
"""How long a stop request waits for running invocations (as Kubernetes' default grace)."""
ABANDONED_EXIT_STATUS = 1
"""The exit status of a worker process that the shutdown grace ended (see ``run_forever``)."""
MAX_ERROR_BACKOFF_S = 10.0
"""Longest pause after a tick failed unexpectedly (a store outage, a locked database)."""
_IDLE_SCAN_LIMIT = 10_000
_MAX_LOGGED_CHARS = 500
"""Longest error message in an outcome line (the rest is in ``durable show``)."""


class Worker:
    """Runs due executions of a runtime until told to stop.

    Example::

        worker = Worker(Runtime(SQLiteStore("durable.sqlite3")))
        worker.run_forever()  # until SIGTERM / Ctrl-C
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        poll_interval: float = 0.2,
        batch: int = 16,
        concurrency: int = 1,
        shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE_S,
    ) -> None:
        """Create a worker.

        Args:
            runtime: the runtime whose store and functions are used.
            poll_interval: seconds to wait when nothing is due before looking again.
            batch: invocations run back to back before the loop yields to an idle check.
            concurrency: how many executions to run at once, each loop on its own thread.
                More than 1 pays off when invocations wait (on I/O in steps, or on the
                store's fsync: concurrent checkpoints share one commit on SQLite); the
                Python work itself still runs one thread at a time.
            shutdown_grace: seconds :meth:`run_forever` waits for running invocations after
                a stop signal before it returns without them (a hung step).
        """
        if poll_interval <= 0:
            raise ValidationError(f"poll_interval must be positive, got {poll_interval}")
        if batch < 1:
            raise ValidationError(f"batch must be at least 1, got {batch}")
        check_worker_limits(concurrency, shutdown_grace)
        self.runtime = runtime
        self.poll_interval = poll_interval
        self.batch = batch
        self.concurrency = concurrency
        self.shutdown_grace = shutdown_grace
        self.executions_run = 0
        """Invocations run since this worker was created."""
        self._count = threading.Lock()
        self._log = structlog.get_logger("durable.worker").bind(worker_id=runtime.worker_id)

    def run(self, stop_event: threading.Event | None = None, *, until_idle: bool = False) -> int:
        """Run due executions until ``stop_event`` is set (or, with ``until_idle``, no work).

        Args:
            stop_event: set it (from a signal handler or another thread) to stop after the
                current invocation. A fresh event is used if omitted.
            until_idle: return once nothing is due and no due execution is held by another
                worker (a running invocation elsewhere, or a dead worker's lease not yet
                expired). Useful for tests and ``durable worker --until-idle``.

        Returns:
            How many invocations this call ran.

        Raises:
            Exception: with ``until_idle``, whatever a tick raised unexpectedly. Without it
                the error is logged and the loop backs off and carries on.
        """
        stop = stop_event or threading.Event()
        self._log.info(
            "worker started",
            poll_interval=self.poll_interval,
            until_idle=until_idle,
            concurrency=self.concurrency,
        )
        before = self.executions_run
        try:
            if self.concurrency == 1:
                return self._loop(stop, until_idle)
            return self._loops(stop, until_idle)
        finally:
            self._log.info("worker stopped", executions_run=self.executions_run - before)

    def _loops(self, stop: threading.Event, until_idle: bool) -> int:
        """Run ``concurrency`` loops on threads; the first error (``until_idle``) stops all."""
        halt = _Either(stop)
        ran: list[int] = []
        errors: list[BaseException] = []

        def loop() -> None:
            try:
                ran.append(self._loop(halt, until_idle))
            except BaseException as e:
                errors.append(e)
                halt.set()

        threads = [
            threading.Thread(target=loop, name=f"durable-worker-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():  # short joins: the main thread stays responsive to signals
                t.join(0.2)
        if errors:
            raise errors[0]
        return sum(ran)

    def _loop(self, stop: threading.Event, until_idle: bool) -> int:
        """One loop: run due executions until ``stop`` (or idle, with ``until_idle``)."""
        ran = 0
        backoff = self.poll_interval
        while not stop.is_set():
            try:
                n = self._round(stop)
            except Exception:
                if until_idle:
                    raise
                self._log.exception("worker tick failed; backing off", backoff_s=backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, MAX_ERROR_BACKOFF_S)
                continue
            backoff = self.poll_interval
            ran += n
            if n:
                continue
            if until_idle and not self._due_elsewhere():
                break
            stop.wait(self.poll_interval)
        return ran

    def _round(self, stop: threading.Event) -> int:
        """Run up to ``batch`` due executions, one claim at a time; stop early if asked."""
        n = 0
        while n < self.batch and not stop.is_set():
            if self.runtime.tick(limit=1, report=self._report) == 0:
                break
            n += 1
            with self._count:
                self.executions_run += 1
        return n

    def _report(self, ran: InvocationReport) -> None:
        log_outcome(self._log, ran)

    def _due_elsewhere(self) -> bool:
        return due_elsewhere(self.runtime)

    def run_forever(self, *, until_idle: bool = False) -> int:
        """Run until SIGTERM or SIGINT, then finish the current invocation and return 0.

        The signal also starts a watchdog: if the running invocations have not finished
        ``shutdown_grace`` seconds later (a hung step), it logs that and ends the process
        with exit status 1 (``os._exit``: a hung thread cannot be stopped otherwise), leaving
        their leases to expire (see the module docstring). A second SIGINT (Ctrl-C twice)
        aborts at once with ``KeyboardInterrupt``. Must be called from the main thread
        (Python delivers signals there only).

        Args:
            until_idle: also return when there is no work (see :meth:`run`).

        Returns:
            The process exit code: 0.
        """
        stop = threading.Event()
        watchdogs: list[threading.Timer] = []

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            if stop.is_set() and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self._log.info(
                "stop requested; finishing the current invocation",
                signal=signal.Signals(signum).name,
                grace_s=self.shutdown_grace,
            )
            if not watchdogs:
                watchdog = threading.Timer(self.shutdown_grace, self._abandon)
                watchdog.daemon = True
                watchdog.start()
                watchdogs.append(watchdog)
            stop.set()

        previous: dict[signal.Signals, Any] = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, on_signal)
        try:
            self.run(stop, until_idle=until_idle)
        finally:
            for watchdog in watchdogs:
                watchdog.cancel()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 0

    def _abandon(self) -> None:
        """The shutdown grace ran out with an invocation still running: end the process."""
        self._log.error(
            "shutdown grace passed with invocations still running (a hung step?); exiting "
            "without them. Their leases are left to expire; another worker recovers those "
            "executions after lease_ttl.",
            grace_s=self.shutdown_grace,
            lease_ttl_s=self.runtime.options.lease_ttl.total_seconds(),
            exit_status=ABANDONED_EXIT_STATUS,
        )
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(ABANDONED_EXIT_STATUS)


def check_worker_limits(concurrency: object, shutdown_grace: float) -> None:
    """Refuse a concurrency that is not a whole number >= 1, or a grace outside a day."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValidationError(f"concurrency must be a whole number >= 1, got {concurrency!r}")
    if not 0 <= shutdown_grace <= 24 * 3600:  # also refuses NaN
        raise ValidationError(f"shutdown_grace must be 0 to 86400 seconds, got {shutdown_grace!r}")


def log_outcome(log: Any, ran: InvocationReport) -> None:
    """Log how one invocation left its execution: one line, saying what to do."""
    ex = ran.execution
    log = log.bind(execution_id=ex.id, function=ex.function)
    error = ex.error
    message = None
    if error is not None:
        first = error.message.strip().splitlines()[0] if error.message.strip() else ""
        message = first[:_MAX_LOGGED_CHARS]
    if ex.status is ExecutionStatus.SUCCEEDED:
        log.info("execution completed", outcome=ran.outcome or "completed")
    elif is_parked(ex):
        assert error is not None
        kind = park_kind(error.type)
        log.error(
            f"execution parked: {kind}",
            outcome=kind,
            error_type=error.type,
            error=message,
            retry_at=ex.wake_at.isoformat() if ex.wake_at else None,
            hint=park_hint(error.type, ex.id),
        )
    elif ex.status is ExecutionStatus.RUNNING and ran.outcome:  # e.g. for an operator
        log.warning(
            f"execution {ran.outcome}",
            outcome=ran.outcome,
            waiting_for=ex.waiting_for,
            hint=f"see what it waits for: durable show {ex.id}",
        )
    elif ex.status is ExecutionStatus.RUNNING:
        log.info(
            "execution waiting",
            outcome="waiting",
            waiting_for=ex.waiting_for,
            wake_at=ex.wake_at.isoformat() if ex.wake_at else None,
        )
    else:
        outcome = ran.outcome or ex.status.value.lower()
        level = log.error if outcome == "failed" else log.warning
        level(
            f"execution {outcome}",
            outcome=outcome,
            error_type=error.type if error else None,
            error=message,
            hint=ran.hint or f"the history: durable show {ex.id}",
        )


def due_elsewhere(runtime: Runtime) -> bool:
    """True if a RUNNING execution is due but leased (so work remains for someone)."""
    now: datetime = runtime.clock.now()
    running = runtime.store.list_executions(status=ExecutionStatus.RUNNING, limit=_IDLE_SCAN_LIMIT)
    return any(ex.wake_at is not None and ex.wake_at <= now for ex in running)


class _Either(threading.Event):
    """A stop event for a worker's loops: set when one loop failed (``until_idle``), or when
    the caller's stop event is."""

    def __init__(self, outer: threading.Event) -> None:
        super().__init__()
        self._outer = outer

    def is_set(self) -> bool:
        return super().is_set() or self._outer.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        step = 0.05 if timeout is None else min(timeout, 0.05)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self._outer.wait(step if left is None else min(step, left))
        return True
