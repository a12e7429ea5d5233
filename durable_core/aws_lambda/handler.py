"""``durable_handler``: run a durable function under Lambda's durable execution service.

One Lambda invocation is one engine invocation: the handler reads the envelope the service
sends, pages in the rest of the journal, runs the *same* engine (:func:`run_invocation` on a
:class:`~durable_core.journal.Journal` whose store is a
:class:`~durable_core.aws_lambda.service.ServiceStore`, a journal store only) and answers
``SUCCEEDED`` with the result, ``FAILED`` with the error, or ``PENDING`` while something
waits; the service schedules: it re-invokes the function when a timer fires, a retry is due
or a callback completes.

Invariants:
- ``import durable_core.aws_lambda`` does not import boto3; the default client is made on
  the first invocation (``boto3.client("lambda")``: region, credentials and
  ``AWS_ENDPOINT_URL_LAMBDA`` come from boto3's standard configuration) and reused.
- Every retry is the service's: the engine's inline retry threshold is below zero, so each
  failed attempt becomes a RETRY the service schedules (at least 1 s later).
- A service error during the invocation is raised, never turned into an outcome (Lambda
  retries the invocation; replay repeats no completed step).
- A result too big for the Lambda response is checkpointed on the EXECUTION operation and
  the response carries an empty ``Result``.
- Payloads are written as AWS's SDK writes them (:mod:`~durable_core.aws_lambda.payloads`):
  operation values in its tagged form, the execution's result (in the response or
  checkpointed) and invoke payloads as ``json.dumps`` text.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from durable_core.aws_lambda import wire
from durable_core.aws_lambda.errors import EnvelopeError
from durable_core.aws_lambda.payloads import AwsSerde
from durable_core.aws_lambda.service import DurableServiceClient, ServiceClock, ServiceStore
from durable_core.clock import Clock, SystemClock
from durable_core.errors import ValidationError
from durable_core.function import (
    DurableFunction,
    DurableLambdaHandler,
    make_durable,
    unwrap_durable,
)
from durable_core.instrumentation import Instrumentation, check_instrumentation
from durable_core.journal import InvocationOptions, Journal
from durable_core.records import Execution, ExecutionStatus, Lease
from durable_core.runtime.invocation import run_invocation
from durable_core.stores.base import InvocationEnd

LambdaHandler = Callable[[Mapping[str, Any], Any], dict[str, Any]]
_NEVER = datetime(9999, 1, 1, tzinfo=UTC)
_SERVICE_RETRIES = InvocationOptions(
    lease_ttl=timedelta(minutes=15), inline_retry_threshold=timedelta(microseconds=-1)
)
_FUNCTION = re.compile(
    r"(arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:)?[A-Za-z0-9_.-]{1,140}"
    r"(:(\$LATEST|[A-Za-z0-9_-]+))?"
)


@dataclass(frozen=True, kw_only=True)
class LambdaOptions:
    """Knobs of a handler on the durable execution service."""

    max_payload_bytes: int = wire.PAYLOAD_LIMIT
    """Size limit of one serialized value: by default the service's own, 6 MiB, as AWS's SDK
    has it (the self-hosted stores default to 256 KiB)."""
    function_names: Mapping[str, str] = field(default_factory=dict)
    """For ``ctx.invoke`` with a durable function: its name -> the Lambda function (name or
    ARN) to invoke. A string passed to ``ctx.invoke`` is used as the Lambda function as is."""
    clock: Clock | None = None
    """Base clock (default: the system clock); the handler keeps it level with the service."""
    max_passes: int = 10
    """Replays within one invocation when the service reports news while it runs."""
    token_retry_delays: tuple[float, ...] = (0.2, 1.0)
    """Delays of the identical re-sends of a call refused with "Invalid checkpoint token"."""
    instrumentation: Sequence[Instrumentation] = ()
    """Observers of every invocation and operation (see :mod:`durable_core.instrumentation`)."""

    def __post_init__(self) -> None:
        if not 1 <= self.max_payload_bytes <= wire.PAYLOAD_LIMIT:
            raise ValidationError(
                f"max_payload_bytes must be 1..{wire.PAYLOAD_LIMIT} (the service's limit), "
                f"got {self.max_payload_bytes}"
            )
        if self.max_passes < 1:
            raise ValidationError("max_passes must be at least 1")
        object.__setattr__(self, "instrumentation", check_instrumentation(self.instrumentation))


@dataclass(frozen=True)
class Envelope:
    """The parts of the invocation event the handler uses."""

    arn: str
    token: str
    operations: list[Mapping[str, Any]]
    next_marker: str | None


def parse_envelope(event: object) -> Envelope:
    """Check and unpack the service's invocation envelope.

    Raises:
        EnvelopeError: ``event`` is not ``{DurableExecutionArn, CheckpointToken,
            InitialExecutionState{Operations, NextMarker}}``.
    """
    if not isinstance(event, Mapping):
        raise EnvelopeError(f"the event must be a JSON object, got {type(event).__name__}")
    missing = [k for k in ("DurableExecutionArn", "CheckpointToken") if not event.get(k)]
    if missing:
        raise EnvelopeError(
            f"the event has no {' or '.join(missing)}: it is not a durable execution "
            "invocation. Enable DurableConfig on the function and start executions through "
            "Lambda (the event you pass becomes the EXECUTION operation's input)."
        )
    arn, token = event["DurableExecutionArn"], event["CheckpointToken"]
    state = event.get("InitialExecutionState")
    if not isinstance(arn, str) or not isinstance(token, str):
        raise EnvelopeError("DurableExecutionArn and CheckpointToken must be strings")
    if not isinstance(state, Mapping) or not isinstance(state.get("Operations", []), list):
        raise EnvelopeError(
            "InitialExecutionState must be an object with an Operations list; the envelope "
            "is malformed"
        )
    ops = state.get("Operations") or []
    for op in ops:
        if not isinstance(op, Mapping) or not {"Id", "Type", "Status"} <= op.keys():
            raise EnvelopeError(f"an operation in InitialExecutionState is malformed: {op!r:.200}")
    marker = state.get("NextMarker")
    return Envelope(arn=arn, token=token, operations=ops, next_marker=marker or None)


def execution_id_for(arn: str) -> str:
    """The execution id user code sees (``ctx.execution_id``): the ARN, or its digest if long."""
    if len(arn) <= 200:
        return arn
    return "lambda-" + hashlib.blake2b(arn.encode(), digest_size=16).hexdigest()


def durable_handler(
    fn: DurableFunction[Any, Any] | Any,
    *,
    client: Any | None = None,
    options: LambdaOptions | None = None,
) -> DurableLambdaHandler:
    """Make a Lambda handler that runs ``fn`` on the durable execution service.

    Example::

        from durable_core.aws_lambda import durable_handler
        from examples.tour_booking.saga import book_tour

        handler = durable_handler(book_tour)   # Handler: app.handler

    Args:
        fn: a ``@durable`` function, a saga, or a plain ``(ctx, event)`` function.
        client: a boto3 ``lambda`` client (default: made on first use, with botocore's
            standard retry mode).
        options: see :class:`LambdaOptions`.

    Returns:
        ``handler(event, lambda_context) -> {"Status": ..., "Result" | "Error": ...}``.
    """
    durable_fn = make_durable(unwrap_durable(fn))
    opts = options or LambdaOptions()
    made: list[DurableServiceClient] = [client] if client is not None else []

    def handler(event: Mapping[str, Any], lambda_context: Any = None) -> dict[str, Any]:
        if not made:
            made.append(default_client())
        return run_envelope(durable_fn, parse_envelope(event), made[0], opts)

    return DurableLambdaHandler(handler, durable_fn)


def default_client() -> DurableServiceClient:
    """``boto3.client("lambda")`` with standard retries and the SDK's timeouts."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=50
    )
    client: Any = boto3.client("lambda", config=config)
    return cast("DurableServiceClient", client)


