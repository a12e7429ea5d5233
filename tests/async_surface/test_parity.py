"""Parity: one program written sync and async writes the identical journal, and either
surface resumes (or replays) the other's journal without running anything again.

Generated programs (:mod:`.programs`) mix steps (retries inline and as durable timers,
at-most-once, sync and async bodies), waits, callbacks (created and ``wait_for_callback``;
success, failure, timeout), conditions, child contexts (failing too), parallel and map
(every completion policy, ``max_concurrency``), invokes of sync and async children and
now/random/uuid4. Each runs four ways — all sync, all async, and alternating surfaces
between invocations starting with either — and every way must give the oracle's result
and body counts, and the same journal. Then each surface replays the other's finished
journal without a single write or body run.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from durable_core import AsyncDurableContext, DurableContext, ExecutionStatus, durable

from .driving import EXECUTION_ID, journal, replay_finished, result_of, run_program
from .interpret import CHILDREN, EFFECTS, as_async, as_sync
from .programs import (
    POLICIES,
    RETRY_DELAY_S,
    Batch,
    Callback,
    Child,
    Condition,
    Invoke,
    Program,
    Step,
    Value,
    Wait,
    callbacks_of,
    expect,
    numbered,
    programs,
)


def check_parity(program: Program) -> None:
    """Run ``program`` four ways; each matches the oracle, all journals are identical, and
    each surface replays the other's finished journal without writing or running a body."""
    want, calls = expect(program)
    callbacks = callbacks_of(program)
    sync_fn, async_fn = as_sync(program), as_async(program)
    journals = {}
    for label, functions in {
        "sync": [sync_fn],
        "async": [async_fn],
        "sync, async, ...": [sync_fn, async_fn],
        "async, sync, ...": [async_fn, sync_fn],
    }.items():
        EFFECTS.clear()
        store, clock = run_program(functions, callbacks, CHILDREN)
        assert result_of(store, EXECUTION_ID) == want, label
        assert EFFECTS.snapshot() == calls, label
        journals[label] = journal(store, EXECUTION_ID)
        if len(functions) == 1:  # the finished journal, replayed by the other surface
            other = async_fn if functions[0] is sync_fn else sync_fn
            EFFECTS.clear()
            end, writes = replay_finished(store, clock, other, EXECUTION_ID)
            assert (end.status, end.result) == (
                ExecutionStatus.SUCCEEDED,
                journals[label][EXECUTION_ID][2],
            )
            assert writes == 0
            assert EFFECTS.snapshot() == Counter(), f"{label} journal replayed with body runs"
    first = journals["sync"]
    for label, other in journals.items():
        assert other == first, f"the {label} journal differs from the sync one"


