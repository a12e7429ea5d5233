"""A generated program as a sync ``@durable def`` and as an ``@durable async def``.

The two interpreters are written side by side, operation for operation, so the only
difference between them is the surface: ``ctx.step(...)`` against ``await ctx.step(...)``
(with ``async def`` bodies where the program says so). Every body counts its runs in
:data:`EFFECTS`; every caught error is reported as ``["error", <class name>]``.

The children ``invoke`` starts are module-level functions (one sync, one async) that every
runtime of a test registers, so any worker can resume them; their one step is named after
its side-effect key, so a crash report's write description names the body it cut.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import tenacity

from durable_core import (
    AsyncDurableContext,
    DurableContext,
    RetryPolicy,
    StepConfig,
    StepContext,
    StepSemantics,
    durable,
)
from durable_core.errors import (
    CallbackFailedError,
    CallbackTimeoutError,
    ChildContextError,
    InvokeError,
    StepFailedError,
)
from durable_core.function import DurableFunction
from durable_core.operations.batch import BatchResult, CompletionPolicy

from .programs import (
    CALLBACK_TIMEOUT_S,
    POLICIES,
    POLL_S,
    Batch,
    Callback,
    Child,
    Condition,
    Invoke,
    Op,
    Program,
    Step,
    Value,
    Wait,
    error,
)

CAUGHT = (
    StepFailedError,
    CallbackFailedError,
    CallbackTimeoutError,
    ChildContextError,
    InvokeError,
)


class Ledger:
    """Runs of each body by key; safe from several threads (sync branches run on a pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def hit(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)

    def clear(self) -> None:
        with self._lock:
            self.counts.clear()


EFFECTS = Ledger()


def policy(name: str) -> CompletionPolicy:
    least, count, pct = POLICIES[name]
    return CompletionPolicy(
        min_successful=least, tolerated_failure_count=count, tolerated_failure_percentage=pct
    )


def config(step: Step) -> StepConfig:
    wait = tenacity.wait_fixed(step.delay) if step.delay else tenacity.wait_none()
    return StepConfig(
        retry=RetryPolicy(stop=tenacity.stop_after_attempt(step.attempts), wait=wait),
        semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY
        if step.at_most_once
        else StepSemantics.AT_LEAST_ONCE_PER_RETRY,
    )


def _attempt(step: Step, sc: StepContext) -> int:
    EFFECTS.hit(step.name)
    if sc.attempt <= step.fails:
        raise ValueError(f"{step.name} failed attempt {sc.attempt}")
    return step.value


def sync_body(step: Step) -> Callable[[StepContext], int]:
    return lambda sc: _attempt(step, sc)


def async_body(step: Step) -> Callable[[StepContext], Any]:
    if not step.async_body:
        return sync_body(step)  # a sync body under the async surface runs on a thread

    async def body(sc: StepContext) -> int:
        await asyncio.sleep(0)
        return _attempt(step, sc)

    return body


def _check(name: str, state: int) -> int:
    EFFECTS.hit(name)
    return state + 1


def summary(result: BatchResult[Any]) -> list[Any]:
    items = [
        [
            item.status.value,
            item.value,
            item.error.type.rsplit(".", 1)[-1] if item.error is not None else None,
        ]
        for item in result.items
    ]
    return [result.completion_reason.value, items]


def invoke_event(op: Invoke) -> dict[str, Any]:
    return {"key": f"{op.name}:child", "value": op.value, "fail": op.fail}


def _child_step(event: dict[str, Any]) -> int:
    EFFECTS.hit(event["key"])
    if event["fail"]:
        raise ValueError(f"child {event['key']} failed")
    return int(event["value"]) * 10


NO_RETRY = StepConfig(retry=RetryPolicy.no_retry())


@durable(name="async_surface:child_sync")
def child_sync(ctx: DurableContext, event: dict[str, Any]) -> int:
    return ctx.step(event["key"], lambda sc: _child_step(event), NO_RETRY)


@durable(name="async_surface:child_async")
async def child_async(ctx: AsyncDurableContext, event: dict[str, Any]) -> int:
    async def work(sc: StepContext) -> int:
        await asyncio.sleep(0)
        return _child_step(event)

    return await ctx.step(event["key"], work, NO_RETRY)


CHILDREN = (child_sync, child_async)


def _child_fn(op: Invoke) -> DurableFunction[Any, int]:
    return child_sync if op.child == "sync" else child_async


# --- sync ------------------------------------------------------------------------------------


def run_sync(ctx: DurableContext, program: Program) -> list[Any]:
    return [_op_sync(ctx, op) for op in program]


def _branch_sync(steps: tuple[Step, ...]) -> Callable[[DurableContext], int]:
    def branch(c: DurableContext) -> int:
        return sum(c.step(s.name, sync_body(s), config(s)) for s in steps)

    return branch


def _op_sync(ctx: DurableContext, op: Op) -> Any:
    try:
        return _do_sync(ctx, op)
    except CAUGHT as exc:
        return error(type(exc).__name__)


def _do_sync(ctx: DurableContext, op: Op) -> Any:
    if isinstance(op, Step):
        return ctx.step(op.name, sync_body(op), config(op))
    if isinstance(op, Wait):
        return ctx.wait(op.name, op.seconds)
    if isinstance(op, Callback):
        if op.wait_for:
            submit = f"{op.name} submitter"
            return ctx.wait_for_callback(
                op.name, lambda token, sc: EFFECTS.hit(submit), timeout=CALLBACK_TIMEOUT_S
            )
        return ctx.create_callback(op.name, timeout=CALLBACK_TIMEOUT_S).result()
    if isinstance(op, Condition):
        return ctx.wait_for_condition(
            op.name,
            lambda state, sc: _check(op.name, state),
            initial_state=0,
            done=lambda state: state >= op.polls,
            wait=tenacity.wait_fixed(POLL_S),
            state_type=int,
        )
    if isinstance(op, Child):

        def body(c: DurableContext) -> list[Any]:
            out = run_sync(c, op.body)
            if op.fail:
                raise ValueError(f"{op.name} failed")
            return out

        return ctx.run_in_child_context(op.name, body)
    if isinstance(op, Batch):
        return summary(_batch_sync(ctx, op))
    if isinstance(op, Invoke):
        return ctx.invoke(_child_fn(op), invoke_event(op), name=op.name)
    assert isinstance(op, Value)
    if op.kind == "now":
        return ctx.now(op.name).isoformat()
    if op.kind == "random":
        return ctx.random(op.name)
    return str(ctx.uuid4(op.name))


def _batch_sync(ctx: DurableContext, op: Batch) -> BatchResult[int]:
    if op.kind == "parallel":
        return ctx.parallel(
            [_branch_sync(b) for b in op.branches],
            name=op.name,
            max_concurrency=op.max_concurrency,
            completion=policy(op.policy),
        )

    def item(c: DurableContext, x: int, i: int) -> int:
        return _branch_sync(op.branches[x])(c)

    return ctx.map(
        list(range(len(op.branches))),
        item,
        name=op.name,
        max_concurrency=op.max_concurrency,
        completion=policy(op.policy),
    )


# --- async -----------------------------------------------------------------------------------


async def run_async(ctx: AsyncDurableContext, program: Program) -> list[Any]:
    return [await _op_async(ctx, op) for op in program]


def _branch_async(steps: tuple[Step, ...]) -> Callable[[AsyncDurableContext], Any]:
    async def branch(c: AsyncDurableContext) -> int:
        return sum([await c.step(s.name, async_body(s), config(s)) for s in steps])

    return branch


async def _op_async(ctx: AsyncDurableContext, op: Op) -> Any:
    try:
        return await _do_async(ctx, op)
    except CAUGHT as exc:
        return error(type(exc).__name__)


async def _do_async(ctx: AsyncDurableContext, op: Op) -> Any:
    if isinstance(op, Step):
        return await ctx.step(op.name, async_body(op), config(op))
    if isinstance(op, Wait):
        return await ctx.wait(op.name, op.seconds)
    if isinstance(op, Callback):
        if op.wait_for:
            submit = f"{op.name} submitter"

            async def submitter(token: str, sc: StepContext) -> None:
                EFFECTS.hit(submit)

            return await ctx.wait_for_callback(op.name, submitter, timeout=CALLBACK_TIMEOUT_S)
        cb = await ctx.create_callback(op.name, timeout=CALLBACK_TIMEOUT_S)
        return await cb.result()
    if isinstance(op, Condition):

        async def check(state: int, sc: StepContext) -> int:
            return _check(op.name, state)

        return await ctx.wait_for_condition(
            op.name,
            check,
            initial_state=0,
            done=lambda state: state >= op.polls,
            wait=tenacity.wait_fixed(POLL_S),
            state_type=int,
        )
    if isinstance(op, Child):

        async def body(c: AsyncDurableContext) -> list[Any]:
            out = await run_async(c, op.body)
            if op.fail:
                raise ValueError(f"{op.name} failed")
            return out

        return await ctx.run_in_child_context(op.name, body)
    if isinstance(op, Batch):
        return summary(await _batch_async(ctx, op))
    if isinstance(op, Invoke):
        return await ctx.invoke(_child_fn(op), invoke_event(op), name=op.name)
    assert isinstance(op, Value)
    if op.kind == "now":
        return (await ctx.now(op.name)).isoformat()
    if op.kind == "random":
        return await ctx.random(op.name)
    return str(await ctx.uuid4(op.name))


async def _batch_async(ctx: AsyncDurableContext, op: Batch) -> BatchResult[int]:
    if op.kind == "parallel":
        return await ctx.parallel(
            [_branch_async(b) for b in op.branches],
            name=op.name,
            max_concurrency=op.max_concurrency,
            completion=policy(op.policy),
        )

    async def item(c: AsyncDurableContext, x: int, i: int) -> int:
        return int(await _branch_async(op.branches[x])(c))

    return await ctx.map(
        list(range(len(op.branches))),
        item,
        name=op.name,
        max_concurrency=op.max_concurrency,
        completion=policy(op.policy),
    )


# --- the two functions -----------------------------------------------------------------------

FUNCTION_NAME = "async_surface:program"
"""Both interpretations register under this one name, so either can resume the other's."""


def as_sync(program: Program) -> DurableFunction[None, list[Any]]:
    @durable(name=FUNCTION_NAME)
    def program_sync(ctx: DurableContext, event: None) -> list[Any]:
        return run_sync(ctx, program)

    return program_sync


def as_async(program: Program) -> DurableFunction[None, list[Any]]:
    @durable(name=FUNCTION_NAME)
    async def program_async(ctx: AsyncDurableContext, event: None) -> list[Any]:
        return await run_async(ctx, program)

    return program_async
