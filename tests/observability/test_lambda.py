"""Hooks and spans in both Lambda modes: on the durable execution service (AWS's emulator)
and on plain Lambda with the journal in DynamoDB (DynamoDB Local)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aws import ddb
from lambda_service.conftest import deploy, emulator, invoke_server  # noqa: F401 - fixtures
from lambda_service.emulator import Deploy, Emulator

from durable_core import DurableContext, ExecutionStatus, RuntimeOptions, durable
from durable_core.aws_lambda import dynamodb_handler
from durable_core.otel import trace_id_for
from durable_core.testing import VirtualClock
from examples.tour_booking import providers
from examples.tour_booking.providers import Tour
from examples.tour_booking.saga import book_tour

from .conftest import Recorder, Telemetry

pytestmark = pytest.mark.aws


@durable
def nap_flow(ctx: DurableContext, event: dict[str, int]) -> int:
    first = ctx.step("first", lambda sc: event["x"])
    ctx.wait("nap", timedelta(seconds=2))
    return ctx.step("second", lambda sc: first + 1)


def test_service_mode_reports_hooks_and_one_trace(
    deploy: Deploy,  # noqa: F811 - the fixture
    emulator: Emulator,  # noqa: F811
    recorder: Recorder,
    telemetry: Telemetry,
) -> None:
    deploy("obs-nap", nap_flow, instrumentation=[recorder, telemetry.instrumentation])
    arn = emulator.start("obs-nap", {"x": 4})
    ex = emulator.wait(arn)

    assert ex["Status"] == "SUCCEEDED" and json.loads(ex["Result"]) == 5
    assert [(n, d) for n, d in recorder.of("operation_ended")] == [
        ("first", "SUCCEEDED"),
        ("second", "SUCCEEDED"),
    ]
    assert recorder.of("operation_suspended")[0][0] == "nap"
    assert [d for _, d in recorder.of("invocation_started")][:1] == [True]
    assert recorder.of("invocation_finished")[-1][1] == "SUCCEEDED"
    assert ("first", "SUCCEEDED") in recorder.of("operation_replayed")  # not started again
    execution_ids = {s.attributes["durable.execution.id"] for s in telemetry.spans()}  # type: ignore[index]
    assert len(execution_ids) == 1
    assert {s.context.trace_id for s in telemetry.spans()} == {trace_id_for(execution_ids.pop())}
    assert [s.name for s in telemetry.spans()].count("first") == 1


@pytest.fixture
def store() -> Iterator[Any]:
    made = ddb.new_store()
    yield made
    ddb.drop(made)


def test_dynamodb_mode_traces_the_tour_saga(
    store: Any,
    telemetry: Telemetry,
    recorder: Recorder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(providers.LEDGER_ENV, str(tmp_path / "tour.sqlite3"))
    handler = dynamodb_handler(
        book_tour,
        store=store,
        clock=VirtualClock(),
        options=RuntimeOptions(instrumentation=[recorder, telemetry.instrumentation]),
    )
    out = handler(
        {"execution_id": "obs-tour", "input": Tour(fail_car=True).model_dump(mode="json")}, None
    )

    assert out["status"] == ExecutionStatus.FAILED.value
    assert [n for n, _ in recorder.of("operation_ended")] == [
        "book-flight",
        "book-hotel",
        "book-car",
        "saga:rollback",
        "compensate:book-hotel",
        "compensate:book-flight",
    ]
    assert telemetry.tree()[-4:] == [
        (2, "saga.compensation book-hotel"),
        (3, "compensate:book-hotel"),
        (2, "saga.compensation book-flight"),
        (3, "compensate:book-flight"),
    ]
    assert {s.context.trace_id for s in telemetry.spans()} == {trace_id_for("obs-tour")}
