"""The oracle itself, on hand-computed cases: each rule of its docstring, once.

The generated tests trust the oracle; these pin what it says on small programs whose
answer is read straight off docs/sagas.md, so a wrong oracle fails here, not silently.
"""

from __future__ import annotations

import pytest

from scenarios.oracle import deadline_s, expect, expect_all, points
from scenarios.programs import (
    DEADLINE_MARGIN_S,
    WAIT_S,
    Callback,
    Child,
    Condition,
    Parallel,
    Program,
    Schedule,
    Step,
    Stop,
    Wait,
    scenario_from_json,
    to_json,
)

A, B, C = Step("a"), Step("b"), Step("c")


def test_a_failure_undoes_the_completed_steps_in_reverse() -> None:
    want = expect(Program((A, B, Step("c", final="fail"))), Schedule())
    assert (want.dos, want.undos) == (["a", "b"], ["b", "a"])
    assert (want.execution_status, want.status) == ("FAILED", "compensated")
    assert want.not_undone == frozenset()


def test_no_undo_and_uncertain_steps() -> None:
    plain = Step("p", kind="plain")
    lost = Step("x", final="fail_after_effect", retries=2, uncertain=True)
    leak = Step("y", final="fail_after_effect", retries=2)
    assert expect(Program((A, plain, lost)), Schedule()).undos == ["x", "a"]
    want = expect(Program((A, leak)), Schedule())
    assert (want.dos, want.undos) == (["a", "y"], ["a"])  # register-after: y is not undone


def test_nothing_is_undone_past_the_pivot() -> None:
    program = Program((A, Step("pay", kind="pivot"), Callback("ship", outcome="failure")))
    want = expect(program, Schedule())
    assert want.undos == []
    assert (want.execution_status, want.status) == ("FAILED", "failed")
    assert want.not_undone == frozenset({"a"})


def test_a_cancel_while_waiting_rolls_back_with_its_reason() -> None:
    program = Program((A, B, Wait("w"), C))
    want = expect(program, Schedule(stop=Stop("cancel", "wait:w", "customer called", "later")))
    assert (want.dos, want.undos) == (["a", "b"], ["b", "a"])
    assert (want.execution_status, want.status) == ("CANCELLED", "compensated")
    assert (want.cause_kind, want.cause_message) == ("cancelled", "customer called")
    blank = expect(program, Schedule(stop=Stop("cancel", "wait:w", "  ")))
    assert blank.cause_message == "no reason given"


def test_a_cancel_reaches_a_callback_result_after_the_steps_between() -> None:
    program = Program((A, Callback("cb", between=(B,)), C))
    want = expect(program, Schedule(stop=Stop("cancel", "during:b")))
    assert (want.dos, want.undos) == (["a", "b"], ["b", "a"])


def test_a_cancel_after_the_pivot() -> None:
    program = Program((Step("pay", kind="pivot"), Step("ship", kind="plain"), Wait("w")))
    absorbed = expect(program, Schedule(stop=Stop("cancel", "before:ship")))
    assert (absorbed.dos, absorbed.status) == (["pay", "ship"], "completed")
    at_wait = expect(program, Schedule(stop=Stop("cancel", "wait:w")))
    assert (at_wait.execution_status, at_wait.status, at_wait.undos) == (
        "CANCELLED",
        "cancelled",
        [],
    )


def test_a_terminate_stops_the_rollback_a_cancel_started() -> None:
    program = Program((A, B, Step("c", undo="transient"), Wait("w")))
    schedule = Schedule(stop=Stop("cancel", "wait:w"), terminate_at="wait:compensate:c")
    want = expect(program, schedule)
    assert (want.status, want.undos, want.not_undone) == (
        "terminated",
        [],
        frozenset({"a", "b", "c"}),
    )


def test_terminate_undoes_nothing_more() -> None:
    program = Program((A, B, Wait("w")))
    want = expect(program, Schedule(stop=Stop("terminate", "wait:w", "fraud")))
    assert (want.undos, want.status, want.execution_status) == ([], "terminated", "CANCELLED")
    assert want.not_undone == frozenset({"a", "b"})


def test_parallel_branches_are_undone_in_reverse_branch_order() -> None:
    group = Parallel("g", (Step("x", retries=1), Step("y"), Step("z", kind="plain")))
    want = expect(Program((A, group, Step("c", final="fail"))), Schedule())
    assert sorted(want.dos) == ["a", "g/x", "g/y", "g/z"]
    assert want.undos == ["g/y", "g/x", "a"]


