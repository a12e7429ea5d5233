"""Child contexts: their own id space, one checkpointed result, failures replayed."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from durable_core import (
    ChildContextError,
    DurableContext,
    ExecutionStatus,
    OperationStatus,
    OperationType,
    durable,
)


def test_a_child_has_its_own_id_space(durable_runner: Any) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> int:
        ctx.step("a", lambda sc: 1)
        total = ctx.run_in_child_context(
            "child", lambda c: c.step("a", lambda sc: 2) + c.step("b", lambda sc: 3)
        )
        return total + ctx.step("b", lambda sc: 4)

    result = durable_runner(wf).run(None)

    assert result.result == 9
    child = result.get_context("child")
    inner = result.children(child)
    top = [op for op in result.operations if op.parent_id is None]
    assert [op.name for op in inner] == ["a", "b"]
    assert [op.name for op in top] == ["a", "child", "b"]
    assert {op.id for op in inner}.isdisjoint({op.id for op in top})
    assert child.result == 5


def test_a_finished_child_returns_its_recorded_result_without_running(
    durable_runner: Any, calls: Counter[str]
) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> list[int]:
        def child(c: DurableContext) -> list[int]:
            calls["child-body"] += 1
            return [c.step("x", lambda sc: 10), c.step("y", lambda sc: 20)]

        values = ctx.run_in_child_context("pair", child)
        ctx.wait("later", timedelta(hours=3))
        return values

    result = durable_runner(wf, always_replay=False).run(None)

    assert result.result == [10, 20]
    assert calls["child-body"] == 1  # replayed from the CONTEXT record after the wait
    assert result.get_context("pair").status is OperationStatus.SUCCEEDED


def test_a_child_suspends_and_resumes_inside(durable_runner: Any, calls: Counter[str]) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> str:
        def child(c: DurableContext) -> str:
            calls["child-body"] += 1
            c.wait("inner-wait", timedelta(days=2))
            return c.step("after", lambda sc: "ok")

        return ctx.run_in_child_context("slow", child)

    result = durable_runner(wf, always_replay=False).run(None)
    assert result.result == "ok"
    assert calls["child-body"] == 2  # ran, suspended inside, re-ran to finish
    assert result.get_wait("inner-wait").parent_id == result.get_context("slow").id


def test_a_child_failure_is_recorded_once_and_reraised_on_replay(
    durable_runner: Any, calls: Counter[str]
) -> None:
    seen: list[tuple[str, str]] = []

    @durable
    def wf(ctx: DurableContext, event: None) -> str:
        def child(c: DurableContext) -> None:
            calls["child-body"] += 1
            raise LookupError("no such room")

        try:
            ctx.run_in_child_context("book-room", child)
        except ChildContextError as e:
            seen.append((e.error_type, str(e)))
        ctx.wait("later", 60)
        return "handled"

    result = durable_runner(wf, always_replay=False).run(None)

    assert result.result == "handled"
    assert calls["child-body"] == 1
    assert len(seen) == 2
    assert seen[0] == seen[1]
    assert seen[0][0] == "LookupError"
    assert "no such room" in seen[0][1]
    records = [op for op in result.operations if op.type is OperationType.CONTEXT]
    assert len(records) == 1
    assert records[0].status is OperationStatus.FAILED


def test_an_uncaught_child_failure_fails_the_execution(durable_runner: Any) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> None:
        ctx.run_in_child_context("boom", lambda c: 1 / 0)

    result = durable_runner(wf).run(None)
    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None
    assert result.error.type == "durable_core.errors.ChildContextError"
    assert "ZeroDivisionError" in result.error.message
