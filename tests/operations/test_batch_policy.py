"""Completion policies (AWS's SDK rules), the batch result, early completion and the fate
of a branch given up by the decision."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pytest

from durable_core import (
    DurableContext,
    ExecutionStatus,
    OperationStatus,
    Runtime,
    StepContext,
    ValidationError,
    durable,
)
from durable_core.function import DurableFunction
from durable_core.operations.batch import (
    BatchError,
    BatchItemStatus,
    BatchResult,
    CompletionPolicy,
    CompletionReason,
)
from tests.operations.conftest import Ledger

S, F, C, N = (
    BatchItemStatus.SUCCEEDED,
    BatchItemStatus.FAILED,
    BatchItemStatus.STARTED,
    BatchItemStatus.NOT_STARTED,
)
WAIT_S = 10
TOLERANCE = CompletionReason.FAILURE_TOLERANCE_EXCEEDED
MIN_REACHED = CompletionReason.MIN_SUCCESSFUL_REACHED


class ItemError(Exception):
    """What a failing item raises."""


def planned_map(
    plan: str, policy: CompletionPolicy | None, ledger: Ledger, concurrency: int = 1
) -> DurableFunction[None, BatchResult[int]]:
    """A map over ``plan`` ("s" succeeds, "f" fails), one item at a time by default."""

    @durable(name=f"tests:plan_{plan}_{concurrency}")
    def wf(ctx: DurableContext, event: None) -> BatchResult[int]:
        def item(c: DurableContext, kind: str, i: int) -> int:
            ledger.hit(f"ran-{i}")
            if kind == "f":
                raise ItemError(f"item {i} is broken")
            return i

        return ctx.map(list(plan), item, max_concurrency=concurrency, completion=policy)

    return wf


def run_plan(
    rt: Runtime, plan: str, policy: CompletionPolicy | None, ledger: Ledger
) -> BatchResult[int]:
    ex = rt.run(planned_map(plan, policy, ledger), None)
    assert ex.status is ExecutionStatus.SUCCEEDED, ex.error
    result: BatchResult[int] = rt.result(ex.id, BatchResult[int])
    return result


@pytest.mark.parametrize(
    ("plan", "policy", "reason", "statuses"),
    [
        ("sfss", None, CompletionReason.FAILURE_TOLERANCE_EXCEEDED, [S, F, N, N]),
        ("ssss", None, CompletionReason.ALL_COMPLETED, [S, S, S, S]),
        ("sfsf", CompletionPolicy.all_completed(), CompletionReason.ALL_COMPLETED, [S, F, S, F]),
        ("sfs", CompletionPolicy(), CompletionReason.FAILURE_TOLERANCE_EXCEEDED, [S, F, N]),
        ("fsss", CompletionPolicy.first_successful(), "MIN_SUCCESSFUL_REACHED", [F, S, N, N]),
        ("fff", CompletionPolicy.first_successful(), "ALL_COMPLETED", [F, F, F]),
        ("s", CompletionPolicy.first_successful(), "ALL_COMPLETED", [S]),
        ("ssss", CompletionPolicy.at_least(2), "MIN_SUCCESSFUL_REACHED", [S, S, N, N]),
        ("ffss", CompletionPolicy.at_least(2), "ALL_COMPLETED", [F, F, S, S]),
        ("fffs", CompletionPolicy.at_least(2), "ALL_COMPLETED", [F, F, F, S]),
        ("fsf", CompletionPolicy(min_successful=2, tolerated_failure_count=0), TOLERANCE, [F, N, N]),  # noqa: E501 - one case a line
        ("fsfs", CompletionPolicy.tolerate_failures(1), "FAILURE_TOLERANCE_EXCEEDED", [F, S, F, N]),
        ("fsss", CompletionPolicy.tolerate_failures(1), "ALL_COMPLETED", [F, S, S, S]),
        ("fsss", CompletionPolicy.tolerate_failure_percentage(25), "ALL_COMPLETED", [F, S, S, S]),
        ("ffss", CompletionPolicy.tolerate_failure_percentage(25), TOLERANCE, [F, F, N, N]),
    ],
)  # fmt: skip
def test_policy_decides_and_never_starts_the_rest(
    rt: Runtime,
    ledger: Ledger,
    plan: str,
    policy: CompletionPolicy | None,
    reason: str,
    statuses: list[BatchItemStatus],
) -> None:
    result = run_plan(rt, plan, policy, ledger)
    assert result.completion_reason == reason
    assert [item.status for item in result.items] == statuses
    assert [item.index for item in result.items] == list(range(len(plan)))
    started = {f"ran-{i}" for i, s in enumerate(statuses) if s is not N}
    assert ledger.snapshot() == dict.fromkeys(started, 1)
    assert result.values() == [i for i, s in enumerate(statuses) if s is S]
    for item in result.failed():
        assert item.error is not None
        assert item.error.type == f"{__name__}.ItemError"
        assert item.error.message == f"item {item.index} is broken"


def test_raise_if_failed_lists_every_failure(rt: Runtime, ledger: Ledger) -> None:
    result = run_plan(rt, "fsf", CompletionPolicy.all_completed(), ledger)
    with pytest.raises(BatchError) as caught:
        result.raise_if_failed()
    err = caught.value
    assert [i.index for i in err.failures] == [0, 2]
    assert err.completion_reason is CompletionReason.ALL_COMPLETED
    assert "2 of 3 branch(es) failed" in str(err)
    assert "#0 'map-item-0'" in str(err)
    assert "ItemError: item 2 is broken" in str(err)
    ok = run_plan(rt, "ss", None, ledger)
    assert ok.raise_if_failed() is ok


def test_early_completion_cancels_a_running_branch_and_discards_its_later_work(
    rt: Runtime, ledger: Ledger
) -> None:
    """Branch 0 is mid-step when branch 1 fails (fail fast). Branch 0 is left STARTED (no
    record of its end, as AWS's SDK leaves it); its step result and its next operations are
    never recorded."""
    started, release = threading.Event(), threading.Event()

    def slow(ctx: DurableContext) -> str:
        def body(sc: StepContext) -> str:
            started.set()
            assert release.wait(WAIT_S)
            ledger.hit("slow-body-finished")
            return "late"

        value = ctx.step("slow", body)
        ledger.hit("after-slow")  # must never happen: the step's write is refused
        return value

    def failing(ctx: DurableContext) -> str:
        assert started.wait(WAIT_S)
        raise ItemError("fail fast")

    @durable(name="tests:cancel_running")
    def wf(ctx: DurableContext, event: None) -> list[str]:
        result = ctx.parallel([slow, failing], name="race")
        ctx.step("after-batch", lambda sc: ledger.hit("after-batch"))
        return [item.status.value for item in result.items]

    ex = rt.run(wf, None)
    assert ex.status is ExecutionStatus.SUCCEEDED, ex.error
    assert rt.result(ex.id) == ["STARTED", "FAILED"]
    release.set()
    _join_batch_threads()
    assert ledger["slow-body-finished"] == 1
    assert ledger["after-slow"] == 0
    ops = {op.name: op for op in rt.operations(ex.id)}
    assert "parallel-branch-0" not in ops  # it recorded nothing: no end, no inner step
    assert ops["parallel-branch-1"].status is OperationStatus.FAILED
    assert "slow" not in ops  # the orphan's step result was refused
    assert ops["race"].status is OperationStatus.SUCCEEDED


def test_first_successful_cancels_the_slower_branch(rt: Runtime, ledger: Ledger) -> None:
    release = threading.Event()

    def slow(ctx: DurableContext) -> str:
        return ctx.step("slow", lambda sc: (release.wait(WAIT_S), "slow")[1])

    @durable(name="tests:first_wins")
    def wf(ctx: DurableContext, event: None) -> BatchResult[str]:
        return ctx.parallel(
            [slow, lambda c: c.step("fast", lambda sc: "fast")],
            completion=CompletionPolicy.first_successful(),
            branch_names=["slow", "fast"],
        )

    ex = rt.run(wf, None)
    release.set()
    _join_batch_threads()
    result = rt.result(ex.id, BatchResult[str])
    assert result.completion_reason is CompletionReason.MIN_SUCCESSFUL_REACHED
    assert [(i.name, i.status) for i in result.items] == [("slow", C), ("fast", S)]
    assert result.values() == ["fast"]


@dataclass
class Point:
    x: int
    y: int


def test_values_are_typed_by_each_branch_annotation_and_the_result_serializes(
    rt: Runtime,
) -> None:
    def make(sc: StepContext) -> Point:
        return Point(1, 2)

    def point(ctx: DurableContext) -> Point:
        return ctx.step("p", make)

    def label(ctx: DurableContext) -> str:
        return "here"

    seen: list[tuple[type, type]] = []

    @durable(name="tests:typed")
    def wf(ctx: DurableContext, event: None) -> BatchResult[Any]:
        result: BatchResult[Any] = ctx.parallel([point, label])
        seen.append((type(result.items[0].value), type(result.items[1].value)))
        return result

    ex = rt.run(wf, None)
    assert seen == [(Point, str)]
    back = rt.result(ex.id, BatchResult[Any])
    assert back.items[0].value == {"x": 1, "y": 2}
    assert back.completion_reason is CompletionReason.ALL_COMPLETED
    typed = BatchResult[Point].model_validate_json(
        BatchResult[Point](name="b", items=[], completion_reason="ALL_COMPLETED").model_dump_json()
    )
    assert typed.items == []


def test_map_over_no_items_is_an_empty_result(rt: Runtime) -> None:
    @durable(name="tests:empty_map")
    def wf(ctx: DurableContext, event: None) -> list[Any]:
        result: BatchResult[Any] = ctx.map([], lambda c, x, i: x)
        return [result.completion_reason.value, result.items]

    ex = rt.run(wf, None)
    assert rt.result(ex.id) == ["ALL_COMPLETED", []]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_successful": 0},
        {"min_successful": True},
        {"tolerated_failure_count": -1},
        {"tolerated_failure_count": 1.5},
        {"tolerated_failure_percentage": 101},
        {"tolerated_failure_percentage": -0.1},
        {"tolerated_failure_percentage": "10"},
    ],
)
def test_policy_is_validated_when_built(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CompletionPolicy(**kwargs)


@pytest.mark.parametrize(
    ("policy", "counts", "expected"),
    [
        (CompletionPolicy.all_successful(), (3, 0, 3), CompletionReason.ALL_COMPLETED),
        (CompletionPolicy.all_successful(), (2, 1, 5), CompletionReason.FAILURE_TOLERANCE_EXCEEDED),
        (CompletionPolicy.all_successful(), (2, 0, 5), None),
        (CompletionPolicy(min_successful=2, tolerated_failure_count=0), (2, 1, 4), TOLERANCE),
        (CompletionPolicy(min_successful=2, tolerated_failure_count=0), (2, 0, 4), MIN_REACHED),
        (CompletionPolicy.at_least(3), (1, 2, 4), None),  # unreachable, yet it runs on
        (CompletionPolicy.at_least(3), (1, 3, 4), CompletionReason.ALL_COMPLETED),
        (CompletionPolicy.at_least(2), (2, 0, 2), CompletionReason.ALL_COMPLETED),
        (CompletionPolicy(), (3, 1, 9), CompletionReason.FAILURE_TOLERANCE_EXCEEDED),
        (CompletionPolicy(), (0, 0, 0), CompletionReason.ALL_COMPLETED),
        (CompletionPolicy.tolerate_failure_percentage(50), (0, 2, 4), None),
        (CompletionPolicy.tolerate_failure_percentage(50), (0, 3, 4), "FAILURE_TOLERANCE_EXCEEDED"),
        (CompletionPolicy.all_completed(), (0, 4, 4), CompletionReason.ALL_COMPLETED),
    ],
)  # fmt: skip
def test_decide_depends_only_on_counts(
    policy: CompletionPolicy, counts: tuple[int, int, int], expected: str | None
) -> None:
    ok, bad, total = counts
    assert policy.decide(succeeded=ok, failed=bad, total=total) == expected


def _join_batch_threads() -> None:
    """Wait (bounded) for orphaned branch threads to end."""
    for t in threading.enumerate():
        if t.name.startswith(("durable-parallel", "durable-map")):
            t.join(WAIT_S)
            assert not t.is_alive(), f"{t.name} still running"