def run_envelope(
    fn: DurableFunction[Any, Any],
    envelope: Envelope,
    client: DurableServiceClient,
    options: LambdaOptions,
) -> dict[str, Any]:
    """Run one invocation described by ``envelope``; return the handler's response."""
    clock = ServiceClock(options.clock or SystemClock())
    store = ServiceStore(
        client,
        arn=envelope.arn,
        token=envelope.token,
        execution_id=execution_id_for(envelope.arn),
        clock=clock,
        token_retry_delays=options.token_retry_delays,
    )
    store.load(envelope.operations, envelope.next_marker)
    root = next((o for o in store.service_operations() if o.get("Type") == "EXECUTION"), None)
    if root is None:
        raise EnvelopeError(
            "the execution state has no EXECUTION operation (it carries the input); the "
            "envelope is malformed"
        )
    store.execution = _execution(fn, store.execution_id, root, clock.now())
    serde = AwsSerde(max_bytes=options.max_payload_bytes)
    services = LambdaServices(store, options)
    lease = Lease(execution_id=store.execution_id, owner="lambda", fence=0, expires=_NEVER)
    try:
        for _ in range(options.max_passes):
            journal = Journal(
                execution=store.execution,
                operations=store.load_operations(store.execution_id),
                store=store,
                lease=lease,
                clock=clock,
                serde=serde,
                options=_SERVICE_RETRIES,
                services=services,
                instrumentation=options.instrumentation,
            )
            end = run_invocation(fn, journal)
            store.flush()  # an announced START goes out before the outcome is read
            if store.failure is not None:
                raise store.failure
            if journal.parked is not None:
                # Parked: fail this invocation, not the execution (Lambda retries it; deploying
                # the code it started with resumes it). The service has no parked state.
                raise journal.parked
            if store.paused:
                return {"Status": "PENDING"}
            if end.status is not ExecutionStatus.RUNNING or not store.take_changes():
                break
    finally:
        store.close()
    return _response(end, store, str(root["Id"]))


