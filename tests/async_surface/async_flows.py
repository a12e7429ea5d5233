"""Durable functions the worker tests run: importable as ``async_flows`` by a CLI worker.

Each step counts its runs per execution in :data:`RUNS` (in-process workers only) and
awaits a real ``asyncio.sleep``: the I/O wait an async worker overlaps.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import timedelta

from durable_core import AsyncDurableContext, DurableContext, StepContext, durable

IO_S = 0.05
_lock = threading.Lock()
RUNS: Counter[tuple[str, str]] = Counter()
"""(execution id, step name) -> how many times the body ran."""


def ran(sc: StepContext) -> None:
    with _lock:
        RUNS[(sc.execution_id, sc.name)] += 1


@durable(name="async_flows:fetch_two")
async def fetch_two(ctx: AsyncDurableContext, n: int) -> int:
    """Two async steps, each waiting on (simulated) I/O."""

    async def fetch(sc: StepContext) -> int:
        ran(sc)
        await asyncio.sleep(IO_S)
        return n

    return await ctx.step("first", fetch) + await ctx.step("second", fetch)


@durable(name="async_flows:sync_double")
def sync_double(ctx: DurableContext, n: int) -> int:
    """A sync function, for the async worker to run on a thread."""

    def double(sc: StepContext) -> int:
        ran(sc)
        return 2 * n

    return ctx.step("double", double)


@durable(name="async_flows:remind")
async def remind(ctx: AsyncDurableContext, who: str) -> str:
    """A step, a week's wait, a step."""

    async def note(sc: StepContext) -> str:
        ran(sc)
        await asyncio.sleep(0)
        return who

    name = await ctx.step("note", note)
    await ctx.wait("a-week", timedelta(days=7))
    return await ctx.step("remind", lambda sc: ran(sc) or f"hi {name}")
