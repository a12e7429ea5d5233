"""Waits and wait_for_condition (durable polling)."""

from __future__ import annotations

from typing import Any

import pytest
import tenacity
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy
from aws_durable_execution_sdk_python.waits import (
    WaitForConditionConfig,
    WaitForConditionDecision,
    WaitStrategyConfig,
    create_wait_strategy,
)

from durable_core import DurableContext, durable

from .parity_history import assert_same_history
from .parity_run import Pair, ParityRunner
from .parity_xfail import diff


def aws_wait(event: Any, ctx: Any) -> str:
    ctx.wait(Duration.from_seconds(2), name="pause")
    return "woke"


@durable
def ours_wait(ctx: DurableContext, event: dict[str, Any]) -> str:
    ctx.wait("pause", 2)
    return "woke"


def aws_waits_and_steps(event: Any, ctx: Any) -> int:
    a = ctx.step(lambda sc: 1, name="a")
    ctx.wait(Duration.from_seconds(1), name="w1")
    b = ctx.step(lambda sc: 2, name="b")
    ctx.wait(Duration.from_seconds(3), name="w2")
    return a + b


@durable
def ours_waits_and_steps(ctx: DurableContext, event: dict[str, Any]) -> int:
    a = ctx.step("a", lambda sc: 1)
    ctx.wait("w1", 1)
    b = ctx.step("b", lambda sc: 2)
    ctx.wait("w2", 3)
    return a + b


def _aws_condition(max_attempts: int = 60) -> Any:
    def program(event: Any, ctx: Any) -> Any:
        strategy = create_wait_strategy(
            WaitStrategyConfig(
                should_continue_polling=lambda state: state < 3,
                max_attempts=max_attempts,
                initial_delay=Duration.from_seconds(1),
                max_delay=Duration.from_seconds(10),
                backoff_rate=2,
                jitter_strategy=JitterStrategy.NONE,
            )
        )
        config = WaitForConditionConfig(wait_strategy=strategy, initial_state=0)
        try:
            return ctx.wait_for_condition(lambda state, sc: state + 1, config, name="poll")
        except Exception:
            return "gave up"

    return program


def _ours_condition(max_attempts: int | None = None) -> Any:
    extra = {} if max_attempts is None else {"max_attempts": max_attempts}

    @durable
    def program(ctx: DurableContext, event: dict[str, Any]) -> Any:
        try:
            return ctx.wait_for_condition(
                "poll",
                lambda state, sc: state + 1,
                initial_state=0,
                done=lambda state: state >= 3,
                wait=tenacity.wait_exponential(multiplier=1, exp_base=2, min=1, max=10),
                **extra,
            )
        except Exception:
            return "gave up"

    return program


def aws_condition_custom_strategy(event: Any, ctx: Any) -> Any:
    def strategy(state: dict[str, Any], attempt: int) -> WaitForConditionDecision:
        if state["ready"]:
            return WaitForConditionDecision.stop_polling()
        return WaitForConditionDecision.continue_waiting(Duration.from_seconds(2))

    config = WaitForConditionConfig(wait_strategy=strategy, initial_state={"n": 0, "ready": False})

    def check(state: dict[str, Any], sc: Any) -> dict[str, Any]:
        return {"n": state["n"] + 1, "ready": state["n"] + 1 >= 2}

    return ctx.wait_for_condition(check, config, name="until-ready")["n"]


@durable
def ours_condition_custom_strategy(ctx: DurableContext, event: dict[str, Any]) -> Any:
    def check(state: dict[str, Any], sc: Any) -> dict[str, Any]:
        return {"n": state["n"] + 1, "ready": state["n"] + 1 >= 2}

    state = ctx.wait_for_condition(
        "until-ready",
        check,
        initial_state={"n": 0, "ready": False},
        done=lambda s: s["ready"],
        wait=tenacity.wait_fixed(2),
    )
    return state["n"]


def _has_max_attempts() -> bool:
    import inspect

    return "max_attempts" in inspect.signature(DurableContext.wait_for_condition).parameters


CASES = {
    "wait": Pair(aws_wait, ours_wait),
    "waits-and-steps": Pair(aws_waits_and_steps, ours_waits_and_steps),
    "condition": Pair(_aws_condition(), _ours_condition()),
    "condition-dict-state": Pair(aws_condition_custom_strategy, ours_condition_custom_strategy),
}
MAX_ATTEMPTS_CASES = {
    "condition-max-attempts-exhausted": (_aws_condition, 2),
    "condition-met-on-last-attempt": (_aws_condition, 3),
}


@pytest.mark.parametrize("case", [diff(c) for c in CASES])
def test_wait_history_matches_aws(parity: ParityRunner, case: str) -> None:
    aws, ours = parity.run(case, CASES[case])
    assert_same_history(aws.history, ours.history)
    assert aws.status == ours.status


@pytest.mark.skipif(
    not _has_max_attempts(), reason="issue 13 missing option: wait_for_condition(max_attempts=)"
)
@pytest.mark.parametrize("case", [diff(c) for c in MAX_ATTEMPTS_CASES])
def test_condition_max_attempts_matches_aws(parity: ParityRunner, case: str) -> None:
    make, attempts = MAX_ATTEMPTS_CASES[case]
    aws, ours = parity.run(case, Pair(make(attempts), _ours_condition(attempts)))
    assert_same_history(aws.history, ours.history)
    assert aws.status == ours.status
