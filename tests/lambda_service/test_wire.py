"""The translation rules, without a service: records <-> wire shapes, limits, envelopes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from durable_core.aws_lambda import EnvelopeError, ServiceLimitError
from durable_core.aws_lambda.handler import LambdaOptions, execution_id_for, parse_envelope
from durable_core.aws_lambda.wire import (
    CANCELLED_MARK,
    ERROR_LIMIT,
    HOLD,
    PAYLOAD_LIMIT,
    check_update,
    error_from_wire,
    error_to_wire,
    plan,
    timestamp,
    to_record,
)
from durable_core.errors import PayloadTooLargeError, ValidationError
from durable_core.operations.invoke import child_execution_id
from durable_core.records import ErrorInfo, Operation, OperationStatus, OperationType, StopKind

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
MS = int(NOW.timestamp() * 1000)
EID = "arn:aws:lambda:us-east-1:123456789012:function:tour:3/durable-execution/e1/abc"


def _op(**fields: object) -> Operation:
    base: dict[str, object] = {
        "id": "a" * 32,
        "type": OperationType.STEP,
        "sub_type": "Step",
        "name": "charge",
        "status": OperationStatus.SUCCEEDED,
        "started_at": NOW,
    }
    return Operation.model_validate(base | fields)


def _wire(type_: str, status: str, **details: object) -> dict[str, object]:
    out: dict[str, object] = {
        "Id": "b" * 32,
        "Type": type_,
        "Status": status,
        "Name": "op",
        "SubType": "Sub",
        "StartTimestamp": MS,
    }
    return out | details


# --- service state -> records --------------------------------------------------------------


def test_step_states_read_back_so_the_service_decides_when_a_retry_runs() -> None:
    pending = to_record(
        _wire("STEP", "PENDING", StepDetails={"Attempt": 2, "NextAttemptTimestamp": MS + 5000}),
        execution_id=EID,
        now=NOW,
    )
    assert pending is not None
    assert pending.status is OperationStatus.PENDING and pending.attempt == 2
    assert pending.next_attempt_at == NOW + HOLD  # held: the service has not released it
    ready = to_record(_wire("STEP", "READY", StepDetails={"Attempt": 2}), execution_id=EID, now=NOW)
    assert ready is not None
    assert (ready.status, ready.next_attempt_at) == (OperationStatus.PENDING, None)  # run now
    started = to_record(
        _wire("STEP", "STARTED", StepDetails={"Attempt": 2}), execution_id=EID, now=NOW
    )
    assert started is not None and started.attempt == 3  # the at-most-once attempt in flight


def test_callbacks_read_back_without_a_local_deadline_and_with_the_service_id() -> None:
    rec = to_record(
        _wire("CALLBACK", "STARTED", CallbackDetails={"CallbackId": "c2VydmljZQ=="}),
        execution_id=EID,
        now=NOW,
    )
    assert rec is not None
    assert rec.callback_id == "c2VydmljZQ=="
    assert (rec.timeout_at, rec.heartbeat_deadline) == (None, None)
    timed_out = to_record(_wire("CALLBACK", "TIMED_OUT"), execution_id=EID, now=NOW)
    assert timed_out is not None and timed_out.error is not None


def test_timers_contexts_and_invokes_read_back() -> None:
    wait = to_record(
        _wire("WAIT", "STARTED", WaitDetails={"ScheduledEndTimestamp": MS + 1000}),
        execution_id=EID,
        now=NOW,
    )
    assert wait is not None and wait.scheduled_end == NOW + HOLD
    cancelled = to_record(_wire("WAIT", "CANCELLED"), execution_id=EID, now=NOW)
    assert cancelled is not None and cancelled.error is not None
    assert cancelled.error.type == StopKind.DEADLINE.error_type
    ctx = to_record(
        _wire("CONTEXT", "STARTED", ContextDetails={"Result": '{"branches": 2}'}),
        execution_id=EID,
        now=NOW,
    )
    assert ctx is not None and ctx.payload == '{"branches": 2}' and ctx.result is None
    invoke = to_record(_wire("CHAINED_INVOKE", "TIMED_OUT"), execution_id=EID, now=NOW)
    assert invoke is not None
    assert invoke.child_execution_id == child_execution_id(EID, "b" * 32)
    assert invoke.error is not None and invoke.error.type == "ChainedInvokeTimedOut"
    assert to_record(_wire("EXECUTION", "STARTED"), execution_id=EID, now=NOW) is None


def test_a_fail_marked_cancelled_reads_back_as_cancelled() -> None:
    error = {
        "ErrorType": StopKind.CANCEL.error_type,
        "ErrorMessage": "deadline",
        "ErrorData": CANCELLED_MARK,
    }
    rec = to_record(
        _wire("STEP", "FAILED", StepDetails={"Error": error}), execution_id=EID, now=NOW
    )
    assert rec is not None and rec.status is OperationStatus.CANCELLED
    assert rec.error == ErrorInfo(type=StopKind.CANCEL.error_type, message="deadline")


def test_timestamps_come_as_epoch_milliseconds_or_datetimes() -> None:
    assert timestamp(MS) == NOW
    assert timestamp(NOW.replace(tzinfo=None)) == NOW
    assert timestamp(None) is None
    with pytest.raises(ValidationError):
        timestamp([1])


# --- records -> updates ----------------------------------------------------------------------


def test_step_writes_become_succeed_fail_retry_and_start() -> None:
    marked = plan(_op(result="1", role="saga.pivot"), None, now=NOW).updates
    assert marked == plan(_op(result="1"), None, now=NOW).updates  # a role is never sent
    assert plan(_op(result="1"), None, now=NOW).updates == (
        {
            "Id": "a" * 32,
            "Type": "STEP",
            "Action": "SUCCEED",
            "Name": "charge",
            "SubType": "Step",
            "Payload": "1",
        },
    )
    retry = plan(
        _op(
            status=OperationStatus.PENDING,
            error=ErrorInfo(type="E", message="m"),
            next_attempt_at=NOW + timedelta(seconds=2.2),
        ),
        {"Status": "READY"},
        now=NOW,
    ).updates[0]
    assert retry["Action"] == "RETRY" and retry["StepOptions"] == {"NextAttemptDelaySeconds": 3}
    zero = plan(
        _op(
            status=OperationStatus.PENDING,
            error=ErrorInfo(type="E", message="m"),
            next_attempt_at=NOW,
        ),
        None,
        now=NOW,
    )
    assert zero.updates[0]["StepOptions"] == {"NextAttemptDelaySeconds": 1}  # at least 1 s
    assert plan(_op(status=OperationStatus.STARTED), None, now=NOW).updates[0]["Action"] == "START"
    assert plan(_op(result="1"), {"Status": "PENDING"}, now=NOW).defer  # not released yet


def test_fresh_cancellation_markers_are_start_plus_fail() -> None:
    error = ErrorInfo(type=StopKind.CANCEL.error_type, message="deadline")
    step = plan(_op(status=OperationStatus.CANCELLED, error=error), None, now=NOW).updates
    assert [(u["Type"], u["Action"]) for u in step] == [("STEP", "START"), ("STEP", "FAIL")]
    assert step[1]["Error"]["ErrorData"] == CANCELLED_MARK
    wait = plan(
        _op(
            type=OperationType.WAIT, sub_type="Wait", status=OperationStatus.CANCELLED, error=error
        ),
        None,
        now=NOW,
    ).updates
    assert [(u["Type"], u["SubType"], u["Action"]) for u in wait] == [
        ("STEP", "Cancellation", "START"),
        ("STEP", "Cancellation", "FAIL"),
    ]
    started_wait = _op(
        type=OperationType.WAIT, sub_type="Wait", status=OperationStatus.CANCELLED, error=error
    )
    assert plan(started_wait, {"Status": "STARTED"}, now=NOW).updates[0]["Action"] == "CANCEL"
    assert plan(
        _op(status=OperationStatus.CANCELLED, error=error), {"Status": "PENDING"}, now=NOW
    ).defer


def test_timers_callbacks_and_invokes_are_the_services_to_complete() -> None:
    wait = _op(
        type=OperationType.WAIT,
        sub_type="Wait",
        status=OperationStatus.STARTED,
        scheduled_end=NOW + timedelta(hours=24),
    )
    assert plan(wait, None, now=NOW + timedelta(seconds=1)).updates[0]["WaitOptions"] == {
        "WaitSeconds": 86400
    }
    assert plan(wait.evolve(status=OperationStatus.SUCCEEDED), {"Status": "STARTED"}, now=NOW).defer
    assert (
        plan(
            wait.evolve(status=OperationStatus.SUCCEEDED), {"Status": "SUCCEEDED"}, now=NOW
        ).updates
        == ()
    )
    callback = _op(
        type=OperationType.CALLBACK,
        sub_type="Callback",
        status=OperationStatus.STARTED,
        timeout_at=NOW + timedelta(days=7),
        heartbeat_timeout_s=90.5,
    )
    options = plan(callback, None, now=NOW).updates[0]["CallbackOptions"]
    assert options == {"TimeoutSeconds": 604800, "HeartbeatTimeoutSeconds": 91}
    invoke = _op(
        type=OperationType.CHAINED_INVOKE, sub_type="ChainedInvoke", status=OperationStatus.STARTED
    )
    assert plan(invoke, None, now=NOW).stage


# --- errors and limits ---------------------------------------------------------------------


def test_errors_round_trip_without_a_stack_trace_and_shrink_to_the_service_limit() -> None:
    err = ErrorInfo(
        type="ValueError", message="bad", traceback="Traceback\n  File x\nValueError: bad", data="d"
    )
    wired = error_to_wire(err)
    assert "StackTrace" not in wired  # as AWS's SDK: the history carries no traceback
    assert error_from_wire(wired) == err.model_copy(update={"traceback": None})
    huge = ErrorInfo(type="E", message="m" * 100_000, data="d" * 100_000)
    wired = error_to_wire(huge)
    assert len(json.dumps(wired).encode()) <= ERROR_LIMIT
    assert wired["ErrorMessage"].endswith("[truncated]")
    assert wired["ErrorData"].endswith("[truncated]")


@pytest.mark.parametrize(
    ("update", "error"),
    [
        ({"Id": "x" * 65, "Type": "STEP"}, ServiceLimitError),
        ({"Id": "ok", "ParentId": "a/b", "Type": "STEP"}, ServiceLimitError),
        ({"Id": "ok", "Name": "café", "Type": "STEP"}, ServiceLimitError),
        ({"Id": "ok", "Name": "x" * 257, "Type": "STEP"}, ServiceLimitError),
        ({"Id": "ok", "SubType": "Sub Type", "Type": "STEP"}, ServiceLimitError),
        ({"Id": "ok", "Payload": "x" * (PAYLOAD_LIMIT + 1), "Type": "STEP"}, PayloadTooLargeError),
    ],
)
def test_limits_are_checked_before_sending(
    update: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        check_update(update)


def test_a_valid_update_passes_the_limits() -> None:
    check_update(
        {
            "Id": "a" * 64,
            "ParentId": "b-c_d",
            "Name": "x" * 256,
            "SubType": "S" * 32,
            "Payload": "1",
        }
    )


# --- the envelope ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        {"order_id": "A-1"},
        {"DurableExecutionArn": "arn", "CheckpointToken": ""},
        {"DurableExecutionArn": 7, "CheckpointToken": "t", "InitialExecutionState": {}},
        {"DurableExecutionArn": "arn", "CheckpointToken": "t", "InitialExecutionState": []},
        {
            "DurableExecutionArn": "arn",
            "CheckpointToken": "t",
            "InitialExecutionState": {"Operations": [{"Id": "x"}]},
        },
    ],
)
def test_a_malformed_envelope_is_a_clear_error(event: object) -> None:
    with pytest.raises(EnvelopeError):
        parse_envelope(event)


def test_a_plain_event_says_how_to_start_an_execution() -> None:
    with pytest.raises(EnvelopeError, match="not a durable execution invocation"):
        parse_envelope({"order_id": "A-1"})


def test_the_envelope_is_unpacked() -> None:
    env = parse_envelope(
        {
            "DurableExecutionArn": EID,
            "CheckpointToken": "dG9r",
            "InitialExecutionState": {
                "Operations": [_wire("EXECUTION", "STARTED")],
                "NextMarker": "",
            },
        }
    )
    assert (env.arn, env.token, env.next_marker, len(env.operations)) == (EID, "dG9r", None, 1)
    assert execution_id_for(EID) == EID
    assert execution_id_for("a" * 300).startswith("lambda-")


def test_options_refuse_a_payload_limit_over_the_service_limit() -> None:
    with pytest.raises(ValidationError):
        LambdaOptions(max_payload_bytes=PAYLOAD_LIMIT + 1)


def test_importing_the_packages_does_not_import_boto3() -> None:
    code = (
        "import sys, durable_core, saga, durable_core.aws_lambda; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
