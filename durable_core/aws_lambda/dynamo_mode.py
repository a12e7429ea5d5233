"""Durable functions on plain Lambda with the journal in DynamoDB (no durable service).

- :func:`dynamodb_handler` runs one execution per invocation: the event
  ``{"execution_id": ..., "input": ...}`` starts it (idempotently by id) or, without
  ``input``, resumes it; the handler drives it until it finishes or waits.
- :func:`sweeper_handler` is the scheduled Lambda that plays the service's part: it finds
  due executions (timers, retries, completed callbacks, leases of invocations that died)
  and re-invokes the function for each with ``InvocationType="Event"``, or runs them
  itself when given the functions.

Invariants:
- One engine, one store contract: both handlers are a :class:`~durable_core.Runtime` over
  the store, so leases and fencing keep two invocations from advancing one execution.
- **Version pinning.** An execution records the code version it started with (an explicit
  ``version=``, else the function's ``@durable(version=)``, else
  ``AWS_LAMBDA_FUNCTION_VERSION``). The handler refuses to resume an execution recorded
  under another version (:class:`~durable_core.errors.VersionMismatchError`, nothing
  changed), and the sweeper invokes the version the execution started with (the qualified
  function ARN), so replay never runs other code.
- boto3 is imported on first use only (a default store or client).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any

from durable_core.clock import Clock
from durable_core.errors import (
    ExecutionConflictError,
    PrivilegedCallbackError,
    ValidationError,
    VersionMismatchError,
)
from durable_core.function import (
    DurableFunction,
    DurableLambdaHandler,
    make_durable,
    unwrap_durable,
)
from durable_core.records import Execution
from durable_core.runtime import Runtime, RuntimeOptions, default_worker_id
from durable_core.serde import loads_strict
from durable_core.stores.base import Store

LambdaHandler = Callable[[Mapping[str, Any], Any], dict[str, Any]]
TABLE_ENV = "DURABLE_TABLE"
TTL_DAYS_ENV = "DURABLE_TTL_DAYS"
FUNCTION_ENV = "DURABLE_FUNCTION_NAME"
_MARGIN_MS = 10_000
"""The in-process sweeper stops claiming work this long before the Lambda times out."""


def resolve_version(fn: DurableFunction[Any, Any], version: str | None) -> str | None:
    """The version executions record: explicit, else ``@durable``'s, else Lambda's."""
    return version or fn.version or os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")


def default_store(table: str | None = None, ttl_after_finish: timedelta | None = None) -> Store:
    """A DynamoDBStore on ``table`` (default ``$DURABLE_TABLE``; TTL ``$DURABLE_TTL_DAYS``)."""
    from durable_core.stores.dynamodb import DynamoDBStore

    name = table or os.environ.get(TABLE_ENV)
    if not name:
        raise ValidationError(
            f"no DynamoDB table: pass table= or store=, or set ${TABLE_ENV} in the function's "
            "environment"
        )
    days = os.environ.get(TTL_DAYS_ENV)
    if ttl_after_finish is None and days:
        ttl_after_finish = timedelta(days=float(days))
    return DynamoDBStore(name, ttl_after_finish=ttl_after_finish)


class _Lazy:
    """Makes the store and runtime on the first invocation; reused while the container is."""

    def __init__(self, make: Callable[[], Runtime]) -> None:
        self._make = make
        self._runtime: Runtime | None = None

    def get(self) -> Runtime:
        if self._runtime is None:
            self._runtime = self._make()
        return self._runtime


def summary(ex: Execution) -> dict[str, Any]:
    """An execution as the handler's JSON response."""
    return {
        "execution_id": ex.id,
        "status": ex.status.value,
        "result": json.loads(ex.result) if ex.result is not None else None,
        "error": ex.error.model_dump(exclude_none=True) if ex.error is not None else None,
        "waiting_for": ex.waiting_for,
        "wake_at": ex.wake_at.isoformat() if ex.wake_at is not None else None,
        "version": ex.version,
    }


