"""Saga programs and interruption schedules as plain data, and hypothesis strategies for them.

A *program* is what a generated saga does, as frozen dataclasses (no callables): its
operations in order - steps of every kind with scripted failures, ``ctx.wait`` timers,
callbacks (``create_callback`` with steps between creation and ``.result()``, and
``wait_for_callback``), ``wait_for_condition``, parallel groups and child sagas. A
*schedule* is what happens to one run of it from outside: one stop request (cancel,
terminate or the saga deadline) at a chosen point, an optional second cancel, the operator's
decision for every undo that parks, and optionally a crash at a checkpoint write.

:mod:`scenarios.interpret` turns a program into a real ``@saga``; :mod:`scenarios.oracle`
computes what must happen from the same data and the documented rules only.

Invariants:
- Every operation has a name unique within its saga, and every path (``child/step``,
  ``group/branch``) is unique within the program, so each keyed effect names one step.
- Only programs the documented rules allow are generated: at most one pivot, a sequential
  top-level step; after it only retriable steps (no undo), and no child saga; a child saga
  has no pivot; a retriable step fails for good only by an error its retry predicate
  rejects (anything else it retries forever).
- Everything serializes to JSON (``to_json`` / ``program_from_json``), so a failing
  scenario prints as a line anyone can replay, and real worker processes can load it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

from hypothesis import strategies as st

Kind = Literal["comp", "plain", "pivot", "retriable"]
"""``comp``: compensatable with an undo; ``plain``: compensatable with nothing to undo (a
retriable step by default after the pivot); ``pivot``; ``retriable`` (explicit kind)."""
Final = Literal["ok", "fail", "fail_after_effect", "reject"]
"""How a step's last attempt ends: success; failure before the provider is reached; failure
after the provider applied the effect (a timed-out charge); for a retriable step, an error
its ``retry`` predicate rejects (it fails for good although it is retried forever)."""
UndoMode = Literal["ok", "transient", "down"]
"""An undo that succeeds; fails its first attempt; fails until an operator fixes the
provider (it exhausts its policy and parks the saga)."""
CallbackOutcome = Literal["success", "failure", "timeout"]
StopKind = Literal["cancel", "terminate", "deadline"]
Decision = Literal["retry", "skip", "resolve", "terminate", "leave"]

FORWARD_ATTEMPTS = 3
"""Attempts of a compensatable or pivot step (``stop_after_attempt(3)``)."""
RETRY_DELAY_S = 2
"""Delay between attempts of steps and undos: above the 1 s inline threshold, so each
retry is a durable timer (a suspension point)."""
UNDO_ATTEMPTS = 2
"""Attempts of an undo before the saga parks."""
WAIT_S = 3600
"""Every ``ctx.wait`` and every pause between condition polls."""
CALLBACK_TIMEOUT_S = 86_400
"""Every callback's timeout."""
DEADLINE_MARGIN_S = 1800
"""A deadline is set this long after the saga reaches the wait it must expire in."""


@dataclass(frozen=True)
class Step:
    """One saga step (``s.step``), or one branch of a parallel group (``s.branch``)."""

    name: str
    kind: Kind = "comp"
    retries: int = 0
    """Failed attempts before the last one (each then waits for a durable retry timer)."""
    final: Final = "ok"
    undo: UndoMode = "ok"
    uncertain: bool = False
    """``compensate_uncertain=True``."""

    @property
    def has_undo(self) -> bool:
        return self.kind == "comp"


@dataclass(frozen=True)
class Wait:
    """``s.ctx.wait(name, WAIT_S)``."""

    name: str


@dataclass(frozen=True)
class Callback:
    """``cb = s.ctx.create_callback(name)``, the ``between`` steps, then ``cb.result()``."""

    name: str
    between: tuple[Step, ...] = ()
    outcome: CallbackOutcome = "success"
    early: bool = False
    """The external system answers (success or failure) as soon as it can - while a step
    between creation and ``.result()`` still waits to retry - instead of at ``.result()``."""

    @property
    def answered_early(self) -> bool:
        """True if the answer is in before the saga reaches ``.result()``."""
        return self.early and self.outcome != "timeout" and any(s.retries for s in self.between)


@dataclass(frozen=True)
class WaitForCallback:
    """``s.ctx.wait_for_callback(name, submitter)``."""

    name: str
    outcome: CallbackOutcome = "success"


@dataclass(frozen=True)
class Condition:
    """``s.ctx.wait_for_condition(name, ...)``: done after ``polls`` polls, WAIT_S apart."""

    name: str
    polls: int = 1


@dataclass(frozen=True)
class Parallel:
    """``s.parallel(name, [s.branch(...), ...])``."""

    name: str
    branches: tuple[Step, ...] = ()


@dataclass(frozen=True)
class Child:
    """``s.child(name, child_saga, None)`` where the child saga runs ``ops``."""

    name: str
    ops: tuple[Op, ...] = ()


