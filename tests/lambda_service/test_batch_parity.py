"""parallel / map on Lambda's durable service: the same history as AWS's SDK.

Each case is one program written twice, with AWS's SDK and with durable-saga, run on AWS's
emulator; the two histories are compared event by event (types, sub-types, names, payload
text, error type and message), ignoring ids, timestamps and stack traces (each SDK prints
its own frames). Branches run one at a time, so both histories have one order. Results are
strings: how each SDK prints a list as the execution's result is not the batch's concern.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from durable_core import (
    BatchResult,
    CompletionPolicy,
    DurableContext,
    Nesting,
    durable,
)

from .emulator import Deploy, Emulator, InvokeServer

aws = pytest.importorskip("aws_durable_execution_sdk_python")
aws_config = pytest.importorskip("aws_durable_execution_sdk_python.config")

IGNORED = {"Id", "ParentId", "EventId", "EventTimestamp", "StackTrace", "DurableExecutionArn"}


class LambdaContextStub:
    aws_request_id = "batch-parity"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def comparable(history: list[dict[str, Any]]) -> list[Any]:
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: clean(v)
                for k, v in value.items()
                if k not in IGNORED and not k.endswith("Timestamp")
            }
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    out = [clean(e) for e in history]
    for event in out:  # the execution's own name is the one the test chose
        if event["EventType"].startswith("Execution"):
            event.pop("Name", None)
    return out


def fails(message: str) -> Any:
    raise ValueError(message)


class Upper:
    """The same item serializer for both SDKs (AWS passes a context argument too)."""

    def serialize(self, value: Any, *context: Any) -> str:
        return str(value).upper()

    def deserialize(self, text: str, *context: Any) -> Any:
        return text.lower()


class Reason:
    """A whole-batch serializer: the reason and the values, as one text."""

    def serialize(self, value: Any, *context: Any) -> str:
        values = value.get_results() if hasattr(value, "get_results") else value.values()
        return f"{value.completion_reason.value}|{json.dumps(values)}"

    def deserialize(self, text: str, *context: Any) -> Any:
        reason, values = text.split("|", 1)
        if context:  # AWS's SDK
            models = pytest.importorskip("aws_durable_execution_sdk_python.concurrency.models")
            items = [
                models.BatchItem(i, aws_config.BatchItemStatus.SUCCEEDED, v)
                for i, v in enumerate(json.loads(values))
            ]
            return models.BatchResult(items, models.CompletionReason(reason))
        return BatchResult[Any].model_validate(
            {
                "name": "pair",
                "completion_reason": reason,
                "items": [
                    {"index": i, "name": f"parallel-branch-{i}", "status": "SUCCEEDED", "value": v}
                    for i, v in enumerate(json.loads(values))
                ],
            }
        )


def _aws_cases() -> dict[str, Callable[[Any, Any], Any]]:
    C = aws_config  # noqa: N806 - short alias for AWS config classes
    one = {"max_concurrency": 1}

    def plain(event: Any, ctx: Any) -> Any:
        r = ctx.parallel(
            [lambda c: c.step(lambda sc: 1, name="s0"), lambda c: c.step(lambda sc: 2, name="s1")],
            name="pair",
            config=C.ParallelConfig(**one),
        )
        return str(r.get_results())

    def empty(event: Any, ctx: Any) -> Any:
        r = ctx.parallel([], name="nothing")
        m = ctx.map([], lambda c, x, i, xs: x, name="none")
        return f"{r.completion_reason.value} {m.completion_reason.value}"

    def unreachable(event: Any, ctx: Any) -> Any:
        r = ctx.map(
            [0, 1, 2, 3],
            lambda c, x, i, xs: fails(f"bad {x}") if x % 2 else x * 10,
            name="each",
            config=C.MapConfig(completion_config=C.CompletionConfig(min_successful=3), **one),
        )
        return f"{r.completion_reason.value} {r.get_results()}"

    def first(event: Any, ctx: Any) -> Any:
        r = ctx.map(
            [0, 1, 2],
            lambda c, x, i, xs: fails("first one breaks") if x == 0 else x,
            name="race",
            config=C.MapConfig(completion_config=C.CompletionConfig.first_successful(), **one),
        )
        return f"{r.completion_reason.value} {r.get_results()}"

    def fail_fast(event: Any, ctx: Any) -> Any:
        r = ctx.parallel(
            [lambda c: "ok", lambda c: fails("broken"), lambda c: "never"],
            name="fast",
            config=C.ParallelConfig(**one),
        )
        return f"{r.completion_reason.value} {r.get_results()}"

    def flat(event: Any, ctx: Any) -> Any:
        r = ctx.map(
            ["a", "b"],
            lambda c, x, i, xs: c.step(lambda sc: x * 2, name="twice"),
            name="each",
            config=C.MapConfig(nesting_type=C.NestingType.FLAT, **one),
        )
        return str(r.get_results())

    def serializers(event: Any, ctx: Any) -> Any:
        r = ctx.parallel(
            [lambda c: "x", lambda c: "y"],
            name="pair",
            config=C.ParallelConfig(item_serdes=Upper(), serdes=Reason(), **one),
        )
        return str(r.get_results())

    return {
        "plain": plain,
        "empty": empty,
        "unreachable": unreachable,
        "first": first,
        "fail_fast": fail_fast,
        "flat": flat,
        "serializers": serializers,
    }


def _our_cases() -> dict[str, Any]:
    @durable(name="batch_parity:plain")
    def plain(ctx: DurableContext, event: Any) -> Any:
        r = ctx.parallel(
            [lambda c: c.step("s0", lambda sc: 1), lambda c: c.step("s1", lambda sc: 2)],
            name="pair",
            max_concurrency=1,
        )
        return str(r.values())

    @durable(name="batch_parity:empty")
    def empty(ctx: DurableContext, event: Any) -> Any:
        r = ctx.parallel([], name="nothing")
        m = ctx.map([], lambda c, x, i: x, name="none")
        return f"{r.completion_reason.value} {m.completion_reason.value}"

    @durable(name="batch_parity:unreachable")
    def unreachable(ctx: DurableContext, event: Any) -> Any:
        r = ctx.map(
            [0, 1, 2, 3],
            lambda c, x, i: fails(f"bad {x}") if x % 2 else x * 10,
            name="each",
            completion=CompletionPolicy.at_least(3),
            max_concurrency=1,
        )
        return f"{r.completion_reason.value} {r.values()}"

    @durable(name="batch_parity:first")
    def first(ctx: DurableContext, event: Any) -> Any:
        r = ctx.map(
            [0, 1, 2],
            lambda c, x, i: fails("first one breaks") if x == 0 else x,
            name="race",
            completion=CompletionPolicy.first_successful(),
            max_concurrency=1,
        )
        return f"{r.completion_reason.value} {r.values()}"

    @durable(name="batch_parity:fail_fast")
    def fail_fast(ctx: DurableContext, event: Any) -> Any:
        r = ctx.parallel(
            [lambda c: "ok", lambda c: fails("broken"), lambda c: "never"],
            name="fast",
            max_concurrency=1,
        )
        return f"{r.completion_reason.value} {r.values()}"

    @durable(name="batch_parity:flat")
    def flat(ctx: DurableContext, event: Any) -> Any:
        r = ctx.map(
            ["a", "b"],
            lambda c, x, i: c.step("twice", lambda sc: x * 2),
            name="each",
            nesting=Nesting.FLAT,
            max_concurrency=1,
        )
        return str(r.values())

    @durable(name="batch_parity:serializers")
    def serializers(ctx: DurableContext, event: Any) -> Any:
        r = ctx.parallel(
            [lambda c: "x", lambda c: "y"],
            name="pair",
            item_serializer=Upper(),
            serializer=Reason(),
            max_concurrency=1,
        )
        return str(r.values())

    return {
        "plain": plain,
        "empty": empty,
        "unreachable": unreachable,
        "first": first,
        "fail_fast": fail_fast,
        "flat": flat,
        "serializers": serializers,
    }


CASES = sorted(_our_cases())


@pytest.mark.parametrize("case", CASES)
def test_batch_history_matches_aws(
    case: str, invoke_server: InvokeServer, emulator: Emulator, deploy: Deploy
) -> None:
    handler = aws.durable_execution(boto3_client=emulator.client)(_aws_cases()[case])
    invoke_server.register(f"batch-aws-{case}", lambda event: handler(event, LambdaContextStub()))
    deploy(f"batch-ours-{case}", _our_cases()[case])
    runs = {}
    for side in ("aws", "ours"):
        arn = emulator.start(f"batch-{side}-{case}", {})
        runs[side] = (emulator.wait(arn), emulator.history(arn))
    (aws_ex, aws_history), (our_ex, our_history) = runs["aws"], runs["ours"]
    assert (our_ex["Status"], our_ex.get("Result")) == (aws_ex["Status"], aws_ex.get("Result"))
    assert comparable(our_history) == comparable(aws_history)
