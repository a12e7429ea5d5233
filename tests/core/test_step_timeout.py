"""Per-attempt step timeouts: a hung body is abandoned, the execution goes on, and the
abandoned attempt's late result is never recorded.

No test sleeps: a hung body waits on an event the test sets afterwards; the timeouts are
tiny real durations (the body runs in real time even under the virtual clock).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import tenacity

from durable_core import (
    ExecutionStatus,
    OperationStatus,
    RetryPolicy,
    StepConfig,
    StepContext,
    StepSemantics,
    StepTimeoutError,
    ValidationError,
)

from .step_flows import wf_with

TINY = timedelta(seconds=0.05)
THREE_TRIES = RetryPolicy(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_none())


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at the end of the test: lets every hung body return (late)."""
    event = threading.Event()
    yield event
    event.set()


def hangs_on(
    attempts: set[int], release: threading.Event, calls: Counter[str], returned: threading.Event
) -> Callable[[StepContext], str]:
    """A body that hangs (until ``release``) on the given attempts, else returns at once."""

    def body(sc: StepContext) -> str:
        calls["body"] += 1
        if sc.attempt in attempts:
            release.wait()
            returned.set()
            return f"late {sc.attempt}"
        return f"on time {sc.attempt}"

    return body


def test_a_hung_attempt_times_out_and_the_next_attempt_succeeds(
    durable_runner: Any, calls: Counter[str], release: threading.Event
) -> None:
    returned = threading.Event()
    body = hangs_on({1}, release, calls, returned)
    runner = durable_runner(wf_with(StepConfig(retry=THREE_TRIES, timeout=TINY), body))

    result = runner.run(None)

    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == "on time 2"
    assert calls["body"] == 2
    step = result.get_step("call-api")
    assert step.status is OperationStatus.SUCCEEDED
    assert step.attempt == 2
    # The abandoned attempt returns now; its value must never reach the journal.
    release.set()
    assert returned.wait(5)
    after = runner.snapshot()
    assert after.get_step("call-api").result == "on time 2"
    assert after.result == "on time 2"


def test_timeouts_that_exhaust_the_policy_fail_the_step_with_a_typed_error(
    durable_runner: Any, calls: Counter[str], release: threading.Event
) -> None:
    body = hangs_on({1, 2, 3}, release, calls, threading.Event())
    result = durable_runner(wf_with(StepConfig(retry=THREE_TRIES, timeout=TINY), body)).run(None)

    assert result.status is ExecutionStatus.FAILED
    assert calls["body"] == 3
    step = result.get_step("call-api")
    assert step.status is OperationStatus.FAILED
    assert step.attempt == 3
    assert step.error is not None
    assert step.error.type == "durable_core.errors.StepTimeoutError"
    assert "attempt 3 of step 'call-api'" in step.error.message
    assert "0:00:00.050000" in step.error.message


def test_an_at_most_once_timeout_is_recorded_as_a_failed_attempt_before_the_retry(
    durable_runner: Any, calls: Counter[str], release: threading.Event
) -> None:
    policy = RetryPolicy(
        stop=tenacity.stop_after_attempt(3),
        wait=tenacity.wait_none(),
        retry=tenacity.retry_if_not_exception_type(StepTimeoutError),
    )
    config = StepConfig(retry=policy, semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY, timeout=TINY)
    body = hangs_on({1}, release, calls, threading.Event())
    result = durable_runner(wf_with(config, body)).run(None)

    # The policy refuses to retry an uncertain attempt: one run, failed for good.
    assert result.status is ExecutionStatus.FAILED
    assert calls["body"] == 1
    step = result.get_step("call-api")
    assert step.attempt == 1
    assert step.error is not None and step.error.type.endswith("StepTimeoutError")


def test_a_body_within_its_timeout_behaves_as_without_one(
    durable_runner: Any, calls: Counter[str]
) -> None:
    def flaky(sc: StepContext) -> int:
        calls["body"] += 1
        if sc.attempt == 1:
            raise ConnectionError("refused")
        return sc.attempt

    config = StepConfig(retry=THREE_TRIES, timeout=timedelta(minutes=5))
    result = durable_runner(wf_with(config, flaky)).run(None)

    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == 2
    assert calls["body"] == 2


@pytest.mark.parametrize(
    ("timeout", "message"),
    [
        (timedelta(0), "out of range"),
        (timedelta(seconds=-1), "out of range"),
        (timedelta(days=366), "at most 365 days"),
        (30, "must be a datetime.timedelta"),
    ],
)
def test_a_bad_timeout_is_refused_when_the_config_is_made(timeout: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        StepConfig(timeout=timeout)
