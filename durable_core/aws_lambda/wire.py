"""Translation between our journal records and the durable execution service's wire shapes.

The service's ``Operation`` (state) and ``OperationUpdate`` (checkpoint) are plain dicts in
boto3's shape. :func:`to_record` turns a service operation into our
:class:`~durable_core.records.Operation`; :func:`plan` turns a record the engine wants to
write into the updates the service accepts, given the service's current record.

Invariants:
- The service is the authority on time and completion: a step retry it has not released
  (PENDING, not READY) and a timer it has not fired (STARTED) are read back with a due time
  :data:`HOLD` ahead, so the engine suspends instead of acting on its own clock. A write the
  service cannot take yet (closing a step still PENDING, completing a timer, cancelling an
  invoke) plans as *defer*: the invocation suspends and the engine writes it again when the
  service next invokes.
- Callback timeouts are the service's (TIMED_OUT): callback records are read back without a
  local deadline, so the engine never times a callback out by itself.
- Every update is checked against the service limits (:func:`check_update`) before anything
  of its checkpoint is sent.
- Our CANCELLED status has no service action for steps and contexts: it is sent as FAIL
  whose ``ErrorData`` is :data:`CANCELLED_MARK` and read back as CANCELLED. A cancellation at
  a position never recorded is sent as START + FAIL (a STEP for types that cannot fail).
- This module is pure: no I/O, no boto3.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from durable_core.aws_lambda.errors import ServiceLimitError
from durable_core.aws_lambda.payloads import (
    AWS_ERROR_TYPES,
    OUR_ERROR_TYPES,
    batch_text_from_aws,
    batch_text_to_aws,
)
from durable_core.errors import PayloadTooLargeError, ValidationError
from durable_core.operations.invoke import child_execution_id
from durable_core.records import ErrorInfo, Operation, OperationStatus, OperationType, StopKind
from durable_core.replay import CANCEL_SUB_TYPE

Wire = dict[str, Any]

PAYLOAD_LIMIT = 6 * 1024 * 1024
"""Bytes of one ``Payload`` / ``Result`` / ``InputPayload``."""
RESPONSE_LIMIT = PAYLOAD_LIMIT - 50
"""Bytes of the handler's response; a bigger result is checkpointed on the EXECUTION."""
ERROR_LIMIT = 32 * 1024
"""Bytes of one serialized error object."""
MAX_DELAY_S = 31_622_400
"""Longest retry delay or wait the service accepts (366 days)."""
HOLD = timedelta(days=1)
"""How far ahead a not-yet-released retry or timer is read back (the service decides)."""
CANCELLED_MARK = '{"durable_core":"CANCELLED"}'
"""``ErrorData`` of a FAIL that stands for our CANCELLED status."""
OPERATION_CANCELLED = "durable_core.OperationCancelled"
"""``ErrorType`` of a CANCELLED record that had no error (a batch branch decided without)."""
DEADLINE_REASON = "deadline"
"""The cancellation reason of a timer the service reports CANCELLED (see :func:`to_record`)."""

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NAME = re.compile(r"[\x20-\x7E]{1,256}")
_SUB_TYPE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_MESSAGE_CAP = 8 * 1024
_EXPECTED = {"START": "STARTED", "SUCCEED": "SUCCEEDED", "FAIL": "FAILED"}
_EXPECTED |= {"RETRY": "PENDING", "CANCEL": "CANCELLED"}
_OPEN = {None, "STARTED", "READY"}
_TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "STOPPED"}


def expected_status(action: str) -> str:
    """The status an update's action leaves its operation in."""
    return _EXPECTED[action]


