"""The lease keeper of an invocation: no renewal races the finish, and a stuck one is bounded.

The keeper renews the lease on a thread while user code runs. The invocation's end
(``finish_invocation``) releases the lease, so a renewal still in flight then is refused (a
wasted store write). These tests hold a renewal in flight on purpose, with Events, instead
of hoping a timing race shows up.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from durable_core import DurableContext, ExecutionStatus, MemoryStore, Runtime, durable
from durable_core.errors import StoreError
from durable_core.records import Lease
from durable_core.runtime import RuntimeOptions
from durable_core.stores.base import InvocationEnd
from durable_core.testing._stores import DelegatingStore

TTL = timedelta(seconds=1)  # the keeper renews every 0.5 s
WAIT_S = 10.0
renewal_started = threading.Event()


@durable(name="lease-keeper:waits-for-a-renewal")
def waits_for_a_renewal(ctx: DurableContext, event: Any) -> str:
    # Returns (so the invocation ends) while the keeper's first renewal is in flight.
    assert renewal_started.wait(WAIT_S), "the lease keeper never renewed"
    return "done"


class RecordingStore(DelegatingStore):
    """Logs renewals and finishes in call order; holds each renewal for up to ``hold_s``.

    With ``release_on_finish`` a held renewal goes on as soon as ``finish_invocation``
    begins, so if the runtime does not wait for it, the log shows the finish starting while
    the renewal is in flight. Without, it is stuck until ``release`` is set or ``hold_s``.
    """

    def __init__(self, hold_s: float, *, release_on_finish: bool = True) -> None:
        super().__init__(MemoryStore())
        self.hold_s = hold_s
        self.release_on_finish = release_on_finish
        self.log: list[str] = []
        self.release = threading.Event()

    def renew_lease(self, lease: Lease, now: datetime, ttl: timedelta) -> Lease:
        self.log.append("renew:start")
        renewal_started.set()
        self.release.wait(self.hold_s)
        try:
            return super().renew_lease(lease, now, ttl)
        finally:
            self.log.append("renew:end")

    def finish_invocation(self, lease: Lease, end: InvocationEnd, now: datetime) -> Any:
        self.log.append("finish:start")
        if self.release_on_finish:
            self.release.set()
        return super().finish_invocation(lease, end, now)


@pytest.fixture(autouse=True)
def _reset() -> None:
    renewal_started.clear()


def test_no_renewal_is_in_flight_when_the_invocation_finishes() -> None:
    store = RecordingStore(hold_s=0.5)
    rt = Runtime(store, options=RuntimeOptions(lease_ttl=TTL))
    ex = rt.run(waits_for_a_renewal, None, execution_id="keeper-1")
    assert ex.status is ExecutionStatus.SUCCEEDED
    # The renewal that was in flight when the function returned ended before the finish.
    assert store.log == ["renew:start", "renew:end", "finish:start"]


def test_a_stuck_renewal_does_not_hang_the_end_of_an_invocation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("durable_core.runtime.lease_keeper.STOP_TIMEOUT_S", 0.2)
    store = RecordingStore(hold_s=WAIT_S, release_on_finish=False)
    rt = Runtime(store, options=RuntimeOptions(lease_ttl=TTL))
    began = time.monotonic()
    ex = rt.run(waits_for_a_renewal, None, execution_id="keeper-2")
    took = time.monotonic() - began
    assert ex.status is ExecutionStatus.SUCCEEDED  # the finish is fenced, not blocked
    assert took < 0.5 + 0.2 + 2.0, f"the invocation waited {took:.1f}s for a stuck renewal"
    assert store.log == ["renew:start", "finish:start"]
    store.release.set()  # let the stuck renewal end (it is refused: the lease was released)


second_renewal = threading.Event()


@durable(name="lease-keeper:outlives-a-failed-renewal")
def outlives_a_failed_renewal(ctx: DurableContext, event: Any) -> str:
    # A step still running when the keeper's second renewal lands.
    return ctx.step("long", lambda _sc: "done" if second_renewal.wait(WAIT_S) else "stale")


class FlakyStore(DelegatingStore):
    """The first lease renewal fails as a store hiccup would; later ones go through."""

    def __init__(self) -> None:
        super().__init__(MemoryStore())
        self.renewals = 0

    def renew_lease(self, lease: Lease, now: datetime, ttl: timedelta) -> Lease:
        self.renewals += 1
        if self.renewals == 1:
            raise StoreError("the store hiccuped")
        renewed = super().renew_lease(lease, now, ttl)
        second_renewal.set()
        return renewed


def test_a_failed_renewal_is_logged_and_the_keeper_keeps_renewing() -> None:
    second_renewal.clear()
    store = FlakyStore()
    rt = Runtime(store, options=RuntimeOptions(lease_ttl=TTL))
    with capture_logs() as logs:
        ex = rt.run(outlives_a_failed_renewal, None, execution_id="keeper-3")
    assert ex.status is ExecutionStatus.SUCCEEDED
    assert rt.result(ex.id) == "done"  # the step saw the second renewal, not a timeout
    assert store.renewals >= 2
    assert any(e["event"] == "lease renewal failed; retrying" for e in logs)


@durable(name="lease-keeper:short")
def short(ctx: DurableContext, event: int) -> int:
    return int(ctx.step("one", lambda _sc: event))


def test_one_keeper_thread_serves_every_invocation_of_a_runtime() -> None:
    rt = Runtime(MemoryStore(), options=RuntimeOptions(lease_ttl=TTL))
    before = {t.ident for t in threading.enumerate() if t.name == "durable-lease"}
    seen: set[int | None] = set()
    for i in range(20):
        assert rt.run(short, i, execution_id=f"short-{i}").status is ExecutionStatus.SUCCEEDED
        seen |= {t.ident for t in threading.enumerate() if t.name == "durable-lease"}
    assert len(seen - before) == 1


def test_the_keeper_renews_several_long_invocations_at_once() -> None:
    """Two steps outlive their leases at once; another worker cannot take either over."""
    store = MemoryStore()
    rt = Runtime(store, options=RuntimeOptions(lease_ttl=TTL))
    started, release, runs = threading.Barrier(3), threading.Event(), Counter[int]()

    @durable(name="lease-keeper:long")
    def long(ctx: DurableContext, event: int) -> int:
        def work(_sc: Any) -> int:
            runs[event] += 1
            started.wait(WAIT_S)
            release.wait(WAIT_S)
            return event

        return int(ctx.step("long", work))

    rt.register(long)
    first = [rt.start(long, i, execution_id=f"long-{i}").id for i in range(2)]
    ticking = threading.Thread(target=rt.tick, kwargs={"limit": 2, "concurrency": 2})
    ticking.start()
    started.wait(WAIT_S)
    claimed = {eid: store.get_execution(eid).lease_expires for eid in first}
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:  # until each lease was renewed past 2 of its TTLs
        now = {eid: store.get_execution(eid).lease_expires for eid in first}
        if all(now[e] and claimed[e] and now[e] > claimed[e] + 2 * TTL for e in first):
            break
        time.sleep(0.05)
    other = Runtime(
        store, functions=[long], worker_id="other", options=RuntimeOptions(lease_ttl=TTL)
    )
    assert other.tick(limit=2) == 0  # both leases are still held
    release.set()
    ticking.join(WAIT_S)
    assert [rt.result(eid) for eid in first] == [0, 1]
    assert runs == {0: 1, 1: 1}  # no step ran twice
