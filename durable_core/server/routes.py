"""The routes of ``/api/v1`` (the contract is in docs/server.md).

Invariants:
- Every route but the callbacks and the schema needs a key (:mod:`~durable_core.server.auth`)
  of at least its role; the check runs before anything else, so a refusal changes nothing.
- A mutating route checks the CSRF header against the ``durable_csrf`` cookie when the
  request carries the cookie (a browser's), validates its body, makes one runtime call,
  and only then appends one audit record naming the actor: a refused request records
  nothing.
- The callback routes are authorised by the token alone and complete only non-privileged
  callbacks: a privileged one answers exactly as an unknown token does (404).
"""

from __future__ import annotations

import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from durable_core.errors import ExecutionNotFoundError
from durable_core.records import ExecutionStatus, OperationStatus, OperationType
from durable_core.runtime import Runtime
from durable_core.server import sagas
from durable_core.server.auth import ApiKey, Role, find_key
from durable_core.server.errors import ApiError
from durable_core.server.views import (
    ROW_SAGA_FILTERS,
    ExecutionDetail,
    ExecutionSummary,
    OperationView,
    detail,
    operation_view,
    summary,
    without_tokens,
)
from durable_core.stores.audit import AuditEntry, AuditPage
from durable_core.stores.search import MAX_PAGE, ExecutionQuery

router = APIRouter(prefix="/api/v1")


@dataclass(frozen=True)
class Api:
    """What the routes share: the runtime on the store, and the keys."""

    runtime: Runtime
    keys: list[ApiKey]


@dataclass(frozen=True)
class Caller:
    """Who sent the request."""

    actor: str
    role: Role | None


def _api(request: Request) -> Api:
    api: Api = request.app.state.api
    return api


def _authorised(request: Request, role: Role) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "an API key is required: send the header 'Authorization: Bearer KEY'")
    found = find_key(_api(request).keys, key.strip())
    if found is None:
        raise ApiError(401, "that API key is not valid (unknown or revoked); nothing was done")
    if found.role < role:
        raise ApiError(
            403,
            f"the key of {found.actor!r} has the role {found.role.name.lower()}; this needs "
            f"{role.name.lower()} or higher. Nothing was done.",
        )
    return Caller(found.actor, found.role)


def _csrf(request: Request) -> None:
    cookie = request.cookies.get("durable_csrf")
    if cookie is None:
        return
    sent = request.headers.get("x-csrf-token", "")
    if not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise ApiError(
            403,
            "the X-CSRF-Token header does not match the durable_csrf cookie; reload the "
            "console and try again. Nothing was done.",
        )


def reader(request: Request) -> Caller:
    """A caller with at least the read role."""
    return _authorised(request, Role.READ)


def operator(request: Request) -> Caller:
    """A caller with at least the operate role, past the CSRF check."""
    caller = _authorised(request, Role.OPERATE)
    _csrf(request)
    return caller


def admin(request: Request) -> Caller:
    """A caller with the admin role."""
    return _authorised(request, Role.ADMIN)


def _record(
    request: Request,
    caller: Caller,
    action: str,
    status: int,
    *,
    execution_id: str | None = None,
    reason: str | None = None,
) -> None:
    _api(request).runtime.store.append_audit(
        AuditEntry(
            id=uuid.uuid4().hex,
            at=_api(request).runtime.clock.now(),
            actor=caller.actor,
            role=caller.role.name.lower() if caller.role else None,
            action=action,
            execution_id=execution_id,
            reason=reason,
            status=status,
        )
    )


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartBody(_Body):
    """Start an execution of ``function`` (its registered name)."""

    function: str = Field(min_length=1, max_length=300)
    input: Any = None
    execution_id: str | None = Field(default=None, min_length=1, max_length=200)
    version: str | None = Field(default=None, min_length=1, max_length=100)


class ReasonBody(_Body):
    """Why (recorded with the actor)."""

    reason: str | None = Field(default=None, max_length=2000)


class FailBody(_Body):
    """A callback's failure."""

    message: str = Field(min_length=1, max_length=8000)
    error_type: str | None = Field(default=None, min_length=1, max_length=200)
    data: str | None = Field(default=None, max_length=16000)


class OperatorSucceedBody(_Body):
    """An operator's completion of a pending callback: its result, and why."""

    result: Any = None
    reason: str | None = Field(default=None, max_length=2000)


class OperatorFailBody(_Body):
    """An operator's failure of a pending callback, and why."""

    message: str = Field(min_length=1, max_length=8000)
    error_type: str | None = Field(default=None, min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=2000)


class ExecutionPageView(BaseModel):
    """One page of the listing."""

    items: list[ExecutionSummary]
    next_cursor: str | None


class WhoAmI(BaseModel):
    """The caller's actor and role."""

    actor: str
    role: str


