"""Generated durable programs as plain data, hypothesis strategies for them, and an oracle.

A *program* is a tuple of operations (frozen dataclasses, no callables). :mod:`.interpret`
turns one into a sync ``@durable def`` and into an ``@durable async def``; :func:`expect`
computes what running it must give — the function's result and how often each body ran —
from the data and the documented rules only (never by calling the engine).

Invariants:
- Every operation name is unique in the whole program (:func:`numbered`), so a side-effect
  key names one body, and the driver can complete callbacks by name.
- Only programs whose journal does not depend on timing are generated: batch branches hold
  steps with inline retries only, and a batch whose completion policy could decide before
  every branch finished (for some completion order) runs one branch at a time
  (``max_concurrency=1``), so which branches ran is fixed.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from itertools import count
from typing import Any, Literal
from unittest.mock import ANY

from hypothesis import strategies as st

CallbackEnd = Literal["success", "failure", "timeout"]
Policy = Literal["all_successful", "all_completed", "first_successful", "at_least_2", "tolerate_1",
                 "pct_50"]  # fmt: skip

RETRY_DELAY_S = 5
"""A retry delay above the 1 s inline threshold: the retry is a durable timer."""
CALLBACK_TIMEOUT_S = 3600
POLL_S = 30
"""The pause between condition polls (each poll after the first is a new invocation)."""

POLICIES: dict[str, tuple[int | None, int | None, float | None]] = {
    # name: (min_successful, tolerated_failure_count, tolerated_failure_percentage)
    "all_successful": (None, 0, 0.0),
    "all_completed": (None, None, 100.0),
    "fail_fast": (None, None, None),
    "first_successful": (1, None, None),
    "at_least_2": (2, None, None),
    "tolerate_1": (None, 1, None),
    "pct_50": (None, None, 50.0),
}


@dataclass(frozen=True)
class Step:
    name: str
    value: int
    fails: int = 0
    """Attempts that raise before one succeeds."""
    attempts: int = 1
    """``stop_after_attempt(attempts)``: with ``fails >= attempts`` the step fails for good."""
    delay: int = 0
    """Seconds between attempts (0: inline; RETRY_DELAY_S: a durable timer)."""
    at_most_once: bool = False
    async_body: bool = True
    """Under the async surface: an ``async def`` body (else a sync one, run on a thread)."""


@dataclass(frozen=True)
class Wait:
    name: str
    seconds: int


@dataclass(frozen=True)
class Callback:
    name: str
    end: CallbackEnd
    wait_for: bool = False
    """``wait_for_callback`` (a child context with a submit step) instead of
    ``create_callback`` + ``result()``."""


@dataclass(frozen=True)
class Condition:
    name: str
    polls: int


@dataclass(frozen=True)
class Child:
    name: str
    body: tuple[Op, ...]
    fail: bool = False
    """The body raises after its operations: the child context fails."""


@dataclass(frozen=True)
class Batch:
    name: str
    kind: Literal["parallel", "map"]
    branches: tuple[tuple[Step, ...], ...]
    policy: Policy = "all_successful"
    max_concurrency: int | None = None


@dataclass(frozen=True)
class Invoke:
    name: str
    child: Literal["sync", "async"]
    value: int
    fail: bool = False


@dataclass(frozen=True)
class Value:
    name: str
    kind: Literal["now", "random", "uuid4"]


Op = Step | Wait | Callback | Condition | Child | Batch | Invoke | Value
Program = tuple[Op, ...]


# --- naming ------------------------------------------------------------------------------------


def numbered(program: Program) -> Program:
    """``program`` with every operation renamed ``<kind>-<n>``, unique across the program."""
    n = count()

    def name(op: Any) -> str:
        return f"{type(op).__name__.lower()}-{next(n)}"

    def fix(op: Op) -> Op:
        if isinstance(op, Child):
            return dataclasses.replace(op, name=name(op), body=tuple(fix(o) for o in op.body))
        if isinstance(op, Batch):
            branches = tuple(tuple(fix(s) for s in b) for b in op.branches)  # type: ignore[misc]
            return dataclasses.replace(op, name=name(op), branches=branches)
        return dataclasses.replace(op, name=name(op))

    return tuple(fix(op) for op in program)


def callbacks_of(program: Program) -> dict[str, CallbackEnd]:
    """Every callback of the program by name, with how it must end."""
    out: dict[str, CallbackEnd] = {}
    for op in program:
        if isinstance(op, Callback):
            out[op.name] = op.end
        elif isinstance(op, Child):
            out.update(callbacks_of(op.body))
    return out


# --- strategies --------------------------------------------------------------------------------


def steps(*, durable_retries: bool) -> st.SearchStrategy[Step]:
    """A step that succeeds, succeeds after retries, or fails for good."""

    @st.composite
    def draw(d: st.DrawFn) -> Step:
        attempts = d(st.integers(1, 3))
        return Step(
            name="",
            value=d(st.integers(0, 9)),
            fails=d(st.integers(0, attempts)),
            attempts=attempts,
            delay=d(st.sampled_from([0, RETRY_DELAY_S])) if durable_retries else 0,
            at_most_once=d(st.booleans()),
            async_body=d(st.booleans()),
        )

    return draw()


@st.composite
def batches(d: st.DrawFn) -> Batch:
    n = d(st.integers(1, 3))
    branches = tuple(
        tuple(d(st.lists(steps(durable_retries=False), min_size=1, max_size=2))) for _ in range(n)
    )
    policies = [p for p in POLICIES if not (p == "at_least_2" and n < 2)]
    batch = Batch(
        name="",
        kind=d(st.sampled_from(["parallel", "map"])),
        branches=branches,
        policy=d(st.sampled_from(policies)),
        max_concurrency=d(st.sampled_from([None, 1, 2])),
    )
    if not order_independent(batch):
        batch = dataclasses.replace(batch, max_concurrency=1)
    return batch


def ops(depth: int) -> st.SearchStrategy[Op]:
    leaves: list[st.SearchStrategy[Any]] = [
        steps(durable_retries=True),
        st.builds(Wait, name=st.just(""), seconds=st.sampled_from([1, 3600, 7 * 86_400])),
        st.builds(
            Callback,
            name=st.just(""),
            end=st.sampled_from(["success", "failure", "timeout"]),
            wait_for=st.booleans(),
        ),
        st.builds(Condition, name=st.just(""), polls=st.integers(1, 3)),
        st.builds(
            Invoke,
            name=st.just(""),
            child=st.sampled_from(["sync", "async"]),
            value=st.integers(0, 9),
            fail=st.booleans(),
        ),
        st.builds(Value, name=st.just(""), kind=st.sampled_from(["now", "random", "uuid4"])),
        batches(),
    ]
    if depth > 0:
        leaves.append(
            st.builds(
                Child,
                name=st.just(""),
                body=st.lists(ops(depth - 1), min_size=1, max_size=3).map(tuple),
                fail=st.booleans(),
            )
        )
    return st.one_of(leaves)


programs: st.SearchStrategy[Program] = (
    st.lists(ops(2), min_size=1, max_size=5).map(tuple).map(numbered)
)


def crash_safe(program: Program) -> Program:
    """``program`` without what a crash legitimately changes: at-most-once steps (an attempt
    cut by a crash fails) and now/random/uuid4 (a value not yet recorded is drawn again)."""

    def fix(op: Op) -> Op | None:
        if isinstance(op, Value):
            return None
        if isinstance(op, Step):
            return dataclasses.replace(op, at_most_once=False)
        if isinstance(op, Child):
            return dataclasses.replace(op, body=keep(op.body) or (Step(f"{op.name}-s", 1),))
        if isinstance(op, Batch):
            branches = tuple(tuple(fix(s) for s in b) for b in op.branches)  # type: ignore[misc]
            return dataclasses.replace(op, branches=branches)
        return op

    def keep(ops: tuple[Op, ...]) -> tuple[Op, ...]:
        return tuple(f for op in ops if (f := fix(op)) is not None)

    return keep(program) or (Step("step-only", 1),)


# --- the oracle --------------------------------------------------------------------------------


def error(name: str) -> list[str]:
    """How the interpreters report a caught error: ``["error", <class name>]``."""
    return ["error", name]


def step_ok(step: Step) -> bool:
    return step.fails < step.attempts


def decide(policy: str, succeeded: int, failed: int, total: int) -> str | None:
    """AWS's SDK completion rule of ``policy`` after these outcomes (None: go on).

    Written from AWS's documentation of ``CompletionConfig``: no field set means any failure
    exceeds the tolerance; otherwise only the two tolerance fields do. Exceeded comes first,
    then "every branch finished", then "min_successful reached".
    """
    least, tolerated, pct = POLICIES[policy]
    if least is None and tolerated is None and pct is None:
        exceeded = failed > 0
    else:
        exceeded = (tolerated is not None and failed > tolerated) or (
            pct is not None and total > 0 and failed / total * 100 > pct
        )
    if exceeded:
        return "FAILURE_TOLERANCE_EXCEEDED"
    if succeeded + failed >= total:
        return "ALL_COMPLETED"
    if least is not None and succeeded >= least:
        return "MIN_SUCCESSFUL_REACHED"
    return None


def order_independent(batch: Batch) -> bool:
    """True if no completion order lets the policy decide before the last branch ends."""
    oks = [all(step_ok(s) for s in b) for b in batch.branches]
    total, wins = len(oks), sum(oks)
    return all(
        decide(batch.policy, s, f, total) is None
        for s in range(wins + 1)
        for f in range(total - wins + 1)
        if s + f < total
    )


def expect(program: Program) -> tuple[list[Any], Counter[str]]:
    """The function's result and the number of runs of every body (by side-effect key)."""
    calls: Counter[str] = Counter()
    return [_expect(op, calls) for op in program], calls


