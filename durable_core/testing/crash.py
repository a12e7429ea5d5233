"""Crash the worker at every checkpoint boundary and check the workflow still ends the same.

:func:`check_crash_safety` first runs the function once normally, counting its checkpoint
writes (K). Then, for every k in 1..K, it runs the function from scratch on a fresh
:class:`~durable_core.stores.memory.MemoryStore` and kills the worker at the k-th write —
once right after the write commits, once right before it (nothing written). The crash
(:class:`~durable_core.errors.SimulatedCrash`) propagates out of the runtime with the lease
still held, as when a process is killed; the checker moves the virtual clock past the lease
and lets a new runtime (a new worker) finish the execution. Each boundary's final status,
result and error type must equal the normal run's.

What a crash does to side effects is for the test to check (``before_each`` resets its
counters, ``check`` asserts them): an at-least-once step whose result was not yet written
(crash *before* its write) runs its body again; an at-most-once step does not — its
interrupted attempt counts as failed with StepInterruptedError and goes to its retry policy.

Invariants:
- Every run starts from the same virtual time with the same execution id, so a
  deterministic workflow makes the same writes in the same order every time.
- Exactly one crash per run; the recovery run is never crashed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from durable_core.context import DurableContext
from durable_core.errors import SimulatedCrash
from durable_core.function import DurableFunction
from durable_core.records import ExecutionStatus
from durable_core.runtime import RuntimeOptions
from durable_core.stores.memory import MemoryStore
from durable_core.testing._stores import CountingStore, CrashingStore, CrashPoint
from durable_core.testing.clock import DEFAULT_START, VirtualClock
from durable_core.testing.result import TestResult
from durable_core.testing.runner import DEFAULT_MAX_ROUNDS, DurableTestRunner

__all__ = ["CrashBoundary", "CrashPoint", "CrashReport", "check_crash_safety"]


@dataclass(frozen=True)
class CrashBoundary:
    """The outcome of one crash: where it was injected and how the execution ended."""

    write: int
    """Which checkpoint write (1-based, counted over the whole execution)."""
    point: CrashPoint
    """Before or after that write."""
    description: str
    """What the write records in the normal run, e.g. ``step 'charge' SUCCEEDED``."""
    crashed: bool
    """False if the run finished without reaching the write (non-deterministic writes)."""
    final: TestResult
    """The execution after the new worker finished it."""
    problem: str | None
    """Why this boundary differs from the normal run (``None``: it does not)."""

    @property
    def ok(self) -> bool:
        """True when the execution ended as in the normal run and ``check`` passed."""
        return self.problem is None

    def __str__(self) -> str:
        where = f"crash {self.point.value} write {self.write} ({self.description})"
        return f"{where}: {self.problem or 'ok'}"


@dataclass(frozen=True)
class CrashReport:
    """Every crash boundary of one workflow and whether it ended as the normal run did."""

    function: str
    """The durable function's name."""
    baseline: TestResult
    """The normal run, without crashes."""
    writes: tuple[str, ...]
    """A description of each checkpoint write of the normal run, in order."""
    boundaries: tuple[CrashBoundary, ...]
    """One entry per crash that was injected."""

    @property
    def ok(self) -> bool:
        """True when every boundary ended as the normal run did."""
        return all(b.ok for b in self.boundaries)

    @property
    def failures(self) -> list[CrashBoundary]:
        """The boundaries that differ from the normal run."""
        return [b for b in self.boundaries if not b.ok]

    def assert_ok(self) -> None:
        """Raise an AssertionError listing every boundary that differs from the normal run."""
        if self.ok:
            return
        lines = [
            f"crash safety check of {self.function!r} failed at {len(self.failures)} of "
            f"{len(self.boundaries)} crash boundaries (normal run: {_outcome(self.baseline)}):",
            *(f"  - {b}" for b in self.failures),
        ]
        raise AssertionError("\n".join(lines))

    def __str__(self) -> str:
        head = (
            f"crash safety of {self.function!r}: {len(self.writes)} checkpoint writes, "
            f"{len(self.boundaries) - len(self.failures)}/{len(self.boundaries)} boundaries ok"
        )
        return "\n".join([head, *(f"  - {b}" for b in self.boundaries)])


def _outcome(result: TestResult) -> str:
    if result.status is ExecutionStatus.SUCCEEDED:
        return f"SUCCEEDED with {result.result!r}"
    if result.error is not None:
        return f"{result.status.value} ({result.error.type}: {result.error.message})"
    return f"{result.status.value} ({result.waiting_for or 'no detail'})"


