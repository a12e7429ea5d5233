"""Non-determinism parks an execution instead of failing it; retry resumes it, fail ends it.

Each test changes the code of a waiting execution (a module-level ``CODE`` switch, as a
deploy would), then checks the status, what the journal holds and how often each side
effect ran.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import tenacity

from durable_core import (
    DurableContext,
    ExecutionNotParkedError,
    ExecutionNotRunningError,
    ExecutionStatus,
    MemoryStore,
    NonDeterminismError,
    OperationStatus,
    RetryPolicy,
    Runtime,
    ValidationError,
    durable,
)
from durable_core.parking import FAIL_OPERATION_ID, FailRequest
from durable_core.testing import DurableTestRunner, VirtualClock
from saga import SagaContext, SagaStatus, saga, saga_status

CODE = {"version": "old"}
HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def old_code() -> None:
    CODE["version"] = "old"


def _plain(calls: Counter[str]) -> Any:
    @durable(name="tests:plain")
    def plain(ctx: DurableContext, event: None) -> str:
        ctx.step("a", lambda sc: calls.update(["a"]))
        if CODE["version"] == "old":
            ctx.wait("pause", HOUR)
        else:
            try:  # code that swallows the error must not get further either
                ctx.step("renamed", lambda sc: calls.update(["renamed"]))
            except NonDeterminismError:
                ctx.step("fallback", lambda sc: calls.update(["fallback"]))
        ctx.step("b", lambda sc: calls.update(["b"]))
        return "done"

    return plain


def _started(calls: Counter[str]) -> tuple[Runtime, VirtualClock, str]:
    clock = VirtualClock()
    rt = Runtime(MemoryStore(), functions=[_plain(calls)], clock=clock)
    ex = rt.run("tests:plain", None, execution_id="order-1")
    assert ex.status is ExecutionStatus.RUNNING  # waiting an hour
    return rt, clock, ex.id


def test_changed_code_parks_the_execution_with_the_divergence_and_records_nothing(
    calls: Counter[str],
) -> None:
    rt, clock, eid = _started(calls)
    before = rt.operations(eid)
    CODE["version"] = "new"
    clock.advance(HOUR)
    assert rt.tick() == 1

    ex = rt.get(eid)
    assert ex.status is ExecutionStatus.RUNNING
    assert ex.error is not None
    assert ex.error.type == "durable_core.errors.NonDeterminismError"
    assert "position 2" in ex.error.message
    assert "'pause' of type WAIT" in ex.error.message
    assert "'renamed' of type STEP" in ex.error.message
    assert ex.waiting_for is not None
    assert ex.waiting_for.startswith("parked: non-determinism")
    assert f"durable retry {eid}" in ex.waiting_for
    assert rt.operations(eid) == before  # nothing recorded, the fallback neither
    assert calls == Counter({"a": 1})
    assert ex.wake_at == clock.now() + rt.options.park_retry_delay
    assert rt.tick() == 0  # not offered again in a hot loop


def test_reverting_the_code_and_retrying_completes_with_each_effect_once(
    calls: Counter[str],
) -> None:
    rt, clock, eid = _started(calls)
    CODE["version"] = "new"
    clock.advance(HOUR)
    rt.tick()
    CODE["version"] = "old"  # the deploy is rolled back
    assert rt.retry(eid, actor="ops-an").wake_at == clock.now()
    assert rt.tick() == 1

    assert rt.result(eid) == "done"
    assert calls == Counter({"a": 1, "b": 1})


def test_a_parked_execution_is_offered_again_after_the_park_delay(calls: Counter[str]) -> None:
    rt, clock, eid = _started(calls)
    CODE["version"] = "new"
    clock.advance(HOUR)
    rt.tick()
    CODE["version"] = "old"
    clock.advance(rt.options.park_retry_delay)
    assert rt.tick() == 1
    assert rt.result(eid) == "done"


def test_failing_a_parked_plain_function_ends_it_failed_with_actor_and_reason(
    calls: Counter[str],
) -> None:
    rt, clock, eid = _started(calls)
    CODE["version"] = "new"
    clock.advance(HOUR)
    rt.tick()
    rt.fail(eid, "order cancelled by hand", actor="ops-binh")
    assert rt.tick() == 1

    ex = rt.get(eid)
    assert ex.status is ExecutionStatus.FAILED
    assert ex.error is not None
    assert ex.error.type == "durable_core.errors.OperatorFailedError"
    assert "ops-binh" in ex.error.message
    assert "order cancelled by hand" in ex.error.message
    assert "position 2" in ex.error.message
    record = next(op for op in rt.operations(eid) if op.id == FAIL_OPERATION_ID)
    request = FailRequest.model_validate_json(record.payload or "")
    assert (request.actor, request.reason, request.position) == (
        "ops-binh",
        "order cancelled by hand",
        "2",
    )
    assert calls == Counter({"a": 1})


def test_retry_and_fail_refuse_what_is_not_parked_and_record_nothing(
    calls: Counter[str],
) -> None:
    rt, clock, eid = _started(calls)
    with pytest.raises(ExecutionNotParkedError, match="not parked"):
        rt.retry(eid)
    with pytest.raises(ExecutionNotParkedError, match="not parked"):
        rt.fail(eid, "why not")
    CODE["version"] = "new"
    clock.advance(HOUR)
    rt.tick()
    parked = rt.get(eid)
    with pytest.raises(ValidationError, match="reason"):
        rt.fail(eid, "  ")
    with pytest.raises(ValidationError, match="actor"):
        rt.retry(eid, actor="")
    assert rt.get(eid) == parked  # nothing recorded, no lease taken
    rt.fail(eid, "first")
    CODE["version"] = "old"
    rt.tick()
    with pytest.raises(ExecutionNotRunningError, match="already finished"):
        rt.fail(eid, "again")


# --- sagas ------------------------------------------------------------------------------------


def _trip(effects: list[str]) -> Any:
    flaky = {"left": 1}

    def undo(name: str) -> Any:
        def run(c: Any) -> None:
            if name == "hotel" and flaky["left"]:
                flaky["left"] -= 1
                raise RuntimeError("hotel API down")  # one durable retry timer mid-rollback
            effects.append(f"undo:{name}")

        return run

    def do(name: str) -> Any:
        return lambda sc: effects.append(name)

    slow_undo = RetryPolicy(
        stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_fixed(timedelta(minutes=5))
    )

    @saga(name="tests:trip")
    def trip(s: SagaContext, event: None) -> str:
        s.step("flight", do("flight"), compensate=undo("flight"))
        s.step("hotel", do("hotel"), compensate=undo("hotel"), compensation_retry=slow_undo)
        s.step("car", do("car"), compensate=undo("car"))
        s.ctx.wait("pause" if CODE["version"] == "old" else "renamed-pause", HOUR)
        s.step("tickets", do("tickets"), compensate=undo("tickets"))
        return "booked"

    return trip


@pytest.mark.parametrize("always_replay", [False, True])
def test_failing_a_parked_saga_compensates_each_completed_step_once_in_reverse_order(
    always_replay: bool,
) -> None:
    effects: list[str] = []
    runner = DurableTestRunner(_trip(effects), always_replay=always_replay)
    assert runner.run(None, skip_time=False).status is ExecutionStatus.RUNNING
    CODE["version"] = "new"
    parked = runner.resume()  # skips the hour; the replay diverges at the wait
    assert parked.status is ExecutionStatus.RUNNING
    assert parked.error is not None and "NonDeterminismError" in parked.error.type

    operator = Runtime(runner.store, clock=runner.clock)  # as `durable fail` would
    operator.fail(runner.execution_id, "trip abandoned", actor="ops-chi")
    result = runner.resume()  # rolls back, through a retry timer of the hotel's undo

    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None
    assert result.error.type == "saga.errors.SagaCompensated"
    assert "ops-chi" in result.error.message
    assert effects == ["flight", "hotel", "car", "undo:car", "undo:hotel", "undo:flight"]
    ids = [op.id for op in result.operations]
    assert len(ids) == len(set(ids))  # the rollback's records took fresh ids


# --- the whole execution parks: child contexts and parallel branches --------------------------


def _nested(calls: Counter[str]) -> Any:
    def branch(name: str) -> Any:
        def run(c: DurableContext) -> str:
            step = name if CODE["version"] == "old" or name == "left" else f"{name}-renamed"
            c.step(step, lambda sc: calls.update([name]))
            c.wait(f"{name}-pause", HOUR)
            return name

        return run

    @durable(name="tests:nested")
    def nested(ctx: DurableContext, event: None) -> list[str]:
        inner = ctx.run_in_child_context("inner", branch("inner"))
        both = ctx.parallel([branch("left"), branch("right")], name="pair")
        ctx.step("after", lambda sc: calls.update(["after"]))
        return [inner, *both.values()]

    return nested


def test_a_divergence_inside_a_child_context_or_a_branch_parks_the_whole_execution(
    calls: Counter[str],
) -> None:
    clock = VirtualClock()
    rt = Runtime(MemoryStore(), functions=[_nested(calls)], clock=clock)
    eid = rt.run("tests:nested", None).id  # waits in the child context
    clock.advance(HOUR)
    rt.tick()  # the child is done; both branches wait
    right = {op.id: op for op in rt.operations(eid) if (op.name or "").startswith("right")}
    CODE["version"] = "new"  # the right branch's step is renamed
    clock.advance(HOUR)
    rt.tick()

    ex = rt.get(eid)
    assert ex.status is ExecutionStatus.RUNNING
    assert ex.error is not None and "'right-renamed' of type STEP" in ex.error.message
    ops = rt.operations(eid)
    assert all(op.status is not OperationStatus.FAILED for op in ops)  # no branch failed
    assert {op.id: op for op in ops if (op.name or "").startswith("right")} == right

    CODE["version"] = "old"
    rt.retry(eid)
    rt.tick()
    assert rt.result(eid) == ["inner", "left", "right"]
    assert calls == Counter({"inner": 1, "left": 1, "right": 1, "after": 1})


def test_a_divergence_inside_a_child_context_is_not_recorded_as_its_failure(
    calls: Counter[str],
) -> None:
    clock = VirtualClock()
    rt = Runtime(MemoryStore(), functions=[_nested(calls)], clock=clock)
    eid = rt.run("tests:nested", None).id  # waits inside the child context "inner"
    CODE["version"] = "new"

    @durable(name="tests:nested")
    def changed(ctx: DurableContext, event: None) -> None:
        ctx.run_in_child_context("inner", lambda c: c.step("other", lambda sc: 1))

    rt.register(changed)
    clock.advance(HOUR)
    rt.tick()

    ex = rt.get(eid)
    assert ex.status is ExecutionStatus.RUNNING and ex.error is not None
    assert "'other' of type STEP" in ex.error.message
    # run_child catches the error to record the child FAILED: that write is refused
    assert all(op.status is not OperationStatus.FAILED for op in rt.operations(eid))


def test_failing_a_parked_saga_with_the_old_code_back_undoes_every_completed_step() -> None:
    effects: list[str] = []
    runner = DurableTestRunner(_trip(effects), always_replay=False)
    runner.run(None, skip_time=False)
    CODE["version"] = "new"
    runner.resume()  # parked at the renamed wait
    CODE["version"] = "old"  # the deploy is rolled back, but the trip is abandoned anyway
    Runtime(runner.store, clock=runner.clock).fail(runner.execution_id, "abandoned")
    result = runner.resume()

    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None and result.error.type == "saga.errors.SagaCompensated"
    assert effects == ["flight", "hotel", "car", "undo:car", "undo:hotel", "undo:flight"]
    ops = runner.store.load_operations(runner.execution_id)
    record = next(op for op in ops if op.id == FAIL_OPERATION_ID)
    assert FailRequest.model_validate_json(record.payload or "").position == "4"  # the wait


def test_invoking_a_function_the_worker_does_not_have_parks_until_it_is_registered() -> None:
    @durable(name="tests:child")
    def child(ctx: DurableContext, n: int) -> int:
        return n * 2

    @durable(name="tests:parent")
    def parent(ctx: DurableContext, event: None) -> int:
        try:
            return int(ctx.invoke("tests:child", 21))
        except Exception:  # swallowing it does not make the parent fail or go on
            return -1

    rt = Runtime(MemoryStore(), functions=[parent], clock=VirtualClock())
    ex = rt.run(parent, None, execution_id="p-1")
    assert ex.status is ExecutionStatus.RUNNING
    assert ex.error is not None
    assert ex.error.type == "durable_core.errors.FunctionNotRegisteredError"
    assert ex.waiting_for is not None and ex.waiting_for.startswith("parked: function not reg")

    rt.register(child)  # the deploy that registers it
    rt.retry("p-1")
    rt.drive("p-1")  # starts and runs the child
    rt.tick()  # the parent, woken by the child's end
    assert rt.result("p-1") == 42


def test_failing_a_saga_whose_parallel_branches_changed_compensates_them_once() -> None:
    effects: list[str] = []

    def do(name: str) -> Any:
        return lambda sc: effects.append(name)

    def undo(name: str) -> Any:
        return lambda c: effects.append(f"undo:{name}")

    @saga(name="tests:fanout")
    def fanout(s: SagaContext, event: None) -> None:
        s.step("order", do("order"), compensate=undo("order"))
        second = "hotel" if CODE["version"] == "old" else "hostel"
        s.parallel(
            "book",
            [
                s.branch("flight", do("flight"), compensate=undo("flight")),
                s.branch(second, do(second), compensate=undo(second)),
            ],
        )
        s.ctx.wait("pause", HOUR)

    runner = DurableTestRunner(fanout, always_replay=False)
    runner.run(None, skip_time=False)
    CODE["version"] = "new"
    parked = runner.resume()
    assert parked.status is ExecutionStatus.RUNNING
    assert parked.error is not None and "branch 'hostel'" in parked.error.message

    Runtime(runner.store, clock=runner.clock).fail(runner.execution_id, "stop", actor="ops")
    result = runner.resume()

    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None and result.error.type == "saga.errors.SagaCompensated"
    assert sorted(effects[:3]) == ["flight", "hotel", "order"]
    assert effects[3:] == ["undo:order"]  # the batch diverged as a whole: what preceded it
    # The old branches are unknown to the changed code: named, never claimed undone (in the
    # order they were recorded, which for concurrent branches is the order they finished).
    assert any(
        f"NOT undone: {a}, {b}" in result.error.message
        for a, b in (("book/flight", "book/hotel"), ("book/hotel", "book/flight"))
    )
    outcome = saga_status(Runtime(runner.store, clock=runner.clock), runner.execution_id)
    assert outcome.status is SagaStatus.PARTIALLY_COMPENSATED
    assert sorted(outcome.not_undone) == ["book/flight", "book/hotel"]