def _expect_step(step: Step, calls: Counter[str]) -> Any:
    calls[step.name] += min(step.fails + 1, step.attempts)
    return step.value if step_ok(step) else error("StepFailedError")


def _expect(op: Op, calls: Counter[str]) -> Any:
    if isinstance(op, Step):
        return _expect_step(op, calls)
    if isinstance(op, Wait):
        return None
    if isinstance(op, Callback):
        if op.wait_for:
            calls[f"{op.name} submitter"] += 1
        if op.end == "success":
            return {"cb": op.name}
        # wait_for_callback raises the callback's own error (as AWS's SDK does)
        return error("CallbackFailedError" if op.end == "failure" else "CallbackTimeoutError")
    if isinstance(op, Condition):
        calls[op.name] += op.polls
        return op.polls
    if isinstance(op, Child):
        inner = [_expect(o, calls) for o in op.body]
        return error("ChildContextError") if op.fail else inner
    if isinstance(op, Batch):
        return _expect_batch(op, calls)
    if isinstance(op, Invoke):
        calls[f"{op.name}:child"] += 1
        return error("InvokeError") if op.fail else op.value * 10
    return ANY  # now / random / uuid4: the parity of journals pins the value


def _expect_batch(batch: Batch, calls: Counter[str]) -> list[Any]:
    total = len(batch.branches)
    items: list[list[Any]] = []
    succeeded = failed = 0
    reason = None
    for branch in batch.branches:
        if reason is not None:
            items.append(["NOT_STARTED", None, None])
            continue
        value, ok = 0, True
        for step in branch:
            _expect_step(step, calls)
            if not step_ok(step):
                ok = False
                break
            value += step.value
        if ok:
            succeeded += 1
            items.append(["SUCCEEDED", value, None])
        else:
            failed += 1
            items.append(["FAILED", None, "StepFailedError"])
        reason = decide(batch.policy, succeeded, failed, total)
    return [reason, items]
