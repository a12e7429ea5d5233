"""The independent oracle: what a saga program must do under a schedule, from the docs alone.

:func:`expect` is a pure function of a :class:`~scenarios.programs.Program` and a
:class:`~scenarios.programs.Schedule`. It imports nothing from ``saga`` or ``durable_core``:
it walks the program the way docs/sagas.md and docs/guarantees.md describe a saga, and
returns the expected keyed-effect ledger (every forward effect and every undo, by step
path), the execution status, the ``saga_status`` status, what stays not undone, the
rollback's cause, and the points of the run where an interruption can be injected.

Rules (docs/sagas.md, docs/guarantees.md; the ones marked ASSUMED are our reading where the
docs are silent or ambiguous - tell the lead if a fix settles them otherwise):

1. A step registers its undo once it succeeded; ``compensate_uncertain=True`` also registers
   it for a step that failed for good (first in the rollback). A rollback undoes the
   registered steps in reverse registration order: sequential steps in the order they
   completed; a parallel group's branches in branch order after the whole group ended; a
   child saga's steps as one unit at its place (so the ledger order is the flat reverse).
   Each undo is applied exactly once; nothing is undone past a committed pivot.
2. A failure for good before the pivot (a step or pivot exhausting its policy, a branch, a
   failed or timed-out callback) rolls the saga back: execution FAILED, status
   ``compensated``, or ``partially_compensated`` if an operator skipped an undo.
3. A cancel or the deadline is delivered at the next operation boundary after it is
   requested: the operation at that boundary does not run (a step waiting to retry does
   not run again - ASSUMED, the docs' "the step at that boundary does not run"); a
   callback's ``.result()`` is a boundary (a callback with steps between creation and
   result is cancelled at ``result()``); a cancel requested while a step body runs is
   delivered at the next operation, and is never delivered if none follows. A parallel
   group that has not started when the cancel is due does not run any branch (ASSUMED).
   Then the saga rolls back: execution CANCELLED, status ``cancelled``, or
   ``partially_compensated`` if an undo was skipped (ASSUMED: the open case of issue 11).
   Cause kind ``cancelled`` with the first request's reason (a second cancel never
   replaces it), or ``deadline``.
4. After the pivot a cancel or deadline reaching a step or parallel group is absorbed (it
   runs, the saga goes on); reaching a wait, callback or condition it ends the saga
   CANCELLED / ``cancelled`` without compensating (``not_undone`` is not checked there:
   ASSUMED open). A callback that fails after the pivot ends it FAILED / ``failed``.
5. A cancel arriving during a rollback (an undo waiting to retry, or parked) is absorbed.
6. An undo that exhausts its policy parks the saga (RUNNING, ``compensation_failed``,
   ``parked_on``) until the operator: ``retry`` (the driver first fixes the provider, as an
   operator would) undoes it; ``skip`` leaves it not undone; ``resolve`` counts as undone
   with no effect; ``terminate`` stops. No decision leaves it parked.
7. Terminate (whenever it is requested, parked or not - ASSUMED: today's behaviour at the
   next boundary) stops the saga: nothing more is undone; execution CANCELLED, status
   ``terminated``. A cancel's reason text, whatever it says, never terminates.
8. ``not_undone`` (checked on the steps that have an undo) lists every registered step not
   undone or resolved: skipped, parked, never reached by a stopped rollback, or all of
   them after a failure past the pivot or a terminate with no rollback.

Invariants:
- Pure: no I/O, no clock, no imports from the code under test.
- Effects are ``("do", path)`` and ``("undo", path)``: the keyed provider applies a key
  once, so a repeated request is not a new effect. Forward effects of one parallel group
  happen in any order, so :class:`Expected` keeps them as a set-like list and the undos
  as a sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scenarios.programs import (
    CALLBACK_TIMEOUT_S,
    DEADLINE_MARGIN_S,
    RETRY_DELAY_S,
    WAIT_S,
    Callback,
    Child,
    Condition,
    Op,
    Parallel,
    Program,
    Schedule,
    Step,
    Stop,
    Wait,
    WaitForCallback,
)

NO_REASON = "no reason given"
"""What a blank cancel reason is recorded as (docs/sagas.md)."""
TIME_KINDS = ("wait", "callback", "condition")
"""Points a deadline can expire at (suspensions that last far longer than the margin)."""


@dataclass(frozen=True)
class Point:
    """A place of the run where an interruption can be injected."""

    label: str
    """``before:<path>``, ``during:<path>`` or ``wait:<label>``."""
    time_s: float
    """Virtual seconds since the start when the run reaches it (no interruptions)."""
    kind: str
    """What the saga does there: step, wait, callback, condition, parallel, child, undo,
    parked."""
    rollback: bool = False


@dataclass
class Expected:
    """What the run must end with."""

    dos: list[str] = field(default_factory=list)
    """Forward effects (paths), in the order the oracle walked them (order not checked)."""
    undos: list[str] = field(default_factory=list)
    """Undo effects (paths), in the order they must happen."""
    execution_status: str = "SUCCEEDED"
    status: str = "completed"
    not_undone: frozenset[str] | None = frozenset()
    """Steps with an undo that stay not undone (``None``: not checked)."""
    maybe_not_undone: frozenset[str] = frozenset()
    """Uncertain steps (failed, undo registered) a stop ended without any rollback: whether
    ``not_undone`` lists them is open (ASSUMED: either is accepted)."""
    cause_kind: str | None = None
    cause_message: str | None = None
    parked_on: str | None = None
    points: list[Point] = field(default_factory=list)


@dataclass
class _Entry:
    path: str
    step: Step
    effect: bool
    undone: bool = False


class _Stopped(Exception):  # noqa: N818 - control flow of the simulation
    def __init__(self, stop: Stop) -> None:
        self.stop = stop


class _Failed(Exception):  # noqa: N818
    pass


class _Terminated(Exception):  # noqa: N818
    pass


class _Parked(Exception):  # noqa: N818
    def __init__(self, path: str) -> None:
        self.path = path


class _Sim:
    def __init__(self, program: Program, schedule: Schedule, choices: tuple[int, ...]) -> None:
        self.program = program
        self.schedule = schedule
        self.choices = choices
        self.sizes: list[int] = []
        """How many alternatives each choice point had (for :func:`expect_all`)."""
        self.t = 0.0
        self.out = Expected()
        self.stack: list[_Entry] = []
        self.pivot_done = False
        self.pending: Stop | None = None
        self.requested = False
        self.terminating = False
        self.skipped = False
        self.recovery_slack = schedule.crash is not None

    def choose(self, n: int) -> int:
        i = len(self.sizes)
        self.sizes.append(n)
        return self.choices[i] if i < len(self.choices) else 0

    # --- points and delivery ------------------------------------------------------------

    def point(self, label: str, kind: str, *, rollback: bool = False) -> None:
        self.out.points.append(Point(label, self.t, kind, rollback))
        stop = self.schedule.stop
        if stop is not None and not self.requested and stop.at == label:
            self.requested = True
            self.pending = stop
        if self.schedule.terminate_at == label:
            self.terminating = True

    def take(self, kind: str, *, fresh: bool = False) -> Stop | None:
        """The stop that lands at this forward frontier (``None``: none, or absorbed).

        ``fresh``: the frontier is a step (or condition) that has not run yet. After a
        crash, the recovering invocation runs such a step first and the stop lands after it
        (docs/sagas.md): the oracle then also allows that end, once per run.
        """
        if self.terminating:
            stop: Stop | None = Stop("terminate", "", self.schedule.note)
        else:
            stop = self.pending
        if stop is None:
            return None
        if fresh and self.recovery_slack and self.choose(2) == 1:
            self.recovery_slack = False
            return None  # the recovering worker runs this step first; the stop stays due
        if stop.kind != "terminate" and self.pivot_done and kind in ("step", "parallel"):
            self.pending = None
            return None  # absorbed after the pivot: the step runs and the saga goes on
        self.terminating = False
        self.pending = None
        return stop

    def deliver(self, kind: str, *, fresh: bool = False) -> None:
        stop = self.take(kind, fresh=fresh)
        if stop is not None:
            raise _Stopped(stop)

    def boundary(self, path: str, kind: str) -> None:
        self.point(f"before:{path}", kind)
        self.deliver(kind, fresh=kind in ("step", "condition"))

    # --- forward path --------------------------------------------------------------------

    def ops(self, ops: tuple[Op, ...], prefix: str) -> None:
        for op in ops:
            self.op(op, prefix)

    def op(self, op: Op, prefix: str) -> None:
        path = prefix + op.name
        if isinstance(op, Step):
            self.step(path, op)
        elif isinstance(op, Wait):
            self.boundary(path, "wait")
            self.point(f"wait:{path}", "wait")
            self.deliver("wait")
            self.t += WAIT_S
        elif isinstance(op, Callback):
            self.boundary(path, "callback")
            for s in op.between:
                self.step(prefix + s.name, s)
            if op.answered_early:  # completed already: .result() is not a frontier
                if op.outcome != "success":
                    raise _Failed()
            else:
                self.callback_result(path, op.outcome)
        elif isinstance(op, WaitForCallback):
            self.boundary(path, "callback")
            self.callback_result(path, op.outcome)
        elif isinstance(op, Condition):
            self.boundary(path, "condition")
            if op.polls > 1:
                self.point(f"wait:{path}", "condition")
                self.deliver("condition")
                self.t += WAIT_S * (op.polls - 1)
        elif isinstance(op, Parallel):
            self.parallel(path, op)
        else:
            assert isinstance(op, Child)
            self.point(f"before:{path}", "child")  # lands at the child's first operation
            self.ops(op.ops, path + "/")

    def callback_result(self, path: str, outcome: str) -> None:
        self.point(f"wait:{path}", "callback")
        self.deliver("callback")
        if outcome == "timeout":
            self.t += CALLBACK_TIMEOUT_S
        if outcome != "success":
            raise _Failed()

    def step(self, path: str, s: Step) -> None:
        self.boundary(path, "step")
        if s.retries:
            if s.final == "fail_after_effect":
                self.do(path)
            self.point(f"wait:{path}", "step")  # attempt 1 failed; a retry timer is set
            try:
                self.deliver("step")
            except _Stopped:
                self.register_failed(path, s)  # its failed attempts are its outcome
                raise
            self.t += RETRY_DELAY_S * s.retries
        elif s.final == "ok":
            self.point(f"during:{path}", "step")
        if s.final == "ok":
            self.succeeded(path, s)
            if s.kind == "pivot":
                self.pivot_done = True
            return
        if s.final == "fail_after_effect":
            self.do(path)
        self.register_failed(path, s)
        raise _Failed()

    def succeeded(self, path: str, s: Step) -> None:
        self.do(path)
        if s.has_undo:
            self.stack.append(_Entry(path, s, True))

    def register_failed(self, path: str, s: Step) -> None:
        if s.has_undo and s.uncertain:
            self.stack.append(_Entry(path, s, s.final == "fail_after_effect"))

    def parallel(self, path: str, p: Parallel) -> None:
        self.point(f"before:{path}", "parallel")
        branches = [(f"{path}/{b.name}", b) for b in p.branches]
        stop = self.take("parallel")
        if stop is not None:  # lands at the group itself, not started: no branch runs
            raise _Stopped(stop)
        for bpath, b in branches:
            if b.final == "fail_after_effect":
                self.do(bpath)  # attempt 1 applies it, whatever happens later
        rounds = max((b.retries for b in p.branches), default=0)
        for j in range(1, rounds + 1):
            self.point(f"wait:{path}#{j}", "parallel")
            stop = self.take("parallel")
            if stop is not None:  # lands in a branch waiting to retry
                pending = [(bp, b) for bp, b in branches if b.retries >= j]
                self.land_in_group(branches, pending, stop)
            self.t += RETRY_DELAY_S
        failed = False
        for bpath, b in branches:
            if b.final == "ok":
                self.succeeded(bpath, b)
            else:
                failed = True
                self.register_failed(bpath, b)
        if failed:
            raise _Failed()

    def land_in_group(
        self,
        branches: list[tuple[str, Step]],
        candidates: list[tuple[str, Step]],
        stop: Stop,
    ) -> None:
        """The stop lands in one candidate branch; the others run to their end."""
        cut = candidates[self.choose(len(candidates))][0]
        others_run = stop.kind != "terminate" or self.choose(2) == 0
        waiting = {bpath for bpath, _ in candidates}
        for bpath, b in branches:
            if bpath == cut:
                self.register_failed(bpath, b)  # it ran and waits to retry
            elif bpath in waiting and not others_run:
                self.register_failed(bpath, b)  # stopped too, while waiting to retry
            elif b.final == "ok":
                self.succeeded(bpath, b)  # finished before, or runs to its end
            else:
                self.register_failed(bpath, b)
        raise _Stopped(stop)

    def do(self, path: str) -> None:
        if path not in self.out.dos:
            self.out.dos.append(path)

    # --- rollback ------------------------------------------------------------------------

    def absorb(self) -> None:
        """A frontier of the rollback: a cancel is absorbed, a terminate stops it."""
        stop, self.pending = self.pending, None
        if self.terminating or (stop is not None and stop.kind == "terminate"):
            raise _Terminated()

    def roll_back(self) -> None:
        for entry in reversed(self.stack):
            self.undo(entry)

    def undo(self, e: _Entry) -> None:
        self.absorb()
        mode = e.step.undo
        if mode == "transient":
            self.point(f"wait:compensate:{e.path}", "undo", rollback=True)
            self.absorb()
            self.t += RETRY_DELAY_S
        elif mode == "down":
            self.t += RETRY_DELAY_S
            self.point(f"wait:operator:{e.path}", "parked", rollback=True)
            self.absorb()
            decision = self.schedule.decision(e.path)
            if decision == "leave":
                raise _Parked(e.path)
            if decision == "terminate":
                raise _Terminated()
            if decision == "skip":
                self.skipped = True
                return
            if decision == "resolve":
                e.undone = True
                return
        if e.effect:
            self.out.undos.append(e.path)
        e.undone = True

    # --- the whole run -------------------------------------------------------------------

    def run(self) -> Expected:
        out = self.out
        try:
            try:
                self.ops(self.program.ops, "")
            except _Failed:
                if self.pivot_done:
                    self.end("FAILED", "failed")
                    return out
                out.cause_kind = "failure"
                self.roll_back()
                self.end("FAILED", "partially_compensated" if self.skipped else "compensated")
                return out
            except _Stopped as s:
                return self.stopped(s.stop)
        except _Terminated:
            self.end("CANCELLED", "terminated")
            return out
        except _Parked as p:
            self.end("RUNNING", "compensation_failed")
            out.parked_on = p.path
            return out
        self.end("SUCCEEDED", "completed")
        return out

    def stopped(self, stop: Stop) -> Expected:
        out = self.out
        if stop.kind == "terminate":
            raise _Terminated()
        if self.pivot_done:
            self.end("CANCELLED", "cancelled")
            out.not_undone = None
            return out
        out.cause_kind = "deadline" if stop.kind == "deadline" else "cancelled"
        if stop.kind == "cancel":
            out.cause_message = stop.reason if stop.reason.strip() else NO_REASON
        self.roll_back()
        self.end("CANCELLED", "partially_compensated" if self.skipped else "compensated")
        return out

    def end(self, execution_status: str, status: str) -> None:
        self.out.execution_status = execution_status
        self.out.status = status
        if status == "completed":
            self.out.not_undone = frozenset()
            return
        self.out.not_undone = frozenset(e.path for e in self.stack if not e.undone)
        if self.out.cause_kind is None:
            self.out.maybe_not_undone = frozenset(
                e.path for e in self.stack if not e.undone and e.step.final != "ok"
            )


def expect_all(program: Program, schedule: Schedule) -> list[Expected]:
    """Every end the rules allow for ``program`` under ``schedule`` (usually one)."""
    out: list[Expected] = []
    seen: set[tuple[int, ...]] = set()
    todo: list[tuple[int, ...]] = [()]
    while todo:
        prefix = todo.pop()
        sim = _Sim(program, schedule, prefix)
        end = sim.run()
        full = prefix + (0,) * (len(sim.sizes) - len(prefix))  # the choices it made
        if full in seen:
            continue
        seen.add(full)
        out.append(end)
        for k in range(len(prefix), len(sim.sizes)):
            todo.extend((*full[:k], c) for c in range(1, sim.sizes[k]))
    return out


def expect(program: Program, schedule: Schedule) -> Expected:
    """The first end :func:`expect_all` allows (the only one unless a stop lands in a
    parallel group)."""
    return _Sim(program, schedule, ()).run()


def points(program: Program, schedule: Schedule) -> list[Point]:
    """The interruption points an uninterrupted run (with ``schedule``'s decisions) passes."""
    plain = Schedule(decisions=schedule.decisions, note=schedule.note)
    return expect(program, plain).points


def deadline_s(program: Program, schedule: Schedule) -> float | None:
    """The saga deadline (seconds) that expires at ``schedule.stop.at``, for a deadline stop.

    The deadline is set :data:`DEADLINE_MARGIN_S` after the run reaches that suspension,
    which lasts far longer (a timer, a condition's pause, a callback's timeout).
    """
    stop = schedule.stop
    if stop is None or stop.kind != "deadline":
        return None
    for p in points(program, schedule):
        if p.label == stop.at:
            return p.time_s + DEADLINE_MARGIN_S
    raise ValueError(f"the deadline point {stop.at!r} is not reached by the program")
