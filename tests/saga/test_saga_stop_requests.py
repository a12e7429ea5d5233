"""Cancel and terminate are requests of their own kind: text never decides, the first counts.

Before they were separate, ``terminate`` was a cancel whose reason started with a prefix,
so a customer's cancel reason that happened to start with it ended the saga with nothing
undone, and a second cancel overwrote the first one's reason.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from saga_helpers import Effects, parking_saga, settle

from durable_core import (
    ExecutionNotFoundError,
    ExecutionNotRunningError,
    ExecutionStatus,
    RetryPolicy,
    Runtime,
    StopKind,
    ValidationError,
)
from durable_core.records import MAX_STOP_REQUESTS
from saga import (
    SagaContext,
    SagaFunction,
    SagaStatus,
    saga,
    saga_status,
    skip_compensation,
)


def waiting(fx: Effects) -> SagaFunction[None, str]:
    @saga(name="waits")
    def waits(s: SagaContext, event: None) -> str:
        s.step("a", fx.action("a"), compensate=fx.undo("a"))
        s.step("b", fx.action("b"), compensate=fx.undo("b"))
        s.ctx.create_callback("go", timeout=timedelta(days=1)).result()
        return "done"

    return waits


@pytest.mark.parametrize(
    "reason",
    [
        "saga-terminate: customer called",  # the old terminate prefix
        "terminate",
        "deadline",
        "   ",
        "x" * 2000,
        "Hủy đơn — khách gọi ☎",
    ],
)
def test_a_cancel_compensates_whatever_its_reason_says(rt: Runtime, reason: str) -> None:
    fx = Effects()
    ex = rt.run(waiting(fx))
    rt.cancel(ex.id, reason)
    ex = settle(rt, ex.id)

    assert ex.status is ExecutionStatus.CANCELLED
    assert fx.undone() == ["undo:b", "undo:a"]
    outcome = saga_status(rt, ex.id)
    assert outcome.status is SagaStatus.COMPENSATED
    assert outcome.cause is not None and outcome.cause.kind == "cancelled"
    recorded = rt.get(ex.id).stop_requests[0]
    assert recorded.reason == (reason.strip() or "no reason given")


def test_a_second_cancel_is_recorded_and_the_first_stands(rt: Runtime) -> None:
    fx = Effects()
    ex = rt.run(waiting(fx))
    rt.cancel(ex.id, "customer called", actor="ana")
    again = rt.cancel(ex.id, "duplicate click", actor="bo")

    first = again.stop_request(StopKind.CANCEL)
    assert first is not None and (first.reason, first.actor) == ("customer called", "ana")
    assert [(r.reason, r.actor) for r in again.stop_requests] == [
        ("customer called", "ana"),
        ("duplicate click", "bo"),
    ]
    ex = settle(rt, ex.id)
    assert fx.undone() == ["undo:b", "undo:a"]
    outcome = saga_status(rt, ex.id)
    assert outcome.cause is not None and outcome.cause.message == "customer called"


def test_terminate_while_compensating_stops_the_rollback_where_it_is(rt: Runtime) -> None:
    fx = Effects()

    @saga(name="slow-undo")
    def slow_undo(s: SagaContext, event: None) -> None:
        s.step("a", fx.action("a"), compensate=fx.undo("a"))
        s.step("b", fx.action("b"), compensate=fx.undo("b", always_fail=True))
        s.step("c", fx.action("c", fail=True), retry=RetryPolicy.no_retry())

    ex = rt.run(slow_undo)
    assert ex.status is ExecutionStatus.RUNNING  # b's undo waits to retry
    rt.cancel(ex.id, "hurry")  # absorbed: the rollback must finish
    rt.terminate(ex.id, "legal takes over", actor="ops")
    ex = settle(rt, ex.id)

    assert ex.status is ExecutionStatus.CANCELLED
    assert fx.count("undo:a") == 0
    outcome = saga_status(rt, ex.id)
    assert outcome.status is SagaStatus.TERMINATED
    assert outcome.not_undone == ["b", "a"]
    terminate = rt.get(ex.id).stop_request(StopKind.TERMINATE)
    assert terminate is not None and terminate.actor == "ops"


def test_terminate_of_a_parked_saga_records_its_actor(rt: Runtime) -> None:
    fx = Effects()

    ex = settle(rt, rt.start(parking_saga(fx)).id)
    assert saga_status(rt, ex.id).status is SagaStatus.COMPENSATION_FAILED
    rt.terminate(ex.id, "written off", actor="cfo")
    ex = settle(rt, ex.id)

    assert ex.status is ExecutionStatus.CANCELLED
    outcome = saga_status(rt, ex.id)
    assert outcome.status is SagaStatus.TERMINATED
    assert outcome.not_undone == ["b", "a"]
    assert fx.count("undo:a") == 0


def nested_parking(fx: Effects) -> SagaFunction[None, None]:
    """p1, then the nested saga ``nested``: k1 (its undo always fails: it parks), k2 fails."""

    @saga(name="kid")
    def kid(s: SagaContext, event: None) -> None:
        s.step(
            "k1",
            fx.action("k1"),
            compensate=fx.undo("k1", always_fail=True),
            compensation_retry=RetryPolicy.no_retry(),
        )
        s.step("k2", fx.action("k2", fail=True), retry=RetryPolicy.no_retry())

    @saga(name="parent")
    def parent(s: SagaContext, event: None) -> None:
        s.step("p1", fx.action("p1"), compensate=fx.undo("p1"))
        s.child("nested", kid, None)

    return parent


def test_a_nested_saga_skip_makes_the_parent_partially_compensated(rt: Runtime) -> None:
    fx = Effects()

    parent = nested_parking(fx)
    ex = settle(rt, rt.start(parent).id)
    skip_compensation(rt, ex.id, "refunded by phone")
    ex = settle(rt, ex.id)

    assert ex.status is ExecutionStatus.FAILED
    assert fx.count("undo:p1") == 1
    outcome = saga_status(rt, ex.id)
    assert outcome.status is SagaStatus.PARTIALLY_COMPENSATED
    assert outcome.not_undone == ["nested/k1"]
    assert ex.error is not None and "nested/k1" in ex.error.message


def test_terminate_during_a_nested_rollback_lists_the_parents_steps(rt: Runtime) -> None:
    fx = Effects()

    parent = nested_parking(fx)
    ex = settle(rt, rt.start(parent).id)  # the kid's undo of k1 parks
    rt.terminate(ex.id, "give up")
    ex = settle(rt, ex.id)

    outcome = saga_status(rt, ex.id)
    assert outcome.status is SagaStatus.TERMINATED
    assert outcome.not_undone == ["p1", "nested/k1"]
    assert fx.count("undo:p1") == 0


def test_stop_requests_with_bad_input_record_nothing(rt: Runtime) -> None:
    fx = Effects()
    ex = rt.run(waiting(fx))

    @saga(name="quick")
    def quick(s: SagaContext, event: None) -> str:
        return str(s.step("a", fx.action("q"), compensate=fx.undo("q")))

    done = settle(rt, rt.start(quick, execution_id="other").id)
    assert done.status is ExecutionStatus.SUCCEEDED

    with pytest.raises(ExecutionNotFoundError):
        rt.cancel("no-such-execution", "x")
    with pytest.raises(ExecutionNotFoundError):
        rt.terminate("no-such-execution", "x")
    with pytest.raises(ExecutionNotRunningError, match="already finished"):
        rt.cancel("other", "too late")
    with pytest.raises(ExecutionNotRunningError, match="already finished"):
        rt.terminate("other", "too late")
    for blank in ("", "   "):
        with pytest.raises(ValidationError, match="terminate needs a non-empty reason"):
            rt.terminate(ex.id, blank)
    with pytest.raises(ValidationError, match="at most 2000"):
        rt.cancel(ex.id, "x" * 2001)
    with pytest.raises(ValidationError, match="actor"):
        rt.cancel(ex.id, "ok", actor="a" * 201)
    assert rt.get(ex.id).stop_requests == ()
    assert rt.get("other").stop_requests == ()

    for i in range(MAX_STOP_REQUESTS):
        rt.cancel(ex.id, f"click {i}")
    with pytest.raises(ValidationError, match="stop requests"):
        rt.terminate(ex.id, "one too many")
    assert len(rt.get(ex.id).stop_requests) == MAX_STOP_REQUESTS


def test_terminate_while_a_nested_uncertain_undo_is_parked_lists_it(rt: Runtime) -> None:
    """Found by the generated scenarios: the nested step failed (uncertain), so it was not
    among the succeeded steps, and its parked undo was left out of ``not_undone``."""
    fx = Effects()

    @saga(name="kid")
    def kid(s: SagaContext, event: None) -> None:
        s.step(
            "k1",
            fx.action("k1", fail=True),
            retry=RetryPolicy.no_retry(),
            compensate=fx.undo("k1", always_fail=True),
            compensate_uncertain=True,
            compensation_retry=RetryPolicy.no_retry(),
        )

    @saga(name="parent")
    def parent(s: SagaContext, event: None) -> None:
        s.step("p1", fx.action("p1"), compensate=fx.undo("p1"))
        s.child("nested", kid, None)

    ex = settle(rt, rt.start(parent).id)
    assert saga_status(rt, ex.id).status is SagaStatus.COMPENSATION_FAILED
    rt.terminate(ex.id, "give up")
    settle(rt, ex.id)

    outcome = saga_status(rt, ex.id)
    assert outcome.status is SagaStatus.TERMINATED
    assert outcome.not_undone == ["p1", "nested/k1"]


def test_parked_in_a_nested_rollback_lists_the_parents_steps_not_yet_undone(
    rt: Runtime,
) -> None:
    """Found by the generated scenarios: the parent's own steps were missing while parked."""
    fx = Effects()
    ex = settle(rt, rt.start(nested_parking(fx)).id)

    outcome = saga_status(rt, ex.id)
    assert outcome.status is SagaStatus.COMPENSATION_FAILED
    assert outcome.parked_on == "nested/k1"
    assert outcome.not_undone == ["p1", "nested/k1"]
