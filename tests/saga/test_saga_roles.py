"""Saga marks in the journal: each forward step records its kind as its role.

A step's ``Operation.role`` (``saga.compensatable``, ``saga.pivot``, ``saga.retriable``) and
the execution's ``Execution.role`` (``saga``) are display only: viewers read a saga from
them, replay never looks at them, and journals written before they existed replay as
they were recorded.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from saga_helpers import settle

from durable_core import (
    DurableContext,
    ExecutionStatus,
    MemoryStore,
    OperationType,
    Runtime,
    SQLiteStore,
    StepContext,
    Store,
    durable,
)
from durable_core.testing import VirtualClock
from saga import AsyncSagaContext, CompensationContext, SagaContext, StepKind, saga
from saga.policy import ROLE

calls: Counter[str] = Counter()


def _do(name: str) -> Any:
    def run(sc: StepContext) -> str:
        calls[name] += 1
        return name

    return run


def _undo(c: CompensationContext) -> None:
    calls[f"undo:{c.step}"] += 1


@saga(name="roles-inner")
def inner(s: SagaContext, event: None) -> str:
    return s.step("hold", _do("hold"), compensate=_undo)


@saga(name="roles-trip")
def trip(s: SagaContext, event: None) -> str:
    s.step("reserve", _do("reserve"), compensate=_undo)
    s.parallel("rooms", [s.branch("a", _do("a"), compensate=_undo), s.branch("b", _do("b"))])
    s.child("nested", inner, None)
    s.step("charge", _do("charge"), kind=StepKind.PIVOT)
    s.ctx.create_callback("shipper").result()
    s.step("ship", _do("ship"))
    return "shipped"


@pytest.fixture(autouse=True)
def _clear() -> None:
    calls.clear()


def _token(rt: Runtime, eid: str) -> str:
    op = next(o for o in rt.operations(eid) if o.type is OperationType.CALLBACK)
    assert op.callback_id is not None
    return op.callback_id


def test_each_forward_step_records_its_kind_and_the_execution_becomes_a_saga(
    rt: Runtime,
) -> None:
    ex = settle(rt, rt.start(trip).id)
    assert ex.status is ExecutionStatus.RUNNING  # waits for the shipper
    assert ex.role == ROLE == "saga"  # recorded when the first invocation ended
    rt.send_callback_success(_token(rt, ex.id), None)
    assert settle(rt, ex.id).status is ExecutionStatus.SUCCEEDED

    roles = {op.name: op.role for op in rt.operations(ex.id) if op.type is OperationType.STEP}
    assert roles["reserve"] == "saga.compensatable"
    assert roles["rooms/a"] == roles["rooms/b"] == "saga.compensatable"
    assert roles["nested/hold"] == "saga.compensatable"
    assert roles["charge"] == StepKind.PIVOT.role == "saga.pivot"
    assert roles["ship"] == "saga.retriable"
    others = [op for op in rt.operations(ex.id) if op.name not in roles]
    assert all(op.role is None for op in others)  # groups, callbacks: no role
    assert rt.get(ex.id).role == "saga"


def test_a_compensation_step_has_no_role_and_a_plain_function_none(rt: Runtime) -> None:
    @saga(name="roles-fails")
    def fails(s: SagaContext, event: None) -> None:
        s.step("reserve", _do("reserve"), compensate=_undo)
        s.step("boom", _boom, retry=None, kind="compensatable")

    @durable(name="roles-plain")
    def plain(ctx: DurableContext, event: None) -> str:
        return ctx.step("only", _do("only"))

    failed = settle(rt, rt.start(fails).id)
    assert failed.status is ExecutionStatus.FAILED and failed.role == "saga"
    undo = [op for op in rt.operations(failed.id) if (op.name or "").startswith("compensate:")]
    assert undo and all(op.role is None for op in undo)
    assert calls["undo:reserve"] == 1

    done = settle(rt, rt.start(plain).id)
    assert done.status is ExecutionStatus.SUCCEEDED and done.role is None
    assert [op.role for op in rt.operations(done.id)] == [None]


def _boom(sc: StepContext) -> None:
    raise RuntimeError("sold out")


def test_an_async_saga_records_the_same_roles(rt: Runtime) -> None:
    @saga(name="roles-async")
    async def trip_async(s: AsyncSagaContext, event: None) -> str:
        await s.step("reserve", _do("reserve"), compensate=_undo)
        await s.step("charge", _do("charge"), kind=StepKind.PIVOT)
        return await s.step("ship", _do("ship"))

    ex = asyncio.run(_run_async(rt, trip_async))
    assert ex.status is ExecutionStatus.SUCCEEDED and ex.role == "saga"
    assert [op.role for op in rt.operations(ex.id)] == [
        "saga.compensatable",
        "saga.pivot",
        "saga.retriable",
    ]


async def _run_async(rt: Runtime, fn: Any) -> Any:
    from durable_core import AsyncRuntime

    return await AsyncRuntime(rt).run(fn, None)


def test_roles_survive_a_sqlite_store_reopened(tmp_path: Path, clock: VirtualClock) -> None:
    rt = Runtime(SQLiteStore(tmp_path / "s.sqlite3"), clock=clock)
    ex = settle(rt, rt.start(trip).id)
    reopened = SQLiteStore(tmp_path / "s.sqlite3")
    assert reopened.get_execution(ex.id).role == "saga"
    roles = [op.role for op in reopened.load_operations(ex.id) if op.name == "charge"]
    assert roles == ["saga.pivot"]
    reopened.close()
    rt.store.close()


def test_a_saga_journal_written_without_roles_replays_as_recorded(clock: VirtualClock) -> None:
    """As if the saga started under a version that recorded no roles, then upgraded."""
    first = Runtime(MemoryStore(), clock=clock)
    ex = settle(first, first.start(trip, execution_id="old-trip").id)
    assert ex.status is ExecutionStatus.RUNNING
    old_ops = [op.evolve(role=None) for op in first.operations(ex.id)]
    store = _seeded(ex.evolve(role=None, lease_owner=None, lease_expires=None), old_ops, clock)
    rt = Runtime(store, clock=clock, functions=[trip])
    assert calls == Counter(reserve=1, a=1, b=1, hold=1, charge=1)

    rt.send_callback_success(_token(rt, ex.id), None)
    done = settle(rt, ex.id)

    assert done.status is ExecutionStatus.SUCCEEDED
    assert calls == Counter(reserve=1, a=1, b=1, hold=1, charge=1, ship=1)  # nothing re-ran
    ops = {op.name: op for op in rt.operations(ex.id)}
    assert ops["charge"].role is None  # old records stay as they were
    assert ops["ship"].role == "saga.retriable"  # new ones carry their role
    assert done.role == "saga"


def _seeded(ex: Any, ops: list[Any], clock: VirtualClock) -> Store:
    store = MemoryStore()
    store.create_execution(ex)
    lease = store.acquire_lease(ex.id, "seed", clock.now(), timedelta(minutes=1))
    assert lease is not None
    store.write_operations(lease, ops, clock.now(), timedelta(minutes=1))
    store.release_lease(lease)
    return store
