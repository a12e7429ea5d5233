"""Steps: results, retries (fixed, exponential, exhausted, not retryable), semantics, failures.

Each case is one program written with AWS's SDK (``aws_*``) and with durable-saga
(``ours_*``); the test runs both on the emulator and compares the histories event by
event (see parity_history.py for what is ignored).
"""

from __future__ import annotations

from typing import Any

import pytest
import tenacity
from aws_durable_execution_sdk_python.config import Duration, StepConfig, StepSemantics
from aws_durable_execution_sdk_python.retries import (
    JitterStrategy,
    RetryStrategyConfig,
    create_retry_strategy,
)

from durable_core import DurableContext, RetryPolicy, durable
from durable_core import StepConfig as OurStepConfig
from durable_core import StepSemantics as OurSemantics

from .parity_history import assert_same_history
from .parity_run import Pair, ParityRunner
from .parity_xfail import diff

# --- programs -----------------------------------------------------------------------------


def aws_basic(event: Any, ctx: Any) -> str:
    n = ctx.step(lambda sc: 41, name="number")
    return ctx.step(lambda sc: f"got {n + 1}", name="text")


@durable
def ours_basic(ctx: DurableContext, event: dict[str, Any]) -> str:
    n = ctx.step("number", lambda sc: 41)
    return ctx.step("text", lambda sc: f"got {n + 1}")


def aws_dict_result(event: Any, ctx: Any) -> int:
    order = ctx.step(lambda sc: {"id": 7, "items": ["a", "b"]}, name="order")
    return len(order["items"])


@durable
def ours_dict_result(ctx: DurableContext, event: dict[str, Any]) -> int:
    order: dict[str, Any] = ctx.step("order", lambda sc: {"id": 7, "items": ["a", "b"]})
    return len(order["items"])


def aws_dict_execution_result(event: Any, ctx: Any) -> dict[str, Any]:
    n = ctx.step(lambda sc: 3, name="count")
    return {"count": n, "ok": True}


@durable
def ours_dict_execution_result(ctx: DurableContext, event: dict[str, Any]) -> dict[str, Any]:
    n = ctx.step("count", lambda sc: 3)
    return {"count": n, "ok": True}


def aws_none_result(event: Any, ctx: Any) -> str:
    ctx.step(lambda sc: None, name="nothing")
    return "done"


@durable
def ours_none_result(ctx: DurableContext, event: dict[str, Any]) -> str:
    ctx.step("nothing", lambda sc: None)
    return "done"


def _flaky(fails: int) -> Any:
    """A step body failing its first ``fails`` attempts with ValueError."""

    def body(sc: Any) -> str:
        if sc.attempt <= fails:
            raise ValueError(f"attempt {sc.attempt} failed")
        return f"ok on attempt {sc.attempt}"

    return body


def _aws_retry(max_attempts: int, rate: float, **kw: Any) -> StepConfig:
    return StepConfig(
        retry_strategy=create_retry_strategy(
            RetryStrategyConfig(
                max_attempts=max_attempts,
                initial_delay=Duration.from_seconds(1),
                max_delay=Duration.from_seconds(60),
                backoff_rate=rate,
                jitter_strategy=JitterStrategy.NONE,
                **kw,
            )
        )
    )


def _ours_retry(max_attempts: int, wait: Any, **kw: Any) -> OurStepConfig:
    return OurStepConfig(
        retry=RetryPolicy(stop=tenacity.stop_after_attempt(max_attempts), wait=wait, **kw)
    )


def aws_retry_fixed(event: Any, ctx: Any) -> str:
    return ctx.step(_flaky(2), name="flaky", config=_aws_retry(3, 1))


@durable
def ours_retry_fixed(ctx: DurableContext, event: dict[str, Any]) -> str:
    return ctx.step("flaky", _flaky(2), _ours_retry(3, tenacity.wait_fixed(1)))


def aws_retry_exponential(event: Any, ctx: Any) -> str:
    return ctx.step(_flaky(3), name="flaky", config=_aws_retry(4, 2))


@durable
def ours_retry_exponential(ctx: DurableContext, event: dict[str, Any]) -> str:
    wait = tenacity.wait_exponential(multiplier=1, exp_base=2, min=1, max=60)
    return ctx.step("flaky", _flaky(3), _ours_retry(4, wait))


def aws_retry_exhausted(event: Any, ctx: Any) -> str:
    try:
        ctx.step(_flaky(99), name="hopeless", config=_aws_retry(3, 1))
    except Exception:
        return "gave up"
    return "unreachable"


@durable
def ours_retry_exhausted(ctx: DurableContext, event: dict[str, Any]) -> str:
    try:
        ctx.step("hopeless", _flaky(99), _ours_retry(3, tenacity.wait_fixed(1)))
    except Exception:
        return "gave up"
    return "unreachable"


