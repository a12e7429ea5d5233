"""The OpenTelemetry instrumentation, through the SDK's in-memory exporters: one trace per
execution across its invocations, a span per attempt and per phase, replays not re-emitted,
the tour saga's rollback as a span with its compensations, metrics, and no secrets."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import StatusCode

from durable_core import (
    DurableContext,
    ExecutionStatus,
    MemoryStore,
    Runtime,
    RuntimeOptions,
    StepContext,
    durable,
)
from durable_core.otel import OpenTelemetryInstrumentation, execution_context, trace_id_for
from durable_core.testing import DurableTestRunner, VirtualClock
from examples.tour_booking import providers
from examples.tour_booking.providers import Tour
from examples.tour_booking.saga import book_tour, book_tour_declared

from .conftest import Recorder, Telemetry
from .programs import SECRET, child_fn, every_op, every_op_async

CALLBACKS = {"approval": "yes", "reply": "ok"}


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "tour.sqlite3"
    monkeypatch.setenv(providers.LEDGER_ENV, str(path))
    return path


def _options(*instrumentation: Any) -> RuntimeOptions:
    return RuntimeOptions(instrumentation=list(instrumentation))


@pytest.mark.parametrize("tour_saga", [book_tour, book_tour_declared], ids=["decorator", "builder"])
def test_a_traced_tour_saga_shows_forward_steps_and_the_rollback(
    telemetry: Telemetry, ledger: Path, tour_saga: Any
) -> None:
    rt = Runtime(MemoryStore(), clock=VirtualClock(), options=_options(telemetry.instrumentation))
    ex = rt.run(tour_saga, Tour(fail_car=True), execution_id="tour-1")

    assert ex.status is ExecutionStatus.FAILED
    assert telemetry.tree() == [
        (0, "durable.invocation"),
        (1, "book-flight"),
        (1, "book-hotel"),
        (1, "book-car"),
        (1, "saga.rollback " + tour_saga.name),
        (2, "saga:rollback"),
        (2, "saga.compensation book-hotel"),
        (3, "compensate:book-hotel"),
        (2, "saga.compensation book-flight"),
        (3, "compensate:book-flight"),
    ]
    spans = {s.name: s for s in telemetry.spans()}
    assert {s.context.trace_id for s in spans.values()} == {trace_id_for("tour-1")}
    car = spans["book-car"]
    assert car.status.status_code is StatusCode.ERROR
    assert car.attributes is not None
    assert car.attributes["error.type"] == "examples.tour_booking.providers.SoldOutError"
    assert car.attributes["durable.operation.status"] == "FAILED"
    rollback = spans["saga.rollback " + tour_saga.name].attributes
    assert rollback is not None
    assert rollback["saga.cause"] == "failure" and rollback["saga.failed_step"] == "book-car"
    compensation = spans["saga.compensation book-hotel"].attributes
    assert compensation is not None and compensation["durable.phase.name"] == "book-hotel"
    metrics = telemetry.metrics()
    assert metrics["durable.saga.compensations"] == [
        ({"saga.compensation.outcome": "succeeded"}, 2)
    ]
    function = {"durable.function": ex.function}
    assert metrics["durable.executions.started"] == [(function, 1)]
    assert metrics["durable.executions.finished"] == [
        ({**function, "durable.execution.status": "FAILED"}, 1)
    ]


@pytest.mark.parametrize("fn", [every_op, every_op_async], ids=["sync", "async"])
def test_one_trace_across_invocations_and_no_replayed_span(
    telemetry: Telemetry, recorder: Recorder, fn: Any
) -> None:
    runner = DurableTestRunner(
        fn,
        functions=[child_fn],
        options=_options(telemetry.instrumentation, recorder),
        callbacks=CALLBACKS,
    )
    result = runner.run({"secret": SECRET}, execution_id="many")

    assert result.status is ExecutionStatus.SUCCEEDED
    spans = [s for s in telemetry.spans() if s.attributes["durable.execution.id"] == "many"]  # type: ignore[index]
    invocations = [s for s in spans if s.name == "durable.invocation"]
    assert (
        len(invocations)
        == len([f for n, f in recorder.of("invocation_started") if n == fn.name])
        > 4
    )
    assert {s.context.trace_id for s in spans} == {trace_id_for("many")}
    root = execution_context("many").span_id
    assert {s.parent.span_id for s in invocations if s.parent} == {root}
    # a span per attempt that ran: never one for a replayed operation
    ran = Counter(name for name, _ in recorder.of("operation_started"))
    names = Counter(s.name for s in spans if s.name != "durable.invocation")
    assert names == {k: v for k, v in ran.items() if k != "double"}
    assert names["flaky"] == 2  # attempt 1 (retried) and attempt 2; replayed after that
    flaky_spans = sorted(
        (s for s in spans if s.name == "flaky"),
        key=lambda s: s.attributes["durable.operation.attempt"],  # type: ignore[index]
    )
    assert [s.status.status_code for s in flaky_spans] == [StatusCode.ERROR, StatusCode.UNSET]
    assert flaky_spans[0].attributes["durable.operation.status"] == "RETRIED"  # type: ignore[index]
    # operations inside a child context or a branch nest in its span
    by_id = {s.context.span_id: s for s in spans}
    parent_of = {
        s.name: by_id[s.parent.span_id].name
        for s in spans
        if s.parent and s.parent.span_id in by_id
    }
    assert parent_of["inner"] == "child"
    assert parent_of["p1"] == "parallel-branch-0"
    assert parent_of["parallel-branch-0"] == parent_of["parallel-branch-1"] == "both"
    assert parent_of["map-item-1"] == "tens"
    assert parent_of["reply submitter"] == "reply"
    # the invoked child execution has its own trace, linked to its parent's
    child = [s for s in telemetry.spans() if s.attributes["durable.execution.id"] != "many"]  # type: ignore[index]
    child_invocation = next(s for s in child if s.name == "durable.invocation")
    assert child_invocation.context.trace_id != trace_id_for("many")
    assert [link.context.trace_id for link in child_invocation.links] == [trace_id_for("many")]


def test_nothing_secret_is_recorded(telemetry: Telemetry) -> None:
    store = MemoryStore()
    runner = DurableTestRunner(
        every_op,
        store=store,
        functions=[child_fn],
        options=_options(telemetry.instrumentation),
        callbacks=CALLBACKS,
    )
    runner.run({"secret": SECRET}, execution_id="secrets")
    tokens = [op.callback_id for op in store.load_operations("secrets") if op.callback_id]
    assert tokens

    recorded = repr(
        [(s.name, dict(s.attributes or {}), s.status.description) for s in telemetry.spans()]
    ) + repr(telemetry.metrics())
    for secret in [SECRET, "flaky once", "secrets:", *tokens]:
        assert secret not in recorded


@pytest.mark.parametrize(
    ("record", "expect"), [(False, "ValueError"), (True, "ValueError: invalid literal")]
)
def test_error_messages_are_recorded_only_when_asked(
    telemetry: Telemetry, record: bool, expect: str
) -> None:
    @durable
    def fails(ctx: DurableContext, event: None) -> None:
        ctx.step("bad", lambda sc: int("not a number"))

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(telemetry.exporter))
    otel = OpenTelemetryInstrumentation(tracer_provider=provider, record_error_messages=record)
    DurableTestRunner(fails, options=_options(otel)).run(None)

    bad = next(s for s in telemetry.spans() if s.name == "bad")
    assert bad.status.description is not None
    assert bad.status.description.startswith(expect)
    assert ("invalid literal" in bad.status.description) is record


def test_a_step_body_runs_inside_its_span(telemetry: Telemetry) -> None:
    tracer = telemetry.instrumentation._tracer

    def body(sc: StepContext) -> int:
        with tracer.start_as_current_span("http GET /price"):
            return 7

    @durable
    def priced(ctx: DurableContext, event: None) -> int:
        return ctx.step("price", body)

    DurableTestRunner(priced, options=_options(telemetry.instrumentation)).run(None)
    assert telemetry.tree() == [(0, "durable.invocation"), (1, "price"), (2, "http GET /price")]


def test_due_lag_is_how_long_a_due_execution_waited_for_a_worker(telemetry: Telemetry) -> None:
    @durable
    def naps(ctx: DurableContext, event: None) -> int:
        ctx.wait("nap", timedelta(hours=1))
        return ctx.step("after", lambda sc: 1)

    clock = VirtualClock()
    rt = Runtime(MemoryStore(), clock=clock, options=_options(telemetry.instrumentation))
    ex = rt.run(naps, None)
    assert ex.status is ExecutionStatus.RUNNING
    clock.advance(timedelta(hours=1, seconds=30))  # due for 30 s when the worker looks
    assert rt.tick() == 1

    lags = telemetry.reader.get_metrics_data()
    assert lags is not None
    points = [
        p
        for rm in lags.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "durable.execution.due_lag"
        for p in m.data.data_points
    ]
    assert [(p.count, p.sum) for p in points] == [(2, 30.0)]  # 0 s at start, then 30 s
    statuses = {
        a["durable.invocation.status"]: v for a, v in telemetry.metrics()["durable.invocations"]
    }
    assert statuses == {"SUSPENDED": 1, "SUCCEEDED": 1}
