"""Durable timers: instant on a virtual clock, validated before anything is recorded."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from durable_core import (
    DurableContext,
    ExecutionStatus,
    InvalidDurationError,
    OperationStatus,
    durable,
)
from durable_core.testing import DurableTestRunner, VirtualClock


def test_a_thirty_day_wait_passes_instantly(calls: Counter[str]) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> str:
        calls["invocations"] += 1
        ctx.wait("grace-period", timedelta(days=30))
        return "done"

    clock = VirtualClock()
    start = clock.now()
    wall = time.perf_counter()

    result = DurableTestRunner(wf, clock=clock).run(None)

    assert time.perf_counter() - wall < 2
    assert result.result == "done"
    assert clock.now() - start == timedelta(days=30)
    wait = result.get_wait("grace-period")
    assert wait.status is OperationStatus.SUCCEEDED
    assert wait.scheduled_end == start + timedelta(days=30)
    assert calls["invocations"] == 2  # suspended once, resumed once


def test_a_suspended_wait_leaves_the_execution_due_at_its_end(durable_runner: Any) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> None:
        ctx.wait("nap", 90)

    runner = durable_runner(wf)
    result = runner.run(None, skip_time=False)

    assert result.status is ExecutionStatus.RUNNING
    assert result.wake_at == runner.clock.now() + timedelta(seconds=90)
    assert result.get_wait("nap").status is OperationStatus.STARTED
    assert "nap" in (result.waiting_for or "")


def test_waits_at_the_bounds_are_accepted(durable_runner: Any) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> None:
        ctx.wait("shortest", 1)
        ctx.wait("longest", timedelta(days=365))

    assert durable_runner(wf).run(None).status is ExecutionStatus.SUCCEEDED


@pytest.mark.parametrize(
    "duration",
    [0.5, 0, timedelta(days=366), -5, timedelta(seconds=-1), "10s", None, True],
    ids=["half-second", "zero", "366-days", "negative", "negative-td", "str", "none", "bool"],
)
def test_out_of_range_or_mistyped_durations_are_rejected_and_nothing_recorded(
    durable_runner: Any, duration: Any
) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> str:
        try:
            ctx.wait("bad", duration)
        except InvalidDurationError as e:
            return str(e)
        return "accepted"

    result = durable_runner(wf).run(None)

    assert "wait 'bad'" in result.result
    assert result.operations == []


def test_invalid_duration_fails_the_execution_when_not_caught(durable_runner: Any) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> None:
        ctx.wait("bad", timedelta(days=400))

    result = durable_runner(wf).run(None)

    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None
    assert result.error.type == "durable_core.errors.InvalidDurationError"
