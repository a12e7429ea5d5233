"""One step attempt with a timeout: the body runs on a thread the invocation can abandon.

Python cannot stop a running thread, so a step attempt past its ``StepConfig.timeout`` is
*abandoned*, not killed: the invocation stops waiting for it, the attempt counts as failed
with :class:`~durable_core.errors.StepTimeoutError`, and the execution goes on (next
attempt, or the failure path: a saga compensates).

Invariants:
- Only the invocation's own thread writes the journal. The body's thread hands its outcome
  to an :class:`_Attempt` box of its own (one per attempt number); once the attempt is
  abandoned nothing reads that box again, so a late result or error of an abandoned attempt
  is discarded and never recorded — the attempt number it belonged to has moved on (a
  recorded failure, or a later attempt), and the journal is fenced by the execution's lease
  for any other worker.
- The wait is real (monotonic) time, not the runtime clock: the body runs in real time, and
  a virtual clock's ``sleep`` returns at once, so waiting on it would time out every body.
- The body's thread is a daemon that copies the caller's context variables: an abandoned
  body never keeps a worker process from exiting.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Generic, TypeVar

import structlog

from durable_core.errors import StepTimeoutError

T = TypeVar("T")

_log = structlog.get_logger("durable.step")


class _Attempt(Generic[T]):
    """The outcome box of one attempt, written once by the body's thread."""

    def __init__(self, step: str, attempt: int) -> None:
        self.step = step
        self.attempt = attempt
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.abandoned = False
        self.value: T | None = None
        self.error: BaseException | None = None

    def finish(self, value: T | None, error: BaseException | None) -> None:
        with self.lock:
            self.value, self.error = value, error
            self.done.set()
            late = self.abandoned
        if late:
            _log.warning(
                "a timed-out step attempt finished late; its outcome is discarded",
                step=self.step,
                attempt=self.attempt,
                outcome="error" if error is not None else "value",
            )

    def abandon(self) -> bool:
        """Stop waiting for the attempt; False if it finished in the meantime (use it)."""
        with self.lock:
            if self.done.is_set():
                return False
            self.abandoned = True
            return True


def run_attempt(
    fn: Callable[..., T], *args: Any, timeout: timedelta | None, step: str, attempt: int
) -> T:
    """``fn(*args)``; with a ``timeout``, on a daemon thread, abandoned past it.

    Without a timeout the body runs inline (no thread). With one, whatever ``fn`` raises is
    re-raised here, in the caller's thread, and StepTimeoutError is raised if it has not
    ended in ``timeout``.
    """
    if timeout is None:
        return fn(*args)
    box: _Attempt[T] = _Attempt(step, attempt)
    context = contextvars.copy_context()

    def run() -> None:
        try:
            value = context.run(fn, *args)
        except BaseException as e:  # handed to the caller's thread, which decides
            box.finish(None, e)
        else:
            box.finish(value, None)

    threading.Thread(target=run, name=f"durable-step {step}#{attempt}", daemon=True).start()
    seconds = timeout.total_seconds()
    if not box.done.wait(seconds) and box.abandon():
        raise _timed_out(step, attempt, timeout)
    if box.error is not None:
        raise box.error
    return box.value  # type: ignore[return-value]  # set with done, None only if fn returned it


async def run_attempt_async(
    fn: Callable[..., Any],
    *args: Any,
    timeout: timedelta | None,
    step: str,
    attempt: int,
    offload: bool,
) -> Any:
    """``await fn(*args)`` for an async ``fn``; a sync one on a thread if ``offload``.

    Past ``timeout`` the attempt is cancelled — an async body gets ``CancelledError`` at its
    ``await`` — and StepTimeoutError is raised, whatever the body does with the
    cancellation: a value it returns or an error it raises then is discarded, as a late
    outcome of a sync body is. A sync body on a thread cannot be cancelled:
    it is abandoned, as in :func:`run_attempt`, and its late outcome discarded. A value that
    is itself awaitable (a sync callable that returned a coroutine) is awaited.
    """

    async def call() -> Any:
        if offload and not inspect.iscoroutinefunction(fn):
            value = await asyncio.to_thread(fn, *args)
        else:
            value = fn(*args)
        if inspect.isawaitable(value):
            value = await value
        return value

    if timeout is None:
        return await call()
    limit = asyncio.timeout(timeout.total_seconds())
    try:
        async with limit:
            value = await call()
    except Exception as exc:
        if limit.expired():  # cancelled past the timeout, whatever the body then raised
            raise _timed_out(step, attempt, timeout) from (
                None if isinstance(exc, TimeoutError) else exc
            )
        raise  # the body's own error (its own TimeoutError included)
    if limit.expired():  # the body swallowed the cancellation and returned: too late
        raise _timed_out(step, attempt, timeout)
    return value


def _timed_out(step: str, attempt: int, timeout: timedelta) -> StepTimeoutError:
    return StepTimeoutError(
        f"attempt {attempt} of step {step!r} did not finish within its timeout of "
        f"{timeout} and was abandoned; its effect, if any, is unknown",
        step=step,
        attempt=attempt,
        timeout_s=timeout.total_seconds(),
    )
