"""Programs of AWS's testing repository (aws-durable-execution-sdk-python-testing,
examples/src), each written here twice: as AWS's SDK would (``aws_*``) and with durable-saga
(``ours_*``). Own code, modelled on the examples' behaviour; where an example leaves an
operation unnamed (AWS names a step after its function, and leaves a wait or a lambda
nameless) the AWS version keeps that and durable-saga, which needs a name, uses the nearest.
"""

from __future__ import annotations

from typing import Any

import pytest
import tenacity
from aws_durable_execution_sdk_python.config import (
    CallbackConfig,
    CompletionConfig,
    Duration,
    JitterStrategy,
    MapConfig,
    ParallelConfig,
    StepConfig,
)
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy
from aws_durable_execution_sdk_python.waits import WaitForConditionConfig, WaitForConditionDecision

from durable_core import CompletionPolicy, DurableContext, RetryPolicy, durable
from durable_core import StepConfig as OurStepConfig

from .parity_history import assert_same_history
from .parity_run import Pair, ParityRunner, succeed_callback
from .parity_xfail import diff

# hello_world: a step, a 10 s wait, a step, a dict result


def add_numbers(sc: Any) -> int:
    return 5 + 3


def aws_step_named_by_function(event: Any, ctx: Any) -> int:
    return ctx.step(add_numbers)


@durable
def ours_step_named_by_function(ctx: DurableContext, event: dict[str, Any]) -> int:
    return ctx.step("add_numbers", add_numbers)


def aws_step_with_name(event: Any, ctx: Any) -> str:
    result = ctx.step(lambda _: "Step with explicit name", name="custom_step")
    return f"Result: {result}"


@durable
def ours_step_with_name(ctx: DurableContext, event: dict[str, Any]) -> str:
    result = ctx.step("custom_step", lambda _: "Step with explicit name")
    return f"Result: {result}"


def aws_hello_world(event: Any, ctx: Any) -> dict[str, Any]:
    def step_2(sc: Any) -> str:
        return "Hello from Durable Lambda! (status: 200)"

    ctx.step(lambda sc: None, name="step_1")
    ctx.wait(Duration.from_seconds(10), name="wait")
    message = ctx.step(step_2, name="step_2")
    return {"statusCode": 200, "body": message}


@durable
def ours_hello_world(ctx: DurableContext, event: dict[str, Any]) -> dict[str, Any]:
    ctx.step("step_1", lambda sc: None)
    ctx.wait("wait", 10)
    message = ctx.step("step_2", lambda sc: "Hello from Durable Lambda! (status: 200)")
    return {"statusCode": 200, "body": message}


def aws_unnamed_wait(event: Any, ctx: Any) -> str:
    ctx.wait(Duration.from_seconds(1))
    return "waited"


@durable
def ours_unnamed_wait(ctx: DurableContext, event: dict[str, Any]) -> str:
    ctx.wait("wait", 1)
    return "waited"


def aws_multiple_wait(event: Any, ctx: Any) -> dict[str, Any]:
    ctx.wait(Duration.from_seconds(5), name="wait-1")
    ctx.wait(Duration.from_seconds(5), name="wait-2")
    return {"completedWaits": 2, "finalStep": "done"}


@durable
def ours_multiple_wait(ctx: DurableContext, event: dict[str, Any]) -> dict[str, Any]:
    ctx.wait("wait-1", 5)
    ctx.wait("wait-2", 5)
    return {"completedWaits": 2, "finalStep": "done"}


def aws_square_steps(event: Any, ctx: Any) -> list[int]:
    return [ctx.step(lambda _, x=x: x * x, name=f"square_{i}") for i, x in enumerate([1, 2, 3])]


@durable
def ours_square_steps(ctx: DurableContext, event: dict[str, Any]) -> list[int]:
    return [ctx.step(f"square_{i}", lambda _, x=x: x * x) for i, x in enumerate([1, 2, 3])]


def aws_none_results(event: Any, ctx: Any) -> str:
    ctx.step(lambda _: None, name="fetch-user")
    ctx.run_in_child_context(lambda c: None, name="parent")
    ctx.wait(Duration.from_seconds(1), name="wait")
    return "result"