def dynamodb_handler(
    fn: DurableFunction[Any, Any] | Any,
    *,
    store: Store | None = None,
    table: str | None = None,
    version: str | None = None,
    clock: Clock | None = None,
    options: RuntimeOptions | None = None,
) -> DurableLambdaHandler:
    """Make a Lambda handler that starts or resumes executions of ``fn`` on a DynamoDB store.

    Events::

        {"execution_id": "order-42", "input": {...}}   # start (idempotent by id), then run
        {"execution_id": "order-42"}                   # resume (what the sweeper sends)

    Without ``execution_id`` the Lambda request id is used, which Lambda keeps across its
    own retries of one asynchronous event. The response is the execution's summary
    (``status`` RUNNING while it waits; the sweeper resumes it when it is due).

    Args:
        fn: a ``@durable`` function, a saga, or a plain ``(ctx, event)`` function.
        store: the store (default: a ``DynamoDBStore`` on ``table``, made on first use).
        table: the table name (default ``$DURABLE_TABLE``).
        version: the code version executions record (see the module docstring).
        clock: the runtime's clock (tests pass a virtual one).
        options: runtime options (lease TTL, inline retry threshold, payload limit).

    Raises (from the handler):
        VersionMismatchError: the execution started under another version; nothing changed.
        ExecutionConflictError: the id belongs to another function or another input.
        ExecutionNotFoundError: a resume event names an unknown execution.
    """
    base = make_durable(unwrap_durable(fn))
    durable_fn = dataclasses.replace(base, version=resolve_version(base, version))
    lazy = _Lazy(
        lambda: Runtime(
            store if store is not None else default_store(table),
            functions=[durable_fn],
            clock=clock,
            options=options,
            worker_id=_worker_id(),
        )
    )

    def handler(event: Mapping[str, Any], lambda_context: Any = None) -> dict[str, Any]:
        runtime = lazy.get()
        execution_id = _execution_id(event, lambda_context)
        if "input" in event:
            ex = runtime.start(durable_fn, event["input"], execution_id=execution_id)
        else:
            ex = runtime.get(execution_id)
        _check_owner(ex, durable_fn)
        if not ex.status.is_terminal:
            ex = runtime.drive(ex.id)
        return summary(ex)

    return DurableLambdaHandler(handler, durable_fn)


def _execution_id(event: Mapping[str, Any], lambda_context: Any) -> str:
    if not isinstance(event, Mapping):
        raise ValidationError(
            'the event must be an object: {"execution_id": ..., "input": ...} to start, '
            '{"execution_id": ...} to resume'
        )
    given = event.get("execution_id")
    if given is not None and (not isinstance(given, str) or not given.strip()):
        raise ValidationError(f"execution_id must be a non-empty string, got {given!r}")
    if given is None and "input" not in event:
        raise ValidationError(
            'the event has neither "execution_id" nor "input": send {"input": ...} to start '
            'an execution or {"execution_id": ...} to resume one'
        )
    return given or getattr(lambda_context, "aws_request_id", None) or uuid.uuid4().hex


def _check_owner(ex: Execution, fn: DurableFunction[Any, Any]) -> None:
    if ex.function != fn.name:
        raise ExecutionConflictError(
            f"execution {ex.id!r} belongs to durable function {ex.function!r}, not "
            f"{fn.name!r}; invoke that function's handler"
        )
    if ex.version != fn.version and not ex.status.is_terminal:
        raise VersionMismatchError(
            f"execution {ex.id!r} started under version {ex.version!r} but this Lambda runs "
            f"version {fn.version!r}; replaying other code could repeat or skip effects. "
            f"Invoke the version it started with (the qualified function ARN ending in "
            f":{ex.version}); the sweeper does. Nothing was changed."
        )


def _worker_id() -> str:
    stream = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
    return f"lambda:{stream}:{uuid.uuid4().hex[:8]}" if stream else default_worker_id()


