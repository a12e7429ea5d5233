"""Misusing the async surface is a clear ValidationError naming what is wrong.

An operation called but never awaited, ``return ctx.step(...)``, two operations of one
scope in flight at once, an async body given to a sync context, a context annotation that
does not match the function's kind: each is refused with a message that says what to do,
never a serialization error or Python's "coroutine ... was never awaited" warning (every
test here turns warnings into errors), and the bad call records nothing.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Any

import pytest

from durable_core import (
    AsyncDurableContext,
    DurableContext,
    ExecutionStatus,
    MemoryStore,
    Runtime,
    StepContext,
    ValidationError,
    durable,
)
from durable_core.testing import DurableTestRunner, TestResult

from .interpret import EFFECTS, child_async

pytestmark = pytest.mark.filterwarnings("error")


def run(fn: Any) -> TestResult:
    result = DurableTestRunner(fn, functions=[child_async]).run(None)
    gc.collect()  # a coroutine left un-awaited would warn (an error here) when collected
    return result


def failed_with(result: TestResult, *parts: str) -> str:
    assert result.status is ExecutionStatus.FAILED, result.status
    assert result.error is not None
    assert result.error.type == "durable_core.errors.ValidationError", result.error
    for part in parts:
        assert part in result.error.message, (part, result.error.message)
    return result.error.message


async def one(sc: StepContext) -> int:
    EFFECTS.hit("body")
    return 1


async def branch(c: AsyncDurableContext) -> int:
    return await c.step("inner", one)


async def item(c: AsyncDurableContext, x: int, i: int) -> int:
    return await c.step("inner", one)


async def child(c: AsyncDurableContext) -> int:
    return await c.step("inner", one)


async def submit(token: str, sc: StepContext) -> None:
    EFFECTS.hit("body")


async def check(state: int, sc: StepContext) -> int:
    return state + 1


CALLS: dict[str, tuple[str, Callable[[AsyncDurableContext], object]]] = {
    "step": ("operation 'op' (step/Step)", lambda c: c.step("op", one)),
    "wait": ("operation 'op' (wait/Wait)", lambda c: c.wait("op", 60)),
    "create_callback": ("operation 'op' (callback/Callback)", lambda c: c.create_callback("op")),
    "wait_for_callback": (
        "operation 'op' (context/WaitForCallback)",
        lambda c: c.wait_for_callback("op", submit),
    ),
    "wait_for_condition": (
        "operation 'op' (step/WaitForCondition)",
        lambda c: c.wait_for_condition("op", check, initial_state=0, done=lambda s: s > 1),
    ),
    "run_in_child_context": (
        "operation 'op' (context/RunInChildContext)",
        lambda c: c.run_in_child_context("op", child),
    ),
    "parallel": ("operation 'op' (context/Parallel)", lambda c: c.parallel([branch], name="op")),
    "map": ("operation 'op' (context/Map)", lambda c: c.map([1], item, name="op")),
    "invoke": (
        "operation 'op' (chained_invoke/ChainedInvoke)",
        lambda c: c.invoke(child_async, {"key": "k", "value": 1, "fail": False}, name="op"),
    ),
    "now": ("operation 'op' (step/Step)", lambda c: c.now("op")),
    "random": ("operation 'op' (step/Step)", lambda c: c.random("op")),
    "uuid4": ("operation 'op' (step/Step)", lambda c: c.uuid4("op")),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_an_operation_called_without_await_fails_naming_it(name: str) -> None:
    described, call = CALLS[name]
    EFFECTS.clear()

    @durable(name="async_surface:forgot_await")
    async def forgot(ctx: AsyncDurableContext, event: None) -> int:
        call(ctx)  # no await: it never runs
        return 1

    result = run(forgot)

    failed_with(result, described, "was called but never awaited", "await ctx.")
    assert result.operations == []
    assert EFFECTS.snapshot() == {}


@pytest.mark.parametrize("name", list(CALLS))
def test_returning_an_operation_without_await_fails_naming_it(name: str) -> None:
    described, call = CALLS[name]

    @durable(name="async_surface:returned_unawaited")
    async def returned(ctx: AsyncDurableContext, event: None) -> Any:
        return call(ctx)

    message = failed_with(run(returned), described, "never awaited")
    assert "serializ" not in message.lower()


def test_the_next_operation_after_a_forgotten_await_is_refused_and_names_both() -> None:
    @durable(name="async_surface:next_op")
    async def flow(ctx: AsyncDurableContext, event: None) -> int:
        ctx.step("first", one)
        return await ctx.step("second", one)

    result = run(flow)
    failed_with(result, "'first'")
    assert result.operations == []


def test_a_forgotten_await_in_a_branch_fails_the_execution_naming_it() -> None:
    @durable(name="async_surface:branch_forgot")
    async def flow(ctx: AsyncDurableContext, event: None) -> int:
        async def careless(c: AsyncDurableContext) -> int:
            c.step("lost", one)
            return 1

        return sum((await ctx.parallel([careless, branch])).values())

    failed_with(run(flow), "operation 'lost' (step/Step)", "never awaited")


def test_two_operations_in_flight_at_once_are_refused_naming_parallel() -> None:
    EFFECTS.clear()

    @durable(name="async_surface:gather")
    async def flow(ctx: AsyncDurableContext, event: None) -> list[int]:
        return list(await asyncio.gather(ctx.step("a", one), ctx.step("b", one)))

    result = run(flow)

    failed_with(result, "ctx.parallel", "'b'", "'a'")
    assert result.operations == []
    assert EFFECTS.snapshot() == {}


def test_branches_may_each_have_an_operation_in_flight() -> None:
    """One operation per scope at a time: another branch awaiting its operation through
    ``asyncio.wait_for`` (a task of its own) does not make this branch's operation refused."""

    @durable(name="async_surface:two_scopes")
    async def flow(ctx: AsyncDurableContext, event: None) -> list[int]:
        async def through_wait_for(c: AsyncDurableContext) -> int:
            return await asyncio.wait_for(c.step("a", one), timeout=30)

        return (await ctx.parallel([through_wait_for, branch])).raise_if_failed().values()

    result = run(flow)
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    assert result.result == [1, 1]