@durable
def ours_none_results(ctx: DurableContext, event: dict[str, Any]) -> str:
    ctx.step("fetch-user", lambda _: None)
    ctx.run_in_child_context("parent", lambda c: None)
    ctx.wait("wait", 1)
    return "result"


def aws_handler_error(event: Any, ctx: Any) -> None:
    raise Exception("Intentional handler failure")


@durable
def ours_handler_error(ctx: DurableContext, event: dict[str, Any]) -> None:
    raise Exception("Intentional handler failure")


def aws_child_step_failure(event: Any, ctx: Any) -> dict[str, Any]:
    config = StepConfig(
        retry_strategy=create_retry_strategy(
            RetryStrategyConfig(
                max_attempts=3,
                initial_delay=Duration.from_seconds(1),
                max_delay=Duration.from_seconds(10),
                backoff_rate=2.0,
                jitter_strategy=JitterStrategy.NONE,
            )
        )
    )

    def failing(_: Any) -> None:
        raise Exception("Step failed in child context")

    try:
        ctx.run_in_child_context(
            lambda c: c.step(failing, name="failing-step", config=config), name="child-with-failure"
        )
        result = {"success": False}
    except Exception:
        result = {"success": True}
    ctx.wait(Duration.from_seconds(1), name="wait-after-failure")
    return result


@durable
def ours_child_step_failure(ctx: DurableContext, event: dict[str, Any]) -> dict[str, Any]:
    wait = tenacity.wait_exponential(multiplier=1, exp_base=2, min=1, max=10)
    config = OurStepConfig(retry=RetryPolicy(stop=tenacity.stop_after_attempt(3), wait=wait))

    def failing(_: Any) -> None:
        raise Exception("Step failed in child context")

    try:
        ctx.run_in_child_context(
            "child-with-failure", lambda c: c.step("failing-step", failing, config)
        )
        result = {"success": False}
    except Exception:
        result = {"success": True}
    ctx.wait("wait-after-failure", 1)
    return result


def aws_block_example(event: Any, ctx: Any) -> dict[str, str]:
    def nested_block(c: Any) -> str:
        c.wait(Duration.from_seconds(1), name="nested-wait")
        return "nested block result"

    def parent_block(c: Any) -> dict[str, str]:
        step = c.step(lambda _: "nested step result", name="nested_step")
        block = c.run_in_child_context(nested_block, name="nested_block")
        return {"nestedStep": step, "nestedBlock": block}

    return ctx.run_in_child_context(parent_block, name="parent_block")


@durable
def ours_block_example(ctx: DurableContext, event: dict[str, Any]) -> dict[str, str]:
    def nested_block(c: DurableContext) -> str:
        c.wait("nested-wait", 1)
        return "nested block result"

    def parent_block(c: DurableContext) -> dict[str, str]:
        step = c.step("nested_step", lambda _: "nested step result")
        block = c.run_in_child_context("nested_block", nested_block)
        return {"nestedStep": step, "nestedBlock": block}

    return ctx.run_in_child_context("parent_block", parent_block)


def aws_parallel_example(event: Any, ctx: Any) -> list[str]:
    def task3(c: Any) -> str:
        c.wait(Duration.from_seconds(1), name="wait_in_task3")
        return "task 3 completed after wait"

    return ctx.parallel(
        [
            lambda c: c.step(lambda _: "task 1 completed", name="task1"),
            lambda c: c.step(lambda _: "task 2 completed", name="task2"),
            task3,
        ],
        name="parallel_operation",
        config=ParallelConfig(max_concurrency=2),
    ).get_results()


@durable
def ours_parallel_example(ctx: DurableContext, event: dict[str, Any]) -> list[str]:
    def task3(c: DurableContext) -> str:
        c.wait("wait_in_task3", 1)
        return "task 3 completed after wait"

    return ctx.parallel(
        [
            lambda c: c.step("task1", lambda _: "task 1 completed"),
            lambda c: c.step("task2", lambda _: "task 2 completed"),
            task3,
        ],
        name="parallel_operation",
        max_concurrency=2,
    ).values()


