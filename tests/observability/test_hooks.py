"""The instrumentation hooks: called for every operation type, on the memory and SQLite
stores, on the sync and the async surface; never for a replayed operation's start; never
able to break an execution."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from durable_core import (
    DurableContext,
    ExecutionStatus,
    MemoryStore,
    RuntimeOptions,
    SQLiteStore,
    Store,
    durable,
)
from durable_core.aws_lambda import LambdaOptions
from durable_core.errors import ValidationError
from durable_core.instrumentation import HOOKS, Instrumentation, OperationInfo
from durable_core.testing import DurableTestRunner

from .conftest import Recorder
from .programs import SECRET, child_fn, every_op, every_op_async, flaky

CALLBACKS = {"approval": "yes", "reply": "ok"}

EXPECTED_RESULT = {
    "first": 2,
    "approved": "yes",
    "reply": "ok",
    "polled": 2,
    "inner": 3,
    "par": [1, 2],
    "mapped": [10, 20],
    "invoked": 42,
    "secret": SECRET,
}


def _store(kind: str, tmp_path: Path) -> Store:
    return MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "hooks.sqlite3")


def _run(fn: Any, store: Store, *instrumentation: Any, execution_id: str = "obs-1") -> Any:
    runner = DurableTestRunner(
        fn,
        store=store,
        functions=[child_fn],
        options=RuntimeOptions(instrumentation=list(instrumentation)),
        callbacks=CALLBACKS,
    )
    return runner.run({"secret": SECRET}, execution_id=execution_id)


def _ran(rec: Recorder, name: str) -> list[tuple[str, str, Any]]:
    """The hook calls of operation ``name`` that ran (not replayed)."""
    return [e for e in rec.events if e[1] == name and e[0] != "operation_replayed"]


def _pairs(rec: Recorder) -> Counter[str]:
    """Operations started minus those that left (suspended or ended): all zero."""
    left: Counter[str] = Counter()
    for hook, name, _ in rec.events:
        if hook == "operation_started":
            left[name] += 1
        elif hook in ("operation_ended", "operation_suspended", "operation_retried"):
            left[name] -= 1
    return +left + -left  # non-zero entries only


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize("fn", [every_op, every_op_async], ids=["sync", "async"])
def test_every_operation_type_reports_start_and_end(
    kind: str, fn: Any, tmp_path: Path, recorder: Recorder
) -> None:
    result = _run(fn, _store(kind, tmp_path), recorder)

    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == EXPECTED_RESULT
    types = {(op.type, op.sub_type) for op in recorder.ops}
    assert types >= {
        ("STEP", "Step"),
        ("WAIT", "Wait"),
        ("CALLBACK", "Callback"),
        ("CONTEXT", "WaitForCallback"),
        ("STEP", "WaitForCondition"),
        ("CONTEXT", "RunInChildContext"),
        ("CONTEXT", "Parallel"),
        ("CONTEXT", "ParallelBranch"),
        ("CONTEXT", "Map"),
        ("CONTEXT", "MapIteration"),
        ("CHAINED_INVOKE", "ChainedInvoke"),
    }
    ended = dict(recorder.of("operation_ended"))
    for name in ["flaky", "nap", "approval", "reply", "ready", "child", "inner", "both", "tens"]:
        assert name in ended, name
    assert ended["approval"] == "STARTED"  # created; its result() is waited for by the code
    assert ended["nap"] == ended["ready"] == ended["both"] == "SUCCEEDED"
    # the flaky step: attempt 1 failed and was retried inline, attempt 2 succeeded
    assert _ran(recorder, "flaky") == [
        ("operation_started", "flaky", 1),
        ("operation_retried", "flaky", (1, "ConnectionError")),
        ("operation_started", "flaky", 2),
        ("operation_ended", "flaky", "SUCCEEDED"),
    ]
    # every attempt that started left exactly once
    assert not _pairs(recorder)
    # a wait, callbacks, a poll and an invoke suspend: several invocations, one first
    invocations = recorder.of("invocation_started")
    assert len(invocations) > 4
    assert [first for _, first in invocations].count(True) == 2  # this one and the child
    suspended = [n for n, _ in recorder.of("operation_suspended")]
    assert {"nap", "reply", "ready", "both"} - {"both"} <= set(suspended)
    finished = [status for _, status in recorder.of("invocation_finished")]
    assert finished.count("SUCCEEDED") == 2  # the execution and the invoked child
    assert set(finished) == {"SUSPENDED", "SUCCEEDED"}


@pytest.mark.parametrize("fn", [every_op, every_op_async], ids=["sync", "async"])
def test_replayed_operations_get_the_replay_hook_only(fn: Any, recorder: Recorder) -> None:
    _run(fn, MemoryStore(), recorder)

    starts = Counter(n for n, _ in recorder.of("operation_started"))
    replays = Counter(n for n, _ in recorder.of("operation_replayed"))
    # each operation started once per attempt it ran, however often it was replayed after
    assert starts["flaky"] == 2 and replays["flaky"] > 3
    assert starts["child"] == starts["inner"] == starts["tens"] == 1
    assert replays["approval"] >= 1
    # a replayed operation never ends either
    assert Counter(n for n, _ in recorder.of("operation_ended"))["flaky"] == 1


def test_sync_and_async_report_the_same_operations(recorder: Recorder) -> None:
    other = Recorder()
    _run(every_op, MemoryStore(), recorder)
    _run(every_op_async, MemoryStore(), other)

    def shape(rec: Recorder) -> list[tuple[str, str, Any]]:
        return [e for e in rec.events if e[0].startswith("operation_")]

    # branches run concurrently: compare as multisets, and the sequential part in order
    assert Counter(shape(recorder)) == Counter(shape(other))
    assert [op.name for op in recorder.ops][:6] == [op.name for op in other.ops][:6]


class Exploding(Instrumentation):
    """Raises from every hook (with its arguments in the message, which is never logged)."""

    calls = 0


def _boom(hook: str) -> Any:
    def boom(self: Exploding, *args: Any) -> None:
        Exploding.calls += 1
        raise RuntimeError(f"hook {hook} broke: {args!r}")

    return boom


for _hook_name in HOOKS:
    setattr(Exploding, _hook_name, _boom(_hook_name))


def test_a_failing_instrumentation_breaks_nothing_and_is_logged_once(
    recorder: Recorder, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _run(every_op, MemoryStore(), Exploding(), recorder)

    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == EXPECTED_RESULT
    assert Exploding.calls > 20
    # the instrumentation after it still got every call
    assert len(recorder.of("operation_started")) > 10
    out = capsys.readouterr().out + caplog.text
    assert out.count("an instrumentation hook raised") == len(
        {
            "invocation_started",
            "invocation_finished",
            "operation_started",
            "operation_ended",
            "operation_replayed",
            "operation_retried",
            "operation_suspended",
        }
    )
    assert "Exploding" in out and "RuntimeError" in out
    assert SECRET not in out and "broke" not in out  # its arguments and message stay out


def test_a_step_that_fails_for_good_ends_failed_with_its_error_type(recorder: Recorder) -> None:
    @durable
    def fails(ctx: DurableContext, event: None) -> None:
        ctx.step("always", lambda sc: 1 / 0)

    result = DurableTestRunner(fails, options=RuntimeOptions(instrumentation=[recorder])).run(None)

    assert result.status is ExecutionStatus.FAILED
    assert recorder.of("operation_ended") == [("always", "FAILED")]
    assert recorder.of("invocation_finished")[-1][1] == "FAILED"


def test_a_durable_retry_suspends_after_its_retry_hook(recorder: Recorder) -> None:
    from tenacity import stop_after_attempt, wait_fixed

    from durable_core import RetryPolicy, StepConfig

    slow = StepConfig(retry=RetryPolicy(stop=stop_after_attempt(2), wait=wait_fixed(60)))

    @durable
    def retries(ctx: DurableContext, event: None) -> int:
        return ctx.step("flaky", flaky, slow)

    runner = DurableTestRunner(retries, options=RuntimeOptions(instrumentation=[recorder]))
    result = runner.run(None)

    assert result.status is ExecutionStatus.SUCCEEDED
    assert _ran(recorder, "flaky") == [
        ("operation_started", "flaky", 1),
        ("operation_retried", "flaky", (1, "ConnectionError")),
        ("operation_suspended", "flaky", "retry of step 'flaky' (attempt 2)"),
        ("operation_started", "flaky", 2),
        ("operation_ended", "flaky", "SUCCEEDED"),
    ]


def test_phases_group_operations_and_report_replay(recorder: Recorder) -> None:
    from datetime import timedelta

    @durable
    def phased(ctx: DurableContext, event: None) -> int:
        with ctx.phase("billing", "invoice", {"customer.tier": "gold"}):
            ctx.step("charge", lambda sc: 1)
            ctx.wait("settle", timedelta(minutes=5))
        return ctx.step("after", lambda sc: 2)

    runner = DurableTestRunner(phased, options=RuntimeOptions(instrumentation=[recorder]))
    assert runner.run(None).status is ExecutionStatus.SUCCEEDED

    assert recorder.of("phase_ended") == [
        ("billing invoice", ("suspended", False)),  # charge ran, settle suspended
        ("billing invoice", ("ok", False)),  # settle ended in the second invocation
    ]
    in_phase = {op.name: op.phase_id for op in recorder.ops}
    assert in_phase["charge"] is not None and in_phase["after"] is None


def test_phase_without_instrumentation_records_nothing() -> None:
    @durable
    def phased(ctx: DurableContext, event: None) -> int:
        with ctx.phase("billing"):
            return ctx.step("charge", lambda sc: 1)

    result = DurableTestRunner(phased).run(None)
    assert result.status is ExecutionStatus.SUCCEEDED
    assert [op.name for op in result.operations] == ["charge"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (Recorder, "is the class Recorder, not an instance"),
        (object(), "has none of the hook methods"),
    ],
)
def test_bad_instrumentation_is_refused_naming_it(bad: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RuntimeOptions(instrumentation=[bad])
    with pytest.raises(ValidationError, match=message):
        LambdaOptions(instrumentation=[bad])
    with pytest.raises(ValidationError, match="must be a list"):
        RuntimeOptions(instrumentation="otel")  # type: ignore[arg-type]


def test_any_object_with_some_hooks_is_an_instrumentation() -> None:
    seen: list[str] = []

    class Minimal:
        def operation_ended(self, op: OperationInfo, status: str, error: Any) -> None:
            seen.append(f"{op.name}:{status}")

    @durable
    def one(ctx: DurableContext, event: None) -> int:
        return ctx.step("one", lambda sc: 1)

    DurableTestRunner(one, options=RuntimeOptions(instrumentation=[Minimal()])).run(None)
    assert seen == ["one:SUCCEEDED"]


def test_phases_work_the_same_on_the_async_surface(recorder: Recorder) -> None:
    from datetime import timedelta

    from durable_core import AsyncDurableContext

    @durable
    async def phased(ctx: AsyncDurableContext, event: None) -> int:
        with ctx.phase("billing", "invoice", {"customer.tier": "gold"}):
            await ctx.step("charge", lambda sc: 1)
            await ctx.wait("settle", timedelta(minutes=5))
        return await ctx.step("after", lambda sc: 2)

    runner = DurableTestRunner(phased, options=RuntimeOptions(instrumentation=[recorder]))
    assert runner.run(None).status is ExecutionStatus.SUCCEEDED
    assert recorder.of("phase_ended") == [
        ("billing invoice", ("suspended", False)),
        ("billing invoice", ("ok", False)),
    ]


def test_an_async_saga_rolls_back_in_phases(recorder: Recorder) -> None:
    from saga import AsyncSagaContext, CompensationContext, saga

    def undo(c: CompensationContext) -> None:
        return None

    @saga
    async def trip(s: AsyncSagaContext, event: None) -> None:
        await s.step("reserve", lambda sc: 1, compensate=undo)
        await s.step("pay", lambda sc: 1 / 0, compensate=undo)

    result = DurableTestRunner(trip, options=RuntimeOptions(instrumentation=[recorder])).run(None)

    assert result.status is ExecutionStatus.FAILED
    assert recorder.of("phase_ended") == [
        ("saga.compensation reserve", ("ok", False)),
        ("saga.rollback trip", ("ok", False)),
    ]
    reserve = next(op for op in recorder.ops if op.name == "compensate:reserve")
    assert reserve.phase_id is not None
