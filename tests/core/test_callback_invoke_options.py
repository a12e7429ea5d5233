"""Callback and invoke options of AWS's SDK: raw text to a serializer, the caller's own error,
the submitter's error, and invoke's serializers and tenant id (issue 13).

Every case runs on the kit's always-replay runner too, so what the first run returns or
raises is what every replay returns or raises.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from durable_core import (
    AsyncDurableContext,
    CallbackFailedError,
    CallbackTimeoutError,
    DurableContext,
    ExecutionStatus,
    InvokeError,
    OperationType,
    durable,
)
from durable_core.errors import CallbackSubmitterError
from durable_core.testing import DurableTestRunner

calls: Counter[str] = Counter()


class Upper:
    """A serializer of plain text: recorded as it is, read back as it is."""

    def serialize(self, value: Any) -> str:
        return str(value).upper()

    def deserialize(self, text: str) -> Any:
        calls["deserialize"] += 1
        return f"<{text}>"


def _outcome(body: Any) -> dict[str, Any]:
    try:
        return {"value": body()}
    except (CallbackFailedError, CallbackTimeoutError, CallbackSubmitterError, InvokeError) as e:
        return {
            "raised": type(e).__name__,
            "message": str(e),
            "type": getattr(e, "error_type", None),
            "data": getattr(e, "data", None),
            "name": getattr(e, "name", None),
        }


@durable(name="tests:cb:raw")
def raw_callback(ctx: DurableContext, event: None) -> dict[str, Any]:
    cb = ctx.create_callback("reply", serializer=Upper())
    return _outcome(cb.result)


@durable(name="tests:cb:wfc")
def waiting(ctx: DurableContext, fail_submit: bool) -> dict[str, Any]:
    def submit(token: str, _: Any) -> None:
        calls["submit"] += 1
        if fail_submit:
            raise ConnectionError("mail server down")

    return _outcome(lambda: ctx.wait_for_callback("reply", submit, serializer=Upper()))


@pytest.fixture(autouse=True)
def _fresh() -> None:
    calls.clear()


@pytest.mark.parametrize("always_replay", [False, True])
@pytest.mark.parametrize("sent", ["approved", '"approved"', {"ok": [1, 2]}, None])
def test_a_callback_serializer_is_handed_the_text_the_callback_recorded(
    sent: Any, always_replay: bool
) -> None:
    # Runtime.send_callback_success records JSON text (on Lambda's service the caller's
    # bytes are the text): the serializer reads that text, not a parsed value.
    runner = DurableTestRunner(raw_callback, always_replay=always_replay)
    runner.run(None)
    op = runner.send_callback_success("reply", sent)
    assert runner.resume().result == {"value": f"<{op.result}>"}
    assert op.result == json.dumps(sent, separators=(",", ":"))


@pytest.mark.parametrize("always_replay", [False, True])
def test_wait_for_callback_hands_the_raw_text_to_its_serializer(always_replay: bool) -> None:
    runner = DurableTestRunner(waiting, always_replay=always_replay)
    runner.run(False)
    runner.send_callback_success("reply", "yes, ship it")
    result = runner.resume()
    assert result.result == {"value": '<"yes, ship it">'}
    assert calls["submit"] == 1


@pytest.mark.parametrize("always_replay", [False, True])
def test_a_failed_callback_raises_the_callers_message_as_it_was_sent(always_replay: bool) -> None:
    runner = DurableTestRunner(waiting, always_replay=always_replay)
    runner.run(False)
    runner.send_callback_failure("reply", "not approved", error_type="Rejected", data="r-7")
    assert runner.resume().result == {
        "raised": "CallbackFailedError",
        "message": "not approved",
        "type": "Rejected",
        "data": "r-7",
        "name": "reply",
    }


@pytest.mark.parametrize("always_replay", [False, True])
def test_a_failed_submitter_raises_callback_submitter_error(always_replay: bool) -> None:
    runner = DurableTestRunner(waiting, always_replay=always_replay)
    result = runner.run(True)
    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result["raised"] == "CallbackSubmitterError"
    assert "mail server down" in result.result["message"]
    assert result.result["type"] == "ConnectionError"
    assert result.result["name"] == "reply"


# --- invoke --------------------------------------------------------------------------------


@durable(name="tests:inv:echo")
def echo(ctx: DurableContext, event: dict[str, Any]) -> dict[str, Any]:
    calls["child"] += 1
    return {"got": event, "tenant": ctx.execution_id}


@durable(name="tests:inv:fails")
def fails(ctx: DurableContext, event: Any) -> None:
    raise LookupError("no such sku")


class Envelope:
    """A payload serializer: the text the child reads as its event."""

    def serialize(self, value: Any) -> str:
        return json.dumps({"wrapped": value})

    def deserialize(self, text: str) -> Any:
        return text


@durable(name="tests:inv:parent")
def parent(ctx: DurableContext, mode: str) -> Any:
    if mode == "serializers":
        return ctx.invoke(echo, "x", name="echo", payload_serializer=Envelope(), serializer=Upper())
    if mode == "tenant":
        return ctx.invoke(echo, {"a": 1}, name="echo", tenant_id="acme-eu:1")
    return _outcome(lambda: ctx.invoke(fails, None, name="fails"))


def _runner(always_replay: bool) -> DurableTestRunner[Any, Any]:
    return DurableTestRunner(parent, functions=[echo, fails], always_replay=always_replay)


@pytest.mark.parametrize("always_replay", [False, True])
def test_invoke_payload_and_result_serializers(always_replay: bool) -> None:
    runner = _runner(always_replay)
    result = runner.run("serializers")
    assert result.status is ExecutionStatus.SUCCEEDED
    op = next(o for o in result.operations if o.type is OperationType.CHAINED_INVOKE)
    assert op.record.payload == '{"wrapped": "x"}'  # recorded and sent as it is
    assert result.result.startswith("<{") and '"wrapped":"x"' in result.result
    assert calls["child"] == 1


@pytest.mark.parametrize("always_replay", [False, True])
def test_invoke_tenant_id_is_recorded_on_the_operation_and_the_child(always_replay: bool) -> None:
    runner = _runner(always_replay)
    result = runner.run("tenant")
    op = next(o for o in result.operations if o.type is OperationType.CHAINED_INVOKE)
    assert op.record.tenant_id == "acme-eu:1"
    assert op.record.child_execution_id is not None
    assert runner.store.get_execution(op.record.child_execution_id).tenant_id == "acme-eu:1"
    assert calls["child"] == 1


@pytest.mark.parametrize("bad", ["", "x" * 257, "semi;colon", 7])
def test_a_malformed_tenant_id_is_refused_before_anything_is_recorded(bad: Any) -> None:
    @durable(name="tests:inv:bad-tenant")
    def bad_parent(ctx: DurableContext, event: None) -> Any:
        return ctx.invoke(echo, {}, name="echo", tenant_id=bad)

    runner = DurableTestRunner(bad_parent, functions=[echo])
    result = runner.run(None)
    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None and "tenant_id" in result.error.message
    assert "invoke 'echo'" in result.error.message
    assert result.operations == []
    assert calls["child"] == 0


@pytest.mark.parametrize("always_replay", [False, True])
def test_a_failed_child_raises_its_own_message(always_replay: bool) -> None:
    result = _runner(always_replay).run("failure")
    assert result.result == {
        "raised": "InvokeError",
        "message": "no such sku",
        "type": "LookupError",
        "data": None,
        "name": None,
    }


# --- the async surface: the same options, the same outcomes ---------------------------------


@durable(name="tests:cb:async-wfc")
async def async_waiting(ctx: AsyncDurableContext, fail_submit: bool) -> dict[str, Any]:
    async def submit(token: str, _: Any) -> None:
        calls["submit"] += 1
        if fail_submit:
            raise ConnectionError("mail server down")

    try:
        value = await ctx.wait_for_callback("reply", submit, serializer=Upper())
    except (CallbackFailedError, CallbackSubmitterError) as e:
        return {"raised": type(e).__name__, "message": str(e)}
    cb = await ctx.create_callback("again", serializer=Upper())
    return {"value": value, "again": await cb.result()}


@durable(name="tests:inv:async-parent")
async def async_parent(ctx: AsyncDurableContext, event: None) -> Any:
    tenant = await ctx.invoke(echo, {"a": 1}, name="tenant", tenant_id="acme-eu:1")
    raw = await ctx.invoke(echo, "x", name="raw", payload_serializer=Envelope(), serializer=Upper())
    return {"tenant": tenant["got"], "raw": raw}


@pytest.mark.parametrize("always_replay", [False, True])
def test_async_callbacks_take_serializers_and_raise_the_callers_errors(
    always_replay: bool,
) -> None:
    runner = DurableTestRunner(async_waiting, always_replay=always_replay)
    runner.run(False)
    runner.send_callback_success("reply", "ok")
    runner.resume()
    runner.send_callback_success("again", [1])
    assert runner.resume().result == {"value": '<"ok">', "again": "<[1]>"}

    failing = DurableTestRunner(async_waiting, always_replay=always_replay)
    failing.run(False)
    failing.send_callback_failure("reply", "not approved")
    assert failing.resume().result == {"raised": "CallbackFailedError", "message": "not approved"}

    submitter = DurableTestRunner(async_waiting, always_replay=always_replay)
    assert submitter.run(True).result["raised"] == "CallbackSubmitterError"


@pytest.mark.parametrize("always_replay", [False, True])
def test_async_invoke_takes_tenant_id_and_serializers(always_replay: bool) -> None:
    runner = DurableTestRunner(async_parent, functions=[echo], always_replay=always_replay)
    result = runner.run(None)
    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result["tenant"] == {"a": 1}
    assert result.result["raw"].startswith("<{")
    invokes = {
        o.name: o.record for o in result.operations if o.type is OperationType.CHAINED_INVOKE
    }
    assert invokes["tenant"].tenant_id == "acme-eu:1"
    assert invokes["raw"].payload == '{"wrapped": "x"}'
    assert calls["child"] == 2
