"""Generated batches checked against AWS's SDK itself: its completion rules and its record.

The oracle is AWS's own code (``aws-durable-execution-sdk-python``): its ``CompletionPolicy``
decides when a batch run one branch at a time stops and why, and its serdes writes the
text of the ``BatchResult`` it would record. Our batch, on the memory and SQLite stores,
must stop at the same branch with the same reason, run exactly the branches AWS would run,
record the same text, and replay it without running a branch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from durable_core import (
    BatchResult,
    CompletionPolicy,
    DurableContext,
    ExecutionStatus,
    Runtime,
    ValidationError,
    durable,
)
from durable_core.function import DurableFunction
from durable_core.stores.memory import MemoryStore
from durable_core.stores.sqlite import SQLiteStore
from durable_core.testing import VirtualClock
from tests.operations.conftest import Ledger, replay_finished

aws_config = pytest.importorskip("aws_durable_execution_sdk_python.config")
aws_models = pytest.importorskip("aws_durable_execution_sdk_python.concurrency.models")
aws_serdes = pytest.importorskip("aws_durable_execution_sdk_python.serdes")
aws_service = pytest.importorskip("aws_durable_execution_sdk_python.lambda_service")
aws_errors = pytest.importorskip("aws_durable_execution_sdk_python.exceptions")


class ItemError(Exception):
    """What a failing item raises."""


Fields = tuple[int | None, int | None, float | None]


def aws_expected(plan: str, fields: Fields) -> tuple[list[int], str, str]:
    """What AWS's SDK does with ``plan`` one branch at a time: the branches it runs, the
    completion reason, and the text of the BatchResult it records."""
    least, count, pct = fields
    config = aws_config.CompletionConfig(
        min_successful=least, tolerated_failure_count=count, tolerated_failure_percentage=pct
    )
    policy = aws_models.CompletionPolicy.from_config(len(plan), config)
    ok = failed = 0
    items = []
    for i, kind in enumerate(plan):  # its coordinator loop with max_concurrency=1
        if policy.is_complete(ok, failed) or not policy.should_continue(failed):
            break
        if kind == "s":
            ok += 1
            items.append(aws_models.BatchItem(i, aws_config.BatchItemStatus.SUCCEEDED, i * 10))
        else:
            failed += 1
            error = aws_service.ErrorObject.from_exception(ItemError(f"item {i} is broken"))
            items.append(aws_models.BatchItem(i, aws_config.BatchItemStatus.FAILED, error=error))
    reason = policy.reason(ok, failed)
    text = aws_serdes.EXTENDED_TYPES_SERDES.serialize(aws_models.BatchResult(items, reason))
    return [item.index for item in items], reason.value, text


def planned_map(plan: str, policy: CompletionPolicy, ledger: Ledger) -> DurableFunction[Any, Any]:
    @durable(name="tests:aws_rules_map")
    def wf(ctx: DurableContext, event: None) -> BatchResult[int]:
        def item(c: DurableContext, kind: str, i: int) -> int:
            ledger.hit(f"ran-{i}")
            if kind == "f":
                raise ItemError(f"item {i} is broken")
            return i * 10

        return ctx.map(list(plan), item, name="plan", max_concurrency=1, completion=policy)

    return wf


def check_against_aws(store: Any, plan: str, fields: Fields) -> None:
    least, count, pct = fields
    policy = CompletionPolicy(
        min_successful=least, tolerated_failure_count=count, tolerated_failure_percentage=pct
    )
    if least is not None and least > len(plan):
        with pytest.raises(aws_errors.ValidationError):
            aws_config.CompletionConfig(min_successful=least)._validate_for_total(len(plan))
        with pytest.raises(ValidationError):
            policy.check_feasible(len(plan), "map")
        return
    ran, reason, text = aws_expected(plan, fields)
    ledger, clock = Ledger(), VirtualClock()
    rt = Runtime(store, clock=clock)
    fn = planned_map(plan, policy, ledger)
    ex = rt.run(fn, None)
    assert ex.status is ExecutionStatus.SUCCEEDED, ex.error
    result = rt.result(ex.id, BatchResult[int])
    assert result.completion_reason == reason
    assert ledger.snapshot() == {f"ran-{i}": 1 for i in ran}
    assert [i.index for i in result.items if i.status.value != "NOT_STARTED"] == ran
    batch = next(op for op in rt.operations(ex.id) if op.sub_type == "Map")
    assert batch.result == text  # the very text AWS's SDK records
    end, writes = replay_finished(store, clock, fn, ex.id)
    assert end.status is ExecutionStatus.SUCCEEDED
    assert writes == 0 and ledger.snapshot() == {f"ran-{i}": 1 for i in ran}  # no branch ran


PLANS = st.text(alphabet="sf", max_size=6)
FIELDS = st.tuples(
    st.none() | st.integers(1, 6),
    st.none() | st.integers(0, 4),
    st.none() | st.sampled_from([0, 10, 25, 33.4, 50, 66.7, 100]),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=PLANS, fields=FIELDS)
def test_generated_batches_stop_where_aws_stops_and_record_its_text(
    plan: str, fields: Fields
) -> None:
    check_against_aws(MemoryStore(), plan, fields)


@pytest.mark.parametrize(
    ("plan", "fields"),
    [
        ("sfsf", (3, None, None)),  # min_successful unreachable: AWS runs every branch
        ("sfss", (None, None, None)),  # no field set: the first failure decides
        ("ffss", (2, None, None)),  # reached at the last branch: ALL_COMPLETED, not MIN
        ("fsfs", (None, 1, 50)),
        ("", (None, None, None)),  # an empty batch
    ],
)
def test_the_same_on_sqlite(tmp_path: Path, plan: str, fields: Fields) -> None:
    check_against_aws(SQLiteStore(tmp_path / "batch.db"), plan, fields)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (CompletionPolicy.all_successful(), "all_successful"),
        (CompletionPolicy.all_completed(), "all_completed"),
        (CompletionPolicy.first_successful(), "first_successful"),
    ],
)
def test_named_policies_are_aws_named_configs(ours: CompletionPolicy, theirs: str) -> None:
    config = getattr(aws_config.CompletionConfig, theirs)()
    assert (
        ours.min_successful,
        ours.tolerated_failure_count,
        ours.tolerated_failure_percentage,
    ) == (
        config.min_successful,
        config.tolerated_failure_count,
        config.tolerated_failure_percentage,
    )
