"""Step retries: tenacity policies evaluated durably, long delays as timers, crash semantics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import tenacity

from durable_core import (
    DurableContext,
    ExecutionStatus,
    OperationStatus,
    RetryPolicy,
    RuntimeOptions,
    StepConfig,
    StepContext,
    StepFailedError,
    StepSemantics,
    durable,
)
from durable_core.errors import SimulatedCrash
from durable_core.testing import DurableTestRunner, check_crash_safety

from .step_flows import wf_with


def failing(
    calls: Counter[str], *, until: int = 10**9, exc: type[Exception] = ConnectionError
) -> Callable[[StepContext], int]:
    """A step body failing with ``exc`` before attempt ``until``; counts its runs."""

    def body(sc: StepContext) -> int:
        calls["body"] += 1
        calls[f"attempt-{sc.attempt}"] += 1
        if sc.attempt < until:
            raise exc(f"attempt {sc.attempt}")
        return sc.attempt

    return body


def test_stop_after_attempt_gives_up_after_n_attempts(
    durable_runner: Any, calls: Counter[str]
) -> None:
    policy = RetryPolicy(stop=tenacity.stop_after_attempt(4), wait=tenacity.wait_none())
    result = durable_runner(wf_with(StepConfig(retry=policy), failing(calls))).run(None)

    assert result.status is ExecutionStatus.FAILED
    assert calls["body"] == 4
    step = result.get_step("call-api")
    assert step.status is OperationStatus.FAILED
    assert step.attempt == 4
    assert step.error is not None
    assert step.error.type == "ConnectionError"
    assert step.error.message == "attempt 4"


def test_retry_succeeds_on_a_later_attempt(durable_runner: Any, calls: Counter[str]) -> None:
    policy = RetryPolicy(stop=tenacity.stop_after_attempt(5), wait=tenacity.wait_none())
    result = durable_runner(wf_with(StepConfig(retry=policy), failing(calls, until=3))).run(None)

    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == 3
    assert [calls[f"attempt-{n}"] for n in (1, 2, 3, 4)] == [1, 1, 1, 0]


def test_non_retryable_error_fails_at_once(durable_runner: Any, calls: Counter[str]) -> None:
    policy = RetryPolicy(
        stop=tenacity.stop_after_attempt(5),
        wait=tenacity.wait_none(),
        retry=tenacity.retry_if_exception_type(ConnectionError),
    )
    result = durable_runner(wf_with(StepConfig(retry=policy), failing(calls, exc=ValueError))).run(
        None
    )

    assert result.status is ExecutionStatus.FAILED
    assert calls["body"] == 1
    assert result.get_step("call-api").error.type == "ValueError"


def test_short_delay_is_retried_inline_in_one_invocation(
    virtual_clock: Any, calls: Counter[str]
) -> None:
    policy = RetryPolicy(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_fixed(0.5))
    body = failing(calls, until=3)

    @durable
    def wf(ctx: DurableContext, event: None) -> int:
        calls["invocations"] += 1
        return ctx.step("call-api", body, StepConfig(retry=policy))

    start = virtual_clock.now()
    result = DurableTestRunner(wf, clock=virtual_clock).run(None)

    assert result.result == 3
    assert calls["invocations"] == 1  # no suspension: slept (virtually) in place
    assert virtual_clock.now() - start == timedelta(seconds=1)  # two 0.5 s sleeps


def test_long_delay_becomes_a_durable_timer(virtual_clock: Any, calls: Counter[str]) -> None:
    policy = RetryPolicy(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_fixed(3600))
    wf = wf_with(StepConfig(retry=policy), failing(calls, until=2))
    runner = DurableTestRunner(wf, clock=virtual_clock)
    start = virtual_clock.now()

    suspended = runner.run(None, skip_time=False)

    assert suspended.status is ExecutionStatus.RUNNING
    assert suspended.wake_at == start + timedelta(hours=1)
    assert suspended.execution.lease_owner is None  # the invocation ended; nothing sleeps
    pending = suspended.get_step("call-api")
    assert pending.status is OperationStatus.PENDING
    assert pending.attempt == 1
    assert pending.next_attempt_at == start + timedelta(hours=1)
    assert pending.error is not None
    assert pending.error.message == "attempt 1"

    step = runner.resume().get_step("call-api")
    assert step.status is OperationStatus.SUCCEEDED
    assert step.attempt == 2
    assert virtual_clock.now() == start + timedelta(hours=1)
    assert calls["body"] == 2


def test_inline_threshold_is_a_runtime_option(virtual_clock: Any, calls: Counter[str]) -> None:
    policy = RetryPolicy(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_fixed(30))
    wf = wf_with(StepConfig(retry=policy), failing(calls, until=2))
    options = RuntimeOptions(inline_retry_threshold=timedelta(minutes=1))
    runner = DurableTestRunner(wf, clock=virtual_clock, options=options)

    ex = runner.runtime.run(wf, None)

    assert ex.status is ExecutionStatus.SUCCEEDED  # 30 s < 1 min: retried inline


def test_attempt_count_survives_a_crash_between_attempts(
    virtual_clock: Any, calls: Counter[str]
) -> None:
    seen: list[int] = []

    def body(sc: StepContext) -> int:
        seen.append(sc.attempt)
        if len(seen) == 2:
            raise SimulatedCrash("worker killed during attempt 2")
        if sc.attempt < 3:
            raise ConnectionError("try again")
        return sc.attempt

    policy = RetryPolicy(stop=tenacity.stop_after_attempt(5), wait=tenacity.wait_fixed(60))
    runner = DurableTestRunner(wf_with(StepConfig(retry=policy), body), clock=virtual_clock)

    with pytest.raises(SimulatedCrash):
        runner.run(None)
    result = runner.resume()  # waits out the dead worker's lease, then a new invocation

    assert result.result == 3
    # attempt 2 was interrupted (at-least-once: nothing recorded) and re-run as attempt 2:
    # the count continued from the journal instead of starting over at 1.
    assert seen == [1, 2, 2, 3]
    assert result.get_step("call-api").attempt == 3


def test_retries_are_crash_safe_at_every_boundary(calls: Counter[str]) -> None:
    policy = RetryPolicy(stop=tenacity.stop_after_attempt(4), wait=tenacity.wait_fixed(60))
    wf = wf_with(StepConfig(retry=policy), failing(calls, until=3))

    report = check_crash_safety(
        wf,
        None,
        before_each=calls.clear,
        check=lambda final: _assert(final.get_step("call-api").attempt == 3),
    )

    report.assert_ok()
    assert len(report.writes) == 3  # PENDING, PENDING, SUCCEEDED


def _assert(condition: bool) -> None:
    assert condition


# --- at-most-once ----------------------------------------------------------------------------


def crash_on_first_call(calls: Counter[str]) -> Callable[[StepContext], str]:
    def body(sc: StepContext) -> str:
        calls["body"] += 1
        calls[f"attempt-{sc.attempt}"] += 1
        if calls["body"] == 1:
            raise SimulatedCrash("process died inside the step body")
        return f"done on attempt {sc.attempt}"

    return body


def test_at_most_once_interrupted_attempt_counts_as_failed_and_is_not_rerun(
    calls: Counter[str],
) -> None:
    config = StepConfig(
        semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
        retry=RetryPolicy(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_fixed(5)),
    )
    runner = DurableTestRunner(wf_with(config, crash_on_first_call(calls)))

    with pytest.raises(SimulatedCrash):
        runner.run(None)
    started = runner.snapshot().get_step("call-api")
    assert started.status is OperationStatus.STARTED  # recorded before the body ran
    assert started.attempt == 1

    result = runner.resume()

    assert result.result == "done on attempt 2"
    assert calls["attempt-1"] == 1  # attempt 1 was never run again
    assert calls["body"] == 2


def test_at_most_once_without_retries_fails_with_step_interrupted(calls: Counter[str]) -> None:
    config = StepConfig(
        semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY, retry=RetryPolicy.no_retry()
    )

    @durable
    def wf(ctx: DurableContext, event: None) -> str:
        try:
            return ctx.step("transfer", crash_on_first_call(calls), config)
        except StepFailedError as e:
            return e.error_type

    runner = DurableTestRunner(wf)
    with pytest.raises(SimulatedCrash):
        runner.run(None)
    result = runner.resume()

    assert "StepInterruptedError" in result.result
    assert calls["body"] == 1
    step = result.get_step("transfer")
    assert step.status is OperationStatus.FAILED
    assert step.error is not None
    assert "interrupted" in step.error.message


def test_at_least_once_reruns_an_interrupted_attempt(calls: Counter[str]) -> None:
    runner = DurableTestRunner(wf_with(StepConfig(), crash_on_first_call(calls)))

    with pytest.raises(SimulatedCrash):
        runner.run(None)
    assert runner.snapshot().operations == []  # nothing recorded before the body
    result = runner.resume()

    assert result.result == "done on attempt 1"
    assert calls["attempt-1"] == 2  # the same attempt ran again
