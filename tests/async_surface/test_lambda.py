"""An async durable function under both Lambda modes.

- Durable execution service: AWS's emulator (``dex-local-runner``) invokes ``durable_handler``
  through a local Invoke endpoint, as in tests/lambda_service (its fixtures are used here;
  the emulator is found next to the interpreter, where ``scripts/setup --aws`` installs it).
- Plain Lambda + DynamoDB: ``dynamodb_handler`` called directly on DynamoDB Local, as in
  tests/lambda_dynamo (its fixtures are used here). DynamoDB Local is found under
  ``DDBLOCAL_CACHE`` (default ``<checkout>/.cache/ddb``): in a worktree without its own
  install, point it at the main checkout's, e.g. ``DDBLOCAL_CACHE=/path/to/main/.cache/ddb``.

Both skip with a loud reason when their emulator is not installed.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from lambda_dynamo.conftest import clock, store
from lambda_service.conftest import EMULATOR_STALL, deploy, emulator, invoke_server
from lambda_service.emulator import Deploy, Emulator, events
from tenacity import stop_after_attempt, wait_fixed

from durable_core import (
    AsyncDurableContext,
    ExecutionStatus,
    RetryPolicy,
    StepConfig,
    StepContext,
    durable,
)
from durable_core.aws_lambda import dynamodb_handler
from durable_core.testing import VirtualClock

__all__ = ["clock", "deploy", "emulator", "invoke_server", "store"]  # fixtures, re-exported

pytestmark = pytest.mark.aws

RETRY = StepConfig(retry=RetryPolicy(stop=stop_after_attempt(3), wait=wait_fixed(1)))


def make_flow(calls: Counter[str]) -> Any:
    @durable(name="async_surface:lambda_flow")
    async def flow(ctx: AsyncDurableContext, event: dict[str, int]) -> dict[str, Any]:
        async def flaky(sc: StepContext) -> int:
            calls["flaky"] += 1
            await asyncio.sleep(0.01)
            if sc.attempt < 2:
                raise ConnectionError(f"attempt {sc.attempt} failed")
            return sc.attempt

        def branch(i: int) -> Any:
            async def run(c: AsyncDurableContext) -> int:
                async def work(sc: StepContext) -> int:
                    calls[f"branch-{i}"] += 1
                    await asyncio.sleep(0.01)
                    return event["x"] * i

                return await c.step(f"work-{i}", work)

            return run

        attempts = await ctx.step("flaky", flaky, RETRY)
        await ctx.wait("cool-off", timedelta(hours=2))
        pair = await ctx.parallel([branch(1), branch(2)], name="pair")
        after = await ctx.step("after", lambda sc: calls.update(["after"]) or attempts)
        return {"attempts": after, "pair": pair.raise_if_failed().values()}

    return flow


@pytest.mark.flaky(reruns=2, only_rerun=[EMULATOR_STALL])  # as tests/lambda_service's tests
def test_an_async_function_runs_on_the_durable_execution_service(
    deploy: Deploy, emulator: Emulator
) -> None:
    calls: Counter[str] = Counter()
    deploy("async-flow", make_flow(calls))

    arn = emulator.start("async-flow", {"x": 10})
    ex = emulator.wait(arn)

    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == {"attempts": 2, "pair": [10, 20]}
    assert calls == {"flaky": 2, "branch-1": 1, "branch-2": 1, "after": 1}
    hist = emulator.history(arn)
    steps = events(hist, "StepFailed", "StepSucceeded", "WaitStarted", "WaitSucceeded")
    assert steps[:4] == [
        ("StepFailed", "flaky"),  # a service retry, one second later
        ("StepSucceeded", "flaky"),
        ("WaitStarted", "cool-off"),  # a service timer
        ("WaitSucceeded", "cool-off"),
    ]
    assert sorted(steps[4:6]) == [("StepSucceeded", "work-1"), ("StepSucceeded", "work-2")]
    assert steps[6:] == [("StepSucceeded", "after")]
    contexts = events(hist, "ContextSucceeded")
    assert sorted(contexts[:2]) == [
        ("ContextSucceeded", "parallel-branch-0"),
        ("ContextSucceeded", "parallel-branch-1"),
    ]
    assert contexts[2:] == [("ContextSucceeded", "pair")]


def test_an_async_function_runs_on_plain_lambda_with_dynamodb(
    store: Any, clock: VirtualClock
) -> None:
    calls: Counter[str] = Counter()
    handler = dynamodb_handler(make_flow(calls), store=store, clock=clock)

    first = handler({"execution_id": "async-1", "input": {"x": 3}}, None)
    while first["status"] == "RUNNING":  # a retry timer, then the two-hour wait
        assert first["wake_at"] is not None
        clock.advance(timedelta(hours=2, seconds=1))
        first = handler({"execution_id": "async-1"}, None)

    assert first["status"] == "SUCCEEDED", first
    assert first["result"] == {"attempts": 2, "pair": [3, 6]}
    assert calls == {"flaky": 2, "branch-1": 1, "branch-2": 1, "after": 1}
    assert store.get_execution("async-1").status is ExecutionStatus.SUCCEEDED