def test_a_cancel_in_a_group_lands_in_one_waiting_branch_the_others_finish() -> None:
    group = Parallel("g", (Step("x", retries=1), Step("y", retries=2), Step("z")))
    first = expect_all(Program((group,)), Schedule(stop=Stop("cancel", "wait:g#1")))
    assert sorted(w.undos for w in first) == [["g/z", "g/x"], ["g/z", "g/y"]]
    second = expect_all(Program((group,)), Schedule(stop=Stop("cancel", "wait:g#2")))
    assert [w.undos for w in second] == [["g/z", "g/x"]]  # only y still waits
    before = expect_all(Program((A, group)), Schedule(stop=Stop("cancel", "before:g")))
    assert [(w.dos, w.undos) for w in before] == [(["a"], ["a"])]  # the group never starts


def test_a_stop_while_a_step_waits_to_retry() -> None:
    lost = Step("x", retries=2, final="fail_after_effect", uncertain=True)
    want = expect(Program((A, lost)), Schedule(stop=Stop("cancel", "wait:x")))
    assert (want.dos, want.undos) == (["a", "x"], ["x", "a"])  # its undo runs, uncertain
    plain = expect(Program((A, Step("y", retries=1))), Schedule(stop=Stop("cancel", "wait:y")))
    assert (plain.dos, plain.undos) == (["a"], ["a"])  # it does not run again


def test_a_child_saga_is_undone_as_a_unit_at_its_place() -> None:
    program = Program((A, Child("trip", (B, C)), Step("d", final="fail")))
    assert expect(program, Schedule()).undos == ["trip/c", "trip/b", "a"]


@pytest.mark.parametrize(
    ("decision", "status", "undos", "not_undone"),
    [
        ("retry", "compensated", ["b", "a"], set()),
        ("skip", "partially_compensated", ["a"], {"b"}),
        ("resolve", "compensated", ["a"], set()),
        ("terminate", "terminated", [], {"a", "b"}),
        ("leave", "compensation_failed", [], {"a", "b"}),
    ],
)
def test_operator_decisions_on_a_parked_undo(
    decision: str, status: str, undos: list[str], not_undone: set[str]
) -> None:
    program = Program((A, Step("b", undo="down"), Step("c", final="fail")))
    want = expect(program, Schedule(decisions=(("b", decision),)))  # type: ignore[arg-type]
    assert (want.status, want.undos, want.not_undone) == (status, undos, frozenset(not_undone))
    assert want.parked_on == ("b" if decision == "leave" else None)


def test_a_cancel_during_a_rollback_is_absorbed() -> None:
    program = Program((A, Step("b", undo="down"), Step("c", final="fail")))
    schedule = Schedule(stop=Stop("cancel", "wait:operator:b"), decisions=(("b", "retry"),))
    want = expect(program, schedule)
    assert (want.status, want.undos) == ("compensated", ["b", "a"])


def test_points_and_the_deadline() -> None:
    program = Program((A, Wait("w1"), Condition("c", polls=2), Wait("w2")))
    labels = [p.label for p in points(program, Schedule())]
    assert labels[:3] == ["before:a", "during:a", "before:w1"]
    assert "wait:c" in labels and "wait:w2" in labels
    schedule = Schedule(stop=Stop("deadline", "wait:w2", "deadline"))
    assert deadline_s(program, schedule) == 2 * WAIT_S + DEADLINE_MARGIN_S
    want = expect(program, schedule)
    assert (want.status, want.cause_kind, want.undos) == ("compensated", "deadline", ["a"])


def test_scenarios_round_trip_through_json() -> None:
    program = Program((A, Callback("cb", (B,), "timeout"), Child("k", (Wait("w"),))))
    schedule = Schedule(
        stop=Stop("cancel", "wait:k/w", "r", "s"), decisions=(("b", "skip"),), terminate_at="x"
    )
    assert scenario_from_json(to_json(program, schedule)) == (program, schedule)


def test_a_terminate_in_a_group_keeps_what_finished_and_may_stop_the_rest() -> None:
    group = Parallel("g", (Step("x", kind="plain"), Step("y", retries=1), Step("z", retries=1)))
    ends = expect_all(Program((group,)), Schedule(stop=Stop("terminate", "wait:g#1", "fraud")))
    assert sorted({tuple(sorted(w.dos)) for w in ends}) == [
        ("g/x",),
        ("g/x", "g/y"),
        ("g/x", "g/z"),
    ]
    assert {w.status for w in ends} == {"terminated"}
