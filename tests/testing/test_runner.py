"""DurableTestRunner: time skipping, callbacks, crash recovery, lookups, always-replay."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import tenacity

from durable_core import (
    CallbackFailedError,
    DurableContext,
    ExecutionStatus,
    OperationStatus,
    RetryPolicy,
    RuntimeOptions,
    StepConfig,
    StepContext,
    StepSemantics,
    ValidationError,
    durable,
)
from durable_core.errors import SimulatedCrash
from durable_core.testing import (
    CallbackFailure,
    DurableTestRunner,
    OperationNotFoundError,
    RunawayExecutionError,
    VirtualClock,
    check_crash_safety,
)


@durable
def trip(ctx: DurableContext, event: dict[str, Any]) -> dict[str, Any]:
    flight = ctx.step("book-flight", lambda sc: f"F-{event['to']}")
    ctx.wait("check-in-opens", timedelta(days=29))
    seat = ctx.step(
        "pick-seat",
        lambda sc: "12A",
        StepConfig(retry=RetryPolicy(wait=tenacity.wait_fixed(3600))),
    )
    hotel = ctx.run_in_child_context("hotel", lambda c: c.step("book", lambda sc: "H-1"))
    weather = ctx.wait_for_condition(
        "weather", lambda s, sc: s + 1, initial_state=0, done=lambda s: s >= 3
    )
    approval = ctx.wait_for_callback("manager", lambda token, sc: None)
    return {
        "flight": flight,
        "seat": seat,
        "hotel": hotel,
        "weather": weather,
        "approval": approval,
    }


EXPECTED = {"flight": "F-LIS", "seat": "12A", "hotel": "H-1", "weather": 3, "approval": "ok"}


def test_run_skips_timers_and_stops_at_a_callback() -> None:
    runner = DurableTestRunner(trip)
    start = runner.clock.now()

    waiting = runner.run({"to": "LIS"})

    assert waiting.status is ExecutionStatus.RUNNING
    assert waiting.wake_at is None  # waits for an event only
    assert "manager" in (waiting.waiting_for or "")
    assert runner.clock.now() - start >= timedelta(days=29)
    runner.send_callback_success("manager", "ok")
    assert runner.resume().result == EXPECTED


def test_always_replay_gives_the_same_result_as_a_normal_run() -> None:
    normal = DurableTestRunner(trip, callbacks={"manager": "ok"}).run({"to": "LIS"})
    replay = DurableTestRunner(trip, callbacks={"manager": "ok"}, always_replay=True)
    replayed = replay.run({"to": "LIS"})

    assert normal.result == replayed.result == EXPECTED
    assert [(op.name, op.status) for op in normal.operations] == [
        (op.name, op.status) for op in replayed.operations
    ]
    assert replay.store is not replay.runtime.store  # the boundary wrapper sits between


def test_always_replay_restarts_after_every_write(calls: Counter[str]) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> int:
        calls["invocations"] += 1

        def value(i: int) -> Callable[[StepContext], int]:
            return lambda sc: i

        return sum(ctx.step(f"s{i}", value(i)) for i in range(5))

    assert DurableTestRunner(wf, always_replay=True).run(None).result == 10
    assert calls["invocations"] == 6


def test_always_replay_does_not_interrupt_at_most_once_steps(calls: Counter[str]) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> str:
        def transfer(sc: StepContext) -> str:
            calls["transfer"] += 1
            return "sent"

        config = StepConfig(
            semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY, retry=RetryPolicy.no_retry()
        )
        return ctx.step("transfer", transfer, config)

    result = DurableTestRunner(wf, always_replay=True).run(None)
    assert result.result == "sent"
    assert calls["transfer"] == 1


def test_skip_time_false_returns_the_suspended_execution() -> None:
    runner = DurableTestRunner(trip)
    start = runner.clock.now()
    suspended = runner.run({"to": "LIS"}, skip_time=False)

    assert runner.clock.now() == start
    assert suspended.wake_at == start + timedelta(days=29)
    assert suspended.get_wait("check-in-opens").status is OperationStatus.STARTED


def test_snapshot_does_not_drive() -> None:
    runner = DurableTestRunner(trip)
    runner.run({"to": "LIS"}, skip_time=False)
    runner.clock.advance(timedelta(days=30))
    assert runner.snapshot().get_wait("check-in-opens").status is OperationStatus.STARTED


def test_callbacks_can_be_delivered_automatically_including_failures() -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> str:
        ok = ctx.create_callback("first", timeout=60).result()
        try:
            ctx.create_callback("second", timeout=60).result()
        except CallbackFailedError as e:
            return f"{ok}/{e.error_type}/{e}"
        return "no failure"

    runner = DurableTestRunner(
        wf, callbacks={"first": "yes", "second": CallbackFailure("nope", error_type="Denied")}
    )
    assert runner.run(None).result == "yes/Denied/nope"  # the caller's message as it is


def test_a_name_shared_by_two_waiting_callbacks_is_ambiguous() -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> list[Any]:
        a = ctx.create_callback("same")
        b = ctx.create_callback("same")
        return [a.result(), b.result()]

    runner = DurableTestRunner(wf)
    waiting = runner.run(None)
    with pytest.raises(ValidationError, match="pass the token"):
        runner.send_callback_success("same", 1)

    tokens = [op.token for op in waiting.operations]
    runner.send_callback_success(tokens[0], 1)
    runner.send_callback_success("same", 2)  # only one is waiting now
    assert runner.resume().result == [1, 2]


def test_resume_after_a_crash_waits_out_the_dead_workers_lease(calls: Counter[str]) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> str:
        def work(sc: StepContext) -> str:
            calls["work"] += 1
            if calls["work"] == 1:
                raise SimulatedCrash("killed")
            return "done"

        return ctx.step("work", work)

    options = RuntimeOptions(lease_ttl=timedelta(minutes=5))
    runner = DurableTestRunner(wf, options=options)
    start = runner.clock.now()
    with pytest.raises(SimulatedCrash):
        runner.run(None)
    held = runner.snapshot().execution
    assert held.lease_owner is not None  # like a killed process, the lease is still held

    assert runner.resume().result == "done"
    assert runner.clock.now() >= start + timedelta(minutes=5)


def test_another_runner_can_adopt_an_execution(calls: Counter[str]) -> None:
    clock = VirtualClock()
    first = DurableTestRunner(trip, clock=clock)
    first.run({"to": "LIS"}, execution_id="trip-1", skip_time=False)

    second = DurableTestRunner(trip, store=first.store, clock=clock, callbacks={"manager": "ok"})
    assert second.resume(execution_id="trip-1").result == EXPECTED


def test_a_function_deadline_is_reached_even_while_waiting_for_a_callback() -> None:
    @durable(timeout=timedelta(hours=2))
    def wf(ctx: DurableContext, event: None) -> Any:
        return ctx.create_callback("never").result()

    result = DurableTestRunner(wf).run(None)
    assert result.status is ExecutionStatus.CANCELLED
    assert "deadline" in (result.error.message if result.error else "")


def test_a_step_that_retries_forever_is_reported_as_runaway() -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> None:
        ctx.step("hopeless", lambda sc: 1 / 0, StepConfig(retry=RetryPolicy.forever()))

    runner = DurableTestRunner(wf, max_rounds=20)
    with pytest.raises(RunawayExecutionError, match="max_rounds"):
        runner.run(None)


def test_bad_runner_arguments() -> None:
    with pytest.raises(ValidationError):
        DurableTestRunner(trip, max_rounds=0)
    with pytest.raises(ValidationError, match="run"):
        DurableTestRunner(trip).snapshot()


# --- TestResult lookups -----------------------------------------------------------------------


@pytest.fixture
def finished() -> Any:
    return DurableTestRunner(trip, callbacks={"manager": "ok"}).run({"to": "LIS"})


def test_lookups_by_type_and_name(finished: Any) -> None:
    assert finished.get_step("book-flight").result == "F-LIS"
    assert finished.get_wait("check-in-opens").status is OperationStatus.SUCCEEDED
    assert finished.get_context("hotel").result == "H-1"
    assert finished.get_step("weather").payload is None
    assert finished.get_step("weather").result == 3
    # the wait_for_callback context; its callback is "manager create callback id"
    assert finished.get_operation("manager").type.value == "CONTEXT"
    callback = finished.get_callback("manager")
    assert len(callback.token) == 43
    assert callback.record.callback_id == callback.token
    assert [op.name for op in finished.children(finished.get_context("hotel"))] == ["book"]


def test_missing_operations_raise_a_keyerror_listing_what_is_there(finished: Any) -> None:
    with pytest.raises(OperationNotFoundError) as info:
        finished.get_step("book-train")
    message = str(info.value)
    assert isinstance(info.value, KeyError)
    assert message.startswith("no step named 'book-train'")
    assert "book-flight (STEP)" in message
    assert "check-in-opens" not in message  # only steps are listed for get_step
    with pytest.raises(KeyError, match="check-in-opens"):
        finished.get_callback("check-in-opens")


def test_only_callbacks_have_tokens(finished: Any) -> None:
    with pytest.raises(ValidationError, match="not a callback"):
        _ = finished.get_step("book-flight").token


def test_result_mirrors_the_execution(finished: Any) -> None:
    assert finished.status is ExecutionStatus.SUCCEEDED
    assert finished.error is None
    assert finished.wake_at is None
    assert finished.execution_id == finished.execution.id
    assert finished.result == EXPECTED


@durable(name="quote")
def quote(ctx: DurableContext, event: int) -> int:
    ctx.wait("market-opens", timedelta(hours=8))
    return ctx.step("price", lambda sc: event * 10)


@durable(name="buy")
def buy(ctx: DurableContext, event: int) -> int:
    price: int = ctx.invoke(quote, event)
    confirmation: int = ctx.wait_for_callback("broker", lambda token, sc: None)
    return price + confirmation


def test_invoked_executions_are_driven_too() -> None:
    runner = DurableTestRunner(buy, functions=[quote], callbacks={"broker": 1})
    result = runner.run(4)

    assert result.result == 41
    children = [ex for ex in runner.store.list_executions() if ex.parent_execution_id]
    assert len(children) == 1
    assert children[0].status is ExecutionStatus.SUCCEEDED


def test_a_callback_awaited_by_an_invoked_execution_can_be_sent_by_name() -> None:
    @durable(name="outer")
    def outer(ctx: DurableContext, event: None) -> int:
        return ctx.invoke(buy, 1)

    runner = DurableTestRunner(outer, functions=[buy, quote])
    assert runner.run(None).status is ExecutionStatus.RUNNING
    runner.send_callback_success("broker", 5)
    assert runner.resume().result == 15


def test_invoke_is_crash_safe_at_every_boundary() -> None:
    check_crash_safety(buy, 2, functions=[quote], callbacks={"broker": 0}).assert_ok()
