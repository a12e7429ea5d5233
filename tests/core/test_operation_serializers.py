"""``serializer=`` on an operation: its text is recorded as it is and handed back as it is.

AWS's SDK stores a custom serdes' output raw (``HELLO`` stays ``HELLO``, not ``"HELLO"``)
and gives the deserializer the raw text; so does durable-saga, on every store and both
surfaces. Also ``wait_for_condition(max_attempts=...)`` and the announced starts, which cost
the self-hosted stores no write.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
import tenacity

from durable_core import (
    AsyncDurableContext,
    ConditionTimeoutError,
    DurableContext,
    ExecutionStatus,
    MemoryStore,
    SerializationError,
    StepConfig,
    StepContext,
    StepSemantics,
    ValidationError,
    durable,
)
from durable_core.testing import DurableTestRunner


class Shout:
    """Upper-case text on the way in, lower-case on the way out; counts what it was given."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def serialize(self, value: Any) -> str:
        return str(value).upper()

    def deserialize(self, text: str) -> Any:
        self.seen.append(text)
        return text.lower()


def _sync_flow(shout: Shout, calls: Counter[str]) -> Any:
    @durable
    def flow(ctx: DurableContext, event: None) -> list[str]:
        def greet(sc: StepContext) -> str:
            calls["step"] += 1
            return "hello step"

        step = ctx.step("greet", greet, StepConfig(serializer=shout))
        child = ctx.run_in_child_context("kid", lambda c: "hello child", serializer=shout)
        ctx.wait("tick", 5)  # a second invocation replays both
        return [step, child]

    return flow


def _async_flow(shout: Shout, calls: Counter[str]) -> Any:
    @durable
    async def flow(ctx: AsyncDurableContext, event: None) -> list[str]:
        def greet(sc: StepContext) -> str:
            calls["step"] += 1
            return "hello step"

        async def kid(c: AsyncDurableContext) -> str:
            await asyncio.sleep(0)
            return "hello child"

        step = await ctx.step("greet", greet, StepConfig(serializer=shout))
        child = await ctx.run_in_child_context("kid", kid, serializer=shout)
        await ctx.wait("tick", 5)
        return [step, child]

    return flow


@pytest.mark.parametrize("make", [_sync_flow, _async_flow], ids=["sync", "async"])
def test_a_serializer_s_text_is_recorded_raw_and_read_back_raw(make: Any) -> None:
    shout, calls = Shout(), Counter[str]()
    runner = DurableTestRunner(make(shout, calls))
    result = runner.run(None)
    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == ["hello step", "hello child"]
    assert calls == {"step": 1}
    # recorded as the serializer wrote it: no JSON quotes around it
    assert runner.store.load_operations(result.execution_id)
    records = {o.name: o for o in runner.store.load_operations(result.execution_id)}
    assert records["greet"].result == "HELLO STEP"
    assert records["kid"].result == "HELLO CHILD"
    # the deserializer got the raw text: on the first run (the read-back) and on replay
    assert set(shout.seen) == {"HELLO STEP", "HELLO CHILD"}
    assert len(shout.seen) >= 4


def test_a_condition_s_state_goes_through_its_serializer() -> None:
    shout = Shout()
    seen: list[str] = []

    @durable
    def flow(ctx: DurableContext, event: None) -> str:
        def check(state: str, sc: StepContext) -> str:
            seen.append(state)
            return state + "a"

        return ctx.wait_for_condition(
            "grow",
            check,
            initial_state="",
            done=lambda s: len(s) >= 3,
            wait=tenacity.wait_fixed(1),
            serializer=shout,
        )

    runner = DurableTestRunner(flow)
    result = runner.run(None)
    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == "aaa"
    assert seen == ["", "a", "aa"]  # each poll starts from the state read back raw
    assert result.get_step("grow").result == "AAA"


