"""Service errors, limits and big payloads, through the emulator (faults from a real proxy)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from durable_core import DurableContext, durable
from durable_core.aws_lambda import CheckpointTokenError, LambdaOptions, durable_handler
from durable_core.aws_lambda.wire import PAYLOAD_LIMIT, RESPONSE_LIMIT

from .emulator import Deploy, Emulator, InvokeServer, client, events
from .proxy import FaultProxy

pytestmark = pytest.mark.aws


@pytest.fixture
def proxy(emulator: Emulator) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the emulator."""
    p = FaultProxy(emulator.url)
    yield p
    p.close()


def _two_steps(calls: Counter[str]) -> Any:
    @durable
    def flow(ctx: DurableContext, event: int) -> int:
        a = ctx.step("a", lambda sc: calls.update(["a"]) or event + 1)
        return ctx.step("b", lambda sc: calls.update(["b"]) or a * 2)

    return flow


def test_throttling_and_5xx_are_retried_without_repeating_work(
    deploy: Deploy, emulator: Emulator, proxy: FaultProxy
) -> None:
    calls: Counter[str] = Counter()
    deploy("svc-flaky", _two_steps(calls), client=client(proxy.url))
    proxy.inject("checkpoint", (503, "service unavailable"), (429, "rate exceeded"))
    arn = emulator.start("svc-flaky", 1)
    ex = emulator.wait(arn)
    assert ex["Status"] == "SUCCEEDED" and json.loads(ex["Result"]) == 4
    assert proxy.failed["checkpoint"] == 2
    assert calls == {"a": 1, "b": 1}  # botocore re-sent the same checkpoint; nothing re-ran
    assert events(emulator.history(arn), "StepSucceeded") == [
        ("StepSucceeded", "a"),
        ("StepSucceeded", "b"),
    ]


def test_a_4xx_fails_the_invocation_with_a_typed_error_and_the_service_retries_it(
    deploy: Deploy, emulator: Emulator, proxy: FaultProxy, invoke_server: InvokeServer
) -> None:
    calls: Counter[str] = Counter()
    deploy("svc-4xx", _two_steps(calls), client=client(proxy.url))
    proxy.inject("checkpoint", (400, "Update is not valid"))
    arn = emulator.start("svc-4xx", 1)
    ex = emulator.wait(arn, timeout=30)
    assert ex["Status"] == "SUCCEEDED" and json.loads(ex["Result"]) == 4
    errors = [(kind, msg) for name, kind, msg in invoke_server.errors if name == "svc-4xx"]
    assert [kind for kind, _ in errors] == ["ServiceError"]
    assert "InvalidParameterValueException: Update is not valid" in errors[0][1]
    assert calls == {"a": 2, "b": 1}  # a's first result was never recorded: at least once
    assert events(emulator.history(arn), "StepSucceeded") == [
        ("StepSucceeded", "a"),
        ("StepSucceeded", "b"),
    ]


def test_a_stale_checkpoint_token_raises_and_writes_nothing(
    deploy: Deploy, emulator: Emulator, proxy: FaultProxy, invoke_server: InvokeServer
) -> None:
    published: list[str] = []

    @durable
    def flow(ctx: DurableContext, event: None) -> str:
        ctx.step("a", lambda sc: "a")
        cb = ctx.create_callback("later")
        ctx.step("publish", lambda sc: published.append(cb.token))
        return str(cb.result())

    deploy("svc-stale", flow)
    arn = emulator.start("svc-stale", None)
    emulator.wait(arn, until=lambda ex: bool(published))
    first = next(e for name, _, e in invoke_server.invocations if name == "svc-stale")
    stale = durable_handler(
        flow, client=client(proxy.url), options=LambdaOptions(token_retry_delays=(0.01,))
    )
    before = emulator.history(arn)
    with pytest.raises(CheckpointTokenError, match="Invalid checkpoint token"):
        stale(first, None)
    assert proxy.seen["checkpoint"] == 2  # the identical request re-sent once, then raised
    assert emulator.history(arn) == before
    emulator.client.send_durable_execution_callback_success(CallbackId=published[0], Result=b'"ok"')
    assert emulator.wait(arn)["Status"] == "SUCCEEDED"


def test_a_name_the_service_rejects_fails_clearly_and_sends_nothing(
    deploy: Deploy, emulator: Emulator
) -> None:
    @durable
    def flow(ctx: DurableContext, event: None) -> None:
        ctx.step("ok", lambda sc: 1)
        ctx.step("café", lambda sc: 2)

    deploy("svc-limits", flow)
    arn = emulator.start("svc-limits", None)
    ex = emulator.wait(arn)
    assert ex["Status"] == "FAILED"
    assert ex["Error"]["ErrorType"] == "durable_core.aws_lambda.errors.ServiceLimitError"
    assert "printable ASCII" in ex["Error"]["ErrorMessage"]
    assert events(emulator.history(arn), "StepSucceeded", "StepFailed") == [("StepSucceeded", "ok")]


