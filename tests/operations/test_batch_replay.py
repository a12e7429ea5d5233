"""parallel / map replay: ids by index, no branch re-runs, crash and always-replay safety."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from durable_core import (
    DurableContext,
    ExecutionStatus,
    MemoryStore,
    NonDeterminismError,
    OperationStatus,
    OperationType,
    Runtime,
    StepContext,
    durable,
)
from durable_core.function import DurableFunction
from durable_core.operations.batch import BatchResult, CompletionPolicy
from durable_core.testing import VirtualClock, check_crash_safety
from tests.operations.conftest import Ledger, replay_finished

WAIT_S = 10  # bound on every cross-thread wait; never reached when the code is right


def ordered_parallel(order: list[int], ledger: Ledger) -> DurableFunction[None, list[int]]:
    """Three branches whose ``work`` steps finish in ``order`` (forced with events)."""
    turns = {i: threading.Event() for i in range(3)}
    turns[order[0]].set()

    def branch(i: int) -> Any:
        def body(ctx: DurableContext) -> int:
            def work(sc: StepContext) -> int:
                assert turns[i].wait(WAIT_S), f"branch {i} never got its turn"
                ledger.hit(f"work-{i}")
                return i * 10

            value = ctx.step("work", work)

            def handoff(sc: StepContext) -> int:
                # Only after this branch's "work" record is written may the next one finish.
                pos = order.index(i)
                if pos + 1 < len(order):
                    turns[order[pos + 1]].set()
                return 1

            return value + ctx.step("handoff", handoff)

        return body

    @durable(name="tests:ordered_parallel")
    def wf(ctx: DurableContext, event: None) -> list[int]:
        result = ctx.parallel([branch(0), branch(1), branch(2)], name="fan-out")
        return result.raise_if_failed().values()

    return wf


def work_parents_in_write_order(store: MemoryStore, execution_id: str) -> list[str]:
    return [
        op.parent_id or ""
        for op in store.load_operations(execution_id)
        if op.type is OperationType.STEP and op.name == "work"
    ]


@pytest.mark.parametrize(("first", "second"), [([0, 1, 2], [2, 1, 0]), ([1, 2, 0], [2, 0, 1])])
def test_completion_order_does_not_change_ids_or_results(
    first: list[int], second: list[int], virtual_clock: VirtualClock
) -> None:
    journals = []
    for k, order in enumerate((first, second)):
        ledger = Ledger()
        store = MemoryStore()
        rt = Runtime(store, clock=virtual_clock)
        wf = ordered_parallel(order, ledger)
        ex = rt.run(wf, None, execution_id=f"order-{k}")
        assert ex.status is ExecutionStatus.SUCCEEDED, ex.error
        assert rt.result(ex.id, list[int]) == [1, 11, 21]
        ops = store.load_operations(ex.id)
        branch_ids = {op.name: op.id for op in ops if op.sub_type == "ParallelBranch"}  # name -> id
        # The branches really finished in the forced order ...
        parents = work_parents_in_write_order(store, ex.id)
        assert parents == [branch_ids[f"parallel-branch-{i}"] for i in order]
        # ... and replaying the finished journal returns the same, writes nothing, reruns none.
        end, writes = replay_finished(store, virtual_clock, wf, ex.id)
        assert (end.status, end.result, writes) == (ExecutionStatus.SUCCEEDED, ex.result, 0)
        assert ledger.snapshot() == {"work-0": 1, "work-1": 1, "work-2": 1}
        journals.append({op.id: (op.type, op.sub_type, op.name, op.parent_id) for op in ops})
    assert journals[0] == journals[1]  # same ids, names and tree whatever finished first


def test_map_items_get_index_names_and_index_ids(rt: Runtime, ledger: Ledger) -> None:
    @durable(name="tests:squares")
    def wf(ctx: DurableContext, n: int) -> list[int]:
        def square(c: DurableContext, x: int, i: int) -> int:
            return c.step("square", lambda sc: ledger.count(f"sq-{x}", x * x))

        return ctx.map(list(range(n)), square, name="squares").raise_if_failed().values()

    ex = rt.run(wf, 5)
    assert rt.result(ex.id) == [0, 1, 4, 9, 16]
    ops = rt.operations(ex.id)
    batch = next(op for op in ops if op.sub_type == "Map")
    items = {op.name or "": op for op in ops if op.sub_type == "MapIteration"}
    assert sorted(items) == [f"map-item-{i}" for i in range(5)]
    from durable_core.replay import operation_id

    for i in range(5):
        assert items[f"map-item-{i}"].id == operation_id(batch.id, i + 1)
        assert items[f"map-item-{i}"].parent_id == batch.id
    assert all(v == 1 for v in ledger.snapshot().values())


def test_always_replay_runs_every_branch_body_once(durable_runner: Any, ledger: Ledger) -> None:
    @durable(name="tests:always_replay_map")
    def wf(ctx: DurableContext, n: int) -> list[str]:
        def item(c: DurableContext, x: int, i: int) -> str:
            a = c.step("a", lambda sc: ledger.count(f"a-{x}", f"a{x}"))
            b = c.step("b", lambda sc: ledger.count(f"b-{x}", f"b{x}"))
            return a + b

        return ctx.map(list(range(n)), item, max_concurrency=2).raise_if_failed().values()

    runner = durable_runner(wf, always_replay=True)
    result = runner.run(4)
    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == ["a0b0", "a1b1", "a2b2", "a3b3"]
    assert ledger.snapshot() == {f"{s}-{x}": 1 for s in "ab" for x in range(4)}


@pytest.mark.parametrize("concurrency", [1, 3])
def test_crash_at_every_write_ends_the_same(concurrency: int, ledger: Ledger) -> None:
    @durable(name=f"tests:crash_map_{concurrency}")
    def wf(ctx: DurableContext, n: int) -> int:
        def item(c: DurableContext, x: int, i: int) -> int:
            return c.step("charge", lambda sc: ledger.count(f"charge-{x}", x + 1))

        return sum(ctx.map(list(range(n)), item, max_concurrency=concurrency).values())

    def at_most_one_rerun(result: Any) -> None:
        counts = ledger.snapshot()
        assert sorted(counts) == [f"charge-{x}" for x in range(3)]
        assert all(1 <= c <= 2 for c in counts.values()), counts
        assert sum(counts.values()) <= 4, counts  # one crash re-runs at most one body

    report = check_crash_safety(wf, 3, before_each=ledger.counts.clear, check=at_most_one_rerun)
    report.assert_ok()
    assert len(report.boundaries) >= 2 * 8  # STARTED + 3 x (step, branch) + decision


def test_resume_after_crash_mid_batch_does_not_rerun_finished_branches(
    memory_store: MemoryStore, virtual_clock: VirtualClock, ledger: Ledger
) -> None:
    """Branch 2 crashes the worker; branches 0 and 1 had finished and must not re-run."""
    from datetime import timedelta

    from durable_core.errors import SimulatedCrash

    crash_once = threading.Event()

    @durable(name="tests:crash_mid_batch")
    def wf(ctx: DurableContext, event: None) -> list[int]:
        def item(c: DurableContext, x: int, i: int) -> int:
            def body(sc: StepContext) -> int:
                ledger.hit(f"body-{x}")
                if x == 2 and not crash_once.is_set():
                    crash_once.set()
                    raise SimulatedCrash("worker killed inside item 2")
                return x

            return c.step("work", body)

        return ctx.map([0, 1, 2, 3], item, max_concurrency=1).values()

    rt = Runtime(memory_store, clock=virtual_clock)
    with pytest.raises(SimulatedCrash):
        rt.run(wf, None, execution_id="crashy")
    assert ledger.snapshot() == {"body-0": 1, "body-1": 1, "body-2": 1}
    virtual_clock.advance(timedelta(minutes=5))  # the dead worker's lease expires
    assert Runtime(memory_store, clock=virtual_clock, functions=[wf]).tick() == 1
    assert rt.get("crashy").status is ExecutionStatus.SUCCEEDED
    assert rt.result("crashy") == [0, 1, 2, 3]
    assert ledger.snapshot() == {"body-0": 1, "body-1": 1, "body-2": 2, "body-3": 1}


def test_nested_parallel_inside_map(rt: Runtime, ledger: Ledger, virtual_clock: Any) -> None:
    @durable(name="tests:nested")
    def wf(ctx: DurableContext, skus: list[str]) -> dict[str, list[str]]:
        def per_sku(c: DurableContext, sku: str, i: int) -> list[str]:
            checks = [
                lambda b: b.step("stock", lambda sc: ledger.count(f"stock-{sku}", f"{sku}:ok")),
                lambda b: b.step("price", lambda sc: ledger.count(f"price-{sku}", f"{sku}:9")),
            ]
            return c.parallel(checks, name="checks", branch_names=["stock", "price"]).values()

        result = ctx.map(skus, per_sku, name="skus", item_name=lambda sku, i: f"sku-{sku}")
        return {item.name: item.value or [] for item in result.raise_if_failed().items}

    ex = rt.run(wf, ["a", "b", "c"])
    assert ex.status is ExecutionStatus.SUCCEEDED, ex.error
    assert rt.result(ex.id) == {f"sku-{s}": [f"{s}:ok", f"{s}:9"] for s in ("a", "b", "c")}
    ops = rt.operations(ex.id)
    assert len({op.id for op in ops}) == len(ops)
    by_id = {op.id: op for op in ops}
    parallels = [op for op in ops if op.sub_type == "Parallel"]
    assert len(parallels) == 3
    for p in parallels:
        parent = by_id[p.parent_id or ""]
        assert parent.sub_type == "MapIteration"
        assert by_id[parent.parent_id or ""].sub_type == "Map"
    assert set(ledger.snapshot().values()) == {1}
    assert len(ledger.snapshot()) == 6
    end, writes = replay_finished(rt.store, virtual_clock, wf, ex.id)
    assert (end.result, writes) == (ex.result, 0)


def test_changing_the_number_of_items_in_flight_is_non_deterministic(
    rt: Runtime, virtual_clock: VirtualClock
) -> None:
    from datetime import timedelta

    sizes = iter([3, 4])

    @durable(name="tests:resize")
    def wf(ctx: DurableContext, event: None) -> int:
        n = next(sizes)

        def item(c: DurableContext, x: int, i: int) -> int:
            if x == 0:
                c.wait("pause", timedelta(hours=1))
            return x

        return len(ctx.map(list(range(n)), item).values())

    ex = rt.run(wf, None)
    assert ex.status is ExecutionStatus.RUNNING
    virtual_clock.advance(timedelta(hours=1))
    rt.tick()
    ex = rt.get(ex.id)
    assert ex.status is ExecutionStatus.RUNNING  # parked
    assert ex.error is not None
    assert ex.error.type.endswith("NonDeterminismError")
    assert "3 branch(es)" in ex.error.message
    assert "4 branch(es)" in ex.error.message
    assert NonDeterminismError.__name__ in ex.error.type


def test_a_finished_batch_is_returned_from_its_record(
    rt: Runtime, virtual_clock: VirtualClock, ledger: Ledger
) -> None:
    """After the batch, the function waits; on resume the batch replays from records."""
    from datetime import timedelta

    @durable(name="tests:replay_batch")
    def wf(ctx: DurableContext, event: None) -> list[Any]:
        result: BatchResult[int] = ctx.map(
            [1, 2, 3],
            lambda c, x, i: c.step("x", lambda sc: ledger.count(f"x{x}", x)),
            completion=CompletionPolicy.all_completed(),
        )
        ctx.wait("later", timedelta(days=1))
        return [result.completion_reason.value, result.values()]

    ex = rt.run(wf, None)
    assert ex.status is ExecutionStatus.RUNNING
    writes_before = len(rt.operations(ex.id))
    virtual_clock.advance(timedelta(days=1))
    rt.tick()
    assert rt.result(ex.id) == ["ALL_COMPLETED", [1, 2, 3]]
    assert ledger.snapshot() == {"x1": 1, "x2": 1, "x3": 1}
    ops = rt.operations(ex.id)
    assert len(ops) == writes_before  # only the wait's record changed
    assert next(op for op in ops if op.sub_type == "Map").status is OperationStatus.SUCCEEDED


def test_renaming_a_branch_of_a_finished_batch_is_non_deterministic(
    rt: Runtime, virtual_clock: VirtualClock
) -> None:
    from datetime import timedelta

    names = iter([["a", "b"], ["a", "renamed"]])

    @durable(name="tests:rename")
    def wf(ctx: DurableContext, event: None) -> int:
        ctx.parallel([lambda c: 1, lambda c: 2], branch_names=next(names))
        ctx.wait("pause", timedelta(hours=1))
        return 0

    ex = rt.run(wf, None)
    virtual_clock.advance(timedelta(hours=1))
    rt.tick()
    ex = rt.get(ex.id)
    assert ex.status is ExecutionStatus.RUNNING  # parked
    assert ex.error is not None
    assert "'b'" in ex.error.message
    assert "'renamed'" in ex.error.message