def aws_parallel_first_successful(event: Any, ctx: Any) -> str:
    # one branch at a time (the example runs them at once): which branch wins a race of
    # threads is not the same on every run, on either SDK
    config = ParallelConfig(
        max_concurrency=1, completion_config=CompletionConfig.first_successful()
    )
    results = ctx.parallel(
        [(lambda c, i=i: c.step(lambda _: f"Task {i}", name=f"task{i}")) for i in (1, 2, 3)],
        name="first_successful_parallel",
        config=config,
    )
    return f"First successful result: {results.get_results()[0]}"


@durable
def ours_parallel_first_successful(ctx: DurableContext, event: dict[str, Any]) -> str:
    results = ctx.parallel(
        [(lambda c, i=i: c.step(f"task{i}", lambda _: f"Task {i}")) for i in (1, 2, 3)],
        name="first_successful_parallel",
        max_concurrency=1,
        completion=CompletionPolicy.first_successful(),
    )
    return f"First successful result: {results.values()[0]}"


def aws_parallel_with_wait(event: Any, ctx: Any) -> str:
    ctx.parallel(
        [
            lambda c: c.wait(Duration.from_seconds(1), name="wait_1_second"),
            lambda c: c.wait(Duration.from_seconds(2), name="wait_2_seconds"),
            lambda c: c.wait(Duration.from_seconds(5), name="wait_5_seconds"),
        ],
        name="parallel_waits",
    ).get_results()
    return "Completed waits"


@durable
def ours_parallel_with_wait(ctx: DurableContext, event: dict[str, Any]) -> str:
    ctx.parallel(
        [
            lambda c: c.wait("wait_1_second", 1),
            lambda c: c.wait("wait_2_seconds", 2),
            lambda c: c.wait("wait_5_seconds", 5),
        ],
        name="parallel_waits",
    )
    return "Completed waits"


def _fails_on_multiple_of_3(item: int) -> int:
    if item % 3 == 0:
        raise ValueError(f"Item {item} failed")
    return item * 2


def aws_map_failure_tolerance(event: Any, ctx: Any) -> dict[str, Any]:
    once = StepConfig(retry_strategy=create_retry_strategy(RetryStrategyConfig(max_attempts=1)))
    results = ctx.map(
        list(range(1, 7)),
        lambda c, item, index, _: c.step(
            lambda _: _fails_on_multiple_of_3(item), name=f"item_{index}", config=once
        ),
        name="map_with_tolerance",
        config=MapConfig(
            max_concurrency=1, completion_config=CompletionConfig(tolerated_failure_count=3)
        ),
    )
    return {
        "success_count": results.success_count,
        "failure_count": results.failure_count,
        "succeeded": [item.result for item in results.succeeded()],
        "completion_reason": results.completion_reason.value,
    }


@durable
def ours_map_failure_tolerance(ctx: DurableContext, event: dict[str, Any]) -> dict[str, Any]:
    once = OurStepConfig(retry=RetryPolicy.no_retry())
    results = ctx.map(
        list(range(1, 7)),
        lambda c, item, index: c.step(
            f"item_{index}", lambda _: _fails_on_multiple_of_3(item), once
        ),
        name="map_with_tolerance",
        max_concurrency=1,
        completion=CompletionPolicy.tolerate_failures(3),
    )
    return {
        "success_count": len(results.succeeded()),
        "failure_count": len(results.failed()),
        "succeeded": results.values(),
        "completion_reason": str(results.completion_reason),
    }


def aws_map_max_concurrency(event: Any, ctx: Any) -> list[int]:
    return ctx.map(
        list(range(1, 6)),
        lambda c, item, index, _: c.step(lambda _: item * 3, name=f"process_{index}"),
        name="map_with_concurrency",
        config=MapConfig(max_concurrency=1),
    ).get_results()


@durable
def ours_map_max_concurrency(ctx: DurableContext, event: dict[str, Any]) -> list[int]:
    return ctx.map(
        list(range(1, 6)),
        lambda c, item, index: c.step(f"process_{index}", lambda _: item * 3),
        name="map_with_concurrency",
        max_concurrency=1,
    ).values()


def aws_callback_simple(event: Any, ctx: Any) -> str:
    config = CallbackConfig(
        timeout=Duration.from_seconds(120), heartbeat_timeout=Duration.from_seconds(60)
    )
    return ctx.create_callback(name="example_callback", config=config).result()


