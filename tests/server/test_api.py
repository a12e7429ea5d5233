"""The HTTP API against a real ``durable serve`` process (SQLite and DynamoDB Local).

Each refusal is checked for its status, its JSON error body, and that nothing was recorded
(the audit log and the execution are as before).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from durable_core import OperationType, Runtime

from .conftest import Served, run_until_idle

ORDER = "examples.order_processing.saga:process_order"
TOUR = "examples.tour_booking.saga:book_tour"
STUCK = "server.flows:stuck_rollback"
APPROVAL = "server.flows:waits_for_approval"


def _error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["status"] == status and body["code"] == code
    return str(body["message"])


def _audit_count(served: Served) -> int:
    with served.client("boss") as c:
        n, cursor = 0, None
        while True:
            page = c.get(
                "/api/v1/audit", params={"limit": 500, **({"cursor": cursor} if cursor else {})}
            ).json()
            n += len(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                return n


def _token(runtime: Runtime, eid: str, name: str) -> str:
    ops = runtime.operations(eid)
    op = next(o for o in ops if o.type is OperationType.CALLBACK and o.name == name)
    assert op.callback_id is not None
    return op.callback_id


def _start(
    c: httpx.Client, function: str, event: Any = None, eid: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"function": function, "input": event}
    body["execution_id"] = eid or f"t-{uuid.uuid4().hex[:10]}"
    return c.post("/api/v1/executions", json=body)


def test_whoami_names_each_key_and_its_role(served: Served) -> None:
    for who, role in (("reader", "read"), ("oper", "operate"), ("boss", "admin")):
        with served.client(who) as c:
            assert c.get("/api/v1/whoami").json() == {"actor": who, "role": role}


def test_missing_wrong_or_low_keys_are_refused_and_nothing_recorded(served: Served) -> None:
    before = _audit_count(served)
    with served.client(None) as c:
        _error(c.get("/api/v1/executions"), 401, "unauthorized")
        _error(_start(c, ORDER, {}), 401, "unauthorized")
    with served.client(None, headers={"Authorization": "Bearer not-a-key"}) as c:
        msg = _error(c.get("/api/v1/whoami"), 401, "unauthorized")
        assert "not-a-key" not in msg
    with served.client("reader") as c:
        eid = f"t-{uuid.uuid4().hex[:10]}"
        _error(_start(c, ORDER, {}, eid), 403, "forbidden")
        _error(c.get(f"/api/v1/executions/{eid}"), 404, "not_found")  # nothing was started
        _error(c.get("/api/v1/audit"), 403, "forbidden")
    with served.client("oper") as c:
        _error(c.get("/api/v1/audit"), 403, "forbidden")
    assert _audit_count(served) == before


def test_openapi_is_published_without_a_key(served: Served) -> None:
    doc = httpx.get(f"{served.url}/api/v1/openapi.json").json()
    assert "/api/v1/executions" in doc["paths"]
    assert "/api/v1/callbacks/{token}/succeed" in doc["paths"]


def test_start_is_idempotent_and_conflicts_on_other_input(served: Served) -> None:
    eid = f"t-{uuid.uuid4().hex[:10]}"
    with served.client("oper") as c:
        first = _start(c, ORDER, {"order_id": "A-1"}, eid)
        assert first.status_code == 201 and first.json()["status"] == "RUNNING"
        again = _start(c, ORDER, {"order_id": "A-1"}, eid)
        assert again.status_code == 200 and again.json()["id"] == eid
        before = _audit_count(served)
        _error(_start(c, ORDER, {"order_id": "B-2"}, eid), 409, "conflict")
        assert _audit_count(served) == before


def test_bad_bodies_are_refused_and_nothing_recorded(served: Served) -> None:
    before = _audit_count(served)
    eid = f"t-{uuid.uuid4().hex[:10]}"
    with served.client("oper") as c:
        headers = {"Content-Type": "application/json"}
        _error(c.post("/api/v1/executions", content=b"{not json", headers=headers), 422, "invalid")
        _error(c.post("/api/v1/executions", json={"input": {}}), 422, "invalid")
        _error(
            c.post("/api/v1/executions", json={"function": ORDER, "execution_id": eid, "x": 1}),
            422,
            "invalid",
        )
        _error(c.post("/api/v1/executions", json=[1, 2]), 422, "invalid")
        big = {"function": ORDER, "execution_id": eid, "input": {"pad": "x" * 5000}}
        _error(c.post("/api/v1/executions", json=big), 413, "too_large")
        _error(c.get(f"/api/v1/executions/{eid}"), 404, "not_found")
        _error(c.get("/api/v1/executions", params={"status": "NOPE"}), 422, "invalid")
        _error(c.get("/api/v1/executions", params={"cursor": "garbage!"}), 422, "invalid")
        _error(c.get("/api/v1/executions", params={"limit": 0}), 422, "invalid")
        _error(c.get("/api/v1/executions", params={"saga_status": "rolling"}), 422, "invalid")
    assert _audit_count(served) == before


def test_unknown_ids_are_404_for_every_route(served: Served) -> None:
    before = _audit_count(served)
    with served.client("oper") as c:
        for path in ("", "/history"):
            _error(c.get(f"/api/v1/executions/nope{path}"), 404, "not_found")
        for action in ("cancel", "terminate", "saga/retry", "saga/skip", "saga/resolve"):
            r = c.post(f"/api/v1/executions/nope/{action}", json={"reason": "why"})
            assert "nope" in _error(r, 404, "not_found")
    assert _audit_count(served) == before


def test_order_waits_for_the_shipper_and_the_webhook_completes_it_once(
    served: Served, worker: Runtime
) -> None:
    with served.client("oper") as c:
        eid = _start(c, ORDER, {"order_id": "A-7"}).json()["id"]
        run_until_idle(worker)
        page = c.get(f"/api/v1/executions/{eid}").json()
        assert page["status"] == "RUNNING"
        assert [p["name"] for p in page["pending_callbacks"]] == ["shipper-confirmation"]
        token = _token(worker, eid, "shipper-confirmation")
        assert token not in c.get(f"/api/v1/executions/{eid}").text
        assert token not in c.get(f"/api/v1/executions/{eid}/history").text
    hook = httpx.Client(base_url=served.url, timeout=10)  # no key: the token is the authority
    before = _audit_count(served)
    _error(hook.post(f"/api/v1/callbacks/{'x' * 43}/succeed", json={}), 404, "not_found")
    assert _audit_count(served) == before
    ok = hook.post(f"/api/v1/callbacks/{token}/succeed", json={"tracking": "VNP-1"})
    assert ok.status_code == 200, ok.text
    _error(hook.post(f"/api/v1/callbacks/{token}/succeed", json={}), 409, "conflict")
    _error(hook.post(f"/api/v1/callbacks/{token}/fail", json={"message": "late"}), 409, "conflict")
    assert _audit_count(served) == before + 1
    run_until_idle(worker)
    with served.client("reader") as c:
        done = c.get(f"/api/v1/executions/{eid}").json()
    assert done["status"] == "SUCCEEDED"
    assert '"VNP-1"' in done["result"]
    assert token not in served.log.read_text()


def test_callback_failure_and_heartbeat(served: Served, worker: Runtime) -> None:
    with served.client("oper") as c:
        eid = _start(c, APPROVAL, None).json()["id"]
    run_until_idle(worker)
    token = _token(worker, eid, "approval")
    hook = httpx.Client(base_url=served.url, timeout=10)
    assert hook.post(f"/api/v1/callbacks/{token}/heartbeat").status_code == 200
    _error(hook.post(f"/api/v1/callbacks/{token}/fail", json={"nope": 1}), 422, "invalid")
    r = hook.post(
        f"/api/v1/callbacks/{token}/fail", json={"message": "denied", "error_type": "Denied"}
    )
    assert r.status_code == 200
    run_until_idle(worker)
    ex = worker.get(eid)
    assert ex.status.value == "FAILED" and ex.error is not None and "denied" in ex.error.message


def test_tour_rollback_lists_as_compensated(served: Served, worker: Runtime) -> None:
    with served.client("oper") as c:
        eid = _start(c, TOUR, {"fail_car": True}).json()["id"]
        run_until_idle(worker)
        page = c.get(f"/api/v1/executions/{eid}").json()
        assert page["saga_status"] == "compensated"
        saga = page["saga"]
        assert [s["name"] for s in saga["steps"]][:2] == ["book-flight", "book-hotel"]
        assert saga["steps"][0]["compensation"]["status"] == "compensated"
        listed = c.get(
            "/api/v1/executions", params={"saga_status": "compensated", "function": TOUR}
        )
        assert eid in [row["id"] for row in listed.json()["items"]]


def test_parked_saga_operator_actions(served: Served, worker: Runtime) -> None:
    with served.client("oper") as c:
        eid = _start(c, STUCK, None).json()["id"]
        run_until_idle(worker)
        page = c.get(f"/api/v1/executions/{eid}").json()
        assert page["saga_status"] == "compensation_failed"
        assert page["saga"]["parked"]["step"] == "book-hotel"
        assert page["pending_callbacks"][0]["privileged"] is True
        listed = c.get("/api/v1/executions", params={"saga_status": "compensation_failed"}).json()
        assert eid in [row["id"] for row in listed["items"]]
        # the operator callback's token does not work on the webhook: 404, as a forged one
        token = _token(worker, eid, "operator:book-hotel")
        before = _audit_count(served)
        hook = httpx.Client(base_url=served.url, timeout=10)
        _error(
            hook.post(f"/api/v1/callbacks/{token}/succeed", json={"action": "skip"}),
            404,
            "not_found",
        )
        _error(c.post(f"/api/v1/executions/{eid}/saga/skip", json={}), 422, "invalid")
        with served.client("reader") as r:
            _error(
                r.post(f"/api/v1/executions/{eid}/saga/retry", json={"reason": "x"}),
                403,
                "forbidden",
            )
        assert _audit_count(served) == before
        assert (
            c.post(f"/api/v1/executions/{eid}/saga/retry", json={"reason": "api back"}).status_code
            == 200
        )
        _error(
            c.post(f"/api/v1/executions/{eid}/saga/resolve", json={"reason": "x"}), 409, "conflict"
        )
        run_until_idle(worker)  # the undo fails again: parked again
        r2 = c.post(f"/api/v1/executions/{eid}/saga/skip", json={"reason": "cancelled by phone"})
        assert r2.status_code == 200
        run_until_idle(worker)
        assert c.get(f"/api/v1/executions/{eid}").json()["saga_status"] == "partially_compensated"
        _error(
            c.post(f"/api/v1/executions/{eid}/saga/retry", json={"reason": "x"}), 409, "conflict"
        )
    with served.client("boss") as b:
        items = b.get("/api/v1/audit").json()["items"]
    mine = [(i["action"], i["actor"]) for i in items if i["execution_id"] == eid]
    assert ("saga.retry", "oper") in mine and ("saga.skip", "oper") in mine


def test_cancel_and_terminate(served: Served, worker: Runtime) -> None:
    with served.client("oper") as c:
        eid = _start(c, APPROVAL, None).json()["id"]
        run_until_idle(worker)
        before = _audit_count(served)
        _error(c.post(f"/api/v1/executions/{eid}/terminate", json={}), 422, "invalid")
        assert _audit_count(served) == before
        assert c.post(f"/api/v1/executions/{eid}/cancel", json={"reason": "dup"}).status_code == 200
        run_until_idle(worker)
        assert worker.get(eid).status.value == "CANCELLED"
        _error(
            c.post(f"/api/v1/executions/{eid}/cancel", json={"reason": "again"}), 409, "conflict"
        )
        other = _start(c, APPROVAL, None).json()["id"]
        run_until_idle(worker)
        assert (
            c.post(f"/api/v1/executions/{other}/terminate", json={"reason": "stop"}).status_code
            == 200
        )
        assert _audit_count(served) == before + 3
    with served.client("boss") as b:
        first = b.get("/api/v1/audit", params={"limit": 1}).json()
    assert first["items"][0]["action"] == "terminate" and first["items"][0]["reason"] == "stop"
    assert first["next_cursor"]


def test_csrf_header_must_match_the_cookie(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as browser:
        page = browser.get("/console/")
        assert page.status_code == 200
        cookie = browser.cookies["durable_csrf"]
        browser.headers["Authorization"] = f"Bearer {KEYS_OPER}"
        eid = f"t-{uuid.uuid4().hex[:10]}"
        body = {"function": ORDER, "input": {}, "execution_id": eid}
        _error(browser.post("/api/v1/executions", json=body), 403, "forbidden")
        wrong = browser.post("/api/v1/executions", json=body, headers={"X-CSRF-Token": "nope"})
        _error(wrong, 403, "forbidden")
        assert browser.get(f"/api/v1/executions/{eid}").status_code == 404
        ok = browser.post("/api/v1/executions", json=body, headers={"X-CSRF-Token": cookie})
        assert ok.status_code == 201


def test_listing_filters_and_pages(served: Served) -> None:
    tag = uuid.uuid4().hex[:8]
    with served.client("oper") as c:
        ids = [_start(c, APPROVAL, None, f"page-{tag}-{i}").json()["id"] for i in range(5)]
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"q": tag, "limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = c.get("/api/v1/executions", params=params).json()
            seen += [row["id"] for row in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == ids[::-1]
        rows = c.get("/api/v1/executions", params={"q": tag, "function": ORDER}).json()["items"]
        assert rows == []
        rows = c.get("/api/v1/executions", params={"q": tag, "status": "SUCCEEDED"}).json()["items"]
        assert rows == []


KEYS_OPER = __import__("server.conftest", fromlist=["KEYS"]).KEYS["oper"]


def test_an_operator_completes_a_pending_callback_from_the_api_recorded_with_the_actor(
    served: Served, worker: Runtime
) -> None:
    with served.client("oper") as c:
        eid = _start(c, ORDER, {"order_id": "A-8"}).json()["id"]
        run_until_idle(worker)
        [pending] = c.get(f"/api/v1/executions/{eid}").json()["pending_callbacks"]
        path = f"/api/v1/executions/{eid}/callbacks/{pending['operation_id']}"
        before = _audit_count(served)
        with served.client("reader") as r:
            _error(r.post(f"{path}/succeed", json={"result": {}}), 403, "forbidden")
        _error(
            c.post(f"/api/v1/executions/{eid}/callbacks/nope/succeed", json={}), 404, "not_found"
        )
        _error(c.post("/api/v1/executions/nope/callbacks/x/succeed", json={}), 404, "not_found")
        _error(c.post(f"{path}/succeed", json={"result": 1, "extra": 2}), 422, "invalid")
        assert _audit_count(served) == before  # nothing recorded for a refusal
        body = {"result": {"tracking": "VNP-2"}, "reason": "shipper phoned"}
        assert c.post(f"{path}/succeed", json=body).status_code == 200
        _error(c.post(f"{path}/succeed", json=body), 409, "conflict")  # once only
        assert _audit_count(served) == before + 1
        run_until_idle(worker)
        done = c.get(f"/api/v1/executions/{eid}").json()
        assert done["status"] == "SUCCEEDED" and '"VNP-2"' in done["result"]
    with served.client("boss") as b:
        items = b.get("/api/v1/audit").json()["items"]
    mine = [(i["action"], i["actor"], i["reason"]) for i in items if i["execution_id"] == eid]
    assert ("callback.succeed", "oper", "shipper phoned") in mine


def test_an_operator_callback_of_a_parked_saga_is_refused_there(
    served: Served, worker: Runtime
) -> None:
    with served.client("oper") as c:
        eid = _start(c, STUCK, None).json()["id"]
        run_until_idle(worker)
        [pending] = c.get(f"/api/v1/executions/{eid}").json()["pending_callbacks"]
        assert pending["privileged"] is True
        path = f"/api/v1/executions/{eid}/callbacks/{pending['operation_id']}/succeed"
        before = _audit_count(served)
        message = _error(c.post(path, json={"result": {"action": "skip"}}), 409, "conflict")
        assert "privileged" in message and "saga actions" in message
        assert _audit_count(served) == before
        assert c.get(f"/api/v1/executions/{eid}").json()["saga_status"] == "compensation_failed"
