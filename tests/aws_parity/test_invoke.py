"""Chained invoke of another durable function: success, failure, and its options.

Both callers invoke the same targets (``parity-target`` doubles ``n``,
``parity-target-fails`` raises), served by one durable-saga function each, so the
callers' histories differ only by the caller's SDK.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from aws_durable_execution_sdk_python.config import InvokeConfig

from durable_core import DurableContext, durable

from .parity_history import assert_same_history
from .parity_run import Pair, ParityRunner
from .parity_xfail import diff


@durable
def target(ctx: DurableContext, event: dict[str, Any]) -> int:
    return ctx.step("double", lambda sc: event["n"] * 2)


@durable
def target_fails(ctx: DurableContext, event: dict[str, Any]) -> int:
    raise ValueError(f"cannot handle {event['n']}")


@pytest.fixture(autouse=True)
def _targets(parity: ParityRunner) -> None:
    parity.deploy("parity-target", target)
    parity.deploy("parity-target-fails", target_fails)


def aws_invoke(event: Any, ctx: Any) -> int:
    return ctx.invoke("parity-target", {"n": 21}, name="call")


@durable
def ours_invoke(ctx: DurableContext, event: dict[str, Any]) -> int:
    return ctx.invoke("parity-target", {"n": 21}, name="call")


def aws_invoke_fails(event: Any, ctx: Any) -> str:
    try:
        ctx.invoke("parity-target-fails", {"n": 1}, name="call")
    except Exception:
        return "invoke failed"
    return "unreachable"


@durable
def ours_invoke_fails(ctx: DurableContext, event: dict[str, Any]) -> str:
    try:
        ctx.invoke("parity-target-fails", {"n": 1}, name="call")
    except Exception:
        return "invoke failed"
    return "unreachable"


def aws_invoke_uncaught(event: Any, ctx: Any) -> int:
    return ctx.invoke("parity-target-fails", {"n": 2}, name="call")


@durable
def ours_invoke_uncaught(ctx: DurableContext, event: dict[str, Any]) -> int:
    return ctx.invoke("parity-target-fails", {"n": 2}, name="call")


def aws_invoke_tenant(event: Any, ctx: Any) -> int:
    return ctx.invoke("parity-target", {"n": 1}, name="call", config=InvokeConfig(tenant_id="acme"))


@durable
def ours_invoke_tenant(ctx: DurableContext, event: dict[str, Any]) -> int:
    return ctx.invoke("parity-target", {"n": 1}, name="call", tenant_id="acme")  # type: ignore[call-arg]


def _has_option(option: str) -> bool:
    return option in inspect.signature(DurableContext.invoke).parameters


CASES = {
    "invoke": Pair(aws_invoke, ours_invoke),
    "invoke-fails": Pair(aws_invoke_fails, ours_invoke_fails),
    "invoke-fails-uncaught": Pair(aws_invoke_uncaught, ours_invoke_uncaught),
}


@pytest.mark.parametrize("case", [diff(c) for c in CASES])
def test_invoke_history_matches_aws(parity: ParityRunner, case: str) -> None:
    aws, ours = parity.run(case, CASES[case])
    assert_same_history(aws.history, ours.history)
    assert aws.status == ours.status


@pytest.mark.skipif(
    not _has_option("tenant_id"), reason="issue 13 missing option: invoke(tenant_id=)"
)
@pytest.mark.parametrize("case", [diff("invoke-tenant-id")])
def test_invoke_tenant_id_matches_aws(parity: ParityRunner, case: str) -> None:
    aws, ours = parity.run(case, Pair(aws_invoke_tenant, ours_invoke_tenant))
    assert_same_history(aws.history, ours.history)
    assert aws.status == ours.status