@durable
def ours_callback_simple(ctx: DurableContext, event: dict[str, Any]) -> str:
    return ctx.create_callback("example_callback", timeout=120, heartbeat_timeout=60).result()


def aws_wait_for_condition(event: Any, ctx: Any) -> int:
    def strategy(state: int, attempt: int) -> WaitForConditionDecision:
        if state >= 3:
            return WaitForConditionDecision.stop_polling()
        return WaitForConditionDecision.continue_waiting(Duration.from_seconds(1))

    config = WaitForConditionConfig(wait_strategy=strategy, initial_state=0)
    return ctx.wait_for_condition(check=lambda state, _: state + 1, config=config, name="count")


@durable
def ours_wait_for_condition(ctx: DurableContext, event: dict[str, Any]) -> int:
    return ctx.wait_for_condition(
        "count",
        lambda state, _: state + 1,
        initial_state=0,
        done=lambda s: s >= 3,
        wait=tenacity.wait_fixed(1),
    )


def aws_wait_for_callback_mixed(event: Any, ctx: Any) -> dict[str, Any]:
    ctx.wait(Duration.from_seconds(1), name="initial-wait")
    user = ctx.step(lambda _: {"userId": 123, "name": "John Doe"}, name="fetch-user-data")
    answer = ctx.wait_for_callback(lambda cid, c: None, name="wait-for-callback")
    ctx.wait(Duration.from_seconds(2), name="final-wait")
    final = ctx.step(lambda _: {"status": "completed"}, name="finalize-processing")
    return {"stepResult": user, "callbackResult": answer, "finalStep": final}


@durable
def ours_wait_for_callback_mixed(ctx: DurableContext, event: dict[str, Any]) -> dict[str, Any]:
    ctx.wait("initial-wait", 1)
    user = ctx.step("fetch-user-data", lambda _: {"userId": 123, "name": "John Doe"})
    answer = ctx.wait_for_callback("wait-for-callback", lambda token, sc: None)
    ctx.wait("final-wait", 2)
    final = ctx.step("finalize-processing", lambda _: {"status": "completed"})
    return {"stepResult": user, "callbackResult": answer, "finalStep": final}


CASES = {
    "example-step-named-by-function": Pair(aws_step_named_by_function, ours_step_named_by_function),
    "example-step-with-name": Pair(aws_step_with_name, ours_step_with_name),
    "example-hello-world": Pair(aws_hello_world, ours_hello_world),
    "example-unnamed-wait": Pair(aws_unnamed_wait, ours_unnamed_wait),
    "example-multiple-wait": Pair(aws_multiple_wait, ours_multiple_wait),
    "example-map-operations": Pair(aws_square_steps, ours_square_steps),
    "example-none-results": Pair(aws_none_results, ours_none_results),
    "example-handler-error": Pair(aws_handler_error, ours_handler_error),
    "example-child-step-failure": Pair(aws_child_step_failure, ours_child_step_failure),
    "example-block": Pair(aws_block_example, ours_block_example),
    "example-parallel": Pair(aws_parallel_example, ours_parallel_example),
    "example-parallel-first-successful": Pair(
        aws_parallel_first_successful, ours_parallel_first_successful
    ),
    "example-parallel-with-wait": Pair(aws_parallel_with_wait, ours_parallel_with_wait),
    "example-map-failure-tolerance": Pair(aws_map_failure_tolerance, ours_map_failure_tolerance),
    "example-map-max-concurrency": Pair(aws_map_max_concurrency, ours_map_max_concurrency),
    "example-callback-simple": Pair(
        aws_callback_simple, ours_callback_simple, driver=succeed_callback('"approved"')
    ),
    "example-wait-for-condition": Pair(aws_wait_for_condition, ours_wait_for_condition),
    "example-wait-for-callback-mixed-ops": Pair(
        aws_wait_for_callback_mixed,
        ours_wait_for_callback_mixed,
        driver=succeed_callback('"callback-done"'),
    ),
}


@pytest.mark.parametrize("case", [diff(c) for c in CASES])
def test_aws_example_history_matches_aws(parity: ParityRunner, case: str) -> None:
    aws, ours = parity.run(case, CASES[case])
    assert_same_history(aws.history, ours.history)
    assert aws.status == ours.status