def _difference(baseline: TestResult, final: TestResult) -> str | None:
    same = (
        final.status is baseline.status
        and final.result == baseline.result
        and (final.error.type if final.error else None)
        == (baseline.error.type if baseline.error else None)
    )
    if same:
        return None
    return f"ended {_outcome(final)}, but the normal run ended {_outcome(baseline)}"


def check_crash_safety(
    fn: DurableFunction[Any, Any] | Callable[[DurableContext, Any], Any],
    event: Any = None,
    *,
    functions: Iterable[DurableFunction[Any, Any] | Any] = (),
    callbacks: Mapping[str, Any] | None = None,
    options: RuntimeOptions | None = None,
    execution_id: str = "crash-check",
    start: datetime = DEFAULT_START,
    points: Sequence[CrashPoint] = (CrashPoint.AFTER_WRITE, CrashPoint.BEFORE_WRITE),
    before_each: Callable[[], object] | None = None,
    check: Callable[[TestResult], object] | None = None,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    skip_callback_timeouts: bool = False,
) -> CrashReport:
    """Crash ``fn`` at every checkpoint boundary and compare each outcome to a normal run.

    Example::

        report = check_crash_safety(order_workflow, {"order_id": "o-1"},
                                    callbacks={"shipper": {"delivered": True}},
                                    before_each=ledger.clear,
                                    check=lambda r: ledger.assert_charged_once())
        report.assert_ok()

    Args:
        fn: the durable function.
        event: its input.
        functions: more durable functions to register (for ``invoke``).
        callbacks: callbacks to complete by name whenever the execution waits for them
            (a value for success, a :class:`~durable_core.testing.CallbackFailure`).
        options: runtime options (lease TTL, retry threshold, payload limit).
        execution_id: the id every run uses.
        start: the virtual time every run starts at.
        points: which crash points to try at each write (default: after, then before).
        before_each: called before every run (the normal one too), e.g. to reset counters.
        check: called with the final result of every crashed run; an exception it raises
            (e.g. a failed assert on a side-effect counter) marks the boundary as failed.
        max_rounds: passed to each :class:`DurableTestRunner`.
        skip_callback_timeouts: let callbacks not in ``callbacks`` time out (passed to each
            :class:`DurableTestRunner`); by default the runs stop waiting for them.

    Returns:
        A :class:`CrashReport`; call ``assert_ok()`` on it.
    """
    callbacks = dict(callbacks or {})

    def runner(store: Any, clock: VirtualClock) -> DurableTestRunner[Any, Any]:
        return DurableTestRunner(
            fn,
            store=store,
            clock=clock,
            functions=functions,
            options=options,
            callbacks=callbacks,
            max_rounds=max_rounds,
            skip_callback_timeouts=skip_callback_timeouts,
        )

    if before_each is not None:
        before_each()
    counting = CountingStore(MemoryStore())
    base_runner = runner(counting, VirtualClock(start))
    baseline = base_runner.run(event, execution_id=execution_id)
    name = base_runner.function.name

    boundaries: list[CrashBoundary] = []
    for k, description in enumerate(counting.writes, start=1):
        for point in points:
            if before_each is not None:
                before_each()
            store = MemoryStore()
            clock = VirtualClock(start)
            crashing = CrashingStore(store, crash_at=k, point=point)
            try:
                final = runner(crashing, clock).run(event, execution_id=execution_id)
            except SimulatedCrash:
                final = _recover(runner(store, clock), store, clock, execution_id)
            problem = _difference(baseline, final)
            if not crashing.crashed:
                problem = (
                    f"the run made only {crashing.calls} checkpoint writes (the normal run made "
                    f"{len(counting.writes)}): the workflow does not write the same records "
                    "every time; keep code between operations deterministic and reset "
                    "shared state in before_each"
                )
            if problem is None and check is not None:
                try:
                    check(final)
                except Exception as exc:
                    problem = f"check failed: {type(exc).__name__}: {exc}"
            boundaries.append(
                CrashBoundary(
                    write=k,
                    point=point,
                    description=description,
                    crashed=crashing.crashed,
                    final=final,
                    problem=problem,
                )
            )
    return CrashReport(
        function=name,
        baseline=baseline,
        writes=tuple(counting.writes),
        boundaries=tuple(boundaries),
    )


def _recover(
    new_worker: DurableTestRunner[Any, Any],
    store: MemoryStore,
    clock: VirtualClock,
    execution_id: str,
) -> TestResult:
    """Let the dead worker's lease expire, then finish the execution on a new runtime."""
    ex = store.get_execution(execution_id)
    if ex.lease_expires is not None:
        clock.set(max(clock.now(), ex.lease_expires) + timedelta(seconds=1))
    return new_worker.resume(execution_id=execution_id)
