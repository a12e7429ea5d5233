"""wait_for_condition: polls checkpointed between invocations, backoff, deadline."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
import tenacity

from durable_core import (
    ConditionTimeoutError,
    DurableContext,
    ExecutionStatus,
    OperationStatus,
    StepContext,
    durable,
)
from durable_core.errors import SimulatedCrash
from durable_core.testing import DurableTestRunner, check_crash_safety


def counting_check(calls: Counter[str], seen: list[int], *, crash_at_call: int = 0) -> Any:
    def check(state: dict[str, int], sc: StepContext) -> dict[str, int]:
        calls["check"] += 1
        seen.append(state["n"])
        if calls["check"] == crash_at_call:
            raise SimulatedCrash("worker died while polling")
        return {"n": state["n"] + 1}

    return check


def poller(check: Any, **options: Any) -> Any:
    @durable
    def wf(ctx: DurableContext, event: None) -> dict[str, int]:
        return ctx.wait_for_condition(
            "inventory",
            check,
            initial_state={"n": 0},
            done=lambda s: s["n"] >= 4,
            **options,
        )

    return wf


def test_state_is_checkpointed_between_polls(durable_runner: Any, calls: Counter[str]) -> None:
    seen: list[int] = []
    runner = durable_runner(poller(counting_check(calls, seen)))

    first = runner.run(None, skip_time=False)
    record = first.get_step("inventory")
    assert record.status is OperationStatus.PENDING
    assert record.payload == {"n": 1}  # the state after poll 1 is in the journal
    assert record.attempt == 1

    result = runner.resume()
    assert result.result == {"n": 4}
    assert seen == [0, 1, 2, 3]  # each poll started from the previous checkpointed state
    assert calls["check"] == 4


def test_a_crash_between_polls_resumes_from_the_checkpointed_state(calls: Counter[str]) -> None:
    seen: list[int] = []
    runner = DurableTestRunner(poller(counting_check(calls, seen, crash_at_call=3)))

    with pytest.raises(SimulatedCrash):
        runner.run(None)
    assert runner.snapshot().get_step("inventory").payload == {"n": 2}
    result = runner.resume()

    assert result.result == {"n": 4}
    assert seen == [0, 1, 2, 2, 3]  # the interrupted poll re-ran from state 2, not from 0
    assert calls["check"] == 5


def test_polling_is_crash_safe_at_every_boundary(calls: Counter[str]) -> None:
    seen: list[int] = []

    def before_each() -> None:
        calls.clear()
        seen.clear()

    report = check_crash_safety(poller(counting_check(calls, seen)), None, before_each=before_each)

    report.assert_ok()
    assert report.baseline.result == {"n": 4}


def test_backoff_delays_grow(durable_runner: Any, virtual_clock: Any) -> None:
    polled_at: list[datetime] = []

    def check(state: dict[str, int], sc: StepContext) -> dict[str, int]:
        polled_at.append(virtual_clock.now())
        return {"n": state["n"] + 1}

    wf = poller(check, wait=tenacity.wait_exponential(multiplier=10, exp_base=2))
    result = durable_runner(wf).run(None)

    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(polled_at)]
    assert result.result == {"n": 4}
    assert gaps == [10, 20, 40]


def test_the_default_backoff_grows_too(durable_runner: Any, virtual_clock: Any) -> None:
    polled_at: list[datetime] = []

    def check(state: dict[str, int], sc: StepContext) -> dict[str, int]:
        polled_at.append(virtual_clock.now())
        return {"n": state["n"] + 1}

    durable_runner(poller(check)).run(None)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(polled_at)]
    assert gaps == sorted(gaps)
    assert gaps[0] < gaps[-1]


def test_the_deadline_raises_condition_timeout_error(
    durable_runner: Any, calls: Counter[str]
) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> int:
        def check(state: int, sc: StepContext) -> int:
            calls["check"] += 1
            return state + 1

        return ctx.wait_for_condition(
            "never",
            check,
            initial_state=0,
            done=lambda s: False,
            wait=tenacity.wait_fixed(10),
            timeout=timedelta(minutes=1),
        )

    runner = durable_runner(wf)
    start = runner.clock.now()
    result = runner.run(None)

    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None
    assert result.error.type == "durable_core.errors.ConditionTimeoutError"
    assert "'never'" in result.error.message
    assert runner.clock.now() - start <= timedelta(minutes=1)
    record = result.get_step("never")
    assert record.status is OperationStatus.FAILED
    assert record.payload == calls["check"]  # the last state is kept for inspection


def test_condition_timeout_is_raised_again_on_replay(durable_runner: Any) -> None:
    seen: list[str] = []

    @durable
    def wf(ctx: DurableContext, event: None) -> None:
        try:
            ctx.wait_for_condition(
                "never",
                lambda s, sc: s,
                initial_state=0,
                done=lambda s: False,
                wait=tenacity.wait_fixed(30),
                timeout=60,
            )
        except ConditionTimeoutError as e:
            seen.append(type(e).__name__)
        ctx.wait("after", 5)

    durable_runner(wf, always_replay=False).run(None)
    assert seen == ["ConditionTimeoutError", "ConditionTimeoutError"]


def test_a_failing_check_fails_the_condition(durable_runner: Any) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> int:
        return ctx.wait_for_condition(
            "broken", lambda s, sc: 1 // 0, initial_state=0, done=lambda s: True
        )

    result = durable_runner(wf).run(None)
    assert result.status is ExecutionStatus.FAILED
    assert result.get_step("broken").error.type == "ZeroDivisionError"
