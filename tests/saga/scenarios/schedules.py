"""Hypothesis strategies for interruption schedules, drawn from the points a program passes.

A schedule is drawn *for* a program: the oracle lists the points an uninterrupted run passes
(:func:`scenarios.oracle.points`), and the stop request is placed at one of them, so every
generated stop is reached. Kinds of schedule: none; cancel (at any point: before an
operation, during a step body, while suspended on a timer / callback / condition / retry
timer / parallel group, during a rollback, while parked), with an optional second cancel;
terminate (anywhere, parked included); the saga deadline expiring while it waits; a
terminate later in the run, during the rollback a cancel or deadline started; plus operator
decisions for every undo that parks, and optionally a crash at a checkpoint write.

Invariants:
- A deadline is placed only on a long suspension (a timer, a condition's pause, a callback)
  and never combined with a crash or an in-run stop: its expiry time is computed from the
  program's virtual time, which a crash's lease wait or a hook's clock step would shift.
- A crash is combined only with stops whose firing does not depend on short timers (the
  lease wait after a crash would make retry timers due together): none, ``before:`` /
  ``during:`` hooks, and long suspensions.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import strategies as st

from scenarios import oracle
from scenarios.programs import (
    HOSTILE_REASONS,
    Decision,
    Program,
    Schedule,
    Stop,
    StopKind,
    programs,
    steps_of,
)

REASONS = ("customer called", "order-cancel-1: duplicate", *HOSTILE_REASONS)
NOTES = (
    "refunded by hand in the bank portal",
    "saga-terminate: not really",
    "Kh\u00e1ch \u0111\u00e3 ho\u00e0n ti\u1ec1n \u2705",
    "y" * 1500,
)
"""Operator reasons/notes (never blank: a blank one is refused, tested on its own)."""
DECISIONS: tuple[Decision, ...] = ("retry", "skip", "resolve", "terminate", "leave")
LONG_KINDS = ("wait", "callback", "condition", "parked")


def _eligible(points: list[oracle.Point], kind: StopKind, crash: bool) -> list[str]:
    out: list[str] = []
    for p in points:
        if kind == "deadline":
            if p.label.startswith("wait:") and p.kind in oracle.TIME_KINDS and not p.rollback:
                out.append(p.label)
            continue
        if crash and p.label.startswith("wait:") and p.kind not in LONG_KINDS:
            continue
        out.append(p.label)
    return list(dict.fromkeys(out))


@st.composite
def schedules(
    draw: st.DrawFn, program: Program, *, crash: bool | None = None, hostile: bool = True
) -> Schedule:
    """A schedule for ``program``; ``crash``: force (True) or forbid (False) a crash;
    ``hostile=False``: plain reason texts and no second cancel (to tell other failures
    apart from the reason-text ones while exploring)."""
    reasons = REASONS if hostile else REASONS[:1]
    downs = [p for p, s in steps_of(program.ops) if s.has_undo and s.undo == "down"]
    decisions = tuple((p, draw(st.sampled_from(DECISIONS))) for p in downs)
    base = Schedule(decisions=decisions, note=draw(st.sampled_from(NOTES)))
    kind = draw(st.sampled_from(["none", "cancel", "cancel", "cancel", "terminate", "deadline"]))
    with_crash = draw(st.booleans()) if crash is None else crash
    if kind == "deadline":
        with_crash = False
    crash_at = None
    if with_crash:
        crash_at = (draw(st.integers(1, 40)), draw(st.sampled_from(["before", "after"])))
    stop = None
    if kind != "none":
        eligible = _eligible(oracle.points(program, base), kind, with_crash)  # type: ignore[arg-type]
        if eligible:
            at = draw(st.sampled_from(eligible))
            if kind == "cancel":
                reason = draw(st.sampled_from(reasons))
                second = draw(st.one_of(st.none(), st.sampled_from(REASONS[:2])))
                second = second if hostile else None
                stop = Stop("cancel", at, reason, second)
            elif kind == "terminate":
                stop = Stop("terminate", at, draw(st.sampled_from(reasons)))
            else:
                stop = Stop("deadline", at, "deadline")
    schedule = Schedule(stop=stop, decisions=decisions, note=base.note, crash=crash_at)
    if stop is not None and stop.kind != "terminate" and draw(st.integers(0, 3)) == 0:
        # A terminate later in the same run: during the rollback the stop started.
        later = [
            p.label
            for p in oracle.expect(program, schedule).points
            if p.rollback and not (with_crash and p.kind not in LONG_KINDS)
        ]
        if later:
            schedule = replace(schedule, terminate_at=draw(st.sampled_from(later)))
    return schedule


@st.composite
def scenarios(
    draw: st.DrawFn, *, crash: bool | None = None, hostile: bool = True
) -> tuple[Program, Schedule]:
    """A program and a schedule for it."""
    program = draw(programs())
    return program, draw(schedules(program, crash=crash, hostile=hostile))
