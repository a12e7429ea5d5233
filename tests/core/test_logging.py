"""The context logger is bound to the execution and silent while replaying."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from durable_core import DurableContext, StepContext, durable
from durable_core.testing import DurableTestRunner


@durable
def logged(ctx: DurableContext, event: None) -> str:
    ctx.logger.info("order received")

    def charge(sc: StepContext) -> int:
        sc.logger.info("charging")
        return 1

    ctx.step("charge", charge)
    ctx.logger.info("before wait")
    ctx.wait("cool-off", timedelta(days=2))
    ctx.logger.info("after wait")
    ctx.step("ship", lambda sc: 2)
    ctx.logger.info("done")
    return "ok"


@pytest.mark.parametrize("always_replay", [False, True], ids=["normal", "always-replay"])
def test_each_line_appears_once_across_resumes(always_replay: bool) -> None:
    with capture_logs() as logs:
        result = DurableTestRunner(logged, always_replay=always_replay).run(None)

    events = [entry["event"] for entry in logs]
    assert events == ["order received", "charging", "before wait", "after wait", "done"]
    assert all(entry["execution_id"] == result.execution_id for entry in logs)


def test_step_lines_are_bound_to_the_step_and_attempt() -> None:
    with capture_logs() as logs:
        DurableTestRunner(logged).run(None)

    charging = next(entry for entry in logs if entry["event"] == "charging")
    assert charging["operation"] == "charge"
    assert charging["attempt"] == 1
    assert charging["log_level"] == "info"


def test_lines_from_a_retried_step_appear_once_per_attempt(durable_runner: Any) -> None:
    import tenacity

    from durable_core import RetryPolicy, StepConfig

    @durable
    def wf(ctx: DurableContext, event: None) -> None:
        def flaky(sc: StepContext) -> None:
            sc.logger.warning("trying")
            if sc.attempt < 3:
                raise ConnectionError

        ctx.step("flaky", flaky, StepConfig(retry=RetryPolicy(wait=tenacity.wait_fixed(120))))

    with capture_logs() as logs:
        durable_runner(wf).run(None)

    assert [entry["attempt"] for entry in logs if entry["event"] == "trying"] == [1, 2, 3]