def test_a_result_too_big_for_the_response_is_checkpointed_on_the_execution(
    deploy: Deploy, emulator: Emulator, invoke_server: InvokeServer
) -> None:
    size = PAYLOAD_LIMIT - 40  # fits the service, but not the response envelope

    @durable
    def flow(ctx: DurableContext, event: None) -> str:
        return "x" * size

    deploy("svc-big", flow, max_payload_bytes=PAYLOAD_LIMIT)
    arn = emulator.start("svc-big", None)
    ex = emulator.wait(arn, timeout=60)
    assert ex["Status"] == "SUCCEEDED"
    assert len(ex["Result"]) == size + 2 and ex["Result"].strip('"x') == ""
    assert len(json.dumps({"Status": "SUCCEEDED", "Result": ex["Result"]})) > RESPONSE_LIMIT
    answered = [r for name, r in invoke_server.responses if name == "svc-big"]
    assert answered == [{"Status": "SUCCEEDED", "Result": ""}]  # the result went by checkpoint


def test_a_journal_bigger_than_one_page_is_paged_in(
    deploy: Deploy, emulator: Emulator, invoke_server: InvokeServer, proxy: FaultProxy
) -> None:
    chunk = 3 * 1024 * 1024 // 2  # four of these exceed the emulator's 5 MiB page

    @durable
    def flow(ctx: DurableContext, event: None) -> list[int]:
        def part(i: int) -> str:
            return ctx.step(f"part-{i}", lambda sc: str(i) * chunk)

        parts = [part(i) for i in range(4)]
        ctx.wait("breathe", timedelta(seconds=1))
        return [len(p) for p in parts]

    deploy("svc-paging", flow, client=client(proxy.url), max_payload_bytes=2 * chunk)
    arn = emulator.start("svc-paging", None)
    ex = emulator.wait(arn, timeout=60)
    assert ex["Status"] == "SUCCEEDED" and json.loads(ex["Result"]) == [chunk] * 4
    markers = [
        e["InitialExecutionState"].get("NextMarker")
        for name, _, e in invoke_server.invocations
        if name == "svc-paging"
    ]
    assert markers[0] == "" and markers[-1], markers  # the resumed invocation needed pages
    assert proxy.seen["state"] >= 1


def test_a_response_without_a_token_stops_the_invocation_pending(
    deploy: Deploy, emulator: Emulator, proxy: FaultProxy, invoke_server: InvokeServer
) -> None:
    calls: Counter[str] = Counter()
    deploy("svc-paused", _two_steps(calls), client=client(proxy.url))
    # the service's answer to a paused (or superseded) invocation: the update is kept, but
    # no token comes back, so this invocation may not checkpoint again
    proxy.rewrite(
        "checkpoint", lambda body: {k: v for k, v in body.items() if k != "CheckpointToken"}
    )
    arn = emulator.start("svc-paused", 1)
    ex = emulator.wait(arn, timeout=30)
    assert ex["Status"] == "SUCCEEDED" and json.loads(ex["Result"]) == 4
    answers = [r["Status"] for name, r in invoke_server.responses if name == "svc-paused"]
    assert answers[0] == "PENDING" and answers[-1] == "SUCCEEDED"
    assert calls == {"a": 1, "b": 1}  # a was stored by the tokenless checkpoint: not re-run


def test_a_callback_missing_from_the_response_fails_the_invocation_not_the_token(
    deploy: Deploy, emulator: Emulator, proxy: FaultProxy, invoke_server: InvokeServer
) -> None:
    published: list[str] = []

    @durable
    def flow(ctx: DurableContext, event: None) -> str:
        cb = ctx.create_callback("approval")
        ctx.step("publish", lambda sc: published.append(cb.token))
        return str(cb.result())

    deploy("svc-no-callback-id", flow, client=client(proxy.url))
    proxy.rewrite("checkpoint", lambda body: body | {"NewExecutionState": {"Operations": []}})
    arn = emulator.start("svc-no-callback-id", None)
    emulator.wait(arn, until=lambda ex: bool(published), timeout=30)
    errors = [kind for name, kind, _ in invoke_server.errors if name == "svc-no-callback-id"]
    assert errors == ["ServiceError"]  # never a made-up token: the invocation was retried
    started = [e for e in emulator.history(arn) if e["EventType"] == "CallbackStarted"]
    assert [e["CallbackStartedDetails"]["CallbackId"] for e in started] == published
    emulator.client.send_durable_execution_callback_success(CallbackId=published[0], Result=b'"ok"')
    assert json.loads(emulator.wait(arn)["Result"]) == "ok"
