"""Renews the leases of a runtime's running invocations, on one thread for all of them.

An invocation holds its execution's lease for ``lease_ttl``; a step may run longer. The
keeper renews each held lease every ``ttl / 3`` (at least 0.5 s) until the invocation lets
go. One thread serves every invocation of a runtime (started on first use, gone after a
quiet period), so a short invocation costs two dictionary updates, not a thread.

Safety margin: each renewal sets the lease to expire ``ttl`` after it, and the next one is
due a period later, so just before a renewal about ⅔ of the TTL is left (TTL - 0.5 s when
the TTL is under 1.5 s). A stall of the worker shorter than that (minus the renewal's own
store latency) keeps the lease; one failed renewal leaves ⅓; two in a row lose it, and then
fencing stops the invocation at its next write. docs/guarantees.md states this margin.

After :meth:`LeaseKeeper.release` returns, no renewal of that invocation is in flight and
none starts (unless the bounded wait for a stuck one ran out), so a renewal cannot race
``finish_invocation``. A renewal that is still running then is refused by the store's
fencing, so it is wasted, never harmful.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from durable_core.errors import LeaseLostError

if TYPE_CHECKING:
    from durable_core.journal import Journal
    from durable_core.stores.base import SchedulingStore

STOP_TIMEOUT_S = 5.0
"""How long the end of an invocation waits for a lease renewal in flight. Bounded so a
stuck store cannot hang a worker's shutdown; a renewal still running after it is harmless
(the finish is fenced, and the renewal is then refused)."""

_log = structlog.get_logger("durable.runtime")


@dataclass(eq=False)
class Held:
    """One invocation's lease, as the keeper tracks it."""

    journal: Journal
    store: SchedulingStore
    """Where the lease is renewed (the runtime's store, the journal's own)."""
    due: float
    lock: threading.Lock = field(default_factory=threading.Lock)  # held while renewing
    released: bool = False


class LeaseKeeper:
    """Renews the leases of the invocations that :meth:`hold` them until :meth:`release`."""

    def __init__(self, ttl: timedelta) -> None:
        self._ttl = ttl
        self._period = max(0.5, ttl.total_seconds() / 3)
        self._wake = threading.Condition()
        self._held: set[Held] = set()
        self._thread: threading.Thread | None = None

    def hold(self, journal: Journal, store: SchedulingStore) -> Held:
        """Start renewing ``journal``'s lease (first renewal one period from now)."""
        held = Held(journal, store, due=time.monotonic() + self._period)
        with self._wake:
            self._held.add(held)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="durable-lease", daemon=True)
                self._thread.start()
        return held

    def release(self, held: Held) -> None:
        """Stop renewing; wait (at most ``STOP_TIMEOUT_S``) for a renewal in flight to end."""
        with self._wake:
            self._held.discard(held)
        waited = STOP_TIMEOUT_S  # read at call time: tests shorten it
        if held.lock.acquire(timeout=waited):
            held.released = True
            held.lock.release()
            return
        held.released = True  # the stuck renewal's thread sees it when it comes back
        _log.warning(
            "a lease renewal is still running after the invocation ended; not waiting "
            "for it (it will be refused). Check the store's health.",
            execution_id=held.journal.execution_id,
            waited_s=waited,
        )

    def _run(self) -> None:
        while True:
            with self._wake:
                due = self._due()
                if due is None:  # nothing held for a whole period: let the thread go
                    self._thread = None
                    return
            for held in due:
                self._renew(held)

    def _due(self) -> list[Held] | None:
        """Wait until a lease is due; None after a quiet period (caller holds ``_wake``)."""
        idle_since = time.monotonic()
        while True:
            now = time.monotonic()
            if not self._held:
                if now - idle_since >= self._period:
                    return None
                self._wake.wait(self._period)
                continue
            due = [h for h in self._held if h.due <= now]
            if due:
                return due
            self._wake.wait(min(h.due for h in self._held) - now)
            idle_since = time.monotonic()

    def _renew(self, held: Held) -> None:
        journal = held.journal
        with held.lock:
            if held.released:
                return
            held.due = time.monotonic() + self._period
            with journal.lock:
                try:
                    journal.lease = held.store.renew_lease(
                        journal.lease, journal.clock.now(), self._ttl
                    )
                except LeaseLostError as e:  # the invocation's next write stops it too
                    _log.warning("lease lost while a step runs", error=str(e),
                                 execution_id=journal.execution_id)  # fmt: skip
                    with self._wake:
                        self._held.discard(held)
                except Exception as e:  # a store hiccup: try again next period
                    _log.warning("lease renewal failed; retrying", error=str(e),
                                 execution_id=journal.execution_id)  # fmt: skip
