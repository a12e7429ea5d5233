"""Callbacks: completion by token, failure, timeouts, heartbeats, and token safety."""

from __future__ import annotations

import re
import secrets
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from durable_core import (
    CallbackAlreadyCompletedError,
    CallbackFailedError,
    CallbackNotFoundError,
    CallbackTimeoutError,
    DurableContext,
    ExecutionStatus,
    OperationStatus,
    StepContext,
    durable,
)

TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # 43 base64url characters = 258 bits


@durable
def approval(ctx: DurableContext, event: None) -> Any:
    cb = ctx.create_callback("approval", timeout=timedelta(days=2))
    try:
        return {"payload": cb.result()}
    except CallbackFailedError as e:
        return {"failed": str(e), "type": e.error_type, "data": e.data}
    except CallbackTimeoutError as e:
        return {"timed_out": str(e)}


def test_success_delivers_the_json_payload(durable_runner: Any) -> None:
    runner = durable_runner(approval)
    waiting = runner.run(None)

    assert waiting.status is ExecutionStatus.RUNNING
    assert waiting.get_callback("approval").status is OperationStatus.STARTED
    payload = {"approved": True, "by": "ana", "limits": [1, 2.5, None]}
    runner.send_callback_success("approval", payload)
    result = runner.resume()

    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == {"payload": payload}
    assert result.get_callback("approval").result == payload


def test_the_runner_stops_at_a_callback_instead_of_skipping_to_its_timeout(
    durable_runner: Any,
) -> None:
    runner = durable_runner(approval)
    start = runner.clock.now()

    waiting = runner.run(None)

    assert runner.clock.now() == start
    assert waiting.wake_at == start + timedelta(days=2)  # the worker would wake it then


def test_a_callback_can_be_completed_by_token(durable_runner: Any) -> None:
    runner = durable_runner(approval)
    token = runner.run(None).get_callback("approval").token
    runner.send_callback_success(token, "yes")
    assert runner.resume().result == {"payload": "yes"}


def test_failure_raises_callback_failed_error(durable_runner: Any) -> None:
    runner = durable_runner(approval)
    runner.run(None)
    runner.send_callback_failure("approval", "rejected by risk", error_type="Risk", data="r-7")
    result = runner.resume()

    assert result.result["type"] == "Risk"
    assert result.result["data"] == "r-7"
    assert "rejected by risk" in result.result["failed"]
    assert result.get_callback("approval").status is OperationStatus.FAILED


def test_timeout_raises_callback_timeout_error(durable_runner: Any) -> None:
    runner = durable_runner(approval)
    runner.run(None)
    result = runner.advance_time(timedelta(days=2))

    assert "timed_out" in result.result
    assert "timed out" in result.result["timed_out"]
    assert result.get_callback("approval").status is OperationStatus.TIMED_OUT


def test_skip_callback_timeouts_lets_the_runner_reach_the_timeout(durable_runner: Any) -> None:
    result = durable_runner(approval, skip_callback_timeouts=True).run(None)
    assert "timed_out" in result.result


def test_heartbeats_extend_the_deadline_and_missing_ones_time_out(durable_runner: Any) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> str:
        cb = ctx.create_callback("job", timeout=timedelta(days=1), heartbeat_timeout=600)
        try:
            return str(cb.result())
        except CallbackTimeoutError as e:
            return f"timeout: {e}"

    runner = durable_runner(wf)
    start = runner.clock.now()
    first = runner.run(None)
    assert first.get_callback("job").heartbeat_deadline == start + timedelta(minutes=10)

    assert runner.advance_time(timedelta(minutes=8)).status is ExecutionStatus.RUNNING
    runner.send_callback_heartbeat("job")
    beat = runner.resume()
    assert beat.status is ExecutionStatus.RUNNING
    assert beat.get_callback("job").heartbeat_deadline == start + timedelta(minutes=18)
    assert beat.wake_at == start + timedelta(minutes=18)

    # 16 minutes in: past the first deadline, but the heartbeat moved it.
    assert runner.advance_time(timedelta(minutes=8)).status is ExecutionStatus.RUNNING

    result = runner.advance_time(timedelta(minutes=2))  # 18 minutes: no heartbeat since 8
    assert result.result.startswith("timeout:")
    assert "heartbeat" in result.result
    assert result.get_callback("job").status is OperationStatus.TIMED_OUT


