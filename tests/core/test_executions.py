"""Executions: start by id, unknown ids, cancellation, deadlines and code versions."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from durable_core import (
    CallbackAlreadyCompletedError,
    DurableContext,
    ExecutionConflictError,
    ExecutionNotFoundError,
    ExecutionNotRunningError,
    ExecutionStatus,
    OperationStatus,
    StepContext,
    durable,
)
from durable_core.testing import DurableTestRunner


def make_order_flow(calls: Counter[str]) -> Any:
    @durable
    def order(ctx: DurableContext, event: dict[str, Any]) -> str:
        def reserve(sc: StepContext) -> str:
            calls["reserve"] += 1
            return f"r-{event['id']}"

        def ship(sc: StepContext) -> str:
            calls["ship"] += 1
            return "shipped"

        ctx.step("reserve", reserve)
        ctx.wait("cool-off", timedelta(days=1))
        return ctx.step("ship", ship)

    return order


def test_unknown_execution_id_is_reported(durable_runner: Any, calls: Counter[str]) -> None:
    runner = durable_runner(make_order_flow(calls))

    with pytest.raises(ExecutionNotFoundError, match="no-such-id"):
        runner.resume(execution_id="no-such-id")
    with pytest.raises(ExecutionNotFoundError):
        runner.runtime.get("no-such-id")
    with pytest.raises(ExecutionNotFoundError):
        runner.runtime.cancel("no-such-id")


def test_start_is_idempotent_by_id(durable_runner: Any, calls: Counter[str]) -> None:
    runner = durable_runner(make_order_flow(calls))
    first = runner.run({"id": 1}, execution_id="order-1")
    again = runner.run({"id": 1}, execution_id="order-1")

    assert first.result == again.result == "shipped"
    assert again.execution.created_at == first.execution.created_at
    assert calls == Counter({"reserve": 1, "ship": 1})
    assert len(runner.store.list_executions()) == 1


def test_same_id_with_different_input_conflicts(durable_runner: Any, calls: Counter[str]) -> None:
    runner = durable_runner(make_order_flow(calls))
    runner.run({"id": 1}, execution_id="order-1", skip_time=False)

    with pytest.raises(ExecutionConflictError, match="order-1"):
        runner.run({"id": 2}, execution_id="order-1")
    assert calls["reserve"] == 1


def test_cancel_while_waiting_on_a_timer(durable_runner: Any, calls: Counter[str]) -> None:
    runner = durable_runner(make_order_flow(calls))
    runner.run({"id": 1}, skip_time=False)

    runner.cancel("customer changed their mind")
    result = runner.resume()

    assert result.status is ExecutionStatus.CANCELLED
    assert result.error is not None
    assert "customer changed their mind" in result.error.message
    assert calls == Counter({"reserve": 1})  # ship never ran
    assert result.get_wait("cool-off").status is OperationStatus.CANCELLED


def test_cancel_while_waiting_on_a_callback(durable_runner: Any) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> Any:
        return ctx.create_callback("approval", timeout=timedelta(days=3)).result()

    runner = durable_runner(wf)
    token = runner.run(None).get_callback("approval").token
    runner.cancel("no longer needed")
    result = runner.resume()

    assert result.status is ExecutionStatus.CANCELLED
    assert result.get_callback("approval").status is OperationStatus.CANCELLED
    with pytest.raises(CallbackAlreadyCompletedError):
        runner.send_callback_success(token, "too late")


def test_cancel_during_a_step_takes_effect_at_the_next_operation_boundary(
    durable_runner: Any, virtual_clock: Any, calls: Counter[str]
) -> None:
    holder: dict[str, DurableTestRunner[Any, Any]] = {}

    @durable
    def wf(ctx: DurableContext, event: None) -> str:
        def first(sc: StepContext) -> int:
            calls["first"] += 1
            holder["runner"].cancel("stop after this step")
            virtual_clock.advance(timedelta(seconds=30))  # the step takes a while
            return 1

        def second(sc: StepContext) -> int:
            calls["second"] += 1
            return 2

        ctx.step("first", first)
        ctx.step("second", second)
        return "finished"

    runner = durable_runner(wf)
    holder["runner"] = runner
    result = runner.run(None)

    assert result.status is ExecutionStatus.CANCELLED
    assert calls == Counter({"first": 1})  # the running step finished and was recorded
    assert result.get_step("first").status is OperationStatus.SUCCEEDED
    assert result.get_step("second").status is OperationStatus.CANCELLED


def test_code_may_clean_up_after_a_cancellation(durable_runner: Any) -> None:
    from durable_core import ExecutionCancelledError

    @durable
    def wf(ctx: DurableContext, event: None) -> str:
        try:
            ctx.wait("long", timedelta(days=10))
        except ExecutionCancelledError as e:
            ctx.step("undo", lambda sc: "undone")
            return f"cleaned up ({e.reason})"
        return "finished"

    runner = durable_runner(wf)
    runner.run(None, skip_time=False)
    runner.cancel("abort")
    result = runner.resume()

    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == "cleaned up (abort)"
    assert result.get_step("undo").result == "undone"


def test_cancelling_a_finished_execution_is_refused(
    durable_runner: Any, calls: Counter[str]
) -> None:
    runner = durable_runner(make_order_flow(calls))
    assert runner.run({"id": 1}).status is ExecutionStatus.SUCCEEDED

    with pytest.raises(ExecutionNotRunningError, match="already finished"):
        runner.cancel("too late")
    assert runner.snapshot().status is ExecutionStatus.SUCCEEDED


def test_function_timeout_cancels_with_reason_deadline(
    durable_runner: Any, calls: Counter[str]
) -> None:
    @durable(timeout=timedelta(hours=1))
    def wf(ctx: DurableContext, event: None) -> str:
        ctx.wait("too-long", timedelta(days=1))
        ctx.step("after", lambda sc: calls.update(["after"]))
        return "finished"

    runner = durable_runner(wf)
    start = runner.clock.now()
    result = runner.run(None)

    assert result.status is ExecutionStatus.CANCELLED
    assert result.error is not None
    assert "deadline" in result.error.message
    assert runner.clock.now() == start + timedelta(hours=1)  # woke at the deadline, not later
    assert calls["after"] == 0


def test_function_timeout_does_not_touch_a_fast_execution(durable_runner: Any) -> None:
    @durable(timeout=timedelta(hours=1))
    def wf(ctx: DurableContext, event: None) -> str:
        ctx.wait("short", timedelta(minutes=5))
        return "finished"

    assert durable_runner(wf).run(None).result == "finished"


def versioned(version: str, calls: Counter[str]) -> Any:
    @durable(name="orders", version=version)
    def orders(ctx: DurableContext, event: None) -> str:
        calls[f"v{version}-body"] += 1
        ctx.step("reserve", lambda sc: calls.update([f"v{version}-reserve"]))
        ctx.wait("cool-off", timedelta(days=1))
        return version

    return orders


def test_a_runtime_with_another_version_does_not_run_the_execution(
    durable_runner: Any, calls: Counter[str]
) -> None:
    old = durable_runner(versioned("1", calls), always_replay=False)
    old.run(None, execution_id="order-9", skip_time=False)
    assert calls == Counter({"v1-body": 1, "v1-reserve": 1})

    new = durable_runner(versioned("2", calls), always_replay=False)
    new.resume(execution_id="order-9")  # not due yet: nothing happens
    parked = new.advance_time(timedelta(days=1))  # due: the runtime refuses and parks it

    assert parked.status is ExecutionStatus.RUNNING
    assert "version" in (parked.waiting_for or "")
    assert "'1'" in (parked.waiting_for or "")
    assert calls == Counter({"v1-body": 1, "v1-reserve": 1})  # nothing re-executed
    assert len(parked.operations) == 2

    finished = old.resume()  # a worker with the original version finishes it
    assert finished.result == "1"
