"""docs/embedding.md is real code: its blocks run in order, the order it describes is
started, shipped and cancelled through them, with the thread worker and with FastAPI."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from durable_core import (
    CallbackAlreadyCompletedError,
    CallbackNotFoundError,
    ExecutionConflictError,
    ExecutionNotFoundError,
    PrivilegedCallbackError,
    ValidationError,
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "embedding.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _blocks() -> list[str]:
    blocks = BLOCK.findall(DOC.read_text())
    assert len(blocks) == 7, "the test runs the page's blocks by position"
    return blocks


def _until(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``check`` until it returns something truthy (a real worker thread runs)."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


@pytest.fixture
def page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The namespace after the workflow, handlers and error-mapping blocks ran."""
    monkeypatch.chdir(tmp_path)  # the page's store is sqlite:///durable.sqlite3, here
    namespace: dict[str, Any] = {"__name__": "docs_embedding"}
    for block in _blocks()[:3]:
        exec(compile(block, str(DOC), "exec"), namespace)
    yield namespace
    namespace["runtime"].store.close()


def test_the_thread_worker_ships_an_order_started_and_confirmed_by_the_handlers(
    page: dict[str, Any],
) -> None:
    blocks = _blocks()
    exec(compile(blocks[3], str(DOC), "exec"), page)  # the worker thread starts
    try:
        started = page["create_order"]("A-1")
        assert started == {"execution": "ship-A-1", "status": "RUNNING"}
        assert page["create_order"]("A-1") == started  # a retried request: the same one

        token = _until("the shipper to be told", lambda: page["OUTBOX"].get("A-1"))
        page["shipper_webhook"](token, '{"tracking": "VNP-123"}')
        done = _until(
            "the order to ship",
            lambda: (s := page["order_status"]("A-1"))["status"] == "SUCCEEDED" and s,
        )
        assert done["result"] == {"order": "A-1", "label": "L-A-1", "tracking": "VNP-123"}
        with pytest.raises(CallbackAlreadyCompletedError):
            page["shipper_webhook"](token, '{"tracking": "again"}')

        page["create_order"]("B-2")
        _until("B-2 to wait for its shipper", lambda: page["OUTBOX"].get("B-2"))
        page["cancel_order"]("B-2", "customer changed their mind", "ana@shop")
        _until("B-2 to end", lambda: page["order_status"]("B-2")["status"] == "CANCELLED")
        ex = page["runtime"].get("ship-B-2")
        assert ex.stop_requests[0].actor == "ana@shop"
        labels = [op for op in page["runtime"].operations("ship-A-1") if op.name == "print-label"]
        assert [op.attempt for op in labels] == [1]  # printed once, across every replay
    finally:
        exec(compile(blocks[4], str(DOC), "exec"), page)  # the shutdown block
    assert not page["background"].is_alive()


def test_the_error_mapping_gives_each_refusal_its_status(page: dict[str, Any]) -> None:
    status = page["http_status"]
    rt = page["runtime"]
    with pytest.raises(ExecutionNotFoundError) as unknown:
        page["order_status"]("nope")
    assert status(unknown.value) == 404
    with pytest.raises(CallbackNotFoundError) as forged:
        page["shipper_webhook"]("x" * 43, "{}")
    assert status(forged.value) == 404
    with pytest.raises(ValidationError) as nan:
        page["shipper_webhook"]("x" * 43, '{"tracking": NaN}')
    assert status(nan.value) == 422
    page["create_order"]("C-3")
    with pytest.raises(ExecutionConflictError) as conflict:
        rt.start(page["ship_order"], {"id": "other"}, execution_id="ship-C-3")
    assert status(conflict.value) == 409
    assert status(PrivilegedCallbackError("privileged")) == 404


def test_the_fastapi_app_runs_the_async_worker_in_its_lifespan(page: dict[str, Any]) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    exec(compile(_blocks()[5], str(DOC), "exec"), page)
    with TestClient(page["app"]) as client:  # the lifespan starts the AsyncWorker
        created = client.post("/orders/D-4")
        assert created.status_code == 201, created.text
        assert created.json() == {"execution": "ship-D-4", "status": "RUNNING"}
        token = _until("the shipper to be told", lambda: page["OUTBOX"].get("D-4"))
        confirmed = client.post(f"/webhooks/shipper/{token}", content=b'{"tracking": "T-9"}')
        assert confirmed.status_code == 204, confirmed.text
        shipped = _until(
            "the order to ship",
            lambda: (r := client.get("/orders/D-4").json())["status"] == "SUCCEEDED" and r,
        )
    assert shipped["result"]["tracking"] == "T-9"


def test_the_mounted_http_api_answers_under_the_apps_prefix(
    page: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from durable_core.server import hash_key, new_key

    key = new_key()
    monkeypatch.setenv("DURABLE_API_KEYS", f"ops-an:operate:{hash_key(key)}")
    blocks = _blocks()
    exec(compile(blocks[5], str(DOC), "exec"), page)  # the FastAPI app
    exec(compile(blocks[6], str(DOC), "exec"), page)  # mounting the API in it
    page["create_order"]("E-5")
    with TestClient(page["app"]) as client:
        auth = {"Authorization": f"Bearer {key}"}
        assert client.get("/durable/api/v1/whoami", headers=auth).json() == {
            "actor": "ops-an",
            "role": "operate",
        }
        found = client.get("/durable/api/v1/executions/ship-E-5", headers=auth)
        assert found.status_code == 200, found.text
        assert found.json()["function"] == "shipping:ship_order"
        assert client.get("/durable/api/v1/executions/ship-E-5").status_code == 401
        token = _until("the shipper to be told", lambda: page["OUTBOX"].get("E-5"))
        done = client.post(f"/durable/api/v1/callbacks/{token}/succeed", json={"tracking": "W-1"})
        assert done.status_code in (200, 204), done.text
        shipped = _until(
            "the order to ship",
            lambda: (r := client.get("/orders/E-5").json())["status"] == "SUCCEEDED" and r,
        )
    assert shipped["result"]["tracking"] == "W-1"
