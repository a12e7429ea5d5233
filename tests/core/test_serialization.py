"""Values crossing the journal: typed round-trips, and errors that name the operation."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, BeforeValidator, PlainSerializer

from durable_core import (
    DurableContext,
    ExecutionStatus,
    OperationStatus,
    RetryPolicy,
    RuntimeOptions,
    SerializationError,
    SQLiteStore,
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


# --- types checked before effects ---------------------------------------------------------


class NoSchema:
    """A plain class: pydantic has no schema for it."""


UNSERIALIZABLE = [
    pytest.param(threading.Lock, "no schema", id="threading.Lock"),
    pytest.param(NoSchema, "no schema", id="plain-class"),
    pytest.param(Callable[[], int], "callable", id="Callable"),
    pytest.param(Generator[int, None, None], "generator", id="Generator"),
    pytest.param(type[int], "class object", id="type"),
    pytest.param(list[threading.Lock], "no schema", id="list-of-locks"),
]


def annotated(fn: Any, **hints: Any) -> Any:
    """``fn`` with these annotations (a parametrized type cannot be written in a def)."""
    fn.__annotations__ = hints
    return fn


@pytest.mark.parametrize(("type_", "why"), UNSERIALIZABLE)
def test_a_step_whose_return_type_cannot_be_serialized_never_runs(
    durable_runner: Any, type_: Any, why: str
) -> None:
    calls: list[int] = []

    def make_it(sc: StepContext) -> Any:
        calls.append(sc.attempt)
        return None

    step_fn = annotated(make_it, sc=StepContext, **{"return": type_})

    @durable
    def wf(ctx: DurableContext, event: None) -> str:
        ctx.step("make-it", step_fn)
        return "done"

    result = durable_runner(wf).run(None)

    assert calls == []  # refused before the body: no effect to lose
    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None
    assert result.error.type == "durable_core.errors.SerializationError"
    assert "step 'make-it'" in result.error.message
    assert "make_it" in result.error.message  # the function whose annotation is at fault
    assert why in result.error.message
    assert [op.name for op in result.operations] == []  # nothing recorded


def test_result_type_replaces_an_annotation_that_cannot_be_serialized(
    durable_runner: Any,
) -> None:
    step_fn = annotated(lambda sc: 7, sc=StepContext, **{"return": threading.Lock})

    @durable
    def wf(ctx: DurableContext, event: None) -> int:
        return ctx.step("seven", step_fn, StepConfig(result_type=int))  # type: ignore[no-any-return]

    assert durable_runner(wf).run(None).result == 7


@pytest.mark.parametrize(("type_", "why"), UNSERIALIZABLE)
@pytest.mark.parametrize("where", ["return", "event"])
def test_a_durable_function_whose_types_cannot_be_serialized_is_refused_at_decoration(
    type_: Any, why: str, where: str
) -> None:
    calls: list[object] = []

    def wf(ctx: DurableContext, event: Any) -> Any:
        calls.append(event)

    annotated(wf, ctx=DurableContext, **{where: type_})
    with pytest.raises(SerializationError) as caught:
        durable(wf)

    what = "the result" if where == "return" else "the input event"
    assert f"{what} of durable function '{__name__}:" in str(caught.value)
    assert "wf" in str(caught.value)
    assert why in str(caught.value)
    assert calls == []


# --- Annotated extras ------------------------------------------------------------------------


def _from_cents(value: object) -> object:
    return Decimal(value) / 100 if isinstance(value, int) else value


Cents = Annotated[
    Decimal,
    PlainSerializer(lambda d: int(d * 100), return_type=int),
    BeforeValidator(_from_cents),
]
"""Money recorded as an integer number of cents: a custom JSON form both ways."""


def price(sc: StepContext) -> Cents:
    return Decimal("12.50")


def test_annotated_serializers_and_validators_are_used_for_the_journal(tmp_path: Any) -> None:
    def in_child(child: DurableContext) -> Cents:
        return Decimal("0.99")

    @durable
    def wf(ctx: DurableContext, event: None) -> Cents:
        first = ctx.step("price", price)
        second = ctx.run_in_child_context("fee", in_child)
        assert type(first) is Decimal and type(second) is Decimal
        return first + second

    store = SQLiteStore(tmp_path / "s.sqlite3")
    for always_replay in (False, True):
        runner = DurableTestRunner(wf, store=store, always_replay=always_replay)
        result = runner.run(None)
        assert result.status is ExecutionStatus.SUCCEEDED
        assert result.result == Decimal("13.49")
        records = {op.name: op.result for op in store.load_operations(result.execution_id)}
        assert records == {"price": "1250", "fee": "99"}  # the custom form, not "12.50"
        assert store.get_execution(result.execution_id).result == "1349"
    store.close()


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
def test_a_value_that_does_not_fit_its_type_fails_the_step_naming_it(
    durable_runner: Any,
) -> None:
    calls: list[int] = []

    def count(sc: StepContext) -> int:
        calls.append(sc.attempt)
        return "many"  # type: ignore[return-value]

    @durable
    def wf(ctx: DurableContext, event: None) -> str:
        try:
            ctx.step("count", count, StepConfig(retry=RetryPolicy()))
        except StepFailedError as e:
            return f"{e.error_type}: {e}"
        return "counted"

    result = durable_runner(wf).run(None)

    assert calls == [1]  # the body ran once: retrying cannot fix the value
    assert result.result.startswith("durable_core.errors.SerializationError: ")
    assert "step 'count'" in result.result
    assert "does not fit the declared type int" in result.result
    assert result.get_step("count").status is OperationStatus.FAILED  # recorded, not lost


def test_child_contexts_batches_and_callbacks_check_their_types_before_running(
    durable_runner: Any,
) -> None:
    calls: list[str] = []

    def child(ctx: DurableContext) -> threading.Lock:
        calls.append("child")
        return threading.Lock()

    def item(ctx: DurableContext, value: int, index: int) -> threading.Lock:
        calls.append("item")
        return threading.Lock()

    @durable
    def kid(ctx: DurableContext, event: None) -> None:
        calls.append("kid")

    uses = {
        "child context 'c'": lambda ctx: ctx.run_in_child_context("c", child),
        "parallel 'p' branch 'lock'": lambda ctx: ctx.parallel(
            [child], name="p", branch_names=["lock"]
        ),
        "map 'm'": lambda ctx: ctx.map([1, 2], item, name="m"),
        "callback 'cb'": lambda ctx: ctx.create_callback("cb", result_type=threading.Lock),
        "invoke 'kid'": lambda ctx: ctx.invoke(kid, None, name="kid", result_type=threading.Lock),
        "condition 'poll'": lambda ctx: ctx.wait_for_condition(
            "poll",
            lambda state, sc: calls.append("poll"),
            initial_state=None,
            done=lambda state: True,
            state_type=threading.Lock,
        ),
    }

    def using(use: Callable[[DurableContext], object]) -> Any:
        def wf(ctx: DurableContext, event: None) -> None:
            use(ctx)

        return durable(wf)

    for what, use in uses.items():
        result = durable_runner(using(use), functions=[kid]).run(None)
        assert result.error is not None, what
        assert result.error.type == "durable_core.errors.SerializationError", what
        assert result.error.message.startswith(f"{what}: "), result.error.message
        assert result.operations == [], what  # nothing recorded, no token minted
    assert calls == []


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
def test_a_function_result_that_does_not_fit_its_type_fails_the_execution(
    durable_runner: Any,
) -> None:
    @durable
    def wf(ctx: DurableContext, event: None) -> int:
        return "many"  # type: ignore[return-value]

    result = durable_runner(wf).run(None)

    assert result.status is ExecutionStatus.FAILED  # not SUCCEEDED with a result no one can read
    assert result.error is not None
    assert result.error.type == "durable_core.errors.SerializationError"
    assert "does not fit the declared type int" in result.error.message
