"""Deterministic ids, replay mode, and the non-determinism check."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from durable_core import DurableContext, ExecutionStatus, durable
from durable_core.testing import DurableTestRunner

SECOND_STEP = "process-payment"
"""Switched by a test between invocations, as a deploy would change the code."""


@durable(name="checkout")
def checkout(ctx: DurableContext, event: None) -> str:
    ctx.step("validate", lambda sc: True)
    ctx.step(SECOND_STEP, lambda sc: "charged")
    ctx.wait("fraud-review", timedelta(hours=1))
    return "ok"


def nested(ctx: DurableContext, event: None) -> int:
    a = ctx.step("a", lambda sc: 1)
    b = ctx.run_in_child_context(
        "kid", lambda c: c.step("a", lambda sc: 2) + c.step("b", lambda sc: 3)
    )
    ctx.wait("w", 5)
    cb = ctx.create_callback("cb")
    return a + b + len(cb.token) * 0


def test_operation_ids_are_the_same_in_every_run() -> None:
    first = DurableTestRunner(nested).run(None, execution_id="x")
    second = DurableTestRunner(nested).run(None, execution_id="y")

    assert [op.id for op in first.operations] == [op.id for op in second.operations]
    assert len({op.id for op in first.operations}) == len(first.operations)


def test_ids_do_not_depend_on_replay() -> None:
    normal = DurableTestRunner(nested).run(None)
    replayed = DurableTestRunner(nested, always_replay=True).run(None)
    assert [(op.id, op.name) for op in normal.operations] == [
        (op.id, op.name) for op in replayed.operations
    ]


def test_is_replaying_is_true_only_while_replaying(durable_runner: Any) -> None:
    marks: list[tuple[str, bool]] = []

    @durable
    def wf(ctx: DurableContext, event: None) -> None:
        marks.append(("start", ctx.is_replaying))
        ctx.step("a", lambda sc: 1)
        marks.append(("after-a", ctx.is_replaying))
        ctx.wait("w", timedelta(minutes=5))
        marks.append(("after-wait", ctx.is_replaying))
        ctx.step("b", lambda sc: 2)
        marks.append(("after-b", ctx.is_replaying))

    durable_runner(wf, always_replay=False).run(None)

    assert marks == [
        ("start", False),  # first invocation: nothing recorded
        ("after-a", False),
        ("start", True),  # second invocation: replaying the recorded step a
        ("after-a", True),
        ("after-wait", False),  # the wait completes now: new territory
        ("after-b", False),
    ]


def test_changed_code_parks_with_a_non_determinism_error(
    durable_runner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = durable_runner(checkout)
    suspended = runner.run(None, execution_id="order-42", skip_time=False)
    assert [op.name for op in suspended.operations] == [
        "validate",
        "process-payment",
        "fraud-review",
    ]

    # A deploy renames the second step while the execution waits.
    monkeypatch.setattr(f"{__name__}.SECOND_STEP", "send-email")
    result = runner.resume()

    assert result.status is ExecutionStatus.RUNNING  # parked: nothing undone, nothing lost
    assert result.error is not None
    assert result.error.type == "durable_core.errors.NonDeterminismError"
    message = result.error.message
    assert "'order-42'" in message
    assert "position 2" in message
    assert "'process-payment' of type STEP" in message
    assert "'send-email' of type STEP" in message
    assert message.index("process-payment") < message.index("send-email")  # expected first
    assert "pin" in message  # says how to fix it
    assert "durable retry order-42" in (result.execution.waiting_for or "")
    assert len(result.operations) == 3  # nothing was recorded for the new code


def test_a_different_operation_type_is_also_detected(durable_runner: Any) -> None:
    kind = {"value": "step"}

    @durable
    def wf(ctx: DurableContext, event: None) -> None:
        if kind["value"] == "step":
            ctx.step("notify", lambda sc: 1)
        else:
            ctx.wait("notify", 5)
        ctx.wait("hold", 60)

    runner = durable_runner(wf)
    runner.run(None, skip_time=False)
    kind["value"] = "wait"
    result = runner.resume()

    assert result.status is ExecutionStatus.RUNNING
    assert result.error is not None
    assert "NonDeterminismError" in result.error.type
    assert "of type STEP" in result.error.message
    assert "of type WAIT" in result.error.message
