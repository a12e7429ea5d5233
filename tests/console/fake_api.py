"""A small stand-in for the server's JSON API, on a real SQLite store, for the console tests.

It implements the contract's read endpoints (whoami, the list with its filters and cursor,
the execution detail, its history), the saga operator actions and cancel/terminate, plus
the endpoint the console needs to complete a non-privileged callback as an operator
(``POST /api/v1/executions/{id}/callbacks/{operation_id}/succeed|fail``, not in the
contract yet). Mutations go through the real ``saga.operator`` and ``Runtime`` request API,
then one worker pass runs what became due, as ``durable serve``'s worker would.

It is a test double, not the server: keys are plain in memory, the cursor is an offset,
and the journal does not say which step is a saga's pivot, so ``pivots`` names them.
Every mutating request is appended to ``app.state.requests`` with its headers, so a test
can check what reached the API (the CSRF header, the reason).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from durable_core import (
    Execution,
    ExecutionNotFoundError,
    Operation,
    OperationStatus,
    OperationType,
    Runtime,
)
from durable_core.server.console import CSRF_COOKIE, CSRF_HEADER, mount
from durable_core.stores.sqlite import SQLiteStore
from saga.errors import SagaNotParkedError
from saga.operator import resolve, retry_compensation, skip_compensation
from saga.outcome import derive_outcome

from .scenarios import FUNCTIONS

KEYS = {"key-read": ("ana@read", "read"), "key-operate": ("oscar@ops", "operate")}


class ApiError(HTTPException):
    """An error with the contract's body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message)
        self.code = code


def create_app(store_path: Path, *, pivots: Mapping[str, str] | None = None) -> FastAPI:
    """The fake API on the SQLite store at ``store_path``, with the console mounted."""
    runtime = Runtime(SQLiteStore(str(store_path)), functions=FUNCTIONS)
    lock = threading.Lock()
    app = FastAPI(openapi_url="/api/v1/openapi.json")
    app.state.requests = []
    app.state.runtime = runtime
    mount(app)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        body = {"error": {"status": exc.status_code, "code": exc.code, "message": exc.detail}}
        return JSONResponse(body, status_code=exc.status_code)

    def who(request: Request, role: str = "read") -> str:
        auth = request.headers.get("authorization", "")
        actor, has = KEYS.get(auth.removeprefix("Bearer "), (None, None))
        if actor is None or has is None:
            raise ApiError(401, "unauthorized", "a valid API key is needed")
        if role == "operate" and has == "read":
            raise ApiError(403, "forbidden", f"{actor} has the read role; this needs operate")
        return actor

    async def mutation(request: Request) -> tuple[str, dict[str, Any]]:
        actor = who(request, "operate")
        cookie = request.cookies.get(CSRF_COOKIE)
        header = request.headers.get(CSRF_HEADER)
        if cookie is not None and header != cookie:
            raise ApiError(403, "forbidden", "the X-CSRF-Token header does not match")
        body = await request.json()
        app.state.requests.append(
            {"path": request.url.path, "csrf": header, "cookie": cookie, "body": body}
        )
        return actor, body

    def detail(eid: str) -> dict[str, Any]:
        ex = _get(runtime, eid)
        ops = runtime.operations(eid)
        return {
            **_summary(ex, ops),
            "input": ex.input,
            "result": ex.result,
            "error": ex.error.model_dump() if ex.error else None,
            "operations": [_op_view(op) for op in ops],
            "saga": _saga_view(ex, ops, (pivots or {}).get(ex.function)),
            "pending_callbacks": [
                {
                    "name": op.name,
                    "operation_id": op.id,
                    "privileged": bool(op.privileged),
                    "timeout_at": _iso(op.timeout_at),
                }
                for op in ops
                if op.type is OperationType.CALLBACK and op.status is OperationStatus.STARTED
            ],
        }

    @app.get("/api/v1/whoami")
    def whoami(request: Request) -> dict[str, str]:
        actor = who(request)
        return {"actor": actor, "role": KEYS[request.headers["authorization"][7:]][1]}

    @app.get("/api/v1/executions")
    def executions(request: Request) -> dict[str, Any]:
        who(request)
        p = request.query_params
        with lock:
            rows = [(ex, runtime.operations(ex.id)) for ex in runtime.store.list_executions()]
        items = [_summary(ex, ops) for ex, ops in rows]
        items = [
            item
            for item in items
            if (not p.get("function") or p["function"] in item["function"])
            and (not p.get("status") or item["status"] == p["status"])
            and (not p.get("saga_status") or item["saga_status"] == p["saga_status"])
            and (not p.get("q") or p["q"] in item["id"])
            and (not p.get("waiting") or p["waiting"] in (item["waiting_for"] or ""))
        ]
        start, limit = int(p.get("cursor") or 0), int(p.get("limit") or 50)
        more = start + limit < len(items)
        return {
            "items": items[start : start + limit],
            "next_cursor": str(start + limit) if more else None,
        }

    @app.get("/api/v1/executions/{eid}")
    def execution(request: Request, eid: str) -> dict[str, Any]:
        who(request)
        with lock:
            return detail(eid)

    @app.get("/api/v1/executions/{eid}/history")
    def history(request: Request, eid: str) -> list[dict[str, Any]]:
        who(request)
        _get(runtime, eid)
        return [_op_view(op) for op in runtime.operations(eid)]

    @app.post("/api/v1/executions/{eid}/saga/{action}")
    async def saga_action(request: Request, eid: str, action: str) -> dict[str, Any]:
        actor, body = await mutation(request)
        decide = {
            "retry": lambda: retry_compensation(runtime, eid, actor=actor),
            "skip": lambda: skip_compensation(runtime, eid, body.get("reason", ""), actor=actor),
            "resolve": lambda: resolve(runtime, eid, body.get("reason", ""), actor=actor),
        }.get(action)
        if decide is None:
            raise ApiError(404, "not_found", f"no saga action {action!r}")
        with lock:
            _get(runtime, eid)
            try:
                decide()
            except SagaNotParkedError as e:
                raise ApiError(409, "conflict", str(e)) from e
            runtime.tick()
            return detail(eid)

    @app.post("/api/v1/executions/{eid}/{stop}")
    async def stop(request: Request, eid: str, stop: str) -> dict[str, Any]:
        actor, body = await mutation(request)
        if stop not in ("cancel", "terminate"):
            raise ApiError(404, "not_found", f"no action {stop!r}")
        with lock:
            getattr(runtime, stop)(eid, body.get("reason"), actor=actor)
            runtime.tick()
            return detail(eid)

    async def complete(request: Request, eid: str, op_id: str, outcome: str) -> dict[str, Any]:
        _actor, body = await mutation(request)
        with lock:
            _get(runtime, eid)
            op = next((o for o in runtime.operations(eid) if o.id == op_id), None)
            if op is None or op.callback_id is None or op.privileged:
                raise ApiError(404, "not_found", f"no pending callback {op_id!r} in {eid!r}")
            if outcome == "succeed":
                runtime.send_callback_success_json(op.callback_id, json.dumps(body["result"]))
            else:
                runtime.send_callback_failure(op.callback_id, body["message"])
            runtime.tick()
            return detail(eid)

    @app.post("/api/v1/executions/{eid}/callbacks/{op_id}/succeed")
    async def succeed(request: Request, eid: str, op_id: str) -> dict[str, Any]:
        return await complete(request, eid, op_id, "succeed")

    @app.post("/api/v1/executions/{eid}/callbacks/{op_id}/fail")
    async def fail(request: Request, eid: str, op_id: str) -> dict[str, Any]:
        return await complete(request, eid, op_id, "fail")

    return app


