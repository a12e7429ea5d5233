"""check_crash_safety: a crash before and after every checkpoint write, then recovery."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import tenacity

from durable_core import (
    DurableContext,
    ExecutionStatus,
    RetryPolicy,
    StepConfig,
    StepContext,
    StepSemantics,
    durable,
)
from durable_core.testing import CrashPoint, check_crash_safety


def make_order(calls: Counter[str]) -> Any:
    @durable
    def order(ctx: DurableContext, event: dict[str, int]) -> dict[str, Any]:
        def charge(sc: StepContext) -> str:
            calls["charge"] += 1
            return f"ch-{event['amount']}"

        charge_id = ctx.step("charge", charge)
        ctx.wait("cool-off", timedelta(hours=1))
        shipped = ctx.wait_for_callback("shipper", lambda token, sc: calls.update(["submit"]))
        return {"charge": charge_id, "shipped": shipped}

    return order


def test_a_replay_safe_workflow_passes_at_every_boundary(calls: Counter[str]) -> None:
    report = check_crash_safety(
        make_order(calls),
        {"amount": 5},
        callbacks={"shipper": {"delivered": True}},
        before_each=calls.clear,
    )

    report.assert_ok()
    assert report.ok
    assert report.baseline.result == {"charge": "ch-5", "shipped": {"delivered": True}}
    assert report.writes[0] == "step 'charge' SUCCEEDED"
    assert len(report.writes) == 6  # charge, wait x2, callback, submit, shipper context
    assert len(report.boundaries) == 12
    assert [(b.write, b.point) for b in report.boundaries[:2]] == [
        (1, CrashPoint.AFTER_WRITE),
        (1, CrashPoint.BEFORE_WRITE),
    ]
    assert all(b.crashed for b in report.boundaries)
    assert all(b.final.status is ExecutionStatus.SUCCEEDED for b in report.boundaries)
    assert "12/12 boundaries ok" in str(report)


def test_at_least_once_bodies_rerun_only_when_the_crash_is_before_their_write(
    calls: Counter[str],
) -> None:
    charges: list[int] = []

    def record_charges(final: Any) -> None:
        charges.append(calls["charge"])

    report = check_crash_safety(
        make_order(calls),
        {"amount": 5},
        callbacks={"shipper": True},
        before_each=calls.clear,
        check=record_charges,
    )

    report.assert_ok()
    by_boundary = dict(zip([(b.write, b.point) for b in report.boundaries], charges, strict=True))
    assert by_boundary[(1, CrashPoint.BEFORE_WRITE)] == 2  # the result was lost: ran again
    assert by_boundary[(1, CrashPoint.AFTER_WRITE)] == 1  # recorded: replayed, not re-run
    assert all(n == 1 for key, n in by_boundary.items() if key[0] > 1)


def test_a_failed_check_marks_the_boundary(calls: Counter[str]) -> None:
    def charged_once(final: Any) -> None:
        assert calls["charge"] == 1, f"charged {calls['charge']} times"

    report = check_crash_safety(
        make_order(calls),
        {"amount": 5},
        callbacks={"shipper": True},
        before_each=calls.clear,
        check=charged_once,
    )

    assert [(b.write, b.point) for b in report.failures] == [(1, CrashPoint.BEFORE_WRITE)]
    problem = report.failures[0].problem or ""
    assert problem.startswith("check failed: AssertionError: charged 2 times")


def test_a_workflow_that_mutates_outer_state_in_a_step_is_caught() -> None:
    @durable
    def unsafe(ctx: DurableContext, event: None) -> int:
        seen: list[int] = []
        ctx.step("collect", lambda sc: seen.append(1))  # the mutation is not replayed
        ctx.step("more", lambda sc: 2)
        return len(seen)

    report = check_crash_safety(unsafe, None)

    assert not report.ok
    assert report.baseline.result == 1
    with pytest.raises(AssertionError) as info:
        report.assert_ok()
    message = str(info.value)
    assert "crash safety check of" in message
    assert "normal run: SUCCEEDED with 1" in message
    assert "crash after write 1 (step 'collect' SUCCEEDED): ended SUCCEEDED with 0" in message


def test_at_most_once_without_retries_differs_exactly_where_the_attempt_was_cut(
    calls: Counter[str],
) -> None:
    @durable
    def pay(ctx: DurableContext, event: None) -> str:
        def transfer(sc: StepContext) -> str:
            calls["transfer"] += 1
            return "sent"

        config = StepConfig(
            semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY, retry=RetryPolicy.no_retry()
        )
        return ctx.step("transfer", transfer, config)

    def never_twice(final: Any) -> None:
        assert calls["transfer"] <= 1

    report = check_crash_safety(pay, None, before_each=calls.clear, check=never_twice)

    assert report.writes == ("step 'transfer' STARTED", "step 'transfer' SUCCEEDED")
    failures = {(b.write, b.point) for b in report.failures}
    assert failures == {(1, CrashPoint.AFTER_WRITE), (2, CrashPoint.BEFORE_WRITE)}
    for b in report.failures:
        assert b.final.status is ExecutionStatus.FAILED
        assert "was interrupted" in (b.final.error.message if b.final.error else "")


def test_at_most_once_with_retries_is_crash_safe(calls: Counter[str]) -> None:
    @durable
    def pay(ctx: DurableContext, event: None) -> str:
        config = StepConfig(
            semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
            retry=RetryPolicy(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_fixed(5)),
        )
        return ctx.step("transfer", lambda sc: "sent", config)

    check_crash_safety(pay, None).assert_ok()


def test_writes_that_change_between_runs_are_reported(calls: Counter[str]) -> None:
    @durable
    def drifting(ctx: DurableContext, event: None) -> str:
        def init(sc: StepContext) -> int:
            calls["runs"] += 1
            return calls["runs"]

        run = ctx.step("init", init)
        for i in range(3 if run == 1 else 1):
            ctx.step(f"work-{i}", lambda sc: None)
        return "done"

    report = check_crash_safety(drifting, None)  # calls is never reset between runs

    late = [b for b in report.boundaries if b.write >= 3]
    assert late
    assert all(not b.crashed for b in late)
    assert all("does not write the same records" in (b.problem or "") for b in late)
    calls.clear()
    check_crash_safety(drifting, None, before_each=calls.clear).assert_ok()


def test_points_can_be_restricted(calls: Counter[str]) -> None:
    report = check_crash_safety(
        make_order(calls),
        {"amount": 1},
        callbacks={"shipper": 1},
        points=[CrashPoint.AFTER_WRITE],
    )
    assert {b.point for b in report.boundaries} == {CrashPoint.AFTER_WRITE}
    assert len(report.boundaries) == len(report.writes)


def test_a_callback_not_supplied_leaves_every_run_waiting(calls: Counter[str]) -> None:
    report = check_crash_safety(make_order(calls), {"amount": 1})

    report.assert_ok()
    assert report.baseline.status is ExecutionStatus.RUNNING
    assert all(b.final.status is ExecutionStatus.RUNNING for b in report.boundaries)


def test_before_each_runs_before_every_run(calls: Counter[str]) -> None:
    runs: list[int] = []
    report = check_crash_safety(
        make_order(calls),
        {"amount": 1},
        callbacks={"shipper": 1},
        before_each=lambda: runs.append(1),
    )
    assert len(runs) == 1 + len(report.boundaries)
