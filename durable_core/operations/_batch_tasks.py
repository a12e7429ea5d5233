"""The async driver's branches: a batch's undecided branches as asyncio tasks.

The same :class:`~durable_core.operations._batch_run.BatchRun` decides and records as on
threads (every decision under the journal's lock, on the loop's one thread); only the way
branch bodies run differs.

Invariants:
- At most ``max_concurrency`` branches are in flight (a waiting one keeps its slot); a
  branch starts only while the batch is undecided.
- Once the batch is decided (or cancelled), the branches still running are *cancelled*:
  each gets ``asyncio.CancelledError`` at its current ``await`` and ends before this
  returns, so nothing of a given-up branch runs after the batch. Their gates are closed
  first, so a branch that catches the cancellation still cannot write.
- A fatal error (or control-flow signal) stops new branches; the running ones finish, then
  the batch re-raises it, as on threads.
- If the awaiting code itself is cancelled (the invocation's task), every branch task is
  cancelled and awaited before the cancellation propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections import deque

from durable_core.operations._batch_run import BatchRun, outcome_of


async def run_branches_as_tasks(run: BatchRun) -> None:
    """Run ``run``'s undecided branches as tasks until it is decided or none can run."""
    pending = deque(i for i, s in enumerate(run.status) if s is None)
    limit = max(1, len(pending))  # tasks are cheap: only the batch's slots limit them
    running: set[asyncio.Task[None]] = set()
    try:
        while True:
            with run.root.lock:
                for i in run.next_branches(pending, len(running), limit):
                    running.add(asyncio.ensure_future(_run_branch(run, i)))
                stop = run.stopping()
            if not running:
                break
            if stop and run.fatal is None:
                await _cancel(running)
                break
            _, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        await _cancel(running)
        raise
    if run.outer_gate is not None:
        run.outer_gate.check()  # an enclosing batch gave this branch up meanwhile


async def _run_branch(run: BatchRun, i: int) -> None:
    """Run branch ``i`` and settle its outcome (never raises but CancelledError)."""
    try:
        value = run.specs[i].fn(run.enter(i))
        if inspect.isawaitable(value):
            value = await value
        outcome = run.succeeded(i, value)
    except asyncio.CancelledError:
        if not run.gates[i].is_closed():
            raise  # cancelled from outside (the invocation), not given up by the batch
        return  # given up: the batch decided without it
    except BaseException as exc:
        outcome = outcome_of(exc)
    run.settle_safely(i, outcome)


async def _cancel(tasks: set[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