Op = Step | Wait | Callback | WaitForCallback | Condition | Parallel | Child


@dataclass(frozen=True)
class Program:
    """A generated saga: its operations in order."""

    ops: tuple[Op, ...]


@dataclass(frozen=True)
class Stop:
    """A stop request: cancel, terminate or the deadline, at one point of the run.

    ``at`` is a point label (see :mod:`scenarios.oracle`): ``before:<path>`` (requested while
    the saga runs, just before that operation starts), ``during:<path>`` (while that step's
    body runs) or ``wait:<label>`` (while the saga is suspended on it: a timer, a callback,
    a condition, a step or undo waiting to retry, ``operator:<path>`` when parked,
    ``<group>#<j>`` for the j-th suspension of a parallel group).
    """

    kind: StopKind
    at: str
    reason: str = "scenario stop"
    second: str | None = None
    """The reason of a second cancel sent right after the first request."""


@dataclass(frozen=True)
class Schedule:
    """What happens to one run from outside."""

    stop: Stop | None = None
    decisions: tuple[tuple[str, Decision], ...] = ()
    """For each undo path that parks: the operator's decision (default ``leave``)."""
    note: str = "operator note"
    """The reason / note text of operator decisions."""
    crash: tuple[int, str] | None = None
    """``(k, "before" | "after")``: kill the worker at its k-th checkpoint write."""
    terminate_at: str | None = None
    """A terminate requested at this (later) point too, e.g. during the rollback a cancel
    started (reason: ``note``)."""

    def decision(self, path: str) -> Decision:
        return dict(self.decisions).get(path, "leave")


# --- JSON ----------------------------------------------------------------------------------

_TYPES: dict[str, type[Any]] = {
    c.__name__: c for c in (Step, Wait, Callback, WaitForCallback, Condition, Parallel, Child)
}


def _dump_op(op: Op) -> dict[str, Any]:
    out: dict[str, Any] = {"op": type(op).__name__}
    for key, value in asdict(op).items():
        out[key] = value
    if isinstance(op, Child):
        out["ops"] = [_dump_op(o) for o in op.ops]
    return out


def _load_op(raw: dict[str, Any]) -> Op:
    raw = dict(raw)
    cls = _TYPES[raw.pop("op")]
    if cls is Child:
        raw["ops"] = tuple(_load_op(o) for o in raw["ops"])
    for key in ("between", "branches"):
        if key in raw:
            raw[key] = tuple(Step(**s) for s in raw[key])
    op: Op = cls(**raw)
    return op


def to_json(program: Program, schedule: Schedule | None = None) -> str:
    """One JSON line describing a scenario (replay it with :func:`scenario_from_json`)."""
    data: dict[str, Any] = {"ops": [_dump_op(o) for o in program.ops]}
    if schedule is not None:
        data["schedule"] = asdict(schedule)
    return json.dumps(data, ensure_ascii=True, separators=(",", ":"))


def scenario_from_json(text: str) -> tuple[Program, Schedule]:
    """Parse :func:`to_json`'s output."""
    data = json.loads(text)
    program = Program(tuple(_load_op(o) for o in data["ops"]))
    raw = data.get("schedule") or {}
    stop = Stop(**raw["stop"]) if raw.get("stop") else None  # omitted fields: defaults
    schedule = Schedule(
        stop=stop,
        decisions=tuple((p, d) for p, d in raw.get("decisions", ())),
        note=raw.get("note", "operator note"),
        crash=(int(raw["crash"][0]), str(raw["crash"][1])) if raw.get("crash") else None,
        terminate_at=raw.get("terminate_at"),
    )
    return program, schedule


# --- walking -------------------------------------------------------------------------------


def steps_of(ops: tuple[Op, ...], prefix: str = "") -> list[tuple[str, Step]]:
    """Every step of ``ops`` (branches, between-steps and child steps too) with its path."""
    out: list[tuple[str, Step]] = []
    for op in ops:
        if isinstance(op, Step):
            out.append((prefix + op.name, op))
        elif isinstance(op, Callback):
            out.extend((prefix + s.name, s) for s in op.between)
        elif isinstance(op, Parallel):
            out.extend((f"{prefix}{op.name}/{b.name}", b) for b in op.branches)
        elif isinstance(op, Child):
            out.extend(steps_of(op.ops, f"{prefix}{op.name}/"))
    return out


# --- strategies ----------------------------------------------------------------------------

HOSTILE_REASONS = (
    "saga-terminate: customer called",
    "saga-terminate: ",
    "",
    "   ",
    "x" * 20_000,
    "Kh\u00e1ch h\u00e0ng h\u1ee7y \u2014 \U0001f6ab \u0644\u0627 \u53d6\u6d88",
    "line one\nline two\ttab \x00 nul",
    "deadline",
    '{"action": "terminate"}',
)
"""Cancel reasons that must never change what happens (or, when blank or oversized, be
refused with a typed error and nothing recorded)."""


