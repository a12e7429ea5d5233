"""Executions recorded by 0.1 keep replaying after the upgrade.

``tests/fixtures/journal_0_1_wait_for_callback.json`` was written by durable-saga 0.1 (the
code before the AWS-parity changes) running :func:`approval` below: one execution waiting
for its callback, one finished. In 0.1 ``wait_for_callback`` named its callback after the
operation and its step ``<name>-submit``, and its context recorded the parsed value; since
0.2 they are ``<name> create callback id`` and ``<name> submitter`` and the context records
the caller's raw text. A journal of either shape must replay as it was recorded.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from durable_core import DurableContext, ExecutionStatus, OperationStatus, durable
from durable_core.records import Execution, Operation
from durable_core.stores.memory import MemoryStore
from durable_core.testing import DurableTestRunner

FIXTURE = Path(__file__).parent.parent / "fixtures" / "journal_0_1_wait_for_callback.json"
calls: Counter[str] = Counter()


@durable(name="legacy-approval")
def approval(ctx: DurableContext, event: dict[str, Any]) -> dict[str, Any]:
    def before(_: Any) -> int:
        calls["before"] += 1
        return int(event["order"])

    def submit(token: str, _: Any) -> None:
        calls["submit"] += 1

    ctx.step("before", before)
    decision = ctx.wait_for_callback("approval", submit, result_type=dict[str, Any])
    return {"order": event["order"], "decision": decision}


def _seeded(which: str, **changes: Any) -> tuple[DurableTestRunner[Any, Any], list[Operation]]:
    recorded = json.loads(FIXTURE.read_text())[which]
    store = MemoryStore()
    execution = Execution.model_validate(recorded["execution"]).evolve(**changes)
    store.create_execution(execution)
    ops = [Operation.model_validate(op) for op in recorded["operations"]]
    runner = DurableTestRunner(approval, store=store)
    lease = store.acquire_lease(execution.id, "seed", runner.clock.now(), timedelta(minutes=1))
    assert lease is not None
    store.write_operations(lease, ops, runner.clock.now(), timedelta(minutes=1))
    store.release_lease(lease)
    calls.clear()
    return runner, ops


def test_a_finished_0_1_wait_for_callback_replays_its_recorded_value() -> None:
    # As if the process died after the context finished but before the execution did.
    recorded = json.loads(FIXTURE.read_text())["finished"]["execution"]
    runner, ops = _seeded(
        "finished", status=ExecutionStatus.RUNNING, result=None, wake_at=recorded["created_at"]
    )

    result = runner.resume(execution_id="legacy-finished")

    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == {"order": 8, "decision": {"ok": True, "by": "ana"}}
    assert calls == Counter()  # nothing ran again
    after = runner.store.load_operations("legacy-finished")
    assert [(op.name, op.status) for op in after] == [(op.name, op.status) for op in ops]


@pytest.mark.parametrize("payload", [{"ok": False, "by": "bo"}, {}])
def test_a_0_1_wait_for_callback_in_flight_finishes_under_its_old_names(
    payload: dict[str, Any],
) -> None:
    runner, ops = _seeded("in_flight")
    token = next(op.callback_id for op in ops if op.type.value == "CALLBACK")
    assert token is not None

    runner.send_callback_success(token, payload)
    result = runner.resume(execution_id="legacy-in-flight")

    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == {"order": 7, "decision": payload}
    assert calls == Counter()  # the step and the submitter had run under 0.1
    after = runner.store.load_operations("legacy-in-flight")
    names = {op.name: op.status for op in after}
    assert names == {
        "before": OperationStatus.SUCCEEDED,
        "approval": OperationStatus.SUCCEEDED,  # the context and its callback, as recorded
        "approval-submit": OperationStatus.SUCCEEDED,
    }
    context = next(op for op in after if op.type.value == "CONTEXT")
    assert json.loads(context.result or "") == payload  # still the 0.1 form: the value


def test_a_new_wait_for_callback_records_the_raw_text_under_aws_names() -> None:
    runner = DurableTestRunner(approval)
    runner.run({"order": 9}, execution_id="new")
    runner.send_callback_success("approval", {"ok": True})
    result = runner.resume()

    assert result.result == {"order": 9, "decision": {"ok": True}}
    ops = runner.store.load_operations("new")
    assert {op.name for op in ops} == {
        "before",
        "approval",
        "approval create callback id",
        "approval submitter",
    }
    context = next(op for op in ops if op.type.value == "CONTEXT")
    callback = next(op for op in ops if op.type.value == "CALLBACK")
    assert context.result == json.dumps(callback.result)  # the caller's text, as a string