def sweeper_handler(
    *,
    store: Store | None = None,
    table: str | None = None,
    function_name: str | Mapping[str, str] | None = None,
    lambda_client: Any | None = None,
    functions: Iterable[DurableFunction[Any, Any] | Any] | None = None,
    qualify_with_version: bool = True,
    clock: Clock | None = None,
    options: RuntimeOptions | None = None,
    limit: int = 100,
) -> LambdaHandler:
    """Make the scheduled handler that resumes due executions (see ``docs/aws-lambda.md``).

    Dispatch mode (default): for each due execution, invoke the function asynchronously
    (``InvocationType="Event"``) with ``{"execution_id": ...}``, qualified with the version
    the execution started under. Latency is one schedule period; each resume is its own
    invocation, so concurrency follows the number of due executions.

    In-process mode (``functions=`` given): run the due executions in the sweeper itself,
    until none is due or the Lambda is about to time out. Fewer invocations, but one
    sweeper's time and memory for all of them.

    Args:
        store: the store (default: a ``DynamoDBStore`` on ``table``).
        table: the table name (default ``$DURABLE_TABLE``).
        function_name: the Lambda function to invoke (default ``$DURABLE_FUNCTION_NAME``), or
            a mapping from durable function name to Lambda function.
        lambda_client: a boto3 ``lambda`` client (default: made on first use).
        functions: run in-process instead of dispatching: the durable functions to run.
        qualify_with_version: invoke ``function:version`` when the execution recorded a
            Lambda version (not ``$LATEST``). Turn off if your versions are not Lambda's.
        clock: the clock deciding what is due (tests pass a virtual one).
        options: runtime options; ``lease_ttl`` also bounds how long a dispatched
            execution is held.
        limit: executions handled per run.

    Returns:
        ``handler(event, lambda_context) -> {"dispatched": [...], "failed": [...]}`` or
        ``{"ran": n}`` in-process.
    """
    in_process = list(functions) if functions is not None else None
    lazy = _Lazy(
        lambda: Runtime(
            store if store is not None else default_store(table),
            functions=in_process or (),
            clock=clock,
            options=options,
            worker_id=_worker_id(),
        )
    )
    clients: list[Any] = [lambda_client] if lambda_client is not None else []

    def handler(
        event: Mapping[str, Any] | None = None, lambda_context: Any = None
    ) -> dict[str, Any]:
        runtime = lazy.get()
        if in_process is not None:
            return {"ran": _run_due(runtime, lambda_context, limit)}
        if not clients:
            clients.append(_lambda_client())
        return _dispatch(runtime, clients[0], function_name, qualify_with_version, limit)

    return handler


def callback_handler(
    *, store: Store | None = None, table: str | None = None, clock: Clock | None = None
) -> LambdaHandler:
    """Make a handler that completes callbacks by token (put it behind your webhook).

    Events (or a Function URL / API Gateway event whose ``body`` is one of these)::

        {"token": "...", "result": {...}}                               success
        {"token": "...", "error": {"type": "...", "message": "..."}}    failure
        {"token": "...", "heartbeat": true}                             heartbeat

    The store makes the execution due at once; the sweeper resumes it on its next run.

    A privileged callback (a saga's operator callback) is refused, whoever holds its token:
    an HTTP request (one with a ``body``) gets ``{"statusCode": 403, ...}``, a direct
    invocation the PrivilegedCallbackError; nothing changes either way.

    Raises (from the handler):
        ValidationError: the event, or its ``body``, is not one of these (e.g. not JSON);
            nothing changed.
        CallbackNotFoundError: no callback has this token.
        CallbackAlreadyCompletedError: it was completed (or timed out) before; nothing changed.
        PrivilegedCallbackError: a direct invocation for a privileged callback.
    """
    lazy = _Lazy(
        lambda: Runtime(
            store if store is not None else default_store(table), clock=clock, worker_id="callback"
        )
    )

    def handler(event: Mapping[str, Any], lambda_context: Any = None) -> dict[str, Any]:
        request: Any = event
        http = isinstance(event, Mapping) and isinstance(event.get("body"), str)
        if http:
            request = _parse_body(event["body"], base64_encoded=bool(event.get("isBase64Encoded")))
        if not isinstance(request, Mapping) or not isinstance(request.get("token"), str):
            raise ValidationError(
                'send {"token": ..., "result": ...}, {"token": ..., "error": {"type": ..., '
                '"message": ...}} or {"token": ..., "heartbeat": true}'
            )
        try:
            return _complete(lazy.get(), request)
        except PrivilegedCallbackError as e:
            if not http:
                raise
            body = {"error": "PrivilegedCallbackError", "message": str(e)}
            return {
                "statusCode": 403,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps(body),
            }

    return handler


