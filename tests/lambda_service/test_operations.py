"""Each operation type through the emulator: what the service records for it.

Small durable functions of our own run through ``durable_handler`` under AWS's emulator;
the tests check the outcome, side-effect counts, and the service's execution history.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from tenacity import stop_after_attempt, wait_fixed

from durable_core import (
    DurableContext,
    RetryPolicy,
    StepConfig,
    StepContext,
    StepSemantics,
    durable,
)

from .emulator import Deploy, Emulator, InvokeServer, events

pytestmark = pytest.mark.aws

RETRY_TWICE = StepConfig(retry=RetryPolicy(stop=stop_after_attempt(5), wait=wait_fixed(1)))


def _by_id(history: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in history:
        if "Id" in e:
            out.setdefault(e["Id"], []).append(e["EventType"])
    return out


def test_step_retries_are_service_retries_and_waits_are_service_timers(
    deploy: Deploy, emulator: Emulator
) -> None:
    calls: Counter[str] = Counter()

    @durable
    def flow(ctx: DurableContext, event: dict[str, int]) -> dict[str, int]:
        def flaky(sc: StepContext) -> int:
            calls["flaky"] += 1
            if sc.attempt < 3:
                raise ConnectionError(f"attempt {sc.attempt} failed")
            return sc.attempt

        def after(sc: StepContext) -> int:
            calls["after"] += 1
            return event["x"] + attempts

        attempts = ctx.step("flaky", flaky, RETRY_TWICE)
        ctx.wait("cool-off", timedelta(hours=2))
        return {"attempts": attempts, "after": ctx.step("after", after)}

    deploy("ops-retry-wait", flow)
    arn = emulator.start("ops-retry-wait", {"x": 10})
    ex = emulator.wait(arn)
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == {"attempts": 3, "after": 13}
    assert calls == {"flaky": 3, "after": 1}
    hist = emulator.history(arn)
    assert events(hist, "StepFailed", "StepSucceeded", "WaitStarted", "WaitSucceeded") == [
        ("StepFailed", "flaky"),
        ("StepFailed", "flaky"),
        ("StepSucceeded", "flaky"),
        ("WaitStarted", "cool-off"),
        ("WaitSucceeded", "cool-off"),
        ("StepSucceeded", "after"),
    ]
    retry = next(e for e in hist if e["EventType"] == "StepFailed")["StepFailedDetails"]
    assert retry["Error"]["Payload"]["ErrorType"] == "ConnectionError"
    assert retry["RetryDetails"]["NextAttemptDelaySeconds"] == 1
    waited = next(e for e in hist if e["EventType"] == "WaitStarted")["WaitStartedDetails"]
    assert waited["Duration"] == 7200


def test_a_step_that_keeps_failing_fails_the_execution_with_its_error(
    deploy: Deploy, emulator: Emulator
) -> None:
    @durable
    def flow(ctx: DurableContext, event: None) -> None:
        def broken(sc: StepContext) -> None:
            raise ValueError("the order is invalid")

        ctx.step("validate", broken, StepConfig(retry=RetryPolicy.no_retry()))

    deploy("ops-fail", flow)
    arn = emulator.start("ops-fail", None)
    ex = emulator.wait(arn)
    assert ex["Status"] == "FAILED"
    assert ex["Error"]["ErrorType"] == "aws_durable_execution_sdk_python.exceptions.StepError"
    assert "the order is invalid" in ex["Error"]["ErrorMessage"]
    assert events(emulator.history(arn), "StepFailed") == [("StepFailed", "validate")]


def test_at_most_once_step_sends_start_before_the_body(deploy: Deploy, emulator: Emulator) -> None:
    seen: list[list[tuple[str, str | None]]] = []

    @durable
    def flow(ctx: DurableContext, event: None) -> str:
        def charge(sc: StepContext) -> str:
            # ctx.execution_id is the DurableExecutionArn: ask the service what it holds now
            seen.append(events(emulator.history(sc.execution_id), "StepStarted"))
            return "charged"

        config = StepConfig(semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY)
        return ctx.step("charge", charge, config)

    deploy("ops-at-most-once", flow)
    arn = emulator.start("ops-at-most-once", None)
    ex = emulator.wait(arn)
    assert ex["Status"] == "SUCCEEDED" and json.loads(ex["Result"]) == "charged"
    assert seen == [[("StepStarted", "charge")]]  # the START was durable when the body ran


def test_callback_completed_with_boto3(deploy: Deploy, emulator: Emulator) -> None:
    published: dict[str, str] = {}

    @durable
    def flow(ctx: DurableContext, event: dict[str, str]) -> dict[str, Any]:
        cb = ctx.create_callback("approval", timeout=timedelta(days=7))

        def publish(sc: StepContext) -> None:
            published[event["order"]] = cb.token

        ctx.step("send-token", publish)
        return {"approved": cb.result()}

    deploy("ops-callback", flow)
    arn = emulator.start("ops-callback", {"order": "A-1"})
    emulator.wait(arn, until=lambda ex: "A-1" in published)
    started = [e for e in emulator.history(arn) if e["EventType"] == "CallbackStarted"]
    assert [e["CallbackStartedDetails"]["CallbackId"] for e in started] == [published["A-1"]]
    assert started[0]["CallbackStartedDetails"].get("Timeout") in (None, 604800)
    emulator.client.send_durable_execution_callback_success(
        CallbackId=published["A-1"], Result=json.dumps({"by": "ops"}).encode()
    )
    ex = emulator.wait(arn)
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == {"approved": {"by": "ops"}}


def test_callback_failure_and_timeout_come_from_the_service(
    deploy: Deploy, emulator: Emulator
) -> None:
    published: dict[str, str] = {}

    @durable
    def flow(ctx: DurableContext, event: str) -> str:
        # the emulator skips timers but times callbacks out on the wall clock
        cb = ctx.create_callback("answer", timeout=2 if event == "times-out" else 3600)
        ctx.step("send-token", lambda sc: published.__setitem__(event, cb.token))
        try:
            return str(cb.result())
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"

    deploy("ops-callback-fail", flow)
    failing = emulator.start("ops-callback-fail", "fails")
    silent = emulator.start("ops-callback-fail", "times-out")
    emulator.wait(failing, until=lambda ex: "fails" in published)
    emulator.client.send_durable_execution_callback_failure(
        CallbackId=published["fails"], Error={"ErrorType": "Rejected", "ErrorMessage": "no stock"}
    )
    assert (
        json.loads(emulator.wait(failing)["Result"])
        == "CallbackFailedError: no stock"  # the caller's message as it sent it
    )
    timed_out = json.loads(emulator.wait(silent)["Result"])
    assert timed_out.startswith("CallbackTimeoutError"), timed_out
    assert ("CallbackTimedOut", "answer") in events(emulator.history(silent))


def test_child_context_is_started_before_its_children(deploy: Deploy, emulator: Emulator) -> None:
    @durable
    def flow(ctx: DurableContext, event: int) -> int:
        def inner(child: DurableContext) -> int:
            first = child.step("double", lambda sc: event * 2)
            child.wait("breathe", 5)
            return child.run_in_child_context(
                "nested", lambda c: c.step("inc", lambda sc: first + 1)
            )

        return ctx.run_in_child_context("outer", inner)

    deploy("ops-child", flow)
    arn = emulator.start("ops-child", 20)
    ex = emulator.wait(arn)
    assert ex["Status"] == "SUCCEEDED" and json.loads(ex["Result"]) == 41
    hist = emulator.history(arn)
    assert events(hist, "ContextStarted", "ContextSucceeded", "StepSucceeded") == [
        ("ContextStarted", "outer"),
        ("StepSucceeded", "double"),
        ("ContextStarted", "nested"),
        ("StepSucceeded", "inc"),
        ("ContextSucceeded", "nested"),
        ("ContextSucceeded", "outer"),
    ]
    parents = {e.get("Name"): e.get("ParentId") for e in hist if e["EventType"] == "StepSucceeded"}
    ids = {e["Name"]: e["Id"] for e in hist if e["EventType"] == "ContextStarted"}
    assert parents == {"double": ids["outer"], "inc": ids["nested"]}


def test_parallel_map_wait_for_callback_and_condition(deploy: Deploy, emulator: Emulator) -> None:
    published: list[str] = []

    @durable
    def flow(ctx: DurableContext, event: list[int]) -> dict[str, Any]:
        squares = ctx.map(event, lambda c, item, i: c.step("square", lambda sc: item * item))

        def right(c: DurableContext) -> str:
            c.wait("later", 60)
            return "R"

        both = ctx.parallel([lambda c: c.step("left", lambda sc: "L"), right], name="pair")
        reply = ctx.wait_for_callback("human", lambda token, sc: published.append(token))
        polls = ctx.wait_for_condition(
            "ready", lambda n, sc: n + 1, initial_state=0, done=lambda n: n >= 3, wait=wait_fixed(1)
        )
        return {
            "squares": squares.values(),
            "pair": both.values(),
            "reply": reply,
            "polls": polls,
        }

    deploy("ops-batch", flow)
    arn = emulator.start("ops-batch", [1, 2, 3])
    emulator.wait(arn, until=lambda ex: bool(published))
    emulator.client.send_durable_execution_callback_success(
        CallbackId=published[0], Result=b'"yes"'
    )
    ex = emulator.wait(arn)
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == {
        "squares": [1, 4, 9],
        "pair": ["L", "R"],
        "reply": "yes",
        "polls": 3,
    }
    hist = emulator.history(arn)
    contexts = events(hist, "ContextSucceeded")
    assert ("ContextSucceeded", "map") in contexts and ("ContextSucceeded", "pair") in contexts
    assert ("ContextSucceeded", "human") in contexts
    # each unfinished poll is a RETRY carrying the state; the emulator lists it as a step
    # event with RetryDetails; the last poll is the SUCCEED with the final state
    # (each poll's start is announced too: a StepStarted before each of the three)
    assert [e["EventType"] for e in hist if e.get("Name") == "ready"] == [
        "StepStarted",
        "StepSucceeded",
    ] * 3
    polls = [
        e["StepSucceededDetails"]
        for e in hist
        if e.get("Name") == "ready" and e["EventType"] == "StepSucceeded"
    ]
    assert ["RetryDetails" in p for p in polls] == [True, True, False]
    assert polls[-1]["Result"]["Payload"] == "3"
    by_id = _by_id(hist)
    assert all(t.count("ContextStarted") <= 1 for t in by_id.values())


def test_deadline_cancellation_marker(deploy: Deploy, emulator: Emulator) -> None:
    calls: Counter[str] = Counter()

    @durable(timeout=timedelta(hours=1))
    def flow(ctx: DurableContext, event: None) -> str:
        ctx.step("before", lambda sc: calls.update(["before"]))
        ctx.wait("too-long", timedelta(hours=3))
        ctx.step("after", lambda sc: calls.update(["after"]))
        return "unreachable"

    deploy("ops-deadline", flow)
    arn = emulator.start("ops-deadline", None)
    ex = emulator.wait(arn)
    assert ex["Status"] == "FAILED"
    assert ex["Error"]["ErrorType"] == "durable_core.errors.ExecutionCancelledError"
    assert calls == {"before": 1}
    marker = [e for e in emulator.history(arn) if e["EventType"] == "StepFailed"]
    assert [(e["Name"], e["SubType"]) for e in marker] == [("after", "Step")]
    assert (
        marker[0]["StepFailedDetails"]["Error"]["Payload"]["ErrorType"]
        == "durable_core.DeadlineExceeded"
    )


def test_chained_invoke_of_a_durable_and_a_plain_function(
    deploy: Deploy, emulator: Emulator, invoke_server: InvokeServer
) -> None:
    @durable
    def child(ctx: DurableContext, event: dict[str, int]) -> int:
        ctx.wait("child-wait", 30)
        return ctx.step("times-ten", lambda sc: event["n"] * 10)

    @durable
    def parent(ctx: DurableContext, event: int) -> list[Any]:
        durable_child = ctx.invoke("lambda-child", {"n": event})
        plain = ctx.invoke("lambda-plain", {"n": event}, name="plain")
        return [durable_child, plain]

    deploy("lambda-child", child)
    invoke_server.register("lambda-plain", lambda event: {"doubled": event["n"] * 2})
    deploy("ops-invoke", parent)
    arn = emulator.start("ops-invoke", 4)
    ex = emulator.wait(arn)
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == [40, {"doubled": 8}]
    assert events(emulator.history(arn), "ChainedInvokeStarted", "ChainedInvokeSucceeded") == [
        ("ChainedInvokeStarted", "lambda-child"),
        ("ChainedInvokeSucceeded", "lambda-child"),
        ("ChainedInvokeStarted", "plain"),
        ("ChainedInvokeSucceeded", "plain"),
    ]


def test_a_saga_deadline_on_the_service_rolls_back(deploy: Deploy, emulator: Emulator) -> None:
    from saga import CompensationContext, SagaContext, saga

    calls: Counter[str] = Counter()

    def reserve(sc: StepContext) -> str:
        calls["reserve"] += 1
        return "R-1"

    def release(c: CompensationContext) -> None:
        calls[f"release {c.result}"] += 1

    @saga(deadline=timedelta(hours=1))
    def hold_then_confirm(s: SagaContext, event: None) -> str:
        s.step("reserve", reserve, compensate=release)
        s.ctx.wait("hold", timedelta(hours=3))  # skipped by the emulator: the deadline passes
        return s.step("confirm", lambda sc: calls.update(["confirm"]) or "confirmed")

    deploy("ops-saga-deadline", hold_then_confirm)
    arn = emulator.start("ops-saga-deadline", None)
    ex = emulator.wait(arn)
    assert ex["Status"] == "FAILED", ex
    assert ex["Error"]["ErrorType"] == "durable_core.errors.ExecutionCancelledError"
    assert calls == {"reserve": 1, "release R-1": 1}
    assert events(emulator.history(arn), "StepSucceeded", "StepFailed") == [
        ("StepSucceeded", "reserve"),
        ("StepFailed", "confirm"),  # the cancellation marker
        ("StepSucceeded", "saga:rollback"),
        ("StepSucceeded", "compensate:reserve"),
    ]


def test_news_in_a_checkpoint_response_is_replayed_in_the_same_invocation(
    deploy: Deploy, emulator: Emulator, invoke_server: InvokeServer
) -> None:
    import time

    @durable
    def flow(ctx: DurableContext, event: None) -> list[str]:
        def waiting(c: DurableContext) -> str:
            c.wait("short", 1)
            return "waited"

        def work(sc: StepContext) -> str:
            time.sleep(1.0)  # long enough for the emulator to fire the (skipped) timer
            return "worked"

        def working(c: DurableContext) -> str:
            return c.step("work", work)

        return ctx.parallel([waiting, working], name="both").values()

    deploy("ops-news", flow)
    arn = emulator.start("ops-news", None)
    ex = emulator.wait(arn)
    assert ex["Status"] == "SUCCEEDED" and json.loads(ex["Result"]) == ["waited", "worked"]
    # the timer's completion came back in the step's checkpoint response: the handler
    # replayed at once instead of answering PENDING with nothing pending
    answers = [r["Status"] for name, r in invoke_server.responses if name == "ops-news"]
    assert answers == ["SUCCEEDED"]
