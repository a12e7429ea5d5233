"""The DynamoDB-mode handlers' input checks (on a MemoryStore: no server needed)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from durable_core import DurableContext, MemoryStore, durable
from durable_core.aws_lambda import callback_handler, dynamodb_handler, sweeper_handler
from durable_core.aws_lambda.dynamo_mode import resolve_version
from durable_core.errors import ExecutionNotFoundError, PrivilegedCallbackError, ValidationError
from durable_core.testing import VirtualClock


@durable
def wait_a_day(ctx: DurableContext, event: Any) -> Any:
    ctx.wait("a-day", timedelta(days=1))
    return event


@durable
def wait_for_approval(ctx: DurableContext, event: Any) -> Any:
    return ctx.create_callback("approval", timeout=timedelta(days=1)).result()


@pytest.mark.parametrize(
    "event",
    [["not", "an", "object"], {}, {"execution_id": ""}, {"execution_id": 42, "input": 1}],
)
def test_a_bad_event_says_what_to_send(event: Any) -> None:
    handler = dynamodb_handler(wait_a_day, store=MemoryStore(), clock=VirtualClock())
    with pytest.raises(ValidationError):
        handler(event, None)


def test_a_resume_of_an_unknown_execution_is_not_found() -> None:
    handler = dynamodb_handler(wait_a_day, store=MemoryStore(), clock=VirtualClock())
    with pytest.raises(ExecutionNotFoundError):
        handler({"execution_id": "nope"}, None)


def test_without_an_id_the_lambda_request_id_names_the_execution() -> None:
    handler = dynamodb_handler(wait_a_day, store=MemoryStore(), clock=VirtualClock())
    context = SimpleNamespace(aws_request_id="req-123")
    assert handler({"input": 1}, context)["execution_id"] == "req-123"
    assert handler({"input": 1}, context)["status"] == "RUNNING"  # Lambda's retry: same one


def test_the_version_comes_from_the_argument_the_function_or_lambda(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "12")
    assert resolve_version(wait_a_day, "explicit") == "explicit"
    assert resolve_version(wait_a_day, None) == "12"
    assert resolve_version(durable(version="3")(wait_a_day.fn), None) == "3"


def test_no_table_and_no_function_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DURABLE_TABLE", raising=False)
    monkeypatch.delenv("DURABLE_FUNCTION_NAME", raising=False)
    with pytest.raises(ValidationError, match="DURABLE_TABLE"):
        dynamodb_handler(wait_a_day)({"input": 1}, None)
    store, clock = MemoryStore(), VirtualClock()
    dynamodb_handler(wait_a_day, store=store, clock=clock)({"execution_id": "x", "input": 1}, None)
    clock.advance(timedelta(days=1))
    report = sweeper_handler(store=store, clock=clock, lambda_client=object())({}, None)
    assert report["dispatched"] == [] and "DURABLE_FUNCTION_NAME" in report["failed"][0]["error"]


MALFORMED_REQUESTS = [
    {"body": '{"token": "'},  # cut short
    {"body": "token=abc&result=1"},  # a form post
    {"body": ""},
    {"body": "[" * 100_000},  # nested too deep for the parser
    {"body": '{"token": "t", "result": {"amount": NaN}}'},  # Python's json takes it; JSON not
    {"body": "not base64!", "isBase64Encoded": True},
]


def _awaiting_approval(eid: str) -> tuple[Callable[[], object], Any, str]:
    """An execution waiting for its approval callback: (its state now, the webhook, token)."""
    store, clock = MemoryStore(), VirtualClock()
    dynamodb_handler(wait_for_approval, store=store, clock=clock)(
        {"execution_id": eid, "input": 1}, None
    )
    token = next(op.callback_id for op in store.load_operations(eid) if op.callback_id)
    state = lambda: (store.get_execution(eid), store.load_operations(eid))  # noqa: E731
    return state, callback_handler(store=store, clock=clock), token


@pytest.mark.parametrize(
    "request_", MALFORMED_REQUESTS, ids=["truncated", "form", "empty", "deep", "nan", "base64"]
)
def test_a_callback_body_that_is_not_json_is_refused_and_changes_nothing(
    request_: dict[str, Any],
) -> None:
    state, webhook, token = _awaiting_approval("cb-1")
    before = state()
    with pytest.raises(ValidationError, match=r'"body" .*not valid JSON.*Nothing was changed'):
        webhook(request_, None)
    assert state() == before
    # the callback still completes with a good body
    good = json.dumps({"token": token, "result": "ok"})
    assert webhook({"body": good}, None) == {"status": "SUCCEEDED", "callback": "approval"}


def test_a_base64_encoded_callback_body_is_decoded() -> None:
    # Function URLs and API Gateway base64-encode a body whose content type is not text.
    _, webhook, token = _awaiting_approval("cb-2")
    body = base64.b64encode(json.dumps({"token": token, "result": "ok"}).encode()).decode()
    assert webhook({"body": body, "isBase64Encoded": True}, None) == {
        "status": "SUCCEEDED",
        "callback": "approval",
    }


@durable
def wait_for_owner(ctx: DurableContext, event: Any) -> Any:
    return ctx.create_callback("owner-only", timeout=timedelta(days=1), privileged=True).result()


def test_a_privileged_callback_is_refused_by_the_webhook_changing_nothing() -> None:
    store, clock = MemoryStore(), VirtualClock()
    dynamodb_handler(wait_for_owner, store=store, clock=clock)({"execution_id": "p", "input": 1})
    token = next(op.callback_id for op in store.load_operations("p") if op.callback_id)
    before = (store.get_execution("p"), store.load_operations("p"))
    webhook = callback_handler(store=store, clock=clock)

    over_http = webhook({"body": json.dumps({"token": token, "result": "forged"})}, None)
    assert over_http["statusCode"] == 403
    assert "'owner-only' of execution 'p' is privileged" in json.loads(over_http["body"])["message"]
    with pytest.raises(PrivilegedCallbackError):
        webhook({"token": token, "heartbeat": True}, None)
    assert (store.get_execution("p"), store.load_operations("p")) == before
