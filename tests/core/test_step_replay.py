"""Steps: recorded once, replayed from the journal, failures re-raised identically."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import tenacity

from durable_core import (
    DurableContext,
    ExecutionStatus,
    OperationStatus,
    RetryPolicy,
    StepConfig,
    StepContext,
    StepFailedError,
    ValidationError,
    durable,
)
from durable_core.testing import DurableTestRunner

NO_RETRY = StepConfig(retry=RetryPolicy.no_retry())


def test_replay_returns_recorded_results_without_rerunning(
    durable_runner: Any, calls: Counter[str]
) -> None:
    @durable
    def wf(ctx: DurableContext, event: dict[str, int]) -> dict[str, int]:
        calls["invocations"] += 1

        def charge(sc: StepContext) -> int:
            calls["charge"] += 1
            return event["amount"] * 2

        def ship(sc: StepContext) -> str:
            calls["ship"] += 1
            return "shipped"

        charged = ctx.step("charge", charge)
        ctx.wait("cool-off", timedelta(days=1))
        status = ctx.step("ship", ship)
        return {"charged": charged, "shipped": status == "shipped"}

    result = durable_runner(wf).run({"amount": 21})

    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == {"charged": 42, "shipped": True}
    assert calls["invocations"] >= 2  # the function ran again from the top after the wait
    assert calls["charge"] == 1  # but the recorded step was replayed, not re-run
    assert calls["ship"] == 1
    assert result.get_step("charge").result == 42


def test_always_replay_reruns_the_function_but_never_a_recorded_step(calls: Counter[str]) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> list[int]:
        calls["invocations"] += 1
        out = []
        for i in range(4):

            def body(sc: StepContext, i: int = i) -> int:
                calls[f"step-{i}"] += 1
                return i * i

            out.append(ctx.step(f"square-{i}", body))
        return out

    normal = DurableTestRunner(wf).run(None)
    normal_calls = dict(calls)
    calls.clear()
    replayed = DurableTestRunner(wf, always_replay=True).run(None)

    assert replayed.result == normal.result == [0, 1, 4, 9]
    assert normal_calls["invocations"] == 1
    assert calls["invocations"] == 5  # restarted after each of the 4 writes
    assert all(calls[f"step-{i}"] == 1 for i in range(4))


def test_idempotency_key_is_stable_across_retries_and_replays(durable_runner: Any) -> None:
    seen: list[tuple[int, str]] = []

    @durable
    def wf(ctx: DurableContext, event: None) -> str:
        def flaky(sc: StepContext) -> str:
            seen.append((sc.attempt, sc.idempotency_key))
            if sc.attempt < 3:
                raise ConnectionError(f"attempt {sc.attempt} failed")
            return sc.idempotency_key

        # wait_fixed(10) is above the inline threshold: every retry is a durable timer,
        # so each attempt runs in a new invocation that replays the function from the top.
        config = StepConfig(retry=RetryPolicy(wait=tenacity.wait_fixed(10)))
        return ctx.step("flaky", flaky, config)

    runner = durable_runner(wf)
    result = runner.run(None, execution_id="order-7")

    assert result.status is ExecutionStatus.SUCCEEDED
    assert [attempt for attempt, _ in seen] == [1, 2, 3]
    keys = {key for _, key in seen}
    assert keys == {result.result}
    assert result.result == f"order-7:{result.get_step('flaky').id}"
    assert result.get_step("flaky").attempt == 3


def test_idempotency_keys_differ_between_steps(durable_runner: Any) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> list[str]:
        return [ctx.step(name, lambda sc: sc.idempotency_key) for name in ("a", "b", "a")]

    keys = durable_runner(wf).run(None).result
    assert len(set(keys)) == 3


def test_failed_step_reraises_the_same_error_on_every_replay(durable_runner: Any) -> None:
    seen: list[tuple[type[BaseException], str, str, str | None, int]] = []

    def explode(sc: StepContext) -> None:
        raise KeyError("card-declined")

    @durable
    def wf(ctx: DurableContext, event: None) -> None:
        try:
            ctx.step("charge", explode, NO_RETRY)
        except StepFailedError as e:
            seen.append((type(e), e.error_type, str(e), e.traceback, e.attempts))
            ctx.wait("before-giving-up", timedelta(hours=1))
            raise

    result = durable_runner(wf, always_replay=False).run(None)

    assert len(seen) == 2  # the first run and the replay after the wait
    assert seen[0] == seen[1]
    klass, error_type, message, traceback, attempts = seen[0]
    assert klass is StepFailedError
    assert error_type == "KeyError"
    assert message == "'card-declined'"  # the original message, as AWS's SDK raises it
    assert traceback is not None
    assert "explode" in traceback
    assert attempts == 1
    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None
    assert result.error.type == "durable_core.errors.StepFailedError"
    assert "card-declined" in result.error.message
    assert result.get_step("charge").status is OperationStatus.FAILED


def test_failed_step_reraises_identically_in_always_replay_mode() -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> str:
        try:
            ctx.step("charge", lambda sc: 1 / 0, NO_RETRY)
        except StepFailedError as e:
            return f"{e.error_type}: {e}"
        return "unreachable"

    normal = DurableTestRunner(wf).run(None)
    replayed = DurableTestRunner(wf, always_replay=True).run(None)
    assert normal.result == replayed.result
    assert "ZeroDivisionError" in normal.result


@pytest.mark.parametrize(
    ("name", "fn"),
    [("", lambda sc: 1), ("   ", lambda sc: 1), (None, lambda sc: 1), ("ok", "not-callable")],
)
def test_bad_step_arguments_raise_validation_error_and_record_nothing(
    durable_runner: Any, name: Any, fn: Any
) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> str:
        try:
            ctx.step(name, fn)
        except ValidationError as e:
            return type(e).__name__
        return "accepted"

    result = durable_runner(wf).run(None)
    assert result.result == "ValidationError"
    assert result.operations == []
