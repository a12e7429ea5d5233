"""GroupCommit: writes queued behind a running batch are run together, committed once,
and each learns its own outcome; nothing is half-written when a batch fails."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from durable_core.errors import StoreError
from durable_core.stores.sqlite_commit import GroupCommit

WAIT_S = 10.0


class Harness:
    """A table, a GroupCommit on it, and a first write that holds the lead until told."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
        self.commits = 0
        self.db.set_trace_callback(self._trace)
        self.group = GroupCommit(self.db, threading.Lock(), "test store")
        self.outcomes: dict[str, Any] = {}
        self.threads: list[threading.Thread] = []
        self.holding = threading.Event()
        self.release = threading.Event()

    def _trace(self, sql: str) -> None:
        self.commits += sql == "COMMIT"

    def insert(self, key: str) -> Callable[[sqlite3.Connection], str]:
        def fn(db: sqlite3.Connection) -> str:
            db.execute("INSERT INTO t VALUES (?)", (key,))
            return key

        return fn

    def hold(self) -> Callable[[sqlite3.Connection], str]:
        def fn(db: sqlite3.Connection) -> str:
            db.execute("INSERT INTO t VALUES ('first')")
            self.holding.set()
            assert self.release.wait(WAIT_S)
            return "first"

        return fn

    def submit(
        self, name: str, fn: Callable[[sqlite3.Connection], Any], *, queue: bool = True
    ) -> None:
        """Run ``fn`` on a thread; with ``queue``, wait until it is queued."""
        queued = len(self.group._queue)

        def run() -> None:
            try:
                self.outcomes[name] = self.group.run(fn)
            except BaseException as e:
                self.outcomes[name] = e

        t = threading.Thread(target=run)
        self.threads.append(t)
        t.start()
        deadline = time.monotonic() + WAIT_S
        while queue and len(self.group._queue) <= queued:
            assert time.monotonic() < deadline, f"{name} never queued"
            time.sleep(0.001)

    def start_batch(self) -> None:
        """A first write leads and holds; what is submitted next queues as one batch."""
        self.submit("first", self.hold(), queue=False)
        assert self.holding.wait(WAIT_S)

    def finish(self) -> None:
        self.release.set()
        for t in self.threads:
            t.join(WAIT_S)

    def keys(self) -> set[str]:
        other = sqlite3.connect(self.path)
        try:
            return {k for (k,) in other.execute("SELECT k FROM t")}
        finally:
            other.close()


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path / "t.sqlite3")


def test_writes_queued_behind_a_batch_share_one_commit(h: Harness) -> None:
    h.start_batch()
    for k in "abcde":
        h.submit(k, h.insert(k))
    h.finish()
    assert h.outcomes == {"first": "first", **{k: k for k in "abcde"}}
    assert h.keys() == {"first", *"abcde"}
    assert h.commits == 2  # the first write's own, then one for the five queued behind it


def test_a_failing_write_in_a_batch_undoes_only_its_own_statements(h: Harness) -> None:
    def half_then_fail(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO t VALUES ('half')")
        raise ValueError("the write's own error")

    h.start_batch()
    h.submit("a", h.insert("a"))
    h.submit("bad", half_then_fail)
    h.submit("dup", h.insert("a"))  # a constraint error, raised as a StoreError
    h.submit("c", h.insert("c"))
    h.finish()
    assert h.outcomes["a"] == "a" and h.outcomes["c"] == "c"
    assert isinstance(h.outcomes["bad"], ValueError)
    assert isinstance(h.outcomes["dup"], StoreError)
    assert "UNIQUE" in str(h.outcomes["dup"])
    assert h.keys() == {"first", "a", "c"}


def test_a_transaction_sqlite_abandons_fails_every_write_of_the_batch(h: Harness) -> None:
    def io_error(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO t VALUES ('doomed')")
        db.execute("ROLLBACK")  # what SQLite does itself on a disk-full or I/O error
        raise sqlite3.OperationalError("disk I/O error")

    h.start_batch()
    h.submit("before", h.insert("before"))
    h.submit("broken", io_error)
    h.submit("after", h.insert("after"))
    h.finish()
    assert h.outcomes["first"] == "first"
    assert "disk I/O error" in str(h.outcomes["broken"])
    for name in ("before", "after"):  # ran (or would have) in the abandoned transaction
        assert isinstance(h.outcomes[name], StoreError), h.outcomes[name]
        assert "nothing was written" in str(h.outcomes[name])
    assert h.keys() == {"first"}
    assert h.group.run(h.insert("later")) == "later"  # the store goes on working
    assert h.keys() == {"first", "later"}


def test_an_interrupt_in_the_leader_fails_its_batch_and_hands_over_the_lead(h: Harness) -> None:
    """A signal reaches the thread running the batch (here "a", first in the queue)."""

    def interrupted(db: sqlite3.Connection) -> None:
        raise KeyboardInterrupt

    h.start_batch()
    h.submit("a", h.insert("a"))
    h.submit("ctrl-c", interrupted)
    h.submit("b", h.insert("b"))
    h.finish()
    assert isinstance(h.outcomes["a"], KeyboardInterrupt)  # the leader's thread
    for name in ("ctrl-c", "b"):
        assert isinstance(h.outcomes[name], StoreError), h.outcomes[name]
    assert h.keys() == {"first"}
    assert h.group.run(h.insert("later")) == "later"


class SignalledError(Exception):
    pass


def _interrupt(signum: int, frame: Any) -> None:
    raise SignalledError


def test_a_writer_interrupted_while_it_waits_does_not_strand_the_lead(h: Harness) -> None:
    """The first writer queued (here the main thread, hit by a signal) walks away: the
    writes queued behind it still run once the batch ahead of them is done."""
    h.start_batch()
    previous = signal.signal(signal.SIGALRM, _interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        with pytest.raises(SignalledError):
            h.group.run(h.insert("main"))  # queued first, behind the held batch
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    h.submit("a", h.insert("a"))
    h.submit("b", h.insert("b"))
    h.finish()
    assert (h.outcomes.get("a"), h.outcomes.get("b")) == ("a", "b")
    assert h.group.run(h.insert("later")) == "later"
    assert {"first", "a", "b", "later"} <= h.keys()  # "main" may have run, unheard
