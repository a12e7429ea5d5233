"""Turn a program (plain data) into a real ``@saga`` whose steps talk to a keyed ledger.

Every forward step's action and every undo is a request to a *provider* that keeps a ledger
of keyed effects: ``do`` applies the step's effect once per key (a repeated request with
the same key is recorded as a request, not as a new effect - the idempotency the docs ask
of providers); ``undo`` reverses it once, or does nothing for an uncertain step whose effect
never happened (it looks the effect up by key). So "each effect exactly once" and "undos in
reverse order" are read off the ledger.

The scripted failures are deterministic functions of the attempt number (``sc.attempt``,
``c.attempt``) or of the ledger (an undo that fails until the operator fixes its provider),
never of time or of how many times a body ran, so a crash and a replay see the same
behaviour.

Invariants:
- The interpreter calls :class:`Env` hooks before each operation and inside each step body:
  that is where the driver injects a cancel or terminate "while the saga runs". The hooks
  fire once per run, whatever replays happen.
- When a ``recorded`` probe is given, a forward request for a step whose success is already
  in the journal, or an undo request whose ``compensate:`` success is, is a violation (a
  recorded outcome was recomputed). Parallel branches are exempt for the forward check:
  the documented recovery of a cancelled group re-sends their requests by key.
- Nothing here knows the expected outcome: that is the oracle's job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import tenacity

from durable_core import RetryPolicy, StepContext
from saga import CompensationContext, SagaContext, SagaFunction, StepKind, saga
from scenarios.programs import (
    CALLBACK_TIMEOUT_S,
    FORWARD_ATTEMPTS,
    RETRY_DELAY_S,
    UNDO_ATTEMPTS,
    WAIT_S,
    Callback,
    Child,
    Condition,
    Op,
    Parallel,
    Program,
    Step,
    Wait,
    WaitForCallback,
)

SAGA_NAME = "scenario"


class ProviderError(RuntimeError):
    """A scripted failure of a provider request (retried by the step's policy)."""


class Rejected(ProviderError):  # noqa: N818 - the provider's answer, not a program error
    """A scripted error the step's retry predicate rejects: it fails the step for good."""


FORWARD = RetryPolicy(
    stop=tenacity.stop_after_attempt(FORWARD_ATTEMPTS),
    wait=tenacity.wait_fixed(RETRY_DELAY_S),
    retry=tenacity.retry_if_not_exception_type(Rejected),
)
UNDO = RetryPolicy(
    stop=tenacity.stop_after_attempt(UNDO_ATTEMPTS), wait=tenacity.wait_fixed(RETRY_DELAY_S)
)


class Ledger(Protocol):
    """The providers' side of every request: a keyed-effect ledger."""

    def do(self, path: str) -> None:
        """Apply the forward effect of ``path`` (once per key; a repeat is only a request)."""

    def undo(self, path: str) -> None:
        """Reverse ``path``'s effect (once; nothing if it never happened)."""

    def marked(self, flag: str) -> bool:
        """Is ``flag`` set in the outside world (``fixed:<path>``: the operator fixed the
        provider of that undo; ``stop-sent``: the schedule's stop request was sent)?"""

    def mark(self, flag: str) -> None:
        """Set ``flag``."""

    def violation(self, text: str) -> None:
        """Record a broken promise seen from the provider's side."""

    def snapshot(self) -> LedgerState:
        """Everything recorded so far."""


@dataclass
class LedgerState:
    """A ledger's content."""

    requests: list[tuple[str, str]] = field(default_factory=list)
    """Every request, ``(action, path)``, in arrival order (repeats included)."""
    effects: list[tuple[str, str]] = field(default_factory=list)
    """Effects applied: ``("do", path)`` / ``("undo", path)``, each at most once."""
    violations: list[str] = field(default_factory=list)


class MemoryLedger:
    """A :class:`Ledger` in this process's memory."""

    def __init__(self) -> None:
        self._state = LedgerState()
        self._flags: set[str] = set()
        self._lock = threading.Lock()

    def do(self, path: str) -> None:
        with self._lock:
            self._state.requests.append(("do", path))
            if ("do", path) not in self._state.effects:
                self._state.effects.append(("do", path))

    def undo(self, path: str) -> None:
        with self._lock:
            self._state.requests.append(("undo", path))
            effects = self._state.effects
            if ("do", path) in effects and ("undo", path) not in effects:
                effects.append(("undo", path))

    def marked(self, flag: str) -> bool:
        with self._lock:
            return flag in self._flags

    def mark(self, flag: str) -> None:
        with self._lock:
            self._flags.add(flag)

    def violation(self, text: str) -> None:
        with self._lock:
            self._state.violations.append(text)

    def snapshot(self) -> LedgerState:
        with self._lock:
            s = self._state
            return LedgerState(list(s.requests), list(s.effects), list(s.violations))


Hook = Callable[[str], None]


@dataclass
class Env:
    """What a generated saga's bodies talk to."""

    ledger: Ledger
    before: Hook = lambda label: None
    """Called with ``before:<path>`` before each operation and ``during:<path>`` inside a
    step body's first attempt."""
    recorded: Callable[[str], bool] | None = None
    """``recorded(name)``: is a step of that name recorded SUCCEEDED in the journal?"""

    def check(self, name: str, what: str) -> None:
        if self.recorded is not None and self.recorded(name):
            self.ledger.violation(f"{what} requested after its success was recorded")


def build(program: Program, env: Env, *, deadline_s: float | None = None) -> SagaFunction[Any, str]:
    """The saga that runs ``program`` against ``env``."""
    deadline = timedelta(seconds=deadline_s) if deadline_s is not None else None

    def body(s: SagaContext, event: Any) -> str:
        _run_ops(s, program.ops, "", env)
        return "done"

    return saga(name=SAGA_NAME, deadline=deadline)(body)


def _run_ops(s: SagaContext, ops: tuple[Op, ...], prefix: str, env: Env) -> None:
    for op in ops:
        path = prefix + op.name
        env.before(f"before:{path}")
        if isinstance(op, Step):
            _step(s, path, op, env)
        elif isinstance(op, Wait):
            s.ctx.wait(path, timedelta(seconds=WAIT_S))
        elif isinstance(op, Callback):
            cb = s.ctx.create_callback(path, timeout=timedelta(seconds=CALLBACK_TIMEOUT_S))
            for between in op.between:
                env.before(f"before:{prefix}{between.name}")
                _step(s, prefix + between.name, between, env)
            cb.result()
        elif isinstance(op, WaitForCallback):
            s.ctx.wait_for_callback(path, _submit, timeout=timedelta(seconds=CALLBACK_TIMEOUT_S))
        elif isinstance(op, Condition):
            _condition(s, path, op.polls)
        elif isinstance(op, Parallel):
            s.parallel(
                op.name,
                [
                    s.branch(
                        b.name,
                        _action(f"{path}/{b.name}", b, env, branch=True),
                        **_opts(f"{path}/{b.name}", b, env),
                    )
                    for b in op.branches
                ],
            )
        else:
            assert isinstance(op, Child)
            s.child(op.name, _child_saga(path, op, env), None)


def _submit(token: str, sc: StepContext) -> None:
    """``wait_for_callback``'s submitter: the token would go to the external system."""


def _condition(s: SagaContext, path: str, polls: int) -> None:
    def check(state: int, sc: StepContext) -> int:
        return state + 1

    def done(state: int) -> bool:
        return state >= polls

    s.ctx.wait_for_condition(
        path, check, initial_state=0, done=done, wait=tenacity.wait_fixed(WAIT_S)
    )


def _child_saga(path: str, op: Child, env: Env) -> SagaFunction[Any, str]:
    def child_body(s: SagaContext, event: Any) -> str:
        _run_ops(s, op.ops, path + "/", env)
        return "child done"

    return saga(name=f"{SAGA_NAME}:{path}")(child_body)


def _step(s: SagaContext, path: str, spec: Step, env: Env) -> None:
    name = path.rsplit("/", 1)[-1]
    s.step(name, _action(path, spec, env, branch=False), **_opts(path, spec, env))


def _opts(path: str, spec: Step, env: Env) -> dict[str, Any]:
    kind = {"pivot": StepKind.PIVOT, "retriable": StepKind.RETRIABLE}.get(spec.kind)
    return {
        "compensate": _undo(path, spec, env) if spec.has_undo else None,
        "kind": kind,
        "retry": FORWARD,
        "compensation_retry": UNDO,
        "compensate_uncertain": spec.uncertain,
    }


def _action(path: str, spec: Step, env: Env, *, branch: bool) -> Callable[[StepContext], str]:
    def act(sc: StepContext) -> str:
        if not branch:
            env.check(path, f"step {path!r}")
        if sc.attempt == 1 and not branch:
            env.before(f"during:{path}")
        if spec.final == "fail_after_effect":
            env.ledger.do(path)
            raise ProviderError(f"{path}: the provider applied it, then the response was lost")
        if spec.final == "fail" or sc.attempt <= spec.retries:
            raise ProviderError(f"{path}: provider unavailable (attempt {sc.attempt})")
        if spec.final == "reject":
            raise Rejected(f"{path}: the provider rejected the request for good")
        env.ledger.do(path)
        return f"{path}:done"

    return act


def _undo(path: str, spec: Step, env: Env) -> Callable[[CompensationContext], str]:
    def undo(c: CompensationContext) -> str:
        env.check(f"compensate:{path}", f"undo of {path!r}")
        if spec.undo == "transient" and c.attempt <= 1:
            raise ProviderError(f"undo of {path}: provider unavailable (attempt {c.attempt})")
        if spec.undo == "down" and not env.ledger.marked(f"fixed:{path}"):
            raise ProviderError(f"undo of {path}: provider down until an operator fixes it")
        env.ledger.undo(path)
        return f"{path}:undone"

    return undo
