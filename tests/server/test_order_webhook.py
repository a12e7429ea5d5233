"""The order example end to end through the server: the curl line it prints works."""

from __future__ import annotations

import shlex
import uuid

import httpx

from durable_core import OperationType, Runtime
from examples.order_processing.__main__ import webhook_curl

from .conftest import Served, run_until_idle


def test_the_printed_curl_line_confirms_the_pickup(served: Served, worker: Runtime) -> None:
    eid = f"order-{uuid.uuid4().hex[:8]}"
    with served.client("oper") as c:
        body = {"function": "examples.order_processing.saga:process_order", "input": {}}
        assert c.post("/api/v1/executions", json={**body, "execution_id": eid}).status_code == 201
    run_until_idle(worker)
    op = next(o for o in worker.operations(eid) if o.type is OperationType.CALLBACK)
    assert op.callback_id is not None
    args = shlex.split(webhook_curl(op.callback_id, served.url))
    assert args[:3] == ["curl", "-X", "POST"]
    r = httpx.post(args[3], content=args[-1], headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    run_until_idle(worker)
    assert worker.get(eid).status.value == "SUCCEEDED"