def _get(runtime: Runtime, eid: str) -> Execution:
    try:
        return runtime.get(eid)
    except ExecutionNotFoundError as e:
        raise ApiError(404, "not_found", f"no execution {eid!r}") from e


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _saga_status(ex: Execution, ops: list[Operation]) -> str:
    outcome = derive_outcome(ex, ops)
    return "parked" if outcome.parked_on else outcome.status.value


def _summary(ex: Execution, ops: list[Operation]) -> dict[str, Any]:
    return {
        "id": ex.id,
        "function": ex.function,
        "status": ex.status.value,
        "saga_status": _saga_status(ex, ops),
        "waiting_for": ex.waiting_for,
        "created_at": _iso(ex.created_at),
        "updated_at": _iso(ex.updated_at),
        "wake_at": _iso(ex.wake_at),
    }


def _op_view(op: Operation) -> dict[str, Any]:
    return {
        "id": op.id,
        "parent_id": op.parent_id,
        "type": op.type.value,
        "sub_type": op.sub_type,
        "name": op.name,
        "status": op.status.value,
        "attempt": op.attempt,
        "started_at": _iso(op.started_at),
        "ended_at": _iso(op.ended_at),
        "result": op.result,
        "error": op.error.model_dump(exclude={"traceback"}) if op.error else None,
        "next_attempt_at": _iso(op.next_attempt_at),
        "wait_until": _iso(op.scheduled_end),
    }


def _saga_view(ex: Execution, ops: list[Operation], pivot: str | None) -> dict[str, Any]:
    outcome = derive_outcome(ex, ops)
    comps = {c.step: c for c in outcome.compensations}
    parked = None
    if outcome.parked_on:
        failed = comps.get(outcome.parked_on)
        parked = {
            "step": outcome.parked_on,
            "error": failed.error.message if failed and failed.error else None,
            "actions": ["retry", "skip", "resolve"],
        }
    return {
        "status": "parked" if parked else outcome.status.value,
        "steps": [
            {
                "name": st.name,
                "status": st.status,
                "pivot": st.name == pivot,
                "compensation": (
                    {"name": f"compensate:{st.name}", "status": comps[st.name].status}
                    if st.name in comps
                    else None
                ),
            }
            for st in outcome.steps
        ],
        "parked": parked,
    }
