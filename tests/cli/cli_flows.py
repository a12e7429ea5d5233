"""Durable functions the CLI tests run, imported as the top-level module ``cli_flows``."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from tenacity import stop_after_attempt, wait_fixed

from durable_core import DurableContext, RetryPolicy, StepConfig, StepContext, durable

FLAKY = StepConfig(retry=RetryPolicy(stop=stop_after_attempt(3), wait=wait_fixed(600)))
"""A retry 10 minutes later: long enough to be a durable timer, not an inline sleep."""


@durable
def owner_only(ctx: DurableContext, event: None) -> Any:
    """Wait for a privileged callback: only its owner's API completes it."""
    return ctx.create_callback("owner-decision", privileged=True).result()


@durable
def approval(ctx: DurableContext, event: dict[str, Any]) -> dict[str, Any]:
    """Ask for an approval and wait up to 3 days for it."""
    ctx.step("request", lambda sc: {"requested": event["what"]})
    cb = ctx.create_callback("approval", timeout=timedelta(days=3), heartbeat_timeout=3600)
    answer = cb.result()
    return {"what": event["what"], "answer": answer}


@durable
def flaky(ctx: DurableContext, event: None) -> str:
    """A step that fails once, then succeeds after a durable 10-minute retry delay."""

    def call(sc: StepContext) -> str:
        if sc.attempt == 1:
            raise ConnectionError("upstream unavailable")
        return f"ok on attempt {sc.attempt}"

    return ctx.step("call-upstream", call, FLAKY)


@durable
def nested(ctx: DurableContext, event: None) -> int:
    """A step, a child context with two steps, a step: for timeline ordering."""
    a = ctx.step("first", lambda sc: 1)

    def child(c: DurableContext) -> int:
        return c.step("inner-a", lambda sc: 2) + c.step("inner-b", lambda sc: 3)

    b: int = ctx.run_in_child_context("group", child)
    return a + b + ctx.step("last", lambda sc: 4)


@durable(name="greeter")
def greet(ctx: DurableContext, event: None) -> str:
    """Registered under a custom name, so a worker needs ``--import cli_flows`` to find it."""
    who = ctx.create_callback("who").result()
    return f"hello {who}"


@durable
def changing(ctx: DurableContext, event: None) -> str:
    """Its callback is renamed when ``CLI_FLOWS_CODE=new``: a deploy under a waiting run."""
    ctx.step("request", lambda sc: 1)
    name = "approval" if os.environ.get("CLI_FLOWS_CODE", "old") == "old" else "approval-v2"
    return str(ctx.create_callback(name).result())


@durable
def short_timer(ctx: DurableContext, event: None) -> str:
    """A one-second timer: for ``worker --until-idle --wait-timers-within``."""
    ctx.wait("pause", timedelta(seconds=1))
    return "woke"
