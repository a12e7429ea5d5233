"""The async worker: many executions in flight on one event loop.

An :class:`AsyncWorker` claims due executions and runs each invocation as a task on its
loop (:meth:`~durable_core.runtime.Runtime.invoke_async`): an ``async def`` durable
function is awaited there, so a thousand executions each waiting on an HTTP call share one
thread; a sync function's invocation runs on a thread of the loop's default executor.
Several workers (threaded or async, in one process or many) may share a store; its
leases and fences make sure only one of them advances an execution at a time.

Invariants:
- At most ``concurrency`` invocations are in flight; new work is claimed only for free
  slots, so a stop request never strands executions claimed but not run.
- A stop (``stop`` set, SIGTERM/SIGINT under :meth:`AsyncWorker.run_forever`) claims
  nothing more and lets the running invocations finish — outcome recorded, lease
  released — for up to ``shutdown_grace`` seconds. Past it they are cancelled (an async
  step gets ``CancelledError``) and their leases are left to expire, as the threaded
  worker's are (see :mod:`durable_core.runtime.worker`); a process with a hung sync step still
  running then exits with status 1.
- Every invocation's outcome is one log line, the same as the threaded worker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import TYPE_CHECKING

import structlog

from durable_core.errors import ValidationError
from durable_core.runtime.worker import (
    ABANDONED_EXIT_STATUS,
    DEFAULT_SHUTDOWN_GRACE_S,
    MAX_ERROR_BACKOFF_S,
    check_worker_limits,
    due_elsewhere,
    log_outcome,
)

if TYPE_CHECKING:
    from durable_core.records import Execution
    from durable_core.runtime import Runtime
    from durable_core.runtime.invocation import InvocationReport

DEFAULT_ASYNC_CONCURRENCY = 100
"""Invocations in flight at once on one loop when not told otherwise."""


class AsyncWorker:
    """Runs due executions of a runtime as tasks on an event loop until told to stop.

    Example::

        worker = AsyncWorker(Runtime(SQLiteStore("durable.sqlite3")), concurrency=500)
        worker.run_forever()  # or: await worker.run(stop_event)
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        concurrency: int = DEFAULT_ASYNC_CONCURRENCY,
        poll_interval: float = 0.2,
        shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE_S,
    ) -> None:
        if not poll_interval > 0:
            raise ValidationError(f"poll_interval must be positive, got {poll_interval}")
        check_worker_limits(concurrency, shutdown_grace)
        self.runtime = runtime
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.shutdown_grace = shutdown_grace
        self.executions_run = 0
        """Invocations started since this worker was created."""
        self.abandoned = 0
        """Invocations the last stop cancelled after the shutdown grace."""
        self._log = structlog.get_logger("durable.worker").bind(
            worker_id=runtime.worker_id, mode="async"
        )

    def _report(self, ran: InvocationReport) -> None:
        log_outcome(self._log, ran)

    async def run(self, stop: asyncio.Event | None = None, *, until_idle: bool = False) -> int:
        """Run due executions until ``stop`` is set (or, with ``until_idle``, no work is left).

        Returns:
            How many invocations this call started.

        Raises:
            Exception: with ``until_idle``, whatever claiming or an invocation raised
                unexpectedly (after the others ended). Without it the error is logged and
                the worker backs off and carries on.
        """
        stop = stop or asyncio.Event()
        rt = self.runtime
        running: set[asyncio.Task[Execution]] = set()
        started = 0
        backoff = self.poll_interval
        self._log.info("worker started", concurrency=self.concurrency, until_idle=until_idle)
        try:
            while not stop.is_set():
                room = self.concurrency - len(running)
                try:
                    leases = (
                        await asyncio.to_thread(
                            rt.store.claim_due,
                            rt.worker_id,
                            rt.clock.now(),
                            rt.options.lease_ttl,
                            room,
                        )
                        if room
                        else []
                    )
                except Exception:
                    if until_idle:
                        raise
                    self._log.exception("claiming work failed; backing off", backoff_s=backoff)
                    await _wait(stop, backoff)
                    backoff = min(backoff * 2, MAX_ERROR_BACKOFF_S)
                    continue
                backoff = self.poll_interval
                for lease in leases:
                    running.add(asyncio.ensure_future(rt.invoke_async(lease, self._report)))
                started += len(leases)
                self.executions_run += len(leases)
                if running:
                    done, running = await asyncio.wait(
                        running,
                        timeout=None if len(running) >= self.concurrency else self.poll_interval,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    self._check(done, until_idle)
                    continue
                if until_idle and not await asyncio.to_thread(due_elsewhere, rt):
                    break
                await _wait(stop, self.poll_interval)
        finally:
            await self._drain(running)
            self._log.info("worker stopped", executions_run=started)
        return started

    def _check(self, done: set[asyncio.Task[Execution]], until_idle: bool) -> None:
        for task in done:
            error = task.exception()
            if error is None:
                continue
            if until_idle:
                raise error
            self._log.error("an invocation failed unexpectedly", error=str(error)[:500])

    async def _drain(self, running: set[asyncio.Task[Execution]]) -> None:
        """Let running invocations finish for ``shutdown_grace``; cancel what is left."""
        if not running:
            return
        _, left = await asyncio.wait(running, timeout=self.shutdown_grace)
        self.abandoned = len(left)
        if not left:
            return
        self._log.error(
            "shutdown grace passed with invocations still running; cancelling them. Their "
            "leases are left to expire; another worker recovers those executions after "
            "lease_ttl.",
            grace_s=self.shutdown_grace,
            invocations=len(left),
        )
        for task in left:
            task.cancel()
        await asyncio.wait(left, timeout=1.0)

    def run_forever(self, *, until_idle: bool = False) -> int:
        """Run on a new event loop until SIGTERM or SIGINT, then stop as :meth:`run` says.

        Returns:
            The process exit code: 0 (the process exits with status 1 instead if the
            grace ended with a sync step still running on a thread).
        """

        async def main() -> int:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()

            def on_signal(signum: int) -> None:
                self._log.info(
                    "stop requested; finishing the running invocations",
                    signal=signal.Signals(signum).name,
                    grace_s=self.shutdown_grace,
                )
                stop.set()

            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, on_signal, signum)
            return await self.run(stop, until_idle=until_idle)

        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(main())
        finally:
            if self.abandoned:  # a sync body may hang on an executor thread: do not join it
                for stream in (sys.stdout, sys.stderr):
                    stream.flush()
                os._exit(ABANDONED_EXIT_STATUS)
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
        return 0


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