@pytest.mark.parametrize("met_on", [None, 3, 1])
def test_max_attempts_bounds_the_polls(met_on: int | None) -> None:
    calls = Counter[str]()

    @durable
    def flow(ctx: DurableContext, event: None) -> int:
        def check(n: int, sc: StepContext) -> int:
            calls["poll"] += 1
            return n + 1

        try:
            return ctx.wait_for_condition(
                "count",
                check,
                initial_state=0,
                done=lambda n: met_on is not None and n >= met_on,
                wait=tenacity.wait_fixed(1),
                max_attempts=3,
            )
        except ConditionTimeoutError as e:
            return -1 if "exhausted 3 attempts" in str(e) else -2

    # always-replay: the function restarts after every write, so a replayed FAILED record
    # must raise ConditionTimeoutError again for the outcome to match
    runner = DurableTestRunner(flow, always_replay=True)
    result = runner.run(None)
    assert result.status is ExecutionStatus.SUCCEEDED
    if met_on is None:
        assert result.result == -1
        assert calls == {"poll": 3}
        step = result.get_step("count")
        assert step.error is not None
        assert step.error.type == "durable_core.errors.ConditionTimeoutError"
    else:
        assert result.result == met_on  # met on the last allowed poll still succeeds
        assert calls == {"poll": met_on}


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_a_bad_max_attempts_is_refused_before_any_poll(bad: Any) -> None:
    calls = Counter[str]()

    @durable
    def flow(ctx: DurableContext, event: None) -> int:
        return ctx.wait_for_condition(
            "count",
            lambda n, sc: calls.update(["poll"]) or n,
            initial_state=0,
            done=lambda n: True,
            max_attempts=bad,
        )

    result = DurableTestRunner(flow).run(None)
    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None and "max_attempts" in result.error.message
    assert result.error.type.endswith("ValidationError")
    assert calls == {}


def test_a_serializer_without_the_methods_is_refused_naming_the_operation() -> None:
    with pytest.raises(ValidationError, match="serializer="):
        StepConfig(serializer=object())  # type: ignore[arg-type]

    @durable
    def flow(ctx: DurableContext, event: None) -> str:
        return ctx.run_in_child_context("kid", lambda c: "x", serializer=str)  # type: ignore[arg-type]

    result = DurableTestRunner(flow).run(None)
    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None and "child context 'kid'" in result.error.message


def test_a_serializer_that_raises_fails_the_step_for_good_naming_it() -> None:
    calls = Counter[str]()

    class Broken:
        def serialize(self, value: Any) -> str:
            raise ValueError("cannot")

        def deserialize(self, text: str) -> Any:
            return text

    @durable
    def flow(ctx: DurableContext, event: None) -> str:
        def body(sc: StepContext) -> str:
            calls["body"] += 1
            return "x"

        return ctx.step("charge", body, StepConfig(serializer=Broken()))

    result = DurableTestRunner(flow).run(None)
    assert result.status is ExecutionStatus.FAILED
    assert calls == {"body": 1}  # not retried: retrying cannot make it serialize
    step = result.get_step("charge")
    assert step.error is not None and step.error.type.endswith(SerializationError.__name__)
    assert "step 'charge'" in step.error.message and "cannot" in step.error.message


@pytest.mark.parametrize("semantics", list(StepSemantics))
def test_an_announced_start_costs_a_self_hosted_store_no_write(semantics: StepSemantics) -> None:
    store = MemoryStore()
    writes = Counter[str]()
    original = store.write_operations

    def counting(lease: Any, ops: Any, now: Any, ttl: Any) -> Any:
        for op in ops:
            writes[op.status.value] += 1
        return original(lease, ops, now, ttl)

    store.write_operations = counting  # type: ignore[method-assign]

    @durable
    def flow(ctx: DurableContext, event: None) -> int:
        return sum(
            ctx.step(f"s{i}", lambda sc: 1, StepConfig(semantics=semantics)) for i in range(5)
        )

    result = DurableTestRunner(flow, store=store).run(None)
    assert result.result == 5
    # at-least-once: one write per step (its end); at-most-once also writes each START
    started = 5 if semantics is StepSemantics.AT_MOST_ONCE_PER_RETRY else 0
    assert writes == Counter({"SUCCEEDED": 5, "STARTED": started})