def test_a_second_completion_is_rejected_and_changes_nothing(durable_runner: Any) -> None:
    runner = durable_runner(approval)
    runner.run(None)
    runner.send_callback_success("approval", "first")
    before = runner.snapshot().get_callback("approval").record

    with pytest.raises(CallbackAlreadyCompletedError):
        runner.send_callback_success("approval", "second")
    with pytest.raises(CallbackAlreadyCompletedError):
        runner.send_callback_failure("approval", "too late")

    assert runner.snapshot().get_callback("approval").record == before
    assert runner.resume().result == {"payload": "first"}


def test_a_forged_token_is_not_found(durable_runner: Any) -> None:
    runner = durable_runner(approval)
    runner.run(None)
    forged = secrets.token_urlsafe(32)

    with pytest.raises(CallbackNotFoundError):
        runner.send_callback_success(forged, "x")
    with pytest.raises(CallbackNotFoundError):
        runner.send_callback_heartbeat(forged)
    assert runner.snapshot().get_callback("approval").status is OperationStatus.STARTED


@pytest.mark.parametrize("junk", ["", "short", "x" * 500])
def test_malformed_tokens_are_not_found(durable_runner: Any, junk: str) -> None:
    runner = durable_runner(approval)
    with pytest.raises(CallbackNotFoundError):
        runner.runtime.send_callback_success(junk, 1)


def test_the_token_of_a_finished_callback_cannot_be_reused(durable_runner: Any) -> None:
    runner = durable_runner(approval)
    token = runner.run(None).get_callback("approval").token
    runner.send_callback_success(token, 1)
    assert runner.resume().status is ExecutionStatus.SUCCEEDED

    with pytest.raises(CallbackAlreadyCompletedError):
        runner.runtime.send_callback_success(token, 2)


def test_tokens_are_long_random_and_distinct(durable_runner: Any) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> list[str]:
        return [ctx.create_callback(f"cb-{i}").token for i in range(3)]

    first = durable_runner(wf).run(None).result
    second = durable_runner(wf).run(None).result
    tokens = first + second

    assert all(TOKEN.match(t) for t in tokens)
    assert len(set(tokens)) == 6


def test_the_token_is_the_same_on_every_replay(durable_runner: Any) -> None:
    seen: list[str] = []

    @durable
    def wf(ctx: DurableContext, event: None) -> None:
        seen.append(ctx.create_callback("cb").token)
        ctx.wait("w", 10)

    durable_runner(wf, always_replay=True).run(None)
    assert len(seen) >= 3
    assert len(set(seen)) == 1


def test_wait_for_callback_submits_the_token_once(durable_runner: Any, calls: Counter[str]) -> None:
    outbox: list[str] = []

    def submit(token: str, sc: StepContext) -> None:
        calls["submit"] += 1
        outbox.append(token)

    @durable
    def wf(ctx: DurableContext, event: None) -> Any:
        calls["invocations"] += 1
        return ctx.wait_for_callback("shipper", submit, timeout=timedelta(days=7))

    runner = durable_runner(wf, always_replay=False)
    waiting = runner.run(None)
    assert waiting.status is ExecutionStatus.RUNNING
    assert outbox == [waiting.get_callback("shipper").token]

    runner.send_callback_success(outbox[0], {"delivered": True})
    result = runner.resume()

    assert result.result == {"delivered": True}
    assert calls["submit"] == 1
    assert calls["invocations"] == 2
    context = result.get_context("shipper")
    assert context.status is OperationStatus.SUCCEEDED
    assert {op.name for op in result.children(context)} == {
        "shipper create callback id",
        "shipper submitter",
    }


def test_callbacks_given_to_the_runner_are_completed_when_awaited(durable_runner: Any) -> None:
    result = durable_runner(approval, callbacks={"approval": "auto"}).run(None)
    assert result.result == {"payload": "auto"}