def timestamp(value: object) -> datetime | None:
    """A service timestamp (epoch milliseconds in the envelope, a datetime via boto3)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        return timestamp(float(value)) if value.replace(".", "", 1).isdigit() else _iso(value)
    raise ValidationError(f"not a service timestamp: {value!r}")


def _iso(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise ValidationError(f"not a service timestamp: {value!r}") from e
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- errors --------------------------------------------------------------------------------


def error_to_wire(err: ErrorInfo, *, data: str | None = None) -> Wire:
    """Our error as an ``ErrorObject``, shrunk to fit :data:`ERROR_LIMIT`.

    The type is AWS's name for it where :data:`AWS_ERROR_TYPES` has one. No
    ``StackTrace`` is sent: AWS's SDK records none on the service, so the histories of the
    two read the same (the traceback stays in the function's log). The message is capped,
    then ``ErrorData`` is cut, each with a marker.
    """
    message = err.message
    if len(message) > _MESSAGE_CAP:
        message = message[:_MESSAGE_CAP] + " ... [truncated]"
    out: Wire = {"ErrorType": AWS_ERROR_TYPES.get(err.type, err.type), "ErrorMessage": message}
    payload = data if data is not None else err.data
    if payload is not None:
        out["ErrorData"] = payload
    if _size(out) > ERROR_LIMIT and "ErrorData" in out:
        spare = ERROR_LIMIT - _size({**out, "ErrorData": ""}) - 64
        out["ErrorData"] = out["ErrorData"][: max(spare, 0) // 6] + " ... [truncated]"
    return out


def _size(obj: Wire) -> int:
    return len(json.dumps(obj).encode())


def error_from_wire(obj: Mapping[str, Any] | None) -> ErrorInfo | None:
    """An ``ErrorObject`` as our error (``None`` stays ``None``)."""
    if not obj:
        return None
    trace = obj.get("StackTrace") or []
    type_ = str(obj.get("ErrorType") or "Error")
    return ErrorInfo(
        type=OUR_ERROR_TYPES.get(type_, type_),
        message=str(obj.get("ErrorMessage") or ""),
        traceback="\n".join(str(line) for line in trace) or None,
        data=obj.get("ErrorData"),
    )


# --- service state -> our records ----------------------------------------------------------


def to_record(op: Mapping[str, Any], *, execution_id: str, now: datetime) -> Operation | None:
    """Translate one service operation; ``None`` for the EXECUTION operation."""
    type_ = OperationType(op["Type"])
    if type_ is OperationType.EXECUTION:
        return None
    status = OperationStatus(op["Status"])
    fields: dict[str, Any] = {
        "id": op["Id"],
        "parent_id": op.get("ParentId"),
        "type": type_,
        "sub_type": op.get("SubType"),
        "name": op.get("Name"),
        "status": status,
        "started_at": timestamp(op.get("StartTimestamp")),
        "ended_at": timestamp(op.get("EndTimestamp")),
    }
    if type_ is OperationType.STEP:
        fields |= _step_fields(op.get("StepDetails") or {}, status, now)
    elif type_ is OperationType.WAIT:
        details = op.get("WaitDetails") or {}
        end = timestamp(details.get("ScheduledEndTimestamp"))
        if status is OperationStatus.STARTED:
            end = max(end or now, now + HOLD)
        elif status is OperationStatus.CANCELLED:
            # Only this engine cancels a timer, and only for the execution's deadline (the
            # service-mode Execution never carries a cancel request); WAIT keeps no error.
            fields["error"] = ErrorInfo(type=StopKind.DEADLINE.error_type, message=DEADLINE_REASON)
        fields["scheduled_end"] = end
    elif type_ is OperationType.CALLBACK:
        details = op.get("CallbackDetails") or {}
        fields["callback_id"] = details.get("CallbackId")
        fields["result"] = details.get("Result")
        fields["error"] = error_from_wire(details.get("Error"))
        if status is OperationStatus.TIMED_OUT and fields["error"] is None:
            fields["error"] = ErrorInfo(
                type="durable_core.CallbackTimeout",
                message="the service timed the callback out (its timeout or heartbeat passed)",
            )
    elif type_ is OperationType.CONTEXT:
        details = op.get("ContextDetails") or {}
        key = "result" if status.is_terminal else "payload"
        fields[key] = batch_text_from_aws(op.get("SubType"), details.get("Result"))
        fields["error"] = error_from_wire(details.get("Error"))
    else:  # CHAINED_INVOKE
        details = op.get("ChainedInvokeDetails") or {}
        fields["child_execution_id"] = child_execution_id(execution_id, op["Id"])
        fields["result"] = details.get("Result")
        fields["error"] = error_from_wire(details.get("Error"))
        if status.is_terminal and status is not OperationStatus.SUCCEEDED and not fields["error"]:
            fields["error"] = ErrorInfo(
                type=f"ChainedInvoke{status.value.title().replace('_', '')}",
                message=f"the invoked function ended {status.value}",
            )
    _unmark(fields)
    return Operation(**fields)


def _step_fields(details: Mapping[str, Any], status: OperationStatus, now: datetime) -> Wire:
    attempt = int(details.get("Attempt") or 0)
    result = details.get("Result")
    error = error_from_wire(details.get("Error"))
    if status is OperationStatus.SUCCEEDED:
        return {"attempt": attempt, "result": result}
    if status is OperationStatus.STARTED:  # an at-most-once attempt in flight
        return {"attempt": attempt + 1}
    if status is OperationStatus.READY:  # the service released the retry: run it now
        return {"status": OperationStatus.PENDING, "attempt": attempt, "payload": result}
    if status is OperationStatus.PENDING:
        due = timestamp(details.get("NextAttemptTimestamp")) or now
        return {
            "attempt": attempt,
            "payload": result,
            "error": error,
            "next_attempt_at": max(due, now + HOLD),
        }
    return {"attempt": attempt, "error": error}


def _unmark(fields: dict[str, Any]) -> None:
    """A FAIL we sent for our CANCELLED status reads back as CANCELLED."""
    err = fields.get("error")
    if (
        fields["status"] is OperationStatus.FAILED
        and err is not None
        and err.data == CANCELLED_MARK
    ):
        fields["status"] = OperationStatus.CANCELLED
        fields["error"] = (
            None if err.type == OPERATION_CANCELLED else err.model_copy(update={"data": None})
        )


# --- our records -> checkpoint updates -----------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What writing one record takes on the service side."""

    updates: tuple[Wire, ...] = ()
    """The updates to send, in order."""
    defer: str | None = None
    """Set when the service cannot take the write yet: suspend, write it on a later invocation."""
    stage: bool = False
    """A chained invoke's START, sent by ``start_invoke`` once the target's name is known."""


KEEP = Plan()
"""Nothing to send: the service's record already says it."""


def header(op: Operation, action: str, *, type_: OperationType | None = None) -> Wire:
    """The identifying fields of an update for ``op``."""
    out: Wire = {"Id": op.id, "Type": (type_ or op.type).value, "Action": action}
    if op.parent_id is not None:
        out["ParentId"] = op.parent_id
    if op.name is not None:
        out["Name"] = op.name
    if op.sub_type is not None:
        out["SubType"] = op.sub_type
    return out


def context_start(op_id: str, parent_id: str | None, name: str, sub_type: str | None) -> Wire:
    """The CONTEXT START announcing a scope before its first child's record."""
    out: Wire = {"Id": op_id, "Type": "CONTEXT", "Action": "START", "Name": name}
    if parent_id is not None:
        out["ParentId"] = parent_id
    if sub_type is not None:
        out["SubType"] = sub_type
    return out


def plan(op: Operation, current: Mapping[str, Any] | None, *, now: datetime) -> Plan:
    """The updates that record ``op`` given the service's ``current`` record (or none)."""
    status = None if current is None else str(current.get("Status"))
    if op.status is OperationStatus.CANCELLED:
        return _plan_cancel(op, status)
    if status in _TERMINAL and status == op.status.value:
        return KEEP
    if op.type is OperationType.STEP:
        return _plan_step(op, status, now)
    if op.type is OperationType.CONTEXT:
        return _plan_context(op, status)
    if op.type is OperationType.WAIT:
        if op.status is OperationStatus.STARTED:
            if status is not None:
                return KEEP
            seconds = _seconds((op.scheduled_end or now) - (op.started_at or now))
            return Plan((header(op, "START") | {"WaitOptions": {"WaitSeconds": seconds}},))
        return Plan(defer=f"timer {op.name!r}: the service completes it when it is due")
    if op.type is OperationType.CALLBACK:
        if op.status is OperationStatus.STARTED and status is None:
            return Plan((header(op, "START") | {"CallbackOptions": _callback_options(op)},))
        if op.status is OperationStatus.STARTED:
            return KEEP
        return Plan(defer=f"callback {op.name!r}: only the service completes a callback")
    if op.type is OperationType.CHAINED_INVOKE:
        if op.status is OperationStatus.STARTED:
            return Plan(stage=True) if status is None else KEEP
        return Plan(defer=f"invoke {op.name!r}: the service records the invoked function's end")
    raise ValidationError(f"the engine never writes {op.type.value} records; got {op.id!r}")


def _plan_step(op: Operation, status: str | None, now: datetime) -> Plan:
    if status in _TERMINAL:
        return KEEP
    if status == "PENDING":
        return Plan(defer=f"step {op.name!r}: the service has not released its retry yet")
    if op.status is OperationStatus.STARTED:
        return KEEP if status == "STARTED" else Plan((header(op, "START"),))
    if op.status is OperationStatus.SUCCEEDED:
        return Plan((_with_payload(header(op, "SUCCEED"), op.result),))
    if op.status is OperationStatus.FAILED:
        return Plan((header(op, "FAIL") | {"Error": _error(op)},))
    if op.status is OperationStatus.PENDING:
        delay = 1 if op.next_attempt_at is None else _seconds(op.next_attempt_at - now)
        update = header(op, "RETRY") | {"StepOptions": {"NextAttemptDelaySeconds": delay}}
        if op.payload is not None:  # a condition's poll state
            return Plan((update | {"Payload": op.payload},))
        return Plan((update | {"Error": _error(op)},))
    raise ValidationError(f"the engine never writes a STEP {op.status.value}; got {op.id!r}")


def _plan_context(op: Operation, status: str | None) -> Plan:
    if op.status is OperationStatus.STARTED:
        return (
            KEEP if status is not None else Plan((_with_payload(header(op, "START"), op.payload),))
        )
    if status in _TERMINAL:
        return KEEP
    # A context that ran no durable operation was never started: start it with its end, so
    # the history shows ContextStarted as for any other context (as AWS's SDK writes it).
    start = (_with_payload(header(op, "START"), op.payload),) if status is None else ()
    if op.status is OperationStatus.SUCCEEDED:
        result = batch_text_to_aws(op.sub_type, op.result)
        return Plan((*start, _with_payload(header(op, "SUCCEED"), result)))
    return Plan((*start, header(op, "FAIL") | {"Error": _error(op)}))


def _plan_cancel(op: Operation, status: str | None) -> Plan:
    error = error_to_wire(
        op.error or ErrorInfo(type=OPERATION_CANCELLED, message="cancelled"), data=CANCELLED_MARK
    )
    if status is None:  # a cancellation delivered at a position never recorded
        if op.type in (OperationType.STEP, OperationType.CONTEXT):
            return Plan((header(op, "START"), header(op, "FAIL") | {"Error": error}))
        marker = op.model_copy(update={"sub_type": CANCEL_SUB_TYPE})
        step = OperationType.STEP
        return Plan(
            (
                header(marker, "START", type_=step),
                header(marker, "FAIL", type_=step) | {"Error": error},
            )
        )
    if status in _TERMINAL:
        return KEEP
    if op.type is OperationType.WAIT:
        return Plan((header(op, "CANCEL"),))
    if op.type is OperationType.CONTEXT or (op.type is OperationType.STEP and status in _OPEN):
        return Plan((header(op, "FAIL") | {"Error": error},))
    return Plan(
        defer=f"{op.type.value.lower()} {op.name!r}: cancelled once the service releases it"
    )


def _error(op: Operation) -> Wire:
    return error_to_wire(op.error or ErrorInfo(type="Error", message="(no error recorded)"))


def _with_payload(update: Wire, payload: str | None) -> Wire:
    return update if payload is None else update | {"Payload": payload}


def _seconds(delta: timedelta) -> int:
    """Whole seconds the service accepts for a delay (rounded up, 1 .. 366 days)."""
    return min(max(1, math.ceil(delta.total_seconds())), MAX_DELAY_S)


def _callback_options(op: Operation) -> Wire:
    timeout = 0
    if op.timeout_at is not None:
        timeout = _seconds(op.timeout_at - (op.started_at or op.timeout_at))
    heartbeat = math.ceil(op.heartbeat_timeout_s) if op.heartbeat_timeout_s else 0
    return {"TimeoutSeconds": timeout, "HeartbeatTimeoutSeconds": max(heartbeat, 0)}


def invoke_start(op: Operation, function_name: str) -> Wire:
    """The CHAINED_INVOKE START for a staged invoke record (with its tenant id, if any)."""
    options: Wire = {"FunctionName": function_name}
    if op.tenant_id is not None:
        options["TenantId"] = op.tenant_id
    return _with_payload(header(op, "START") | {"ChainedInvokeOptions": options}, op.payload)


# --- limits --------------------------------------------------------------------------------


def check_update(update: Mapping[str, Any]) -> None:
    """Raise if ``update`` breaks a service limit (ids, names, sub-types, payload size).

    Raises:
        ServiceLimitError: an id, name or sub-type the service would reject.
        PayloadTooLargeError: a payload over :data:`PAYLOAD_LIMIT` bytes.
    """
    name = update.get("Name")
    what = (
        f"{update.get('Type', 'operation')} {name!r}" if name else f"operation {update.get('Id')!r}"
    )
    for key in ("Id", "ParentId"):
        value = update.get(key)
        if value is not None and not _ID.fullmatch(str(value)):
            raise ServiceLimitError(
                f"{what}: {key} {value!r} is not 1-64 characters of [A-Za-z0-9_-], which the "
                "durable execution service requires"
            )
    if name is not None and not _NAME.fullmatch(str(name)):
        raise ServiceLimitError(
            f"{what}: the durable execution service needs names of 1-256 printable ASCII "
            "characters; rename the operation (no accents, emoji or control characters)"
        )
    sub_type = update.get("SubType")
    if sub_type is not None and not _SUB_TYPE.fullmatch(str(sub_type)):
        raise ServiceLimitError(
            f"{what}: sub-type {sub_type!r} must be 1-32 characters of [A-Za-z0-9_-]"
        )
    payload = update.get("Payload")
    if payload is not None and len(str(payload).encode()) > PAYLOAD_LIMIT:
        raise PayloadTooLargeError(
            f"{what}: its payload is {len(str(payload).encode())} bytes; the durable execution "
            f"service stores at most {PAYLOAD_LIMIT} bytes per operation. Return a reference "
            "(e.g. an S3 key) instead of the data.",
            operation=str(name or update.get("Id")),
        )
