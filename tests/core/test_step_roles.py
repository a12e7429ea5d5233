"""``StepConfig.role``: recorded on the step's record for viewers, never compared on replay."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from durable_core import (
    DurableContext,
    ExecutionStatus,
    StepConfig,
    StepContext,
    ValidationError,
    durable,
)
from durable_core.testing import DurableTestRunner

calls: Counter[str] = Counter()
role_now = {"value": "mylib.first"}


@durable(name="roles-lib")
def marked(ctx: DurableContext, event: None) -> str:
    def work(sc: StepContext) -> str:
        calls["work"] += 1
        return "done"

    value = ctx.step("work", work, StepConfig(role=role_now["value"]))
    ctx.wait("pause", timedelta(hours=1))
    return value


def test_the_role_is_recorded_and_gives_the_execution_its_role() -> None:
    calls.clear()
    role_now["value"] = "mylib.first"
    result = DurableTestRunner(marked).run(None)
    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.get_step("work").record.role == "mylib.first"
    assert result.execution.role == "mylib"


def test_a_changed_role_is_not_a_divergence_on_replay() -> None:
    calls.clear()
    role_now["value"] = "mylib.first"
    runner = DurableTestRunner(marked)
    waiting = runner.run(None, execution_id="roles-1", skip_time=False)
    assert waiting.status is ExecutionStatus.RUNNING
    role_now["value"] = "mylib.other"  # display only: the recorded record governs
    done = runner.advance_time(timedelta(hours=1))
    assert done.status is ExecutionStatus.SUCCEEDED
    assert calls["work"] == 1
    assert done.get_step("work").record.role == "mylib.first"


@pytest.mark.parametrize("bad", ["", "with space", "x" * 65, "tab\t", "é.x", 3])
def test_a_bad_role_is_refused_naming_it(bad: object) -> None:
    with pytest.raises(ValidationError, match="role"):
        StepConfig(role=bad)  # type: ignore[arg-type]
