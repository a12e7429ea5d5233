"""The DynamoDB-mode webhook refuses a saga's operator callback (on DynamoDB Local).

Anyone who learns a parked saga's token and can reach the webhook must not be able to skip
or resolve its compensation: the request is refused (403 over HTTP) and nothing is
recorded; the operator API on the same table still decides.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from durable_core import PrivilegedCallbackError, RetryPolicy, Runtime, StepContext
from durable_core.aws_lambda import callback_handler, dynamodb_handler, sweeper_handler
from durable_core.testing import VirtualClock
from saga import CompensationContext, SagaContext, SagaStatus, saga, saga_status
from saga import skip_compensation as skip

pytestmark = pytest.mark.aws

FORGED = {"action": "skip", "reason": "forged", "actor": "mallory"}
undone: list[str] = []


def _act(sc: StepContext, name: str) -> str:
    if name == "c":
        raise RuntimeError("c failed")
    return name


def _undo(c: CompensationContext) -> None:
    if c.step == "b":
        raise ConnectionError("the refund API is down")
    undone.append(c.step)


@saga(name="webhook-parking")
def parking(s: SagaContext, event: None) -> None:
    s.step("a", _act, "a", compensate=_undo)
    s.step("b", _act, "b", compensate=_undo, compensation_retry=RetryPolicy.no_retry())
    s.step("c", _act, "c", retry=RetryPolicy.no_retry())


def test_the_webhook_refuses_a_forged_operator_decision(
    store: Any, clock: VirtualClock, reopen: Any
) -> None:
    undone.clear()
    handler = dynamodb_handler(parking, store=store, clock=clock)
    assert handler({"execution_id": "p-1", "input": None}, None)["status"] == "RUNNING"
    rt = Runtime(store, clock=clock)
    assert saga_status(rt, "p-1").status is SagaStatus.COMPENSATION_FAILED
    (token,) = [op.callback_id for op in store.load_operations("p-1") if op.callback_id]
    before = (store.get_execution("p-1"), store.load_operations("p-1"))
    webhook = callback_handler(store=reopen(store), clock=clock)

    refused = webhook({"body": json.dumps({"token": token, "result": FORGED})}, None)
    assert refused["statusCode"] == 403
    assert json.loads(refused["body"])["error"] == "PrivilegedCallbackError"
    assert token not in refused["body"]
    for direct in (
        {"token": token, "result": FORGED},
        {"token": token, "error": {"type": "Forged", "message": "x"}},
        {"token": token, "heartbeat": True},
    ):
        with pytest.raises(PrivilegedCallbackError):
            webhook(direct, None)

    assert (store.get_execution("p-1"), store.load_operations("p-1")) == before
    sweep = sweeper_handler(store=store, functions=[parking], clock=clock)
    sweep({}, None)
    assert saga_status(rt, "p-1").status is SagaStatus.COMPENSATION_FAILED
    assert saga_status(rt, "p-1").operator_actions == []
    assert undone == []

    skip(Runtime(reopen(store), clock=clock), "p-1", "refunded by hand", actor="ops-anna")
    assert sweep({}, None) == {"ran": 1}
    outcome = saga_status(rt, "p-1")
    assert outcome.status is SagaStatus.PARTIALLY_COMPENSATED
    assert [(a.action, a.actor) for a in outcome.operator_actions] == [("skip", "ops-anna")]
    assert undone == ["a"]