# --- async code given to the sync surface -------------------------------------------------------

SYNC_MISUSE: dict[str, Callable[[DurableContext], object]] = {
    "step": lambda c: c.step("op", one),
    "wait_for_condition check": lambda c: c.wait_for_condition(
        "op", check, initial_state=0, done=lambda s: s > 1
    ),
    "run_in_child_context": lambda c: c.run_in_child_context("op", child),  # type: ignore[arg-type]
    "parallel branch": lambda c: c.parallel([branch], name="op"),  # type: ignore[list-item]
    "map function": lambda c: c.map([1], item, name="op"),  # type: ignore[arg-type]
    "wait_for_callback submitter": lambda c: c.wait_for_callback("op", submit),
}


@pytest.mark.parametrize("name", list(SYNC_MISUSE))
def test_an_async_body_given_to_a_sync_context_is_refused_and_nothing_recorded(name: str) -> None:
    EFFECTS.clear()

    @durable(name="async_surface:sync_misuse")
    def flow(ctx: DurableContext, event: None) -> Any:
        return SYNC_MISUSE[name](ctx)

    result = run(flow)

    failed_with(result, "'op'", "async function", "`async def`", "AsyncDurableContext")
    assert result.operations == []
    assert EFFECTS.snapshot() == {}


def test_a_sync_body_returning_a_coroutine_on_the_sync_surface_fails_naming_the_step() -> None:
    @durable(name="async_surface:returns_coroutine")
    def flow(ctx: DurableContext, event: None) -> Any:
        # a sync lambda returning a coroutine: only its value shows the mistake
        return ctx.step("op", lambda sc: one(sc))  # noqa: PLW0108

    result = run(flow)

    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None
    assert "step 'op': its function returned an awaitable (coroutine)" in result.error.message
    assert "`async def`" in result.error.message


def test_a_sync_body_returning_a_coroutine_is_not_retried() -> None:
    EFFECTS.clear()

    @durable(name="async_surface:returns_coroutine_once")
    def flow(ctx: DurableContext, event: None) -> Any:
        return ctx.step("op", lambda sc: one(sc))  # noqa: PLW0108

    result = run(flow)

    assert result.status is ExecutionStatus.FAILED
    assert result.get_step("op").attempt == 1
    assert EFFECTS.snapshot() == {}  # the coroutine (the body's work) never ran anyway


# --- the function's declared context ----------------------------------------------------------


def test_an_async_function_annotated_with_the_sync_context_is_refused() -> None:
    async def wrong(ctx: DurableContext, event: None) -> None:
        return None

    with pytest.raises(ValidationError) as info:
        durable(wrong)  # type: ignore[call-overload]
    message = str(info.value)
    assert "'test_an_async_function_annotated_with_the_sync_context_is_refused.<locals>.wrong'" in (
        message
    )
    assert "`async def`" in message and "AsyncDurableContext" in message


def test_a_sync_function_annotated_with_the_async_context_is_refused() -> None:
    def wrong(ctx: AsyncDurableContext, event: None) -> None:
        return None

    with pytest.raises(ValidationError) as info:
        durable(name="async_surface:wrong")(wrong)  # type: ignore[arg-type]
    message = str(info.value)
    assert "is sync but its context is annotated AsyncDurableContext" in message
    assert "DurableContext" in message and "`async def`" in message


class _Signal(BaseException):
    """Not an outcome: a signal that must leave the invocation (as a crash or a cancelled
    worker task does), never be turned into the execution's failure."""


def test_a_signal_is_not_turned_into_the_unawaited_error() -> None:
    @durable(name="async_surface:signal_while_unawaited")
    async def flow(ctx: AsyncDurableContext, event: None) -> None:
        async def forgets(c: AsyncDurableContext) -> None:
            c.step("forgotten", lambda sc: 1)  # never awaited
            await asyncio.sleep(0.01)

        async def dies(c: AsyncDurableContext) -> None:
            def crash(sc: StepContext) -> None:
                raise _Signal("the worker dies here")

            await asyncio.sleep(0)  # the other branch has called its operation by now
            await c.step("crash", crash)

        await ctx.parallel([forgets, dies])

    rt = Runtime(MemoryStore())
    with pytest.raises(_Signal):
        rt.run(flow)
    assert rt.get(rt.store.list_executions()[0].id).status is ExecutionStatus.RUNNING