@settings(
    max_examples=80,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(programs)
def test_generated_programs_write_identical_journals_on_both_surfaces(program: Program) -> None:
    check_parity(program)


def steps(*specs: dict[str, Any]) -> tuple[Step, ...]:
    return tuple(Step(name="", **{"value": 1, **s}) for s in specs)


OK, FAILS = {"value": 2}, {"value": 3, "fails": 2, "attempts": 2}
CASES: dict[str, Program] = {
    "step succeeds (async body)": (Step("", 1),),
    "step succeeds (sync body)": (Step("", 1, async_body=False),),
    "inline retries then success": (Step("", 4, fails=2, attempts=3),),
    "durable-timer retries then success": (Step("", 4, fails=1, attempts=2, delay=RETRY_DELAY_S),),
    "retries exhausted": (Step("", 4, fails=3, attempts=3), Step("", 5)),
    "at-most-once with a retry": (Step("", 6, fails=1, attempts=2, at_most_once=True),),
    "waits": (Wait("", 1), Wait("", 7 * 86_400), Step("", 1)),
    "created callback: success": (Callback("", "success"),),
    "created callback: failure": (Callback("", "failure"),),
    "created callback: timeout": (Callback("", "timeout"),),
    "wait_for_callback: success": (Callback("", "success", wait_for=True),),
    "wait_for_callback: failure": (Callback("", "failure", wait_for=True),),
    "wait_for_callback: timeout": (Callback("", "timeout", wait_for=True),),
    "condition": (Condition("", 3),),
    "child contexts, nested and failing": (
        Child("", (Step("", 1), Child("", (Wait("", 60), Step("", 2))))),
        Child("", (Step("", 3),), fail=True),
    ),
    "invoke a sync child": (Invoke("", "sync", 4),),
    "invoke an async child": (Invoke("", "async", 5),),
    "invoke a failing child of each kind": (
        Invoke("", "sync", 1, True),
        Invoke("", "async", 2, True),
    ),
    "now, random, uuid4": (Value("", "now"), Value("", "random"), Value("", "uuid4")),
    **{
        f"{kind} {policy} one at a time": (
            Batch("", kind, (steps(OK), steps(OK, OK), steps(FAILS)), policy, 1),
        )
        for kind in ("parallel", "map")
        for policy in POLICIES
    },
    **{
        f"{kind} all succeed, max_concurrency={mc}": (
            Batch("", kind, (steps(OK), steps(OK, OK), steps(OK)), "all_successful", mc),
        )
        for kind in ("parallel", "map")
        for mc in (None, 2)
    },
    **{
        f"{kind} all_completed max_concurrency={mc}": (
            Batch(
                "", kind, (steps(OK), steps(FAILS), steps(OK, OK), steps(OK)), "all_completed", mc
            ),
        )
        for kind in ("parallel", "map")
        for mc in (None, 2, 3)
    },
}


@pytest.mark.parametrize("program", list(CASES.values()), ids=list(CASES))
def test_each_operation_writes_identical_journals_on_both_surfaces(program: Program) -> None:
    check_parity(numbered(program))


def test_surfaces_really_take_turns_between_invocations() -> None:
    """The alternating runs change surface: count the invocations each surface made."""
    ran: Counter[str] = Counter()
    program = numbered((Step("", 1), Wait("", 60), Callback("", "success"), Condition("", 2)))
    sync_fn, async_fn = as_sync(program), as_async(program)

    @durable(name=sync_fn.name)
    def counted_sync(ctx: DurableContext, event: None) -> list[Any]:
        ran["sync"] += 1
        return sync_fn(ctx, event)

    @durable(name=async_fn.name)
    async def counted_async(ctx: AsyncDurableContext, event: None) -> list[Any]:
        ran["async"] += 1
        return await async_fn.fn(ctx, event)  # type: ignore[no-any-return]

    EFFECTS.clear()
    store, _ = run_program([counted_sync, counted_async], callbacks_of(program))
    assert result_of(store, EXECUTION_ID) == expect(program)[0]
    assert EFFECTS.snapshot() == expect(program)[1]
    assert ran["sync"] >= 2 and ran["async"] >= 2, ran  # wait, callback, 2 polls: 5 invocations


def branch_work_sync(i: int) -> Any:
    def branch(c: DurableContext) -> int:
        a = c.step(f"before-{i}", lambda sc: EFFECTS.hit(f"before-{i}") or i)
        if i % 2:
            c.wait(f"nap-{i}", 3600 * i)
        else:
            c.create_callback(f"cb-{i}", timeout=86_400).result()
        return a + c.step(f"after-{i}", lambda sc: EFFECTS.hit(f"after-{i}") or 10)

    return branch


def branch_work_async(i: int) -> Any:
    async def branch(c: AsyncDurableContext) -> int:
        async def before(sc: Any) -> int:
            EFFECTS.hit(f"before-{i}")
            return i

        a = await c.step(f"before-{i}", before)
        if i % 2:
            await c.wait(f"nap-{i}", 3600 * i)
        else:
            await (await c.create_callback(f"cb-{i}", timeout=86_400)).result()
        return a + await c.step(f"after-{i}", lambda sc: EFFECTS.hit(f"after-{i}") or 10)

    return branch


@pytest.mark.parametrize("kind", ["parallel", "map"])
def test_branches_that_suspend_write_identical_journals_on_both_surfaces(kind: str) -> None:
    """Branches waiting on timers and callbacks, two at a time: the batch suspends and
    resumes across invocations, whichever surface runs each one."""
    n = 5

    @durable(name="async_surface:suspending")
    def fan_sync(ctx: DurableContext, event: None) -> list[int]:
        if kind == "map":
            result = ctx.map(
                list(range(n)), lambda c, x, i: branch_work_sync(x)(c), max_concurrency=2
            )
        else:
            result = ctx.parallel([branch_work_sync(i) for i in range(n)], max_concurrency=2)
        return result.raise_if_failed().values()

    @durable(name="async_surface:suspending")
    async def fan_async(ctx: AsyncDurableContext, event: None) -> list[int]:
        if kind == "map":

            async def item(c: AsyncDurableContext, x: int, i: int) -> int:
                return int(await branch_work_async(x)(c))

            result = await ctx.map(list(range(n)), item, max_concurrency=2)
        else:
            result = await ctx.parallel([branch_work_async(i) for i in range(n)], max_concurrency=2)
        return result.raise_if_failed().values()

    callbacks = {f"cb-{i}": "success" for i in range(0, n, 2)}
    journals = []
    for functions in ([fan_sync], [fan_async], [fan_sync, fan_async], [fan_async, fan_sync]):
        EFFECTS.clear()
        store, _ = run_program(functions, callbacks)  # type: ignore[arg-type]
        assert result_of(store, EXECUTION_ID) == [10 + i for i in range(n)]
        assert EFFECTS.snapshot() == Counter(
            {f"{w}-{i}": 1 for w in ("before", "after") for i in range(n)}
        )
        journals.append(journal(store, EXECUTION_ID))
    assert all(j == journals[0] for j in journals[1:])
