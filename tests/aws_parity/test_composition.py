"""Child contexts, parallel and map: every completion policy, empty batches, nesting.

Programs return a short string (the completion reason and the values) so the comparison
is about the operations; test_steps's ``dict-execution-result`` covers how a structured
execution result is written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aws_durable_execution_sdk_python.config import (
    CompletionConfig,
    Duration,
    MapConfig,
    ParallelConfig,
    StepConfig,
)
from aws_durable_execution_sdk_python.retries import RetryPresets

from durable_core import CompletionPolicy, DurableContext, RetryPolicy, durable
from durable_core import StepConfig as OurStepConfig

from .parity_history import assert_same_history
from .parity_run import Pair, ParityRunner
from .parity_xfail import diff

AWS_ONCE = StepConfig(retry_strategy=RetryPresets.none())
OURS_ONCE = OurStepConfig(retry=RetryPolicy.no_retry())


def _value(i: int, failing: frozenset[int] = frozenset({1, 3})) -> int:
    """``i * 10``, or a ValueError for the indexes in ``failing``."""
    if i in failing:
        raise ValueError(f"item {i} failed")
    return i * 10


def _summary(reason: Any, values: list[Any]) -> str:
    return f"{getattr(reason, 'value', reason)} {values}"


# --- child contexts -------------------------------------------------------------------------


def aws_child(event: Any, ctx: Any) -> str:
    def body(c: Any) -> str:
        a = c.step(lambda sc: "inner", name="inner-step")
        return a + "!"

    return ctx.run_in_child_context(body, name="child")


@durable
def ours_child(ctx: DurableContext, event: dict[str, Any]) -> str:
    def body(c: DurableContext) -> str:
        return c.step("inner-step", lambda sc: "inner") + "!"

    return ctx.run_in_child_context("child", body)


def aws_child_no_ops(event: Any, ctx: Any) -> str:
    return ctx.run_in_child_context(lambda c: "plain", name="child")


@durable
def ours_child_no_ops(ctx: DurableContext, event: dict[str, Any]) -> str:
    return ctx.run_in_child_context("child", lambda c: "plain")


def aws_child_in_child(event: Any, ctx: Any) -> str:
    def inner(c: Any) -> str:
        c.wait(Duration.from_seconds(1), name="nap")
        return c.step(lambda sc: "deep", name="deep-step")

    return ctx.run_in_child_context(
        lambda c: c.run_in_child_context(inner, name="inner"), name="outer"
    )


@durable
def ours_child_in_child(ctx: DurableContext, event: dict[str, Any]) -> str:
    def inner(c: DurableContext) -> str:
        c.wait("nap", 1)
        return c.step("deep-step", lambda sc: "deep")

    return ctx.run_in_child_context("outer", lambda c: c.run_in_child_context("inner", inner))


def aws_child_fails(event: Any, ctx: Any) -> str:
    def body(c: Any) -> str:
        c.step(lambda sc: _value(1), name="bad", config=AWS_ONCE)
        return "unreachable"

    try:
        ctx.run_in_child_context(body, name="child")
    except Exception:
        return "child failed"
    return "unreachable"


@durable
def ours_child_fails(ctx: DurableContext, event: dict[str, Any]) -> str:
    def body(c: DurableContext) -> str:
        c.step("bad", lambda sc: _value(1), OURS_ONCE)
        return "unreachable"

    try:
        ctx.run_in_child_context("child", body)
    except Exception:
        return "child failed"
    return "unreachable"


# --- parallel and map under each completion policy --------------------------------------


def _aws_parallel(
    n: int, completion: CompletionConfig | None, failing: frozenset[int]
) -> Callable[..., str]:
    def program(event: Any, ctx: Any) -> str:
        branches = [
            (
                lambda c, i=i: c.step(
                    lambda sc: _value(i, failing), name=f"task-{i}", config=AWS_ONCE
                )
            )
            for i in range(n)
        ]
        config = ParallelConfig(max_concurrency=1)
        if completion is not None:
            config = ParallelConfig(max_concurrency=1, completion_config=completion)
        result = ctx.parallel(branches, name="fan-out", config=config)
        return _summary(result.completion_reason, result.get_results())

    return program


def _ours_parallel(n: int, completion: CompletionPolicy | None, failing: frozenset[int]) -> Any:
    @durable
    def program(ctx: DurableContext, event: dict[str, Any]) -> str:
        branches = [
            (lambda c, i=i: c.step(f"task-{i}", lambda sc: _value(i, failing), OURS_ONCE))
            for i in range(n)
        ]
        result = ctx.parallel(branches, name="fan-out", max_concurrency=1, completion=completion)
        return _summary(result.completion_reason, result.values())

    return program


def _aws_map(
    n: int, completion: CompletionConfig | None, failing: frozenset[int]
) -> Callable[..., str]:
    def program(event: Any, ctx: Any) -> str:
        config = MapConfig(max_concurrency=1)
        if completion is not None:
            config = MapConfig(max_concurrency=1, completion_config=completion)
        result = ctx.map(
            list(range(n)),
            lambda c, item, i, items: c.step(
                lambda sc: _value(item, failing), name=f"item-{i}", config=AWS_ONCE
            ),
            name="each",
            config=config,
        )
        return _summary(result.completion_reason, result.get_results())

    return program


def _ours_map(n: int, completion: CompletionPolicy | None, failing: frozenset[int]) -> Any:
    @durable
    def program(ctx: DurableContext, event: dict[str, Any]) -> str:
        result = ctx.map(
            list(range(n)),
            lambda c, item, i: c.step(f"item-{i}", lambda sc: _value(item, failing), OURS_ONCE),
            name="each",
            max_concurrency=1,
            completion=completion,
        )
        return _summary(result.completion_reason, result.values())

    return program


POLICIES: dict[str, tuple[int, CompletionConfig | None, CompletionPolicy | None]] = {
    # name: (branches, AWS config, ours); branches 1 and 3 fail (0 in the last), others i * 10
    "default-all-succeed": (1, None, None),
    "default-fails-fast": (3, None, None),
    "all-successful": (3, CompletionConfig.all_successful(), CompletionPolicy.all_successful()),
    "all-completed": (4, CompletionConfig.all_completed(), CompletionPolicy.all_completed()),
    "min-successful": (5, CompletionConfig(min_successful=2), CompletionPolicy.at_least(2)),
    "min-successful-unreachable": (
        4,
        CompletionConfig(min_successful=3),
        CompletionPolicy.at_least(3),
    ),
    "tolerated-count-within": (
        4,
        CompletionConfig(tolerated_failure_count=2),
        CompletionPolicy.tolerate_failures(2),
    ),
    "tolerated-count-exceeded": (
        5,
        CompletionConfig(tolerated_failure_count=1),
        CompletionPolicy.tolerate_failures(1),
    ),
    "tolerated-percentage": (
        4,
        CompletionConfig(tolerated_failure_percentage=50),
        CompletionPolicy.tolerate_failure_percentage(50),
    ),
    "tolerated-percentage-exceeded": (
        5,
        CompletionConfig(tolerated_failure_percentage=20),
        CompletionPolicy.tolerate_failure_percentage(20),
    ),
    "first-successful": (
        3,
        CompletionConfig.first_successful(),
        CompletionPolicy.first_successful(),
    ),
    "first-successful-after-failure": (
        3,
        CompletionConfig.first_successful(),
        CompletionPolicy.first_successful(),
    ),
}


def _policy_pair(kind: str, policy: str) -> Pair:
    n, aws_config, ours_policy = POLICIES[policy]
    failing = frozenset({0} if policy == "first-successful-after-failure" else {1, 3})
    if kind == "parallel":
        return Pair(_aws_parallel(n, aws_config, failing), _ours_parallel(n, ours_policy, failing))
    return Pair(_aws_map(n, aws_config, failing), _ours_map(n, ours_policy, failing))


POLICY_CASES = [f"{kind}-{policy}" for kind in ("parallel", "map") for policy in POLICIES]


@pytest.mark.parametrize("case", [diff(c) for c in POLICY_CASES])
def test_batch_policy_history_matches_aws(parity: ParityRunner, case: str) -> None:
    kind, _, policy = case.partition("-")
    aws, ours = parity.run(case, _policy_pair(kind, policy))
    assert_same_history(aws.history, ours.history)
    assert aws.status == ours.status


# --- empty batches, concurrency, nesting ------------------------------------------------


def aws_empty_parallel(event: Any, ctx: Any) -> str:
    result = ctx.parallel([], name="nothing")
    return _summary(result.completion_reason, result.get_results())


@durable
def ours_empty_parallel(ctx: DurableContext, event: dict[str, Any]) -> str:
    result = ctx.parallel([], name="nothing")
    return _summary(result.completion_reason, result.values())


def aws_empty_map(event: Any, ctx: Any) -> str:
    result = ctx.map([], lambda c, item, i, items: item, name="nothing")
    return _summary(result.completion_reason, result.get_results())


@durable
def ours_empty_map(ctx: DurableContext, event: dict[str, Any]) -> str:
    result = ctx.map([], lambda c, item, i: item, name="nothing")
    return _summary(result.completion_reason, result.values())


def aws_parallel_concurrent(event: Any, ctx: Any) -> str:
    branches = [(lambda c, i=i: c.step(lambda sc: i, name=f"s{i}")) for i in range(4)]
    result = ctx.parallel(branches, name="together")
    return _summary(result.completion_reason, result.get_results())


@durable
def ours_parallel_concurrent(ctx: DurableContext, event: dict[str, Any]) -> str:
    branches = [(lambda c, i=i: c.step(f"s{i}", lambda sc: i)) for i in range(4)]
    result = ctx.parallel(branches, name="together")
    return _summary(result.completion_reason, result.values())


def aws_parallel_in_map(event: Any, ctx: Any) -> str:
    def item_fn(c: Any, item: int, i: int, items: Any) -> int:
        inner = c.parallel(
            [
                lambda b: b.step(lambda sc: item, name="left"),
                lambda b: b.step(lambda sc: item + 1, name="right"),
            ],
            name=f"pair-{i}",
        )
        return sum(inner.get_results())

    result = ctx.map([1, 10], item_fn, name="outer", config=MapConfig(max_concurrency=1))
    return _summary(result.completion_reason, result.get_results())


@durable
def ours_parallel_in_map(ctx: DurableContext, event: dict[str, Any]) -> str:
    def item_fn(c: DurableContext, item: int, i: int) -> int:
        inner = c.parallel(
            [
                lambda b: b.step("left", lambda sc: item),
                lambda b: b.step("right", lambda sc: item + 1),
            ],
            name=f"pair-{i}",
        )
        return sum(inner.values())

    result = ctx.map([1, 10], item_fn, name="outer", max_concurrency=1)
    return _summary(result.completion_reason, result.values())


def aws_wait_in_branch(event: Any, ctx: Any) -> str:
    def slow(c: Any) -> str:
        c.wait(Duration.from_seconds(2), name="nap")
        return "slow"

    result = ctx.parallel(
        [slow, lambda c: c.step(lambda sc: "fast", name="quick")],
        name="mixed",
        config=ParallelConfig(max_concurrency=1),
    )
    return _summary(result.completion_reason, result.get_results())


@durable
def ours_wait_in_branch(ctx: DurableContext, event: dict[str, Any]) -> str:
    def slow(c: DurableContext) -> str:
        c.wait("nap", 2)
        return "slow"

    result = ctx.parallel(
        [slow, lambda c: c.step("quick", lambda sc: "fast")], name="mixed", max_concurrency=1
    )
    return _summary(result.completion_reason, result.values())


def aws_map_named_items(event: Any, ctx: Any) -> str:
    config = MapConfig(item_namer=lambda item, i: f"sku-{item}", max_concurrency=1)
    result = ctx.map(["a", "b"], lambda c, item, i, items: item.upper(), name="skus", config=config)
    return _summary(result.completion_reason, result.get_results())


@durable
def ours_map_named_items(ctx: DurableContext, event: dict[str, Any]) -> str:
    result = ctx.map(
        ["a", "b"],
        lambda c, item, i: item.upper(),
        name="skus",
        item_name=lambda item, i: f"sku-{item}",
        max_concurrency=1,
    )
    return _summary(result.completion_reason, result.values())


def aws_parallel_returned(event: Any, ctx: Any) -> Any:
    """A BatchResult returned as the execution's result, as AWS's examples do (to_dict)."""
    result = ctx.parallel([lambda c: "x", lambda c: "y"], name="pair")
    return result.get_results()


@durable
def ours_parallel_returned(ctx: DurableContext, event: dict[str, Any]) -> Any:
    return ctx.parallel([lambda c: "x", lambda c: "y"], name="pair").values()


CASES = {
    "child": Pair(aws_child, ours_child),
    "child-no-ops": Pair(aws_child_no_ops, ours_child_no_ops),
    "child-in-child": Pair(aws_child_in_child, ours_child_in_child),
    "child-fails": Pair(aws_child_fails, ours_child_fails),
    "parallel-empty": Pair(aws_empty_parallel, ours_empty_parallel),
    "map-empty": Pair(aws_empty_map, ours_empty_map),
    "parallel-concurrent": Pair(aws_parallel_concurrent, ours_parallel_concurrent),
    "parallel-in-map": Pair(aws_parallel_in_map, ours_parallel_in_map),
    "parallel-wait-in-branch": Pair(aws_wait_in_branch, ours_wait_in_branch),
    "map-named-items": Pair(aws_map_named_items, ours_map_named_items),
    "parallel-values-returned": Pair(aws_parallel_returned, ours_parallel_returned),
}


@pytest.mark.parametrize("case", [diff(c) for c in CASES])
def test_composition_history_matches_aws(parity: ParityRunner, case: str) -> None:
    aws, ours = parity.run(case, CASES[case])
    assert_same_history(aws.history, ours.history)
    assert aws.status == ours.status