class Done(BaseModel):
    """A request that was accepted."""

    execution: ExecutionSummary


class CallbackDone(BaseModel):
    """A callback that was completed or heartbeaten."""

    ok: bool = True


# --- reading --------------------------------------------------------------------------------


@router.get("/whoami")
def whoami(caller: Annotated[Caller, Depends(reader)]) -> WhoAmI:
    """The actor and role of the key sent."""
    assert caller.role is not None
    return WhoAmI(actor=caller.actor, role=caller.role.name.lower())


@router.get("/executions")
def list_executions(  # noqa: PLR0917 - FastAPI takes the query parameters as arguments
    request: Request,
    _caller: Annotated[Caller, Depends(reader)],
    function: str | None = None,
    status: ExecutionStatus | None = None,
    saga_status: str | None = None,
    waiting: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> ExecutionPageView:
    """Executions newest first, filtered; pass ``next_cursor`` back for the next page."""
    filters: dict[str, Any] = {}
    if saga_status:
        if saga_status not in ROW_SAGA_FILTERS:
            raise ApiError(
                422,
                f"saga_status {saga_status!r} cannot be filtered on; the listing tells apart "
                f"{', '.join(ROW_SAGA_FILTERS)}",
            )
        filters = dict(ROW_SAGA_FILTERS[saga_status])
    if status is not None:
        if filters.get("status", status) is not status:
            return ExecutionPageView(items=[], next_cursor=None)
        filters["status"] = status
    waits = tuple(filters.pop("waiting_contains", ())) + ((waiting,) if waiting else ())
    query = ExecutionQuery(
        function=function or None,
        id_contains=q or None,
        waiting_contains=waits,
        created_after=created_after,
        created_before=created_before,
        cursor=cursor or None,
        limit=limit,
        **filters,
    )
    page = _api(request).runtime.store.search_executions(query)
    return ExecutionPageView(items=[summary(e) for e in page.items], next_cursor=page.next_cursor)


@router.get("/executions/{execution_id}", response_model=ExecutionDetail)
def get_execution(
    request: Request, execution_id: str, _caller: Annotated[Caller, Depends(reader)]
) -> Response:
    """One execution: payloads, journal (no tokens), saga and pending callbacks."""
    runtime = _api(request).runtime
    ex = runtime.get(execution_id)
    ops = runtime.operations(execution_id)
    return _json(without_tokens(detail(ex, ops, sagas.saga_view(ex, ops)), ops))


@router.get("/executions/{execution_id}/history", response_model=list[OperationView])
def history(
    request: Request, execution_id: str, _caller: Annotated[Caller, Depends(reader)]
) -> Response:
    """The journal, in write order (no tokens)."""
    ops = _api(request).runtime.operations(execution_id)
    return _json(without_tokens([operation_view(op) for op in ops], ops))


def _json(text: str) -> Response:
    return Response(text, media_type="application/json")


@router.get("/audit")
def audit(
    request: Request,
    _caller: Annotated[Caller, Depends(admin)],
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> AuditPage:
    """The accepted mutating requests, newest first."""
    return _api(request).runtime.store.list_audit(cursor=cursor or None, limit=limit)


# --- operating ------------------------------------------------------------------------------


@router.post("/executions", status_code=201, responses={200: {"model": ExecutionSummary}})
def start(
    request: Request, body: StartBody, caller: Annotated[Caller, Depends(operator)]
) -> JSONResponse:
    """Record an execution for a worker to run (idempotent by ``execution_id``)."""
    ex, created = _api(request).runtime.enqueue(
        body.function,
        json.dumps(body.input),
        execution_id=body.execution_id,
        version=body.version,
    )
    code = 201 if created else 200
    _record(request, caller, "start", code, execution_id=ex.id)
    return JSONResponse(summary(ex).model_dump(mode="json"), code)


@router.post("/executions/{execution_id}/cancel")
def cancel(
    request: Request,
    execution_id: str,
    body: ReasonBody,
    caller: Annotated[Caller, Depends(operator)],
) -> ExecutionSummary:
    """Ask the execution to stop at its next operation; a saga compensates."""
    ex = _api(request).runtime.cancel(execution_id, body.reason, actor=caller.actor)
    _record(request, caller, "cancel", 200, execution_id=ex.id, reason=body.reason)
    return summary(ex)


@router.post("/executions/{execution_id}/terminate")
def terminate(
    request: Request,
    execution_id: str,
    body: ReasonBody,
    caller: Annotated[Caller, Depends(operator)],
) -> ExecutionSummary:
    """End the execution at its next operation without cleaning up (a reason is required)."""
    ex = _api(request).runtime.terminate(execution_id, body.reason or "", actor=caller.actor)
    _record(request, caller, "terminate", 200, execution_id=ex.id, reason=body.reason)
    return summary(ex)


def _saga_action(action: str) -> Any:
    def act(
        request: Request,
        execution_id: str,
        body: ReasonBody,
        caller: Annotated[Caller, Depends(operator)],
    ) -> ExecutionSummary:
        runtime = _api(request).runtime
        runtime.get(execution_id)  # 404 for an unknown id before anything else
        try:
            sagas.decide(runtime, execution_id, action, body.reason or "", caller.actor)
        except LookupError as e:
            if isinstance(e, ExecutionNotFoundError):
                raise
            raise ApiError(404, str(e)) from e
        _record(
            request, caller, f"saga.{action}", 200, execution_id=execution_id, reason=body.reason
        )
        return summary(runtime.get(execution_id))

    act.__name__ = f"saga_{action}"
    act.__doc__ = f"The operator's {action} of a parked saga (409 if it is not parked)."
    return act


for _action in sagas.ACTIONS:
    router.post(f"/executions/{{execution_id}}/saga/{_action}", name=f"saga_{_action}")(
        _saga_action(_action)
    )


def _pending_token(runtime: Runtime, execution_id: str, operation_id: str) -> str:
    """The token of the execution's pending, non-privileged callback ``operation_id``."""
    runtime.get(execution_id)  # 404 for an unknown execution
    op = next((o for o in runtime.operations(execution_id) if o.id == operation_id), None)
    if op is None or op.type is not OperationType.CALLBACK or op.callback_id is None:
        raise ApiError(404, f"execution {execution_id!r} has no callback {operation_id!r}")
    if op.privileged:
        raise ApiError(
            409,
            f"callback {op.name!r} is privileged: only its own API decides it (for a parked "
            "saga, the saga actions retry, skip, resolve)",
        )
    if op.status is not OperationStatus.STARTED:
        raise ApiError(409, f"callback {op.name!r} is already {op.status.value}")
    return op.callback_id


@router.post("/executions/{execution_id}/callbacks/{operation_id}/succeed")
def operator_callback_succeed(
    request: Request,
    execution_id: str,
    operation_id: str,
    body: OperatorSucceedBody,
    caller: Annotated[Caller, Depends(operator)],
) -> CallbackDone:
    """Complete a pending callback as its external system would, by an operator (recorded
    with the actor and reason); never a privileged one."""
    runtime = _api(request).runtime
    runtime.send_callback_success(_pending_token(runtime, execution_id, operation_id), body.result)
    _record(request, caller, "callback.succeed", 200, execution_id=execution_id, reason=body.reason)
    return CallbackDone()


@router.post("/executions/{execution_id}/callbacks/{operation_id}/fail")
def operator_callback_fail(
    request: Request,
    execution_id: str,
    operation_id: str,
    body: OperatorFailBody,
    caller: Annotated[Caller, Depends(operator)],
) -> CallbackDone:
    """Fail a pending callback, by an operator (recorded with the actor and reason)."""
    runtime = _api(request).runtime
    runtime.send_callback_failure(
        _pending_token(runtime, execution_id, operation_id),
        body.message,
        error_type=body.error_type or "CallbackFailure",
    )
    _record(request, caller, "callback.fail", 200, execution_id=execution_id, reason=body.reason)
    return CallbackDone()


# --- callbacks (the token is the authority) -------------------------------------------------

_WEBHOOK = Caller("callback", None)


@router.post("/callbacks/{token}/succeed")
async def callback_succeed(request: Request, token: str) -> CallbackDone:
    """Complete the callback with the JSON body as its result (empty body: null)."""
    raw = await request.body()
    try:
        text = raw.decode() if raw.strip() else "null"
    except UnicodeDecodeError as e:
        raise ApiError(422, "the body is not UTF-8 JSON text") from e
    _api(request).runtime.send_callback_success_json(token, text)
    _record(request, _WEBHOOK, "callback.succeed", 200)
    return CallbackDone()


@router.post("/callbacks/{token}/fail")
def callback_fail(request: Request, token: str, body: FailBody) -> CallbackDone:
    """Fail the callback; the function sees CallbackFailedError."""
    runtime = _api(request).runtime
    error_type = body.error_type or "CallbackFailure"
    runtime.send_callback_failure(token, body.message, error_type=error_type, data=body.data)
    _record(request, _WEBHOOK, "callback.fail", 200)
    return CallbackDone()


@router.post("/callbacks/{token}/heartbeat")
def callback_heartbeat(request: Request, token: str) -> CallbackDone:
    """Tell a callback with a heartbeat timeout that the external work is alive (not
    audited: a heartbeat only keeps the callback's deadline ahead)."""
    _api(request).runtime.send_callback_heartbeat(token)
    return CallbackDone()
