"""Durable functions for the observability tests: one of every operation type, sync and
async, recording nothing but what the journal holds (so replays and surfaces compare)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tenacity import stop_after_attempt, wait_fixed

from durable_core import (
    AsyncDurableContext,
    DurableContext,
    RetryPolicy,
    StepConfig,
    StepContext,
    durable,
)

FLAKY = StepConfig(retry=RetryPolicy(stop=stop_after_attempt(3), wait=wait_fixed(0)))
"""Two inline retries (no delay), so a flaky step's attempts all run in one invocation."""
SECRET = "s3cr3t-payload-value"
"""A payload value that must never appear in telemetry."""


def flaky(sc: StepContext) -> int:
    """Fails its first attempt, then returns the attempt number."""
    if sc.attempt < 2:
        raise ConnectionError("flaky once")
    return sc.attempt


def poll(state: int, sc: StepContext) -> int:
    """A condition check: one more each poll."""
    return state + 1


@durable
def child_fn(ctx: DurableContext, event: int) -> int:
    """The function ``invoke`` starts."""
    return ctx.step("double", lambda sc: event * 2)


@durable
def every_op(ctx: DurableContext, event: dict[str, Any]) -> dict[str, Any]:
    """One operation of every type (a timer, two callbacks, a poll wait: several invocations)."""
    first = ctx.step("flaky", flaky, FLAKY)
    ctx.wait("nap", timedelta(hours=1))
    cb = ctx.create_callback("approval", result_type=str)
    ctx.step("send", lambda sc: len(cb.token))
    approved = cb.result()
    reply = ctx.wait_for_callback("reply", lambda token, sc: None, result_type=str)
    polled = ctx.wait_for_condition(
        "ready", poll, initial_state=0, done=lambda s: s >= 2, wait=wait_fixed(60)
    )
    inner = ctx.run_in_child_context("child", lambda c: c.step("inner", lambda sc: 3))
    par = ctx.parallel([lambda c: c.step("p1", lambda sc: 1), lambda c: 2], name="both")
    mapped = ctx.map([1, 2], lambda c, item, i: item * 10, name="tens")
    invoked = ctx.invoke(child_fn, 21)
    return {
        "first": first,
        "approved": approved,
        "reply": reply,
        "polled": polled,
        "inner": inner,
        "par": par.values(),
        "mapped": mapped.values(),
        "invoked": invoked,
        "secret": event["secret"],
    }


@durable
async def every_op_async(ctx: AsyncDurableContext, event: dict[str, Any]) -> dict[str, Any]:
    """:func:`every_op` on the async surface: the same operations, awaited."""

    async def inner_body(c: AsyncDurableContext) -> int:
        return await c.step("inner", lambda sc: 3)

    async def p1(c: AsyncDurableContext) -> int:
        return await c.step("p1", lambda sc: 1)

    async def p2(c: AsyncDurableContext) -> int:
        return 2

    async def tens(c: AsyncDurableContext, item: int, i: int) -> int:
        return item * 10

    first = await ctx.step("flaky", flaky, FLAKY)
    await ctx.wait("nap", timedelta(hours=1))
    cb = await ctx.create_callback("approval", result_type=str)
    await ctx.step("send", lambda sc: len(cb.token))
    approved = await cb.result()
    reply = await ctx.wait_for_callback("reply", lambda token, sc: None, result_type=str)
    polled = await ctx.wait_for_condition(
        "ready", poll, initial_state=0, done=lambda s: s >= 2, wait=wait_fixed(60)
    )
    inner = await ctx.run_in_child_context("child", inner_body)
    par = await ctx.parallel([p1, p2], name="both")
    mapped = await ctx.map([1, 2], tens, name="tens")
    invoked = await ctx.invoke(child_fn, 21)
    return {
        "first": first,
        "approved": approved,
        "reply": reply,
        "polled": polled,
        "inner": inner,
        "par": par.values(),
        "mapped": mapped.values(),
        "invoked": invoked,
        "secret": event["secret"],
    }
