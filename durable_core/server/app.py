"""The ASGI app: :func:`create_app` wires a store, the API keys and the routes together.

Invariants:
- The server never runs user code: it records executions by function name
  (``Runtime.enqueue``) and sends callbacks and requests; workers run the functions.
- Every answer that is not 2xx has the JSON error body of :mod:`durable_core.server.errors`,
  including FastAPI's own (bad JSON, a misfit body, an unknown path).
- A request body over ``max_body_bytes`` is refused with 413 before it is read whole.
- ``GET /console/`` sets the ``durable_csrf`` cookie (if the browser has none); a mutating
  request that carries the cookie must send the same value in ``X-CSRF-Token``.
- Nothing here logs a request path, a key or a token (``durable serve`` turns uvicorn's
  access log off: a callback's path holds its token).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from durable_core.errors import DurableError
from durable_core.runtime import Runtime
from durable_core.server import console
from durable_core.server.auth import ApiKey
from durable_core.server.errors import ApiError, error_response, message_of, status_of
from durable_core.server.routes import Api, router
from durable_core.stores.base import Store

DEFAULT_MAX_BODY = 1024 * 1024
CSRF_COOKIE = "durable_csrf"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _BodyLimit:
    """Refuse (413) a request whose body is over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLargeError
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLargeError:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, f"the request body is over the limit of {self.limit} bytes; nothing was done"
        )
        await response(scope, receive, send)


class _TooLargeError(Exception):
    pass


def create_app(
    store: Store,
    *,
    keys: list[ApiKey],
    max_body_bytes: int = DEFAULT_MAX_BODY,
    runtime: Runtime | None = None,
) -> FastAPI:
    """The API (and the console) on ``store``, for the holders of ``keys``.

    Args:
        store: any store; the app does not close it.
        keys: the API keys and their roles (:mod:`durable_core.server.auth`).
        max_body_bytes: the largest request body accepted (413 above it).
        runtime: the runtime to send requests through (default: one on ``store``, with no
            functions registered: the server runs none).
    """
    app = FastAPI(
        title="durable-saga",
        summary="Executions, sagas and callbacks of a durable-saga store",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.api = Api(runtime or Runtime(store), keys)
    app.include_router(router)
    console.mount(app)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> Response:
        return error_response(exc.status, exc.message)

    @app.exception_handler(DurableError)
    async def _durable_error(_request: Request, exc: DurableError) -> Response:
        status = status_of(exc)
        if status == 500:
            return error_response(500, "the store failed; see the server's log")
        return error_response(status, message_of(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()))
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return error_response(422, "the request does not fit: " + "; ".join(problems))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        status = exc.status_code
        text = "no such path" if status == 404 else str(exc.detail)
        return error_response(status, text)

    @app.middleware("http")
    async def _csrf_cookie(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        path = request.url.path
        if request.method == "GET" and path == "/console/" and CSRF_COOKIE not in request.cookies:
            response.set_cookie(CSRF_COOKIE, secrets.token_urlsafe(32), samesite="strict", path="/")
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    app.add_middleware(_BodyLimit, limit=max_body_bytes)
    return app
