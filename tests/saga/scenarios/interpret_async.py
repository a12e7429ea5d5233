"""The same programs as :mod:`scenarios.interpret`, as ``@saga async def`` sagas.

Every operation is awaited on the async surface (``AsyncSagaContext``, its
``AsyncDurableContext``); the step actions and undos are the sync interpreter's own bodies
wrapped as ``async def``, so they run on the event loop and keep exactly the sync
interpreter's scripted behaviour and ledger. The oracle does not know which surface ran:
both must give what it expects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import tenacity

from saga import AsyncSagaContext, SagaFunction, saga
from scenarios.interpret import SAGA_NAME, Env, _action, _opts, _submit
from scenarios.programs import (
    CALLBACK_TIMEOUT_S,
    WAIT_S,
    Callback,
    Child,
    Condition,
    Op,
    Parallel,
    Program,
    Step,
    Wait,
    WaitForCallback,
)

A = TypeVar("A")


def build_async(
    program: Program, env: Env, *, deadline_s: float | None = None
) -> SagaFunction[Any, str]:
    """The async saga that runs ``program`` against ``env``."""
    deadline = timedelta(seconds=deadline_s) if deadline_s is not None else None

    async def body(s: AsyncSagaContext, event: Any) -> str:
        await _run_ops(s, program.ops, "", env)
        return "done"

    return saga(name=SAGA_NAME, deadline=deadline)(body)


def _on_loop(fn: Callable[[A], str]) -> Callable[[A], Awaitable[str]]:
    """``fn`` as an ``async def``: the same body, run on the event loop."""

    async def run(arg: A) -> str:
        return fn(arg)

    return run


def _async_opts(path: str, spec: Step, env: Env) -> dict[str, Any]:
    opts = _opts(path, spec, env)
    if opts["compensate"] is not None:
        opts["compensate"] = _on_loop(opts["compensate"])
    return opts


async def _step(s: AsyncSagaContext, path: str, spec: Step, env: Env) -> None:
    name = path.rsplit("/", 1)[-1]
    action = _on_loop(_action(path, spec, env, branch=False))
    await s.step(name, action, **_async_opts(path, spec, env))


async def _run_ops(s: AsyncSagaContext, ops: tuple[Op, ...], prefix: str, env: Env) -> None:
    for op in ops:
        path = prefix + op.name
        env.before(f"before:{path}")
        if isinstance(op, Step):
            await _step(s, path, op, env)
        elif isinstance(op, Wait):
            await s.ctx.wait(path, timedelta(seconds=WAIT_S))
        elif isinstance(op, Callback):
            cb = await s.ctx.create_callback(path, timeout=timedelta(seconds=CALLBACK_TIMEOUT_S))
            for between in op.between:
                env.before(f"before:{prefix}{between.name}")
                await _step(s, prefix + between.name, between, env)
            await cb.result()
        elif isinstance(op, WaitForCallback):
            await s.ctx.wait_for_callback(
                path, _submit, timeout=timedelta(seconds=CALLBACK_TIMEOUT_S)
            )
        elif isinstance(op, Condition):
            await s.ctx.wait_for_condition(
                path,
                lambda state, sc: state + 1,
                initial_state=0,
                done=lambda state, polls=op.polls: state >= polls,
                wait=tenacity.wait_fixed(WAIT_S),
            )
        elif isinstance(op, Parallel):
            await s.parallel(
                op.name,
                [
                    s.branch(
                        b.name,
                        _on_loop(_action(f"{path}/{b.name}", b, env, branch=True)),
                        **_async_opts(f"{path}/{b.name}", b, env),
                    )
                    for b in op.branches
                ],
            )
        else:
            assert isinstance(op, Child)
            await s.child(op.name, _child_saga(path, op, env), None)


def _child_saga(path: str, op: Child, env: Env) -> SagaFunction[Any, str]:
    async def child_body(s: AsyncSagaContext, event: Any) -> str:
        await _run_ops(s, op.ops, path + "/", env)
        return "child done"

    return saga(name=f"{SAGA_NAME}:{path}")(child_body)
