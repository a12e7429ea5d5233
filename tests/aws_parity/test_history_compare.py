"""The comparison itself: what it ignores, what it regroups, and that it stays narrow."""

from __future__ import annotations

from typing import Any

import pytest

from .parity_history import assert_same_history, normalize


def ev(kind: str, op: str | None = None, parent: str | None = None, **extra: Any) -> Any:
    event: dict[str, Any] = {"EventType": kind, "EventId": 0, "EventTimestamp": "t"}
    if op is not None:
        event["Id"] = op
    if parent is not None:
        event["ParentId"] = parent
    return event | extra


def batch(*branch_events: list[Any]) -> list[Any]:
    """A Parallel 'p' whose branches' events come in the given interleaving."""
    return [
        ev("ContextStarted", "p", SubType="Parallel", Name="p"),
        *[e for events in branch_events for e in events],
        ev("ContextSucceeded", "p", SubType="Parallel", Name="p"),
    ]


B0 = [
    ev("ContextStarted", "b0", "p", Name="parallel-branch-0"),
    ev("StepSucceeded", "s0", "b0", Name="a"),
]
B1 = [
    ev("ContextStarted", "b1", "p", Name="parallel-branch-1"),
    ev("StepSucceeded", "s1", "b1", Name="b"),
]


def test_ids_timestamps_and_stack_text_are_ignored() -> None:
    a = [
        ev(
            "StepFailed",
            "x",
            Name="s",
            D={"Error": {"StackTrace": ["a.py:1"]}, "NextAttemptTimestamp": 1},
        )
    ]
    b = [
        ev(
            "StepFailed",
            "y",
            Name="s",
            D={"Error": {"StackTrace": ["b.py:9"]}, "NextAttemptTimestamp": 2},
        )
    ]
    assert_same_history(a, b)


def test_stack_trace_presence_still_counts() -> None:
    a = [ev("StepFailed", "x", Name="s", D={"Error": {"StackTrace": ["a.py:1"]}})]
    b = [ev("StepFailed", "x", Name="s", D={"Error": {}})]
    with pytest.raises(AssertionError, match="StackTrace: aws"):
        assert_same_history(a, b)


def test_branches_are_regrouped_in_name_order() -> None:
    interleaved = batch([B1[0], B0[0], B1[1], B0[1]])
    assert normalize(interleaved) == normalize(batch(B0, B1))


def test_order_inside_a_branch_still_counts() -> None:
    with pytest.raises(AssertionError, match="differ"):
        assert_same_history(batch([B0[1], B0[0]], B1), batch(B0, B1))


def test_payload_text_is_exact() -> None:
    a = [ev("ExecutionSucceeded", Name="n", D={"Payload": '{"a": 1}'})]
    b = [ev("ExecutionSucceeded", Name="n", D={"Payload": '{"a":1}'})]
    with pytest.raises(AssertionError, match=r"D.Payload: aws"):
        assert_same_history(a, b)


def test_invocation_end_moves_only_past_service_completions() -> None:
    done = ev("InvocationCompleted")
    wait_ok = ev("WaitSucceeded", "w", Name="w")
    step = ev("StepSucceeded", "s", Name="s")
    assert_same_history([done, wait_ok, step], [wait_ok, done, step])
    with pytest.raises(AssertionError):
        assert_same_history([done, step], [step, done])
    with pytest.raises(AssertionError):  # a missing invocation end is a difference
        assert_same_history([wait_ok, done, step], [wait_ok, step])


def test_invocation_ends_inside_a_batch_are_not_compared_outside_they_are() -> None:
    inside = batch([*B0, ev("InvocationCompleted")], B1)
    assert_same_history(inside, batch(B0, B1))
    outside = [*batch(B0, B1), ev("InvocationCompleted")]
    with pytest.raises(AssertionError, match="only in aws"):
        assert_same_history(outside, batch(B0, B1))
