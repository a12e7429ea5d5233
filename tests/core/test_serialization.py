"""Values crossing the journal: typed round-trips, and errors that name the operation."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from durable_core import (
    DurableContext,
    ExecutionStatus,
    OperationStatus,
    RetryPolicy,
    RuntimeOptions,
    StepConfig,
    StepContext,
    StepFailedError,
    durable,
)
from durable_core.testing import DurableTestRunner


class Money(BaseModel):
    amount: Decimal
    currency: str


class Color(StrEnum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass(frozen=True)
class Shipment:
    id: uuid.UUID
    at: datetime
    color: Color
    items: tuple[str, ...]


SHIPMENT = Shipment(
    id=uuid.UUID("12345678-1234-5678-1234-567812345678"),
    at=datetime(2030, 5, 17, 12, 30, tzinfo=UTC),
    color=Color.BLUE,
    items=("a", "b"),
)


def make_money(sc: StepContext) -> Money:
    return Money(amount=Decimal("12.50"), currency="EUR")


def make_shipment(sc: StepContext) -> Shipment:
    return SHIPMENT


def make_when(sc: StepContext) -> datetime:
    return datetime(2031, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def make_id(sc: StepContext) -> uuid.UUID:
    return uuid.UUID(int=42)


def test_typed_values_round_trip_and_are_equal_on_replay(durable_runner: Any) -> None:
    seen: list[tuple[Any, ...]] = []

    @durable
    def wf(ctx: DurableContext, event: None) -> Shipment:
        values = (
            ctx.step("money", make_money),
            ctx.step("shipment", make_shipment),
            ctx.step("when", make_when),
            ctx.step("id", make_id),
        )
        seen.append(values)
        ctx.wait("settle", 60)
        return values[1]

    result = durable_runner(wf, always_replay=False).run(None)

    first, replayed = seen
    assert first == replayed
    assert [type(v) for v in first] == [Money, Shipment, datetime, uuid.UUID]
    assert first[0] == Money(amount=Decimal("12.50"), currency="EUR")
    assert first[1] == SHIPMENT
    assert first[1].color is Color.BLUE
    assert first[2].tzinfo is not None
    assert result.result == SHIPMENT  # the execution result uses the return annotation


def test_a_pydantic_input_event_is_validated(durable_runner: Any) -> None:
    @durable
    def wf(ctx: DurableContext, event: Money) -> str:
        return f"{event.amount} {event.currency}"

    result = durable_runner(wf).run(Money(amount=Decimal("3.10"), currency="USD"))
    assert result.result == "3.10 USD"


def test_a_non_serializable_result_fails_the_step_naming_it(
    durable_runner: Any, tmp_path: Any
) -> None:
    path = tmp_path / "f.txt"
    path.write_text("line 1\nline 2\n")
    opened = []

    def open_file(sc: StepContext) -> Any:
        opened.append(path.open())
        return opened[-1]

    @durable
    def wf(ctx: DurableContext, event: None) -> list[str]:
        errors = []
        for name, fn in (("open-file", open_file), ("lambda", lambda sc: lambda: 1)):
            try:
                ctx.step(name, fn)
            except StepFailedError as e:
                errors.append(f"{e.step}|{e.error_type}|{e}")
        return errors

    result = durable_runner(wf).run(None)
    for f in opened:
        f.close()

    assert len(result.result) == 2
    for name, text in zip(("open-file", "lambda"), result.result, strict=True):
        step, error_type, message = text.split("|", 2)
        assert step == name
        assert error_type.endswith("SerializationError")
        assert f"step {name!r}" in message
        assert "not JSON-serializable" in message
        assert result.get_step(name).status is OperationStatus.FAILED


def test_serialization_errors_are_not_retried(durable_runner: Any) -> None:
    runs: list[int] = []

    @durable
    def wf(ctx: DurableContext, event: None) -> None:
        def bad(sc: StepContext) -> object:
            runs.append(sc.attempt)
            return object()

        ctx.step("bad", bad)

    result = durable_runner(wf).run(None)
    assert result.status is ExecutionStatus.FAILED
    assert runs == [1]


def test_an_oversized_value_fails_with_payload_too_large_naming_the_step(
    durable_runner: Any,
) -> None:
    calls: list[int] = []

    def big(sc: StepContext) -> str:
        calls.append(sc.attempt)
        return "x" * 1000

    @durable
    def wf(ctx: DurableContext, event: None) -> str:
        try:
            ctx.step("big-report", big, StepConfig(retry=RetryPolicy()))
        except StepFailedError as e:
            return e.error_type
        return "fit"

    result = durable_runner(wf, options=RuntimeOptions(max_payload_bytes=200)).run(None)

    assert result.result == "durable_core.errors.PayloadTooLargeError"
    assert calls == [1]  # retrying cannot make it smaller
    error = result.get_step("big-report").error
    assert error is not None
    assert "step 'big-report'" in error.message
    assert "over the limit of 200" in error.message


def test_an_oversized_execution_result_fails_the_execution(durable_runner: Any) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> str:
        return "y" * 500

    result = durable_runner(wf, options=RuntimeOptions(max_payload_bytes=100)).run(None)
    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None
    assert result.error.type == "durable_core.errors.PayloadTooLargeError"


def test_normal_and_always_replay_runs_agree_on_typed_values() -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> Shipment:
        ctx.step("money", make_money)
        return ctx.step("shipment", make_shipment)

    normal = DurableTestRunner(wf).run(None)
    replayed = DurableTestRunner(wf, always_replay=True).run(None)
    assert normal.result == replayed.result == SHIPMENT