def aws_not_retryable(event: Any, ctx: Any) -> str:
    config = _aws_retry(5, 1, retryable_error_types=[ConnectionError])
    try:
        ctx.step(_flaky(99), name="picky", config=config)
    except Exception:
        return "not retried"
    return "unreachable"


@durable
def ours_not_retryable(ctx: DurableContext, event: dict[str, Any]) -> str:
    config = _ours_retry(
        5, tenacity.wait_fixed(1), retry=tenacity.retry_if_exception_type(ConnectionError)
    )
    try:
        ctx.step("picky", _flaky(99), config)
    except Exception:
        return "not retried"
    return "unreachable"


def aws_at_most_once(event: Any, ctx: Any) -> str:
    config = StepConfig(step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY)
    return ctx.step(lambda sc: "charged once", name="charge", config=config)


@durable
def ours_at_most_once(ctx: DurableContext, event: dict[str, Any]) -> str:
    config = OurStepConfig(semantics=OurSemantics.AT_MOST_ONCE_PER_RETRY)
    return ctx.step("charge", lambda sc: "charged once", config)


def aws_at_most_once_retry(event: Any, ctx: Any) -> str:
    retry = _aws_retry(2, 1)
    config = StepConfig(
        retry_strategy=retry.retry_strategy,
        step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
    )
    return ctx.step(_flaky(1), name="charge", config=config)


@durable
def ours_at_most_once_retry(ctx: DurableContext, event: dict[str, Any]) -> str:
    config = OurStepConfig(
        retry=RetryPolicy(stop=tenacity.stop_after_attempt(2), wait=tenacity.wait_fixed(1)),
        semantics=OurSemantics.AT_MOST_ONCE_PER_RETRY,
    )
    return ctx.step("charge", _flaky(1), config)


def aws_execution_fails(event: Any, ctx: Any) -> str:
    ctx.step(lambda sc: 1, name="before")
    raise ValueError("Intentional handler failure")


@durable
def ours_execution_fails(ctx: DurableContext, event: dict[str, Any]) -> str:
    ctx.step("before", lambda sc: 1)
    raise ValueError("Intentional handler failure")


def aws_step_error_uncaught(event: Any, ctx: Any) -> str:
    ctx.step(_flaky(99), name="doomed", config=_aws_retry(1, 1))
    return "unreachable"


@durable
def ours_step_error_uncaught(ctx: DurableContext, event: dict[str, Any]) -> str:
    ctx.step("doomed", _flaky(99), OurStepConfig(retry=RetryPolicy.no_retry()))
    return "unreachable"


BIG = "x" * 300_000


def aws_large_result(event: Any, ctx: Any) -> int:
    text = ctx.step(lambda sc: BIG, name="big")
    return len(text)


@durable
def ours_large_result(ctx: DurableContext, event: dict[str, Any]) -> int:
    text = ctx.step("big", lambda sc: BIG)
    return len(text)


def aws_input_echo(event: Any, ctx: Any) -> Any:
    return ctx.step(lambda sc: event["name"], name="echo")


@durable
def ours_input_echo(ctx: DurableContext, event: dict[str, Any]) -> Any:
    return ctx.step("echo", lambda sc: event["name"])


CASES = {
    "step-basic": Pair(aws_basic, ours_basic),
    "step-dict-result": Pair(aws_dict_result, ours_dict_result),
    "step-dict-execution-result": Pair(aws_dict_execution_result, ours_dict_execution_result),
    "step-none-result": Pair(aws_none_result, ours_none_result),
    "step-retry-fixed": Pair(aws_retry_fixed, ours_retry_fixed),
    "step-retry-exponential": Pair(aws_retry_exponential, ours_retry_exponential),
    "step-retry-exhausted": Pair(aws_retry_exhausted, ours_retry_exhausted),
    "step-not-retryable": Pair(aws_not_retryable, ours_not_retryable),
    "step-at-most-once": Pair(aws_at_most_once, ours_at_most_once),
    "step-at-most-once-retry": Pair(aws_at_most_once_retry, ours_at_most_once_retry),
    "step-execution-fails": Pair(aws_execution_fails, ours_execution_fails),
    "step-step-error-uncaught": Pair(aws_step_error_uncaught, ours_step_error_uncaught),
    "step-large-result": Pair(aws_large_result, ours_large_result),
    "step-input-echo": Pair(aws_input_echo, ours_input_echo, event={"name": "Ada"}),
}


@pytest.mark.parametrize("case", [diff(c) for c in CASES])
def test_step_history_matches_aws(parity: ParityRunner, case: str) -> None:
    aws, ours = parity.run(case, CASES[case])
    assert_same_history(aws.history, ours.history)
    assert aws.status == ours.status
