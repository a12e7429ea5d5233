"""The emulator's known gaps, pinned on both SDKs alike (not ignored by the comparison).

``dex-local-runner`` 1.4.0 leaves out of its history what the real service writes:
``ExecutedVersion`` on chained invokes, ``RetryDetails`` on a step's final success after
retries, the callback's timeouts on ``CallbackStarted``, and the ``InvocationCompleted`` of
an invocation that ended in a function error. Each test runs one program on both SDKs and
asserts the emulator's actual output for both, so a fixed emulator (or an SDK that starts
to differ) shows up here.
"""

from __future__ import annotations

from typing import Any

import pytest
import tenacity
from aws_durable_execution_sdk_python.config import CallbackConfig, Duration
from lambda_service.emulator import InvokeServer

from durable_core import DurableContext, RetryPolicy, StepConfig, durable

from .parity_run import Outcome, Pair, ParityRunner, serve_aws, succeed_callback
from .test_invoke import target
from .test_steps import _aws_retry, _flaky

pytestmark = pytest.mark.aws


def _details(outcome: Outcome, event_type: str) -> list[dict[str, Any]]:
    key = f"{event_type}Details"
    return [e.get(key, {}) for e in outcome.history if e["EventType"] == event_type]


def test_no_executed_version_on_chained_invoke(parity: ParityRunner) -> None:
    parity.deploy("parity-target", target)

    def aws(event: Any, ctx: Any) -> int:
        return ctx.invoke("parity-target", {"n": 1}, name="call")

    @durable
    def ours(ctx: DurableContext, event: dict[str, Any]) -> int:
        return ctx.invoke("parity-target", {"n": 1}, name="call")

    for outcome in parity.run("gap-executed-version", Pair(aws, ours)):
        assert outcome.status == "SUCCEEDED"
        for kind in ("ChainedInvokeStarted", "ChainedInvokeSucceeded"):
            (details,) = _details(outcome, kind)
            assert "ExecutedVersion" not in details, details


def test_no_retry_details_on_final_success(parity: ParityRunner) -> None:
    def aws(event: Any, ctx: Any) -> str:
        return ctx.step(_flaky(1), name="flaky", config=_aws_retry(2, 1))

    @durable
    def ours(ctx: DurableContext, event: dict[str, Any]) -> str:
        policy = RetryPolicy(stop=tenacity.stop_after_attempt(2), wait=tenacity.wait_fixed(1))
        return ctx.step("flaky", _flaky(1), StepConfig(retry=policy))

    for outcome in parity.run("gap-retry-details", Pair(aws, ours)):
        (failed,) = _details(outcome, "StepFailed")
        assert failed["RetryDetails"] == {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 1}
        (succeeded,) = _details(outcome, "StepSucceeded")
        assert "RetryDetails" not in succeeded, succeeded


def test_no_timeouts_on_callback_started(parity: ParityRunner) -> None:
    def aws(event: Any, ctx: Any) -> Any:
        config = CallbackConfig(
            timeout=Duration.from_seconds(300), heartbeat_timeout=Duration.from_seconds(60)
        )
        return ctx.create_callback(name="cb", config=config).result()

    @durable
    def ours(ctx: DurableContext, event: dict[str, Any]) -> Any:
        return ctx.create_callback("cb", timeout=300, heartbeat_timeout=60).result()

    pair = Pair(aws, ours, driver=succeed_callback('"ok"'))
    for outcome in parity.run("gap-callback-timeouts", pair):
        (started,) = _details(outcome, "CallbackStarted")
        assert set(started) == {"CallbackId"}, started


def test_no_invocation_completed_after_function_error(
    parity: ParityRunner, parity_server: InvokeServer
) -> None:
    """The first invocation checkpoints, then its runtime dies: no InvocationCompleted."""

    def aws(event: Any, ctx: Any) -> str:
        ctx.step(lambda sc: 1, name="before")
        ctx.wait(Duration.from_seconds(1), name="pause")
        return "done"

    @durable
    def ours(ctx: DurableContext, event: dict[str, Any]) -> str:
        ctx.step("before", lambda sc: 1)
        ctx.wait("pause", 1)
        return "done"

    serve_aws(parity_server, "parity-gap-crash-aws", aws, parity.emu.client)
    parity.deploy("parity-gap-crash-ours", ours)
    for name in ("parity-gap-crash-aws", "parity-gap-crash-ours"):
        _die_after_first(parity_server, name)
    outcomes = parity.run_served("parity-gap-crash-aws", "parity-gap-crash-ours", {})
    for outcome in outcomes:
        assert outcome.status == "SUCCEEDED"
        kinds = [e["EventType"] for e in outcome.history]
        # the dead first invocation (step, wait start) has no InvocationCompleted: the one
        # there is the retried invocation's, which found the wait over and finished
        assert kinds.count("InvocationCompleted") == 1, kinds
        assert kinds[-2:] == ["InvocationCompleted", "ExecutionSucceeded"], kinds
        assert parity_server.errors[-1][2] == "Runtime exited with error: signal: killed"


def _die_after_first(server: InvokeServer, name: str) -> None:
    handler = server.handlers[name]
    assert callable(handler)
    runs = {"n": 0}

    def dying(event: dict[str, Any]) -> dict[str, Any]:
        runs["n"] += 1
        response = handler(event)
        if runs["n"] == 1:
            raise RuntimeError("Runtime exited with error: signal: killed")
        return response

    server.register(name, dying)
