"""``nesting=``, ``serializer=`` and ``item_serializer=`` of parallel/map, on both surfaces.

FLAT branches record nothing of their own (their operations are children of the batch, ids
of the branch); a serializer's text is recorded raw and read back from that same text.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from durable_core import (
    AsyncDurableContext,
    BatchResult,
    DurableContext,
    ExecutionStatus,
    Nesting,
    OperationStatus,
    Runtime,
    SerializationError,
    durable,
)
from durable_core.replay import operation_id
from durable_core.stores.memory import MemoryStore
from durable_core.testing import VirtualClock
from tests.async_surface.driving import records
from tests.operations.conftest import Ledger, replay_finished


class Upper:
    """An item serializer with its own text form: upper-case, recorded as it is."""

    def serialize(self, value: Any) -> str:
        return str(value).upper()

    def deserialize(self, text: str) -> Any:
        return text.lower()


class Marked:
    """A whole-batch serializer: the values, marked, one text."""

    def serialize(self, value: Any) -> str:
        assert isinstance(value, BatchResult)
        return "MARKED:" + value.model_dump_json()

    def deserialize(self, text: str) -> Any:
        return BatchResult[Any].model_validate_json(text.removeprefix("MARKED:"))


def flat_sync(ledger: Ledger) -> Any:
    @durable(name="tests:flat")
    def wf(ctx: DurableContext, event: None) -> list[Any]:
        def item(c: DurableContext, x: str, i: int) -> str:
            v = c.step("twice", lambda sc: ledger.count(f"step-{i}", x * 2))
            if i == 1:
                c.wait("nap", timedelta(hours=1))
            return v

        result = ctx.map(["a", "b", "c"], item, name="each", nesting=Nesting.FLAT)
        return [result.completion_reason.value, result.values()]

    return wf


def flat_async(ledger: Ledger) -> Any:
    @durable(name="tests:flat")
    async def wf(ctx: AsyncDurableContext, event: None) -> list[Any]:
        async def item(c: AsyncDurableContext, x: str, i: int) -> str:
            v = await c.step("twice", lambda sc: ledger.count(f"step-{i}", x * 2))
            if i == 1:
                await c.wait("nap", timedelta(hours=1))
            return v

        result = await ctx.map(["a", "b", "c"], item, name="each", nesting=Nesting.FLAT)
        return [result.completion_reason.value, result.values()]

    return wf


@pytest.mark.parametrize("make", [flat_sync, flat_async], ids=["sync", "async"])
def test_flat_branches_record_only_their_operations(make: Callable[[Ledger], Any]) -> None:
    store, clock, ledger = MemoryStore(), VirtualClock(), Ledger()
    rt = Runtime(store, clock=clock)
    fn = make(ledger)
    ex = rt.run(fn, None, execution_id="flat")
    assert ex.status is ExecutionStatus.RUNNING  # item 1 naps
    clock.advance(timedelta(hours=2))
    rt.drive("flat")
    assert rt.get("flat").status is ExecutionStatus.SUCCEEDED
    assert rt.result("flat") == ["ALL_COMPLETED", ["aa", "bb", "cc"]]
    # The finished FLAT branches ran again on resume, but their steps replayed: once each.
    assert ledger.snapshot() == {"step-0": 1, "step-1": 1, "step-2": 1}
    ops = store.load_operations("flat")
    batch = next(op for op in ops if op.sub_type == "Map")
    assert not [op for op in ops if op.sub_type == "MapIteration"]
    steps = sorted((op for op in ops if op.name == "twice"), key=lambda op: op.result or "")
    assert {op.parent_id for op in steps} == {batch.id}
    for i, op in enumerate(steps):  # ids of the branch's own id space
        assert op.id == operation_id(operation_id(batch.id, i + 1), 1)
    end, writes = replay_finished(store, clock, fn, "flat")
    assert end.status is ExecutionStatus.SUCCEEDED and writes == 0


def test_flat_and_async_flat_write_the_same_journal() -> None:
    journals = []
    for make in (flat_sync, flat_async):
        store, clock = MemoryStore(), VirtualClock()
        rt = Runtime(store, clock=clock)
        rt.run(make(Ledger()), None, execution_id="flat")
        clock.advance(timedelta(hours=2))
        rt.drive("flat")
        journals.append(sorted(records(store, "flat"), key=lambda r: r[0]))
    assert journals[0] == journals[1]


def _nested_then_flat(ledger: Ledger, nesting: Nesting) -> Any:
    @durable(name="tests:switch")
    def wf(ctx: DurableContext, event: None) -> list[str]:
        def item(c: DurableContext, x: str, i: int) -> str:
            c.step("s", lambda sc: x)
            c.wait("nap", timedelta(hours=1))
            return x

        return ctx.map(["a"], item, nesting=nesting).values()

    return wf


@pytest.mark.parametrize(
    ("first", "then"), [(Nesting.NESTED, Nesting.FLAT), (Nesting.FLAT, Nesting.NESTED)]
)
def test_changing_the_nesting_in_flight_is_non_determinism(first: Nesting, then: Nesting) -> None:
    store, clock = MemoryStore(), VirtualClock()
    rt = Runtime(store, clock=clock)
    rt.run(_nested_then_flat(Ledger(), first), None, execution_id="sw")  # suspends mid-branch
    end, _ = replay_finished(store, clock, _nested_then_flat(Ledger(), then), "sw")
    assert end.error is not None and "NonDeterminism" in end.error.type, end
    assert ("FLAT" in end.error.message) and ("NESTED" in end.error.message)


def serialized(kind: str) -> Any:
    @durable(name=f"tests:serialized_{kind}")
    def wf(ctx: DurableContext, event: None) -> list[Any]:
        kwargs: dict[str, Any] = {"item_serializer": Upper()} if kind == "items" else {}
        if kind == "whole":
            kwargs = {"serializer": Marked()}
        result = ctx.parallel([lambda c: "x", lambda c: "y"], name="pair", **kwargs)
        return result.values()

    return wf


def test_item_serializer_text_is_recorded_raw_and_read_back(rt: Runtime) -> None:
    ex = rt.run(serialized("items"), None)
    assert rt.result(ex.id) == ["x", "y"]
    ops = {op.name: op for op in rt.operations(ex.id)}
    assert ops["parallel-branch-0"].result == "X"  # raw: never JSON-encoded again
    batch = json.loads(ops["pair"].result or "")
    values = [item["v"]["result"] for item in batch["v"]["all"]["v"]]
    assert values == [{"t": "s", "v": "x"}, {"t": "s", "v": "y"}]  # what it read back


def test_batch_serializer_records_its_text_and_replays_from_it(rt: Runtime) -> None:
    fn = serialized("whole")
    ex = rt.run(fn, None)
    assert rt.result(ex.id) == ["x", "y"]
    batch = next(op for op in rt.operations(ex.id) if op.name == "pair")
    assert batch.status is OperationStatus.SUCCEEDED
    assert (batch.result or "").startswith("MARKED:")
    assert next(op for op in rt.operations(ex.id) if op.name == "parallel-branch-0").result == '"x"'


class NotABatch:
    def serialize(self, value: Any) -> str:
        return "{}"

    def deserialize(self, text: str) -> Any:
        return {}


def test_a_batch_serializer_must_read_back_a_batch_result(rt: Runtime) -> None:
    seen: list[BaseException] = []

    @durable(name="tests:bad_batch_serializer")
    def wf(ctx: DurableContext, event: None) -> str:
        try:
            ctx.parallel([lambda c: 1], name="pair", serializer=NotABatch())
        except SerializationError as exc:
            seen.append(exc)
        return "done"

    rt.run(wf, None)
    assert len(seen) == 1
    assert "batch 'pair'" in str(seen[0]) and "not the BatchResult" in str(seen[0])


async def _async_pair(ctx: AsyncDurableContext, event: None) -> list[Any]:
    async def one(c: AsyncDurableContext) -> str:
        return "x"

    result = await ctx.parallel([one], name="pair", item_serializer=Upper(), serializer=Marked())
    return result.values()


def test_async_surface_takes_the_same_serializers(rt: Runtime) -> None:
    fn: Callable[..., Awaitable[Any]] = _async_pair
    ex = rt.run(durable(name="tests:async_pair")(fn), None)  # type: ignore[call-overload]
    assert rt.result(ex.id) == ["x"]
    ops = {op.name: op for op in rt.operations(ex.id)}
    assert ops["parallel-branch-0"].result == "X"
    assert (ops["pair"].result or "").startswith("MARKED:")