class _Names:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"


# Module-level strategies: drawing from the same objects keeps generation cheap.
_BEFORE_KINDS: st.SearchStrategy[Kind] = st.sampled_from(
    ("comp", "comp", "comp", "plain", "retriable")
)
_AFTER_KINDS: st.SearchStrategy[Kind] = st.sampled_from(("plain", "retriable"))
_RETRIES = st.integers(0, 2)
_FINALS: st.SearchStrategy[Final] = st.sampled_from(("ok", "ok", "ok", "fail", "fail_after_effect"))
_UNDOS: st.SearchStrategy[UndoMode] = st.sampled_from(("ok", "ok", "transient", "down"))
_PIVOT_FINALS: st.SearchStrategy[Final] = st.sampled_from(("ok", "ok", "ok", "fail"))
_RETRIABLE_FINALS: st.SearchStrategy[Final] = st.sampled_from(("ok", "ok", "ok", "reject"))
_OUTCOMES: st.SearchStrategy[CallbackOutcome] = st.sampled_from(
    ("success", "success", "failure", "timeout")
)
_SMALL = st.integers(0, 2)
_POLLS = st.integers(1, 3)
_BRANCHES = st.integers(1, 3)
_CHILD_OPS = st.integers(1, 3)
_BOOL = st.booleans()
_TOP = st.sampled_from(["step", "step", "step", "wait", "callback", "condition", "parallel"])
_TOP_BEFORE = st.sampled_from(
    ["step", "step", "step", "wait", "callback", "condition", "parallel", "child"]
)
_NESTED = st.sampled_from(["step", "step", "step", "wait", "callback", "condition"])


def _step(draw: st.DrawFn, names: _Names, *, after_pivot: bool, branch: bool = False) -> Step:
    """A step legal at its position (before or after the pivot; a branch is never a pivot)."""
    kind: Kind = draw(_AFTER_KINDS if after_pivot else _BEFORE_KINDS)
    retries: int = draw(_RETRIES)
    final: Final = "ok"
    if kind in ("comp", "plain") and not after_pivot:
        final = draw(_FINALS)
    elif kind == "retriable" or after_pivot:
        final = draw(_RETRIABLE_FINALS)
    undo: UndoMode = draw(_UNDOS) if kind == "comp" else "ok"
    uncertain: bool = draw(_BOOL) if kind == "comp" and final != "ok" else False
    if final in ("fail", "fail_after_effect"):
        retries = FORWARD_ATTEMPTS - 1
    return Step(names("b" if branch else "s"), kind, retries, final, undo, uncertain)


def _pivot(draw: st.DrawFn, names: _Names) -> Step:
    final: Final = draw(_PIVOT_FINALS)
    retries = FORWARD_ATTEMPTS - 1 if final == "fail" else draw(st.integers(0, 1))
    return Step(names("pivot"), "pivot", retries, final)


def _callback(draw: st.DrawFn, names: _Names, *, after_pivot: bool) -> Op:
    outcome: CallbackOutcome = draw(_OUTCOMES)
    if draw(_BOOL):
        return WaitForCallback(names("wfc"), outcome)
    between = tuple(_step(draw, names, after_pivot=after_pivot) for _ in range(draw(_SMALL)))
    return Callback(names("cb"), between, outcome, early=bool(between) and draw(_BOOL))


def _op(draw: st.DrawFn, names: _Names, *, after_pivot: bool, nested: bool) -> Op:
    what = draw(_NESTED if nested else _TOP if after_pivot else _TOP_BEFORE)
    if what == "step":
        return _step(draw, names, after_pivot=after_pivot)
    if what == "wait":
        return Wait(names("w"))
    if what == "callback":
        return _callback(draw, names, after_pivot=after_pivot)
    if what == "condition":
        return Condition(names("cond"), draw(_POLLS))
    if what == "parallel":
        branches = tuple(
            _step(draw, names, after_pivot=after_pivot, branch=True) for _ in range(draw(_BRANCHES))
        )
        return Parallel(names("par"), branches)
    inner = tuple(_op(draw, names, after_pivot=False, nested=True) for _ in range(draw(_CHILD_OPS)))
    return Child(names("child"), inner)


@st.composite
def programs(draw: st.DrawFn, max_ops: int = 6) -> Program:
    """A saga program of 1..max_ops operations, with at most one pivot."""
    names = _Names()
    count = draw(st.integers(1, max_ops))
    pivot_at = draw(st.one_of(st.none(), st.integers(0, count - 1)))
    ops: list[Op] = []
    for i in range(count):
        if i == pivot_at:
            ops.append(_pivot(draw, names))
        else:
            after = pivot_at is not None and i > pivot_at
            ops.append(_op(draw, names, after_pivot=after, nested=False))
    return Program(tuple(ops))
