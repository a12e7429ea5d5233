"""Fixtures and helpers for the composition tests (parallel, map, invoke).

The kit's fixtures (``virtual_clock``, ``memory_store``, ``durable_runner``) come from its
pytest plugin. What is added here:

- ``ledger``: a thread-safe side-effect counter (branch bodies run on pool threads).
- ``rt``: a :class:`Runtime` on the test's memory store and virtual clock.
- :func:`replay_finished`: re-run a finished execution's function against its journal (the
  always-replay idea applied after the fact) and return the outcome and the number of
  writes, which must be zero: any write is refused by a stale lease.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any, TypeVar

import pytest

from durable_core import MemoryStore, Runtime
from durable_core.function import DurableFunction
from durable_core.journal import InvocationOptions, Journal
from durable_core.records import Lease
from durable_core.runtime.invocation import run_invocation
from durable_core.stores.base import InvocationEnd, Store
from durable_core.testing import VirtualClock

T = TypeVar("T")


class Ledger:
    """Counts side effects by name; safe to use from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def hit(self, key: str) -> None:
        """Count one occurrence of ``key``."""
        with self._lock:
            self.counts[key] += 1

    def count(self, key: str, value: T) -> T:
        """Count one occurrence of ``key`` and return ``value`` (for one-line step bodies)."""
        self.hit(key)
        return value

    def __getitem__(self, key: str) -> int:
        with self._lock:
            return self.counts[key]

    def snapshot(self) -> dict[str, int]:
        """A copy of all counts."""
        with self._lock:
            return dict(self.counts)


@pytest.fixture
def ledger() -> Ledger:
    """A fresh side-effect ledger."""
    return Ledger()


@pytest.fixture
def rt(memory_store: MemoryStore, virtual_clock: VirtualClock) -> Runtime:
    """A runtime on the test's store and virtual clock."""
    return Runtime(memory_store, clock=virtual_clock)


def settle(runtime: Runtime, *, rounds: int = 50) -> None:
    """Tick until nothing is due (bounded): runs children and woken parents."""
    for _ in range(rounds):
        if runtime.tick() == 0:
            return
    raise AssertionError(f"still due after {rounds} ticks")


def replay_finished(
    store: Store,
    clock: VirtualClock,
    fn: DurableFunction[Any, Any],
    execution_id: str,
    *,
    services: Runtime | None = None,
) -> tuple[InvocationEnd, int]:
    """Run ``fn`` from the top against the recorded journal of ``execution_id``.

    Returns how the invocation ended and how many checkpoint writes it made. The lease is
    stale on purpose: a write would raise LeaseLostError, so a replay that tries to record
    anything fails loudly. ``services`` is the runtime ``invoke`` resolves names with.
    """
    ex = store.get_execution(execution_id)
    lease = Lease(
        execution_id=ex.id,
        owner="replay-check",
        fence=ex.fence + 1000,
        expires=clock.now() + timedelta(hours=1),
    )
    journal = Journal(
        execution=ex,
        operations=store.load_operations(ex.id),
        store=store,
        lease=lease,
        clock=clock,
        serde=Runtime(store).serde,
        options=InvocationOptions(
            lease_ttl=timedelta(seconds=60), inline_retry_threshold=timedelta(seconds=1)
        ),
        services=services,
    )
    end = run_invocation(fn, journal)
    return end, journal.writes
