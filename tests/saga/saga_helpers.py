"""Helpers shared by the saga tests (imported as a plain module: tests/saga is on sys.path)."""

from __future__ import annotations

from typing import Any

from durable_core import Execution, Operation, RetryPolicy, Runtime, StepContext
from durable_core.parking import is_parked
from durable_core.testing import VirtualClock
from saga import CompensationContext, SagaContext, SagaFunction, saga


def settle(rt: Runtime, execution_id: str, max_rounds: int = 2_000) -> Execution:
    """Drive until the execution finishes, waits for an event or is parked, skipping time."""
    clock = rt.clock
    assert isinstance(clock, VirtualClock)
    ex = rt.drive(execution_id)
    for _ in range(max_rounds):
        if ex.status.is_terminal or ex.wake_at is None or is_parked(ex):
            return ex
        if ex.wake_at > clock.now():
            clock.set(ex.wake_at)
        ex = rt.drive(execution_id)
    raise AssertionError(f"execution {execution_id} did not settle in {max_rounds} rounds")


def names(ops: list[Operation]) -> list[str]:
    """The journal's operation names in write order."""
    return [op.name or "?" for op in ops]


class Effects:
    """Side-effect counters for hand-written sagas: what ran, in order, how often."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def count(self, entry: str) -> int:
        return self.log.count(entry)

    def action(self, name: str, *, fail: bool = False, value: object = None) -> Any:
        """A step action that logs ``do:<name>`` and returns ``value`` (or raises)."""

        def run(sc: StepContext) -> object:
            self.log.append(f"do:{name}")
            if fail:
                raise RuntimeError(f"{name} failed")
            return value if value is not None else f"{name}-result"

        return run

    def undo(self, name: str, *, failures: int = 0, always_fail: bool = False) -> Any:
        """A compensation that logs ``undo:<name>``; fails its first ``failures`` attempts."""

        def run(c: CompensationContext) -> str:
            self.log.append(f"undo:{name}")
            if always_fail or c.attempt <= failures:
                raise ConnectionError(f"undo of {name} failed (attempt {c.attempt})")
            return f"undid {c.step}"

        return run

    def undone(self) -> list[str]:
        """Successful-or-not undo calls, in order, without repeats."""
        return list(dict.fromkeys(e for e in self.log if e.startswith("undo:")))


BOOKED = [
    ("airline", "book", "book-flight"),
    ("hotel", "book", "book-hotel"),
    ("cars", "book", "book-car"),
]
"""The tour ledger effects of a successful run."""

EXPECTED_ROLLBACK = {
    "flight": [("airline", "reject", "book-flight")],
    "hotel": [
        ("airline", "book", "book-flight"),
        ("hotel", "reject", "book-hotel"),
        ("airline", "cancel", "book-flight"),
    ],
    "car": [
        ("airline", "book", "book-flight"),
        ("hotel", "book", "book-hotel"),
        ("cars", "reject", "book-car"),
        ("hotel", "cancel", "book-hotel"),
        ("airline", "cancel", "book-flight"),
    ],
}
"""The tour ledger effects when the given booking fails: the reverse undo sequence."""


def parking_saga(fx: Effects) -> SagaFunction[None, None]:
    """a, b (its undo always fails, no retry: the saga parks on ``operator:b``), c fails."""

    @saga(name="parking")
    def parking(s: SagaContext, event: None) -> None:
        s.step("a", fx.action("a"), compensate=fx.undo("a"))
        s.step(
            "b",
            fx.action("b"),
            compensate=fx.undo("b", always_fail=True),
            compensation_retry=RetryPolicy.no_retry(),
        )
        s.step("c", fx.action("c", fail=True), retry=RetryPolicy.no_retry())

    return parking
