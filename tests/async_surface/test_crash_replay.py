"""Async functions crashed at every checkpoint boundary, and restarted after every write.

``check_crash_safety`` kills the worker before and after every write and lets a new worker
finish; ``always_replay`` restarts the function after every write. On the async surface,
as on the sync one (tests/testing/test_crash.py, tests/operations/test_batch_replay.py):
every boundary ends as the normal run did, and every body ran exactly as often as in the
normal run — except the one attempt whose outcome the crash kept from being written
(a crash *before* that step record), which at-least-once runs once more.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

import pytest
import tenacity
from hypothesis import HealthCheck, given, settings

from durable_core import (
    AsyncDurableContext,
    ExecutionStatus,
    RetryPolicy,
    StepConfig,
    StepContext,
    StepSemantics,
    durable,
)
from durable_core.testing import CallbackFailure, CrashPoint, CrashReport, check_crash_safety

from .interpret import CHILDREN, EFFECTS, as_async
from .programs import Batch, Child, Program, callbacks_of, crash_safe, expect, programs

STEP_OUTCOME = re.compile(r"^step '([^']+)' (PENDING|SUCCEEDED|FAILED)")
"""A write that records the outcome of one attempt of a step (or a condition poll)."""

SETTINGS = settings(
    max_examples=12,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def cut_attempt(description: str, point: CrashPoint) -> str | None:
    """The step whose attempt runs again after this crash (None: nothing runs again)."""
    found = STEP_OUTCOME.match(description)
    return found.group(1) if found and point is CrashPoint.BEFORE_WRITE else None


def assert_effects(report: CrashReport, seen: list[Counter[str]], exact: bool) -> None:
    """Each boundary's body runs are the normal run's, plus one run of the cut attempt.

    ``exact=False`` where branches run concurrently: the k-th write of a crashed run may be
    another branch's than in the normal run, so only "at most one extra run, and none when
    the crash came after the write" is certain.
    """
    report.assert_ok()
    base = seen[0]
    assert all(b.crashed for b in report.boundaries)
    for boundary, counts in zip(report.boundaries, seen[1:], strict=True):
        extra = counts - base
        assert not base - counts, f"{boundary}: a body never ran: {base - counts}"
        cut = cut_attempt(boundary.description, boundary.point)
        if exact:
            assert extra == (Counter([cut]) if cut else Counter()), (str(boundary), extra)
        else:
            assert sum(extra.values()) <= (1 if boundary.point is CrashPoint.BEFORE_WRITE else 0)


def crash_check(
    fn: Any, event: Any = None, *, callbacks: dict[str, Any] | None = None
) -> tuple[CrashReport, list[Counter[str]]]:
    """``check_crash_safety`` of ``fn``, and the body runs of every run: the normal one
    first, then one per boundary (in ``report.boundaries`` order)."""
    runs: list[Counter[str]] = []
    started = [False]

    def before_each() -> None:  # called before every run: the last one's effects are done
        if started[0]:
            runs.append(EFFECTS.snapshot())
        started[0] = True
        EFFECTS.clear()

    report = check_crash_safety(
        fn,
        event,
        functions=CHILDREN,
        callbacks=callbacks,
        before_each=before_each,
        skip_callback_timeouts=True,
    )
    runs.append(EFFECTS.snapshot())
    return report, runs


def runner_callbacks(program: Program) -> dict[str, Any]:
    return {
        name: {"cb": name} if end == "success" else CallbackFailure(f"{name} refused")
        for name, end in callbacks_of(program).items()
        if end != "timeout"
    }


def concurrent(program: Program) -> bool:
    return any(
        (isinstance(op, Batch) and op.max_concurrency != 1)
        or (isinstance(op, Child) and concurrent(op.body))
        for op in program
    )


@SETTINGS
@given(programs.map(crash_safe))
def test_generated_async_programs_are_crash_safe_at_every_boundary(program: Program) -> None:
    want, calls = expect(program)
    report, seen = crash_check(as_async(program), callbacks=runner_callbacks(program))
    assert report.baseline.result == want
    assert seen[0] == calls
    assert all(b.final.result == want for b in report.boundaries)
    assert_effects(report, seen, exact=not concurrent(program))


@SETTINGS
@given(programs)
def test_generated_async_programs_survive_a_restart_after_every_write(
    program: Program,
) -> None:
    from durable_core.testing import DurableTestRunner

    from .driving import deterministic_values

    want, calls = expect(program)
    EFFECTS.clear()
    runner = DurableTestRunner(
        as_async(program),
        always_replay=True,
        functions=CHILDREN,
        callbacks=runner_callbacks(program),
        skip_callback_timeouts=True,
    )
    with deterministic_values():
        result = runner.run(None)
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    assert result.result == want
    assert EFFECTS.snapshot() == calls


TWICE = StepConfig(
    retry=RetryPolicy(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_none())
)


@durable(name="async_surface:order")
async def order(ctx: AsyncDurableContext, event: None) -> dict[str, Any]:
    async def charge(sc: StepContext) -> str:
        EFFECTS.hit("charge")
        await asyncio.sleep(0)
        if sc.attempt == 1:
            raise ConnectionError("gateway hiccup")
        return "ch-1"

    async def submit(token: str, sc: StepContext) -> None:
        EFFECTS.hit("shipper submitter")
        await asyncio.sleep(0)

    charge_id = await ctx.step("charge", charge, TWICE)
    await ctx.wait("cool-off", 3600)
    receipt = await ctx.step("receipt", lambda sc: EFFECTS.hit("receipt") or "r-1")  # on a thread
    shipped = await ctx.wait_for_callback("shipper", submit)
    return {"charge": charge_id, "receipt": receipt, "shipped": shipped}


def test_async_steps_are_crash_safe_and_rerun_only_the_attempt_whose_record_was_lost() -> None:
    report, seen = crash_check(order, callbacks={"shipper": {"delivered": True}})
    assert seen[0] == Counter({"charge": 2, "receipt": 1, "shipper submitter": 1})

    assert report.baseline.result == {
        "charge": "ch-1",
        "receipt": "r-1",
        "shipped": {"delivered": True},
    }
    assert report.writes[:2] == ("step 'charge' PENDING", "step 'charge' SUCCEEDED (attempt 2)")
    assert_effects(report, seen, exact=True)
    reran = {str(b).split(":")[0] for b, c in zip(report.boundaries, seen[1:], strict=True)
             if c != seen[0]}  # fmt: skip
    assert reran == {
        "crash before write 1 (step 'charge' PENDING)",
        "crash before write 2 (step 'charge' SUCCEEDED (attempt 2))",
        "crash before write 5 (step 'receipt' SUCCEEDED)",
        "crash before write 7 (step 'shipper submitter' SUCCEEDED)",
    }


def test_an_async_at_most_once_step_differs_exactly_where_the_attempt_was_cut() -> None:
    @durable(name="async_surface:pay")
    async def pay(ctx: AsyncDurableContext, event: None) -> str:
        async def transfer(sc: StepContext) -> str:
            EFFECTS.hit("transfer")
            await asyncio.sleep(0)
            return "sent"

        config = StepConfig(
            semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY, retry=RetryPolicy.no_retry()
        )
        return await ctx.step("transfer", transfer, config)

    def never_twice(final: Any) -> None:
        assert EFFECTS.snapshot()["transfer"] <= 1

    report = check_crash_safety(pay, None, before_each=EFFECTS.clear, check=never_twice)

    assert report.writes == ("step 'transfer' STARTED", "step 'transfer' SUCCEEDED")
    failures = {(b.write, b.point) for b in report.failures}
    assert failures == {(1, CrashPoint.AFTER_WRITE), (2, CrashPoint.BEFORE_WRITE)}
    for b in report.failures:
        assert b.final.status is ExecutionStatus.FAILED
        assert "was interrupted" in (b.final.error.message if b.final.error else "")


def batch_flow(kind: str, concurrency: int) -> Any:
    @durable(name=f"async_surface:crash_{kind}_{concurrency}")
    async def flow(ctx: AsyncDurableContext, n: int) -> int:
        async def item(c: AsyncDurableContext, x: int, i: int) -> int:
            async def charge(sc: StepContext) -> int:
                EFFECTS.hit(f"charge-{x}")
                await asyncio.sleep(0.001 * (n - x))  # later items finish first
                return x + 1

            first = await c.step(f"charge-{x}", charge)
            return first + await c.step(f"note-{x}", lambda sc: EFFECTS.hit(f"note-{x}") or 0)

        if kind == "map":
            result = await ctx.map(list(range(n)), item, max_concurrency=concurrency)
        else:
            branches = [lambda c, x=x: item(c, x, x) for x in range(n)]
            result = await ctx.parallel(branches, max_concurrency=concurrency)
        return sum(result.raise_if_failed().values())

    return flow


@pytest.mark.parametrize("concurrency", [1, 3])
@pytest.mark.parametrize("kind", ["parallel", "map"])
def test_async_batches_are_crash_safe_at_every_boundary(kind: str, concurrency: int) -> None:
    report, seen = crash_check(batch_flow(kind, concurrency), 3)
    assert report.baseline.result == 6
    assert seen[0] == Counter({f"{s}-{x}": 1 for s in ("charge", "note") for x in range(3)})
    assert len(report.writes) == 1 + 3 * 3 + 1  # STARTED, 3 x (2 steps, branch), decision
    assert_effects(report, seen, exact=concurrency == 1)


@pytest.mark.parametrize("kind", ["parallel", "map"])
def test_always_replay_runs_every_async_branch_body_once(kind: str, durable_runner: Any) -> None:
    EFFECTS.clear()
    runner = durable_runner(batch_flow(kind, 2), always_replay=True)
    result = runner.run(4)
    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == 10
    assert EFFECTS.snapshot() == Counter(
        {f"{s}-{x}": 1 for s in ("charge", "note") for x in range(4)}
    )
