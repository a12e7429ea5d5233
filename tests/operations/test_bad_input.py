"""Bad calls of parallel, map and invoke raise at the call and record nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from durable_core import (
    BatchResult,
    DurableContext,
    DurableError,
    ExecutionStatus,
    FunctionNotFoundError,
    Runtime,
    SerializationError,
    ValidationError,
    durable,
)
from durable_core.operations.batch import CompletionPolicy


def ok(ctx: DurableContext) -> int:
    return 1


def item(ctx: DurableContext, x: int, i: int) -> int:
    return x


@durable(name="tests:bad_input_child")
def child(ctx: DurableContext, n: int) -> int:
    return n


def plain_function(ctx: DurableContext, n: int) -> int:
    return n


CASES: dict[str, tuple[type[DurableError], Callable[[DurableContext], object]]] = {
    "non-callable branch": (ValidationError, lambda c: c.parallel([ok, "nope"])),  # type: ignore[arg-type]
    "branches not a list": (ValidationError, lambda c: c.parallel(ok)),  # type: ignore[arg-type]
    "max_concurrency 0": (ValidationError, lambda c: c.parallel([ok], max_concurrency=0)),
    "max_concurrency bool": (ValidationError, lambda c: c.map([1], item, max_concurrency=True)),
    "max_concurrency float": (ValidationError, lambda c: c.map([1], item, max_concurrency=1.5)),  # type: ignore[arg-type]
    "impossible policy": (
        ValidationError,
        lambda c: c.map([1, 2, 3], item, completion=CompletionPolicy.at_least(5)),
    ),
    "first success of nothing": (
        ValidationError,
        lambda c: c.map([], item, completion=CompletionPolicy.first_successful()),
    ),
    "policy of wrong type": (ValidationError, lambda c: c.parallel([ok], completion="all")),  # type: ignore[arg-type]
    "too few branch names": (ValidationError, lambda c: c.parallel([ok, ok], branch_names=["a"])),
    "blank branch name": (ValidationError, lambda c: c.parallel([ok], branch_names=[" "])),
    "blank item name": (ValidationError, lambda c: c.map([1], item, item_name=lambda x, i: "")),
    "non-callable map fn": (ValidationError, lambda c: c.map([1], 3)),  # type: ignore[arg-type]
    "unordered items": (ValidationError, lambda c: c.map({1, 2}, item)),  # type: ignore[arg-type]
    "blank batch name": (ValidationError, lambda c: c.map([1], item, name="")),
    "nesting of wrong type": (ValidationError, lambda c: c.parallel([ok], nesting="FLAT")),  # type: ignore[arg-type]
    "serializer of wrong type": (ValidationError, lambda c: c.map([1], item, serializer=json)),  # type: ignore[arg-type]
    "item serializer of wrong type": (
        ValidationError,
        lambda c: c.parallel([ok], item_serializer="json"),  # type: ignore[arg-type]
    ),
    "unregistered invoke name": (FunctionNotFoundError, lambda c: c.invoke("no-such-function", 1)),
    "invoke a plain function": (ValidationError, lambda c: c.invoke(plain_function, 1)),  # type: ignore[call-overload]
    "invoke payload not JSON": (SerializationError, lambda c: c.invoke(child, object())),
    "invoke payload of wrong type": (SerializationError, lambda c: c.invoke(child, "seven")),
    "invoke with a blank name": (ValidationError, lambda c: c.invoke(child, 1, name="")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_call_raises_at_once_and_records_nothing(rt: Runtime, case: str) -> None:
    expected, call = CASES[case]
    caught: list[BaseException] = []

    @durable(name=f"tests:bad_{case.replace(' ', '_')}")
    def wf(ctx: DurableContext, event: None) -> str:
        try:
            call(ctx)
        except DurableError as exc:
            caught.append(exc)
        return "survived"

    rt.register(child)
    ex = rt.run(wf, None)
    if case == "unregistered invoke name":  # a worker without the function parks it
        assert ex.status is ExecutionStatus.RUNNING and ex.error is not None
    else:
        assert ex.status is ExecutionStatus.SUCCEEDED
    assert len(caught) == 1
    assert isinstance(caught[0], expected), caught[0]
    assert rt.operations(ex.id) == []
    assert len(rt.store.list_executions()) == 1  # no child execution either


def test_errors_say_what_to_do(rt: Runtime) -> None:
    messages: dict[str, str] = {}

    @durable(name="tests:messages")
    def wf(ctx: DurableContext, event: None) -> None:
        for key in ("impossible policy", "unordered items", "unregistered invoke name"):
            try:
                CASES[key][1](ctx)
            except DurableError as exc:
                messages[key] = str(exc)

    rt.run(wf, None)
    assert "needs 5 successful branch(es) but there are only 3" in messages["impossible policy"]
    assert "Sort it first" in messages["unordered items"]
    assert "register it" in messages["unregistered invoke name"]


def test_non_callable_item_name(rt: Runtime) -> None:
    got: list[Any] = []

    @durable(name="tests:item_name_type")
    def wf(ctx: DurableContext, event: None) -> None:
        try:
            ctx.map([1], item, item_name="x")  # type: ignore[arg-type]
        except ValidationError as exc:
            got.append(exc)

    ex = rt.run(wf, None)
    assert len(got) == 1
    assert rt.operations(ex.id) == []


def test_empty_parallel_completes_with_an_empty_result(rt: Runtime) -> None:
    """No branches is a batch like any other (as in AWS's SDK): recorded, ALL_COMPLETED."""
    seen: list[BatchResult[Any]] = []

    @durable(name="tests:empty_parallel")
    def wf(ctx: DurableContext, event: None) -> str:
        result: BatchResult[Any] = ctx.parallel([], name="nothing")
        seen.append(result)
        return result.completion_reason.value

    ex = rt.run(wf, None)
    assert ex.status is ExecutionStatus.SUCCEEDED
    assert rt.result(ex.id) == "ALL_COMPLETED"
    assert seen[0].items == [] and seen[0].values() == []
    (op,) = rt.operations(ex.id)
    assert (op.name, op.sub_type, op.status.value) == ("nothing", "Parallel", "SUCCEEDED")
    assert op.result == (
        '{"t":"br","v":{"all":{"t":"l","v":[]},"completionReason":{"t":"s","v":"ALL_COMPLETED"}}}'
    )
