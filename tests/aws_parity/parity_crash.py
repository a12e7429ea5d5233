"""One program killed in the middle of a step, written with both SDKs (run by lambda_proc).

Each handler runs in a fresh process per invocation (``lambda_service.lambda_proc``), its
boto3 client from the environment as in Lambda. The ``slow`` step's first run creates
``$CRASH_MARKER`` and hangs until the test kills the process; every later run finishes it.
``$CRASH_SEMANTICS`` picks the step's semantics (``at-least-once`` or ``at-most-once``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from aws_durable_execution_sdk_python import durable_execution
from aws_durable_execution_sdk_python.config import Duration, StepConfig, StepSemantics
from aws_durable_execution_sdk_python.retries import (
    JitterStrategy,
    RetryStrategyConfig,
    create_retry_strategy,
)

from durable_core import DurableContext, RetryPolicy, durable
from durable_core import StepConfig as OurStepConfig
from durable_core import StepSemantics as OurSemantics
from durable_core.aws_lambda import durable_handler

from .parity_run import LambdaContextStub


def _slow(sc: Any) -> str:
    marker = Path(os.environ["CRASH_MARKER"])
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        time.sleep(120)  # the test kills this process here
    return "slow-done"


def _at_most_once() -> bool:
    return os.environ.get("CRASH_SEMANTICS") == "at-most-once"


def aws_program(event: Any, ctx: Any) -> str:
    retry = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=3,
            initial_delay=Duration.from_seconds(1),
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    semantics = (
        StepSemantics.AT_MOST_ONCE_PER_RETRY
        if _at_most_once()
        else StepSemantics.AT_LEAST_ONCE_PER_RETRY
    )
    first = ctx.step(lambda sc: "reserved", name="reserve")
    second = ctx.step(
        _slow, name="slow", config=StepConfig(retry_strategy=retry, step_semantics=semantics)
    )
    third = ctx.step(lambda sc: "confirmed", name="confirm")
    return f"{first} {second} {third}"


@durable
def ours_program(ctx: DurableContext, event: dict[str, Any]) -> str:
    import tenacity

    config = OurStepConfig(
        retry=RetryPolicy(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_fixed(1)),
        semantics=(
            OurSemantics.AT_MOST_ONCE_PER_RETRY
            if _at_most_once()
            else OurSemantics.AT_LEAST_ONCE_PER_RETRY
        ),
    )
    first = ctx.step("reserve", lambda sc: "reserved")
    second = ctx.step("slow", _slow, config)
    third = ctx.step("confirm", lambda sc: "confirmed")
    return f"{first} {second} {third}"


_aws_handler = durable_execution(aws_program)


def aws_handler(event: Any, context: Any) -> Any:
    """AWS's SDK handler, given the Lambda context stub its invocation needs."""
    return _aws_handler(event, LambdaContextStub())


ours_handler = durable_handler(ours_program)
