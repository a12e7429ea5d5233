"""Declaring async sagas: ``@saga`` on an ``async def`` makes an async durable function; a
context annotation of the other kind, an ``async def`` action in a sync saga, a nested saga
of the other kind, and a saga operation that is not awaited are refused, saying what to do."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from saga_async_flows import book_tour
from saga_helpers import Effects, settle

from durable_core import (
    AsyncDurableContext,
    DurableContext,
    ExecutionStatus,
    Runtime,
    StepContext,
)
from saga import (
    AsyncSagaContext,
    CompensationContext,
    Saga,
    SagaContext,
    SagaDefinitionError,
    saga,
)


def test_saga_on_an_async_def_makes_an_async_durable_function() -> None:
    @saga
    def plain(s: SagaContext, event: None) -> None:
        return None

    assert book_tour.is_async
    assert book_tour.durable_function.is_async
    assert inspect.iscoroutinefunction(book_tour.durable_function.fn)
    assert not plain.is_async
    assert not plain.durable_function.is_async
    assert not Saga("declared").durable_function.is_async


# --- @saga signature checks ----------------------------------------------------------------


def sync_annotated_async(s: AsyncSagaContext, event: None) -> None:
    return None


async def async_annotated_sync(s: SagaContext, event: None) -> None:
    return None


async def async_annotated_durable(ctx: DurableContext, event: None) -> None:
    return None


async def async_annotated_async_durable(ctx: AsyncDurableContext, event: None) -> None:
    return None


def sync_annotated_async_durable(ctx: AsyncDurableContext, event: None) -> None:
    return None


async def async_one_param(s: AsyncSagaContext) -> None:
    return None


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (sync_annotated_async, "is sync but its first parameter is annotated AsyncSagaContext"),
        (async_annotated_sync, "is `async def` but its first parameter is annotated SagaContext"),
        (async_annotated_durable, "receives an AsyncSagaContext, not a DurableContext"),
        (async_annotated_async_durable, "receives an AsyncSagaContext, not an AsyncDurable"),
        (sync_annotated_async_durable, "receives a SagaContext, not an AsyncDurableContext"),
        (async_one_param, "exactly two positional parameters"),
    ],
)
def test_saga_refuses_a_context_annotation_of_the_other_kind(fn: Any, message: str) -> None:
    with pytest.raises(SagaDefinitionError, match=message):
        saga(fn)
    with pytest.raises(SagaDefinitionError, match=message):
        saga(name="named")(fn)


# --- what a sync saga cannot await ---------------------------------------------------------


async def async_action(sc: StepContext) -> str:
    return "a"


async def async_undo(c: CompensationContext) -> None:
    return None


def test_a_sync_saga_refuses_async_actions_and_compensations_before_recording(
    rt: Runtime,
) -> None:
    fx = Effects()

    @saga(name="mixed")
    def mixed(s: SagaContext, which: str) -> None:
        s.step("first", fx.action("first"), compensate=fx.undo("first"))
        if which == "action":
            s.step("a", async_action)
        elif which == "compensation":
            s.step("a", fx.action("a"), compensate=async_undo)
        else:
            s.parallel("group", [s.branch("a", async_action)])

    for which in ("action", "compensation", "branch"):
        ex = settle(rt, rt.start(mixed, which).id)
        assert ex.status is ExecutionStatus.FAILED
        assert ex.error is not None
        assert ex.error.type == "saga.errors.SagaDefinitionError"
        assert "is `async def`, and a sync saga cannot await it" in ex.error.message
        assert [op.name for op in rt.operations(ex.id)] == ["first"]  # nothing else recorded
    assert fx.undone() == []  # a wrong saga is not rolled back


def test_the_builder_refuses_an_async_action() -> None:
    with pytest.raises(SagaDefinitionError, match="a sync saga cannot await it"):
        Saga("declared").step("a", async_action)  # type: ignore[arg-type]


# --- nested sagas of the other kind --------------------------------------------------------


@saga(name="sync-child")
def sync_child(s: SagaContext, event: None) -> None:
    return None


@saga(name="async-child")
async def async_child(s: AsyncSagaContext, event: None) -> None:
    return None


def test_a_sync_saga_refuses_an_async_child(rt: Runtime) -> None:
    @saga(name="sync-parent")
    def parent(s: SagaContext, event: None) -> None:
        s.child("trip", async_child, None)

    ex = settle(rt, rt.start(parent).id)

    assert ex.error is not None and ex.error.type == "saga.errors.SagaDefinitionError"
    assert "'async-child' is an async saga" in ex.error.message
    assert "a sync saga cannot await it" in ex.error.message
    assert rt.operations(ex.id) == []


@pytest.mark.parametrize("child", [sync_child, Saga("builder-child")], ids=["function", "builder"])
def test_an_async_saga_refuses_a_sync_child(rt: Runtime, child: Any) -> None:
    @saga(name="async-parent")
    async def parent(s: AsyncSagaContext, event: None) -> None:
        await s.child("trip", child, None)

    ex = settle(rt, rt.start(parent).id)

    assert ex.error is not None and ex.error.type == "saga.errors.SagaDefinitionError"
    assert f"{child.name!r} is a sync saga" in ex.error.message
    assert "an async saga nests only async sagas" in ex.error.message
    assert rt.operations(ex.id) == []


# --- one saga operation at a time ----------------------------------------------------------


def test_a_step_that_is_not_awaited_is_named_at_the_next_saga_operation(rt: Runtime) -> None:
    fx = Effects()

    @saga(name="forgetful")
    async def forgetful(s: AsyncSagaContext, event: None) -> None:
        await s.step("a", fx.action("a"), compensate=fx.undo("a"))
        s.step("b", fx.action("b"))  # the mistake: not awaited
        await s.step("c", fx.action("c"))

    ex = settle(rt, rt.start(forgetful).id)

    assert ex.status is ExecutionStatus.FAILED
    assert ex.error is not None and ex.error.type == "saga.errors.SagaDefinitionError"
    assert "step 'c' was called while step 'b' had not finished" in ex.error.message
    assert fx.log == ["do:a"]  # b never ran, and a wrong saga is not rolled back


def test_a_step_never_awaited_fails_the_saga_when_it_returns(rt: Runtime) -> None:
    fx = Effects()

    @saga(name="forgetful-end")
    async def forgetful_end(s: AsyncSagaContext, event: None) -> None:
        await s.step("a", fx.action("a"))
        s.step("b", fx.action("b"))  # the mistake: not awaited

    ex = settle(rt, rt.start(forgetful_end).id)

    assert ex.status is ExecutionStatus.FAILED
    assert ex.error is not None
    assert "step 'b' was called but never awaited, so it never ran" in ex.error.message
    assert fx.log == ["do:a"]


def test_steps_run_concurrently_outside_s_parallel_are_refused(rt: Runtime) -> None:
    fx = Effects()

    @saga(name="gathered")
    async def gathered(s: AsyncSagaContext, event: None) -> None:
        await asyncio.gather(s.step("a", fx.action("a")), s.step("b", fx.action("b")))

    ex = settle(rt, rt.start(gathered).id)

    assert ex.error is not None and ex.error.type == "saga.errors.SagaDefinitionError"
    assert "to run steps concurrently use s.parallel" in ex.error.message
    assert rt.operations(ex.id) == []


def test_a_bad_declaration_raises_at_the_call_not_the_await(rt: Runtime) -> None:
    seen: list[str] = []

    @saga(name="duplicate")
    async def duplicate(s: AsyncSagaContext, event: None) -> None:
        await s.step("a", Effects().action("a"))
        try:
            pending = s.step("a", Effects().action("again"))
        except SagaDefinitionError as e:
            seen.append(str(e))
            raise
        await pending

    ex = settle(rt, rt.start(duplicate).id)

    assert ex.status is ExecutionStatus.FAILED
    assert len(seen) == 1 and "duplicate step name 'a'" in seen[0]


def test_a_saga_operation_awaited_twice_is_refused(rt: Runtime) -> None:
    fx = Effects()

    @saga(name="twice")
    async def twice(s: AsyncSagaContext, event: None) -> None:
        booked = s.step("a", fx.action("a"), compensate=fx.undo("a"))
        await booked
        await booked

    ex = settle(rt, rt.start(twice).id)

    assert ex.error is not None and "step 'a' was awaited twice" in ex.error.message
    assert fx.log == ["do:a"]
    assert [op.name for op in rt.operations(ex.id)] == ["a"]
