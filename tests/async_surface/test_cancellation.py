"""Cancellation on the async surface: step timeouts, batches decided early, cancel requests.

An async step attempt past ``StepConfig(timeout=...)`` is *cancelled* (its body gets
``asyncio.CancelledError``), where a sync one can only be abandoned; branches still running
when their batch is decided are cancelled the same way; a cancel request ends an
execution whose branches wait or run. Bodies use real short asyncio sleeps only to stay
in flight; no test waits for time to pass (the virtual clock moves it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
import tenacity

from durable_core import (
    AsyncDurableContext,
    DurableContext,
    ExecutionStatus,
    MemoryStore,
    OperationStatus,
    RetryPolicy,
    Runtime,
    StepConfig,
    StepContext,
    StepTimeoutError,
    durable,
)
from durable_core.operations.batch import CompletionPolicy
from durable_core.testing import VirtualClock

from .driving import journal
from .interpret import EFFECTS

TINY = timedelta(seconds=0.05)
HANG_S = 30.0
"""How long a hung body would sleep if nothing cancelled it (a test taking this long fails)."""
FAST_S = 5.0
"""Every test here ends well within this if cancellation works."""


def retries(n: int, **kwargs: Any) -> RetryPolicy:
    return RetryPolicy(stop=tenacity.stop_after_attempt(n), wait=tenacity.wait_none(), **kwargs)


def hangs_on(attempts: set[int], cancelled: list[int]) -> Callable[[StepContext], Awaitable[str]]:
    """An async body that hangs on ``attempts`` (recording its cancellation), else returns."""

    async def body(sc: StepContext) -> str:
        EFFECTS.hit("body")
        if sc.attempt in attempts:
            try:
                await asyncio.sleep(HANG_S)
            except asyncio.CancelledError:
                cancelled.append(sc.attempt)
                raise
        return f"on time {sc.attempt}"

    return body


def timed(config: StepConfig, body: Callable[[StepContext], Awaitable[str]]) -> Any:
    @durable(name="async_surface:timed")
    async def flow(ctx: AsyncDurableContext, event: None) -> str:
        return await ctx.step("call-api", body, config)

    return flow


def test_an_async_attempt_past_its_timeout_is_cancelled_and_retried(durable_runner: Any) -> None:
    EFFECTS.clear()
    cancelled: list[int] = []
    flow = timed(StepConfig(retry=retries(3), timeout=TINY), hangs_on({1}, cancelled))
    start = time.monotonic()

    result = durable_runner(flow, always_replay=False).run(None)

    assert time.monotonic() - start < FAST_S
    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == "on time 2"
    assert cancelled == [1]  # the body saw CancelledError, and ended before the retry
    assert EFFECTS.snapshot()["body"] == 2
    step = result.get_step("call-api")
    assert (step.status, step.attempt) == (OperationStatus.SUCCEEDED, 2)


def test_timeouts_that_exhaust_the_policy_fail_the_step_with_step_timeout_errors(
    durable_runner: Any,
) -> None:
    EFFECTS.clear()
    cancelled: list[int] = []
    flow = timed(StepConfig(retry=retries(3), timeout=TINY), hangs_on({1, 2, 3}, cancelled))

    result = durable_runner(flow).run(None)

    assert result.status is ExecutionStatus.FAILED
    assert cancelled == [1, 2, 3]
    assert EFFECTS.snapshot()["body"] == 3
    step = result.get_step("call-api")
    assert (step.status, step.attempt) == (OperationStatus.FAILED, 3)
    assert step.error is not None
    assert step.error.type == "durable_core.errors.StepTimeoutError"
    assert "attempt 3 of step 'call-api'" in step.error.message


def test_a_timed_out_attempt_is_recorded_before_the_retry_and_a_policy_can_refuse_it(
    durable_runner: Any,
) -> None:
    EFFECTS.clear()
    cancelled: list[int] = []
    policy = retries(3, retry=tenacity.retry_if_not_exception_type(StepTimeoutError))
    flow = timed(StepConfig(retry=policy, timeout=TINY), hangs_on({1}, cancelled))

    result = durable_runner(flow).run(None)

    assert result.status is ExecutionStatus.FAILED
    assert cancelled == [1]
    assert EFFECTS.snapshot()["body"] == 1
    step = result.get_step("call-api")
    assert step.attempt == 1
    assert step.error is not None and step.error.type.endswith("StepTimeoutError")


@pytest.mark.parametrize("reaction", ["returns a value", "raises another error"])
def test_a_body_that_handles_the_cancellation_still_timed_out(
    reaction: str, durable_runner: Any
) -> None:
    """Past the timeout the attempt failed, whatever the body does with CancelledError: its
    late value or error is discarded, as a sync body's is (the step's invariant)."""
    EFFECTS.clear()

    async def stubborn(sc: StepContext) -> str:
        EFFECTS.hit("body")
        if sc.attempt == 1:
            try:
                await asyncio.sleep(HANG_S)
            except asyncio.CancelledError:
                if reaction == "returns a value":
                    return "late value"
                raise ValueError("late error") from None
        return f"on time {sc.attempt}"

    runner = durable_runner(timed(StepConfig(retry=retries(1), timeout=TINY), stubborn))
    result = runner.run(None)

    assert result.status is ExecutionStatus.FAILED
    assert EFFECTS.snapshot()["body"] == 1
    step = result.get_step("call-api")
    assert step.status is OperationStatus.FAILED
    assert step.error is not None
    assert step.error.type == "durable_core.errors.StepTimeoutError"
    assert "late" not in step.error.message


def test_a_body_raising_its_own_timeout_error_is_not_a_step_timeout(durable_runner: Any) -> None:
    async def own_timeout(sc: StepContext) -> str:
        raise TimeoutError("upstream said so")

    result = durable_runner(
        timed(StepConfig(retry=RetryPolicy.no_retry(), timeout=timedelta(seconds=30)), own_timeout)
    ).run(None)

    step = result.get_step("call-api")
    assert step.error is not None
    assert (step.error.type, step.error.message) == ("TimeoutError", "upstream said so")


# --- batches decided early ---------------------------------------------------------------------


def racing_branches(
    outcome: str, log: list[str]
) -> list[Callable[[AsyncDurableContext], Awaitable[int]]]:
    """Branch 0 ends fast (``outcome``); branches 1 and 2 hang in a step, and on being
    cancelled try another operation (which must not run or record)."""

    def branch(i: int) -> Callable[[AsyncDurableContext], Awaitable[int]]:
        async def run(c: AsyncDurableContext) -> int:
            async def work(sc: StepContext) -> int:
                log.append(f"start-{i}")
                if i == 0:
                    await asyncio.sleep(0.01)
                    if outcome == "fail":
                        raise ValueError("branch 0 failed")
                    return 0
                try:
                    await asyncio.sleep(HANG_S)
                except asyncio.CancelledError:
                    log.append(f"cancelled-{i}")
                    raise
                return i

            try:
                return await c.step(f"work-{i}", work, StepConfig(retry=RetryPolicy.no_retry()))
            except asyncio.CancelledError:
                await c.step(f"late-{i}", lambda sc: log.append(f"late-{i}") or 0)
                raise

        return run

    return [branch(i) for i in range(3)]


@pytest.mark.parametrize(
    ("policy", "outcome", "reason"),
    [
        (CompletionPolicy.first_successful(), "succeed", "MIN_SUCCESSFUL_REACHED"),
        (CompletionPolicy.all_successful(), "fail", "FAILURE_TOLERANCE_EXCEEDED"),
    ],
)
def test_a_batch_decided_early_cancels_its_running_async_branches(
    policy: CompletionPolicy, outcome: str, reason: str, durable_runner: Any
) -> None:
    log: list[str] = []

    @durable(name="async_surface:race")
    async def race(ctx: AsyncDurableContext, event: None) -> list[str]:
        result = await ctx.parallel(racing_branches(outcome, log), completion=policy)
        return [result.completion_reason.value, *(item.status.value for item in result.items)]

    start = time.monotonic()
    result = durable_runner(race, always_replay=False).run(None)

    assert time.monotonic() - start < FAST_S
    first = "SUCCEEDED" if outcome == "succeed" else "FAILED"
    assert result.result == [reason, first, "STARTED", "STARTED"]
    assert sorted(log) == ["cancelled-1", "cancelled-2", "start-0", "start-1", "start-2"]
    by_name = {op.name: op for op in result.operations}
    assert not {"work-1", "work-2", "late-1", "late-2"} & set(by_name)  # nothing recorded
    assert "parallel-branch-1" not in by_name  # left STARTED: no record of their ends
    assert "parallel-branch-2" not in by_name


# --- cancel requests -----------------------------------------------------------------------------


def fan_out_sync(ctx: DurableContext, event: None) -> list[int]:
    def done(c: DurableContext) -> int:
        return c.step("quick", lambda sc: EFFECTS.hit("quick") or 1)

    def sleeper(c: DurableContext) -> int:
        c.wait("nap", timedelta(days=1))
        return c.step("after-nap", lambda sc: EFFECTS.hit("after-nap") or 2)

    def waiter(c: DurableContext) -> int:
        c.step("ask", lambda sc: EFFECTS.hit("ask") or 0)
        return int(c.create_callback("answer").result())

    # One branch at a time, so the stop lands at the same frontier on both surfaces (sync
    # branches race to it on threads); a waiting branch keeps its slot (as in AWS's SDK), so
    # the third branch never starts.
    return ctx.parallel([done, sleeper, waiter], max_concurrency=1).values()


async def fan_out_async(ctx: AsyncDurableContext, event: None) -> list[int]:
    async def done(c: AsyncDurableContext) -> int:
        return await c.step("quick", lambda sc: EFFECTS.hit("quick") or 1)

    async def sleeper(c: AsyncDurableContext) -> int:
        await c.wait("nap", timedelta(days=1))
        return await c.step("after-nap", lambda sc: EFFECTS.hit("after-nap") or 2)

    async def waiter(c: AsyncDurableContext) -> int:
        await c.step("ask", lambda sc: EFFECTS.hit("ask") or 0)
        return int(await (await c.create_callback("answer")).result())

    return (await ctx.parallel([done, sleeper, waiter], max_concurrency=1)).values()


def test_cancelling_an_execution_suspended_in_async_branches_loses_nothing() -> None:
    journals = []
    for body in (fan_out_sync, fan_out_async):
        EFFECTS.clear()
        store, clock = MemoryStore(), VirtualClock()
        rt = Runtime(store, clock=clock)
        fn = durable(name="async_surface:fan_out")(body)  # type: ignore[call-overload]
        ex = rt.run(fn, None, execution_id="fan")
        assert ex.status is ExecutionStatus.RUNNING  # branch 1 waits, holding the only slot
        rt.cancel("fan", "no longer needed", actor="test")
        ex = rt.drive("fan")

        assert ex.status is ExecutionStatus.CANCELLED
        assert ex.error is not None and "no longer needed" in ex.error.message
        assert EFFECTS.snapshot() == {"quick": 1}  # nothing ran twice, nothing after
        ops = {op.name: op for op in store.load_operations("fan")}
        assert ops["quick"].status is OperationStatus.SUCCEEDED
        assert ops["parallel-branch-0"].status is OperationStatus.SUCCEEDED
        assert ops["nap"].status is OperationStatus.CANCELLED  # the frontier the stop took
        assert ops["parallel-branch-1"].status is OperationStatus.FAILED
        assert "ask" not in ops and "parallel-branch-2" not in ops  # never started
        assert ops["parallel"].status is OperationStatus.FAILED
        assert "after-nap" not in ops
        journals.append(journal(store, "fan"))
    assert journals[0] == journals[1]  # the async surface records the cancel as the sync one


def test_a_cancel_arriving_while_async_branches_run_cancels_the_running_ones() -> None:
    store, clock = MemoryStore(), VirtualClock()
    rt = Runtime(store, clock=clock)
    log: list[str] = []

    @durable(name="async_surface:cancel_in_flight")
    async def flow(ctx: AsyncDurableContext, event: None) -> int:
        slow_started = asyncio.Event()

        async def canceller(c: AsyncDurableContext) -> int:
            async def cancel(sc: StepContext) -> int:
                await slow_started.wait()  # branch 1's body is in flight now
                rt.cancel(sc.execution_id, "stop now", actor="test")
                clock.advance(timedelta(seconds=2))  # past the cancel poll interval
                return 1

            await c.step("cancel", cancel)
            return await c.step("next", lambda sc: log.append("next") or 1)  # stop delivered

        async def slow(c: AsyncDurableContext) -> int:
            async def work(sc: StepContext) -> int:
                slow_started.set()
                try:
                    await asyncio.sleep(HANG_S)
                except asyncio.CancelledError:
                    log.append("slow cancelled")
                    raise
                return 2

            return await c.step("slow", work)

        result = await ctx.parallel([canceller, slow], completion=CompletionPolicy.all_completed())
        return sum(result.values())

    start = time.monotonic()
    ex = rt.run(flow, None, execution_id="in-flight")

    assert time.monotonic() - start < FAST_S
    assert ex.status is ExecutionStatus.CANCELLED
    assert log == ["slow cancelled"]
    ops = {op.name: op for op in store.load_operations("in-flight")}
    assert ops["cancel"].status is OperationStatus.SUCCEEDED
    assert ops["next"].status is OperationStatus.CANCELLED  # where the stop was delivered
    assert "slow" not in ops  # the cancelled attempt left no record
    assert ops["parallel-branch-1"].status is OperationStatus.CANCELLED
    assert ops["parallel"].status is OperationStatus.FAILED