def _execution(
    fn: DurableFunction[Any, Any], execution_id: str, root: Mapping[str, Any], now: datetime
) -> Execution:
    details = root.get("ExecutionDetails") or {}
    payload = details.get("InputPayload")
    started = wire.timestamp(root.get("StartTimestamp")) or now
    return Execution(
        id=execution_id,
        function=fn.name,
        input=payload if payload not in (None, "") else "null",
        created_at=started,
        updated_at=now,
        version=fn.version,
        deadline=started + fn.timeout if fn.timeout else None,
    )


def _response(end: InvocationEnd, store: ServiceStore, root_id: str) -> dict[str, Any]:
    if end.status is ExecutionStatus.RUNNING:
        return {"Status": "PENDING"}
    if end.status is ExecutionStatus.SUCCEEDED:
        result = end.result if end.result is not None else "null"
        body = {"Status": "SUCCEEDED", "Result": result}
        if len(json.dumps(body).encode()) > wire.RESPONSE_LIMIT:
            store.finish_execution(root_id, result)
            return {"Status": "SUCCEEDED", "Result": ""}
        return body
    assert end.error is not None
    return {"Status": "FAILED", "Error": wire.error_to_wire(end.error)}


class LambdaServices:
    """What ``ctx.invoke`` needs (``Journal.services``), on the durable execution service.

    The invoked function is a Lambda function: a string given to ``ctx.invoke`` is its name
    or ARN; a durable function is mapped through ``LambdaOptions.function_names``. The
    service runs it and completes the CHAINED_INVOKE operation.
    """

    def __init__(self, store: ServiceStore, options: LambdaOptions) -> None:
        self.store = store
        self._names = options.function_names

    def resolve(self, name: str) -> DurableFunction[Any, Any]:
        """A stand-in for the remote function called ``name`` (JSON in, JSON out)."""
        return DurableFunction(fn=_remote, name=self._lambda_name(name))

    def start(
        self,
        fn: DurableFunction[Any, Any] | Any | str,
        event: Any = None,
        *,
        execution_id: str | None = None,
        parent_execution_id: str | None = None,
        tenant_id: str | None = None,
    ) -> Execution:
        """Start the invoke recorded for ``execution_id`` (idempotent); return its summary.
        (The tenant id goes out on the staged START: ``wire.invoke_start``.)"""
        name = fn if isinstance(fn, str) else getattr(fn, "name", str(fn))
        assert execution_id is not None
        return self.store.start_invoke(execution_id, self._lambda_name(name))

    def cancel(self, execution_id: str, reason: str = "") -> Execution:
        """The service has no cancel for a chained invoke: report its state, change nothing."""
        return self.store.get_execution(execution_id)

    def _lambda_name(self, name: str) -> str:
        target = self._names.get(name, name)
        if not _FUNCTION.fullmatch(target):
            raise ValidationError(
                f"invoke: {target!r} is not a Lambda function name or ARN. On the durable "
                "execution service ctx.invoke starts a Lambda function: pass its name, or map "
                "the durable function with LambdaOptions(function_names={...})."
            )
        return target


def _remote(ctx: Any, event: Any) -> Any:
    raise ValidationError("a Lambda function invoked by name runs in its own Lambda, not here")
