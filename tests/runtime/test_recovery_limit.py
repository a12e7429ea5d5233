"""The recovery cap: an execution whose worker keeps dying is recovered at most N times.

A worker death is a :class:`SimulatedCrash` escaping the runtime with the lease still held
(as ``os._exit`` leaves it); the test moves the virtual clock past the lease, as time would
pass before another worker takes it over. tests/saga/test_saga_processes.py does the same
with real worker processes that ``os._exit``.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import tenacity

from durable_core import (
    DurableContext,
    Execution,
    ExecutionStatus,
    MemoryStore,
    OperationStatus,
    RetryPolicy,
    Runtime,
    RuntimeOptions,
    StepContext,
    ValidationError,
    durable,
)
from durable_core.errors import SimulatedCrash
from durable_core.testing import VirtualClock

CAP = 3


def make_runtime(clock: VirtualClock, store: MemoryStore, cap: int = CAP) -> Runtime:
    return Runtime(store, clock=clock, options=RuntimeOptions(max_recovery_attempts=cap))


def drive_through_deaths(rt: Runtime, clock: VirtualClock, eid: str, limit: int = 50) -> int:
    """Drive ``eid`` to its end, recovering each worker death; return how many died."""
    deaths = 0
    for _ in range(limit):
        try:
            ex = rt.drive(eid)
        except SimulatedCrash:
            deaths += 1
            ex = rt.get(eid)
            assert ex.lease_expires is not None  # the dead worker's lease stays behind
            clock.set(ex.lease_expires + timedelta(seconds=1))
            continue
        if ex.status.is_terminal or ex.wake_at is None:
            return deaths
        clock.set(max(clock.now(), ex.wake_at))
    raise AssertionError(f"{eid} did not end in {limit} rounds")


def test_a_step_that_kills_its_worker_fails_for_good_after_the_cap() -> None:
    clock, store, calls = VirtualClock(), MemoryStore(), Counter[str]()

    def dies(sc: StepContext) -> str:
        calls["dies"] += 1
        raise SimulatedCrash("the step's native library segfaults the worker")

    @durable
    def wf(ctx: DurableContext, event: None) -> str:
        ctx.step("before", lambda sc: calls.update(["before"]) or "ok")
        try:
            return ctx.step("dies", dies)
        except Exception as e:  # a StepFailedError: the function decides what to do
            return f"recovered from {type(e).__name__}"

    rt = make_runtime(clock, store)
    rt.start(wf, None, execution_id="crash-loop")
    deaths = drive_through_deaths(rt, clock, "crash-loop")

    ex = rt.get("crash-loop")
    assert deaths == CAP + 1  # the first run, then CAP recoveries
    assert calls == Counter({"dies": CAP + 1, "before": 1})
    assert ex.status is ExecutionStatus.SUCCEEDED
    assert rt.result("crash-loop") == "recovered from StepFailedError"
    assert ex.recovery_attempts == 0  # the invocation ended normally
    [step] = [op for op in rt.operations("crash-loop") if op.name == "dies"]
    assert step.status is OperationStatus.FAILED
    assert step.error is not None
    assert step.error.type == "durable_core.errors.RecoveryLimitError"
    assert f"recovered {CAP + 1} times in a row" in step.error.message
    assert f"max_recovery_attempts={CAP}" in step.error.message


def test_the_count_resets_when_an_invocation_ends_normally() -> None:
    clock, store, calls = VirtualClock(), MemoryStore(), Counter[str]()

    def dies_on_some_runs(sc: StepContext) -> int:
        calls["body"] += 1
        if calls["body"] % CAP != 0:  # dies CAP - 1 times, then returns, again and again
            raise SimulatedCrash("worker died")
        return calls["body"]

    @durable
    def wf(ctx: DurableContext, event: None) -> list[int]:
        out = []
        for i in range(3):
            out.append(ctx.step(f"s{i}", dies_on_some_runs))
            ctx.wait(f"w{i}", timedelta(seconds=5))  # each wait ends an invocation normally
        return out

    rt = make_runtime(clock, store)
    rt.start(wf, None, execution_id="resets")
    deaths = drive_through_deaths(rt, clock, "resets")

    assert deaths == 3 * (CAP - 1)  # more than the cap in total, never CAP + 1 in a row
    assert rt.get("resets").status is ExecutionStatus.SUCCEEDED
    assert rt.result("resets") == [CAP, 2 * CAP, 3 * CAP]


def test_a_worker_dying_outside_any_step_ends_the_execution_failed_past_twice_the_cap() -> None:
    clock, store = VirtualClock(), MemoryStore()
    runs = Counter[str]()

    @durable
    def wf(ctx: DurableContext, event: None) -> None:
        runs["body"] += 1
        raise SimulatedCrash("dies while replaying, before any step")

    rt = make_runtime(clock, store)
    rt.start(wf, None, execution_id="no-step")
    deaths = drive_through_deaths(rt, clock, "no-step")

    ex = rt.get("no-step")
    assert deaths == 2 * CAP + 1
    assert runs["body"] == 2 * CAP + 1  # the last recovery does not run it
    assert ex.status is ExecutionStatus.FAILED
    assert ex.error is not None
    assert ex.error.type == "durable_core.errors.RecoveryLimitError"
    assert f"recovered {2 * CAP + 1} times" in ex.error.message


def test_an_at_most_once_step_past_the_cap_fails_instead_of_its_retry() -> None:
    from durable_core import StepConfig, StepSemantics

    clock, store, calls = VirtualClock(), MemoryStore(), Counter[str]()

    def dies(sc: StepContext) -> None:
        calls["body"] += 1
        raise SimulatedCrash("worker died")

    # Each death is also a failed attempt (StepInterruptedError) for this policy, which
    # retries at once and never stops; only the cap ends the loop.
    forever = RetryPolicy(stop=tenacity.stop_never, wait=tenacity.wait_none())
    config = StepConfig(semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY, retry=forever)

    @durable
    def wf(ctx: DurableContext, event: None) -> None:
        ctx.step("charge", dies, config)

    rt = make_runtime(clock, store, cap=1)
    rt.start(wf, None, execution_id="amo")
    drive_through_deaths(rt, clock, "amo")

    ex: Execution = rt.get("amo")
    assert ex.status is ExecutionStatus.FAILED
    assert calls["body"] == 2  # first run + one recovery; the retry policy alone never stops
    [op] = rt.operations("amo")
    assert op.error is not None and op.error.type.endswith("RecoveryLimitError")


@pytest.mark.parametrize("cap", [0, -1, 1.5, True, "3"])
def test_a_recovery_cap_below_one_is_refused(cap: Any) -> None:
    with pytest.raises(ValidationError, match="max_recovery_attempts must be a whole number"):
        RuntimeOptions(max_recovery_attempts=cap)