def _complete(runtime: Runtime, request: Mapping[str, Any]) -> dict[str, Any]:
    """Apply one webhook request through the runtime's generic (unprivileged) callback path."""
    token = request["token"]
    if request.get("heartbeat"):
        op = runtime.send_callback_heartbeat(token)
    elif "error" in request:
        error = request["error"] if isinstance(request["error"], Mapping) else {}
        op = runtime.send_callback_failure(
            token,
            str(error.get("message") or request["error"]),
            error_type=str(error.get("type") or "CallbackFailure"),
            data=error.get("data"),
        )
    else:
        op = runtime.send_callback_success(token, request.get("result"))
    return {"status": op.status.value, "callback": op.name}


def _parse_body(body: str, *, base64_encoded: bool = False) -> Any:
    """The JSON of a webhook request's ``body``; ValidationError (nothing written) if it is not.

    Function URLs and API Gateway send a body base64-encoded (``isBase64Encoded``) when the
    request's content type is not text, e.g. a webhook posting ``application/octet-stream``.
    """
    try:
        raw = base64.b64decode(body, validate=True) if base64_encoded else body
        return loads_strict(raw)
    except (ValueError, RecursionError) as e:
        raise ValidationError(
            f'callback request: the "body" field is not valid JSON ({e}). Send a JSON object '
            'such as {"token": ..., "result": ...} as the body, with Content-Type '
            "application/json. Nothing was changed."
        ) from e


def _run_due(runtime: Runtime, lambda_context: Any, limit: int) -> int:
    ran = 0
    remaining = getattr(lambda_context, "get_remaining_time_in_millis", None)
    while ran < limit:
        if remaining is not None and remaining() < _MARGIN_MS:
            break
        step = runtime.tick(limit=min(16, limit - ran))
        if step == 0:
            break
        ran += step
    return ran


def _dispatch(
    runtime: Runtime,
    client: Any,
    function_name: str | Mapping[str, str] | None,
    qualify: bool,
    limit: int,
) -> dict[str, Any]:
    store, now = runtime.store, runtime.clock.now()
    leases = store.claim_due(runtime.worker_id, now, runtime.options.lease_ttl, limit)
    dispatched: list[str] = []
    failed: list[dict[str, str]] = []
    for lease in leases:
        ex = store.get_execution(lease.execution_id)
        # Release before invoking: the invoked handler takes its own lease. If it never
        # runs, the execution is still due and the next sweep dispatches it again.
        store.release_lease(lease)
        try:
            target = _target(function_name, ex)
            request: dict[str, Any] = {
                "FunctionName": target,
                "InvocationType": "Event",
                "Payload": json.dumps({"execution_id": ex.id}).encode(),
            }
            if qualify and ex.version and ex.version != "$LATEST" and not _qualified(target):
                request["Qualifier"] = ex.version
            client.invoke(**request)
            dispatched.append(ex.id)
        except Exception as exc:  # one bad execution must not stop the sweep
            failed.append({"execution_id": ex.id, "error": f"{type(exc).__name__}: {exc}"})
    return {"dispatched": dispatched, "failed": failed}


def _target(function_name: str | Mapping[str, str] | None, ex: Execution) -> str:
    if isinstance(function_name, Mapping):
        found = function_name.get(ex.function)
        if found is None:
            raise ValidationError(f"no Lambda function is mapped for {ex.function!r}")
        return found
    name = function_name or os.environ.get(FUNCTION_ENV)
    if not name:
        raise ValidationError(
            f"the sweeper needs the function to invoke: pass function_name= or set ${FUNCTION_ENV}"
        )
    return name


def _qualified(target: str) -> bool:
    """True for ``name:qualifier`` and ``arn:...:function:name:qualifier``."""
    parts = target.split(":")
    return len(parts) == 8 if target.startswith("arn:") else len(parts) == 2


def _lambda_client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("lambda", config=Config(retries={"mode": "standard", "max_attempts": 5}))
