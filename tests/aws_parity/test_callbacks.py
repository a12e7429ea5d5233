"""Callbacks: create_callback + result and wait_for_callback, completed from outside.

The test completes each execution's callback with the emulator's own API (boto3's
``send_durable_execution_callback_success`` / ``_failure`` / ``_heartbeat``), or leaves it
to time out (the emulator skips time).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aws_durable_execution_sdk_python.config import (
    CallbackConfig,
    Duration,
    WaitForCallbackConfig,
)

from durable_core import DurableContext, durable

from .parity_history import assert_same_history
from .parity_run import (
    Pair,
    ParityRunner,
    fail_callback,
    heartbeat_then_succeed,
    no_driver,
    succeed_callback,
)
from .parity_xfail import diff

FAILURE = {"ErrorType": "Rejected", "ErrorMessage": "not approved", "ErrorData": '{"by":"bob"}'}

# --- create_callback + result ---------------------------------------------------------------


def _aws_callback(timeout: int = 0, heartbeat: int = 0) -> Any:
    def program(event: Any, ctx: Any) -> Any:
        config = CallbackConfig(
            timeout=Duration.from_seconds(timeout),
            heartbeat_timeout=Duration.from_seconds(heartbeat),
        )
        cb = ctx.create_callback(name="approval", config=config)
        ctx.step(lambda sc: "sent", name="notify")
        try:
            return {"answer": cb.result()}
        except Exception:
            return "callback raised"

    return program


def _ours_callback(timeout: int | None = None, heartbeat: int | None = None) -> Any:
    @durable
    def program(ctx: DurableContext, event: dict[str, Any]) -> Any:
        cb = ctx.create_callback(
            "approval",
            timeout=timedelta(seconds=timeout) if timeout else None,
            heartbeat_timeout=timedelta(seconds=heartbeat) if heartbeat else None,
        )
        ctx.step("notify", lambda sc: "sent")
        try:
            return {"answer": cb.result()}
        except Exception:
            return "callback raised"

    return program


# --- wait_for_callback ----------------------------------------------------------------------


def aws_wait_for_callback(event: Any, ctx: Any) -> Any:
    config = WaitForCallbackConfig(timeout=Duration.from_seconds(60))
    answer = ctx.wait_for_callback(lambda cid, wctx: None, name="external", config=config)
    return {"answer": answer}


@durable
def ours_wait_for_callback(ctx: DurableContext, event: dict[str, Any]) -> Any:
    answer = ctx.wait_for_callback("external", lambda token, sc: None, timeout=60)
    return {"answer": answer}


def aws_wait_for_callback_fails(event: Any, ctx: Any) -> Any:
    try:
        ctx.wait_for_callback(lambda cid, wctx: None, name="external")
    except Exception:
        return "callback raised"
    return "unreachable"


@durable
def ours_wait_for_callback_fails(ctx: DurableContext, event: dict[str, Any]) -> Any:
    try:
        ctx.wait_for_callback("external", lambda token, sc: None)
    except Exception:
        return "callback raised"
    return "unreachable"


def _refuse(*args: Any) -> None:
    raise ConnectionError("queue is down")


def aws_submitter_fails(event: Any, ctx: Any) -> Any:
    from aws_durable_execution_sdk_python.retries import RetryPresets

    config = WaitForCallbackConfig(retry_strategy=RetryPresets.none())
    try:
        ctx.wait_for_callback(_refuse, name="external", config=config)
    except Exception:
        return "submit failed"
    return "unreachable"


@durable
def ours_submitter_fails(ctx: DurableContext, event: dict[str, Any]) -> Any:
    from durable_core import RetryPolicy, StepConfig

    try:
        ctx.wait_for_callback(
            "external", _refuse, submit_config=StepConfig(retry=RetryPolicy.no_retry())
        )
    except Exception:
        return "submit failed"
    return "unreachable"


CASES = {
    "callback-success": Pair(
        _aws_callback(), _ours_callback(), driver=succeed_callback('"approved"')
    ),
    "callback-success-raw-text": Pair(
        _aws_callback(), _ours_callback(), driver=succeed_callback("approved")
    ),
    "callback-failure": Pair(_aws_callback(), _ours_callback(), driver=fail_callback(FAILURE)),
    "callback-timeout": Pair(_aws_callback(timeout=2), _ours_callback(timeout=2), driver=no_driver),
    "callback-heartbeat-timeout": Pair(
        _aws_callback(timeout=600, heartbeat=2),
        _ours_callback(timeout=600, heartbeat=2),
        driver=no_driver,
    ),
    "callback-heartbeat-then-success": Pair(
        _aws_callback(timeout=600, heartbeat=30),
        _ours_callback(timeout=600, heartbeat=30),
        driver=heartbeat_then_succeed('"late but fine"'),
    ),
    "wait-for-callback-success": Pair(
        aws_wait_for_callback, ours_wait_for_callback, driver=succeed_callback('{"ok": 1}')
    ),
    "wait-for-callback-failure": Pair(
        aws_wait_for_callback_fails,
        ours_wait_for_callback_fails,
        driver=fail_callback({"ErrorType": "Rejected", "ErrorMessage": "no"}),
    ),
    "wait-for-callback-submitter-fails": Pair(aws_submitter_fails, ours_submitter_fails),
}


@pytest.mark.parametrize("case", [diff(c) for c in CASES])
def test_callback_history_matches_aws(parity: ParityRunner, case: str) -> None:
    aws, ours = parity.run(case, CASES[case])
    assert_same_history(aws.history, ours.history)
    assert aws.status == ours.status
