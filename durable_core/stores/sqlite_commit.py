"""Group commit for one SQLite connection shared by threads: many writes, one fsync.

Each write is a function of the connection that runs in a ``BEGIN IMMEDIATE`` transaction.
Writes that arrive while a transaction is being committed queue up; when it is done, one
of them becomes the *leader*: it runs the whole queue in one transaction (each write in its
own savepoint), commits once, and wakes the others with their results. A leader hands the
lead to the first writer still waiting; a writer interrupted while it waits passes it on,
so the lead is never stranded. No write returns before
the commit that holds it, and a write that raises undoes only its own statements.

Why a leader and not a lock: with a lock, every queued writer must be woken in turn to run
its few statements while the others wait (a convoy, one thread wake-up per write, costly on
a busy interpreter); the leader runs them all back to back and each waiter wakes once.

Failures: a write's own exception (a lost lease, a constraint) is raised to that writer
only. If SQLite abandons the whole transaction (disk full, I/O error) or the commit fails,
every write of the batch raises :class:`~durable_core.errors.StoreError` and none of them
is stored.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from durable_core.errors import StoreError

T = TypeVar("T")


@dataclass(eq=False)
class _Write(Generic[T]):
    fn: Callable[[sqlite3.Connection], T]
    woken: threading.Event = field(default_factory=threading.Event)
    done: bool = False
    abandoned: bool = False  # its writer stopped waiting (interrupted)
    value: Any = None
    error: BaseException | None = None


class GroupCommit:
    """Runs writes on ``db`` in shared transactions; ``lock`` guards the connection."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock, where: str) -> None:
        self._db = db
        self._lock = lock
        self._where = where
        self._queue_lock = threading.Lock()
        self._queue: list[_Write[Any]] = []
        self._leader: _Write[Any] | None = None  # the write whose thread runs the batch

    def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(db)`` in a durable transaction (perhaps shared); return what it returns."""
        write = _Write(fn)
        with self._queue_lock:
            self._queue.append(write)
            leader = self._claim(write)
        try:
            while not leader:
                write.woken.wait()
                with self._queue_lock:
                    if write.done:
                        break
                    write.woken.clear()
                    leader = self._leader is write or self._claim(write)
            if leader:
                self._lead()  # hands the lead over however it ends
        except BaseException:  # e.g. KeyboardInterrupt while waiting: never strand the lead
            self._walk_away(write)
            raise
        if write.error is not None:
            if isinstance(write.error, sqlite3.Error):
                raise StoreError(f"{self._where}: {write.error}") from write.error
            raise write.error
        value: T = write.value
        return value

    def _claim(self, write: _Write[Any]) -> bool:
        """Take the lead for ``write`` if nobody has it (caller holds the queue lock)."""
        if self._leader is not None:
            return False
        self._leader = write  # one store: a signal cannot land half-way
        return True

    def _walk_away(self, write: _Write[Any]) -> None:
        """A writer stops waiting: its write may still run (its outcome unheard), and if it
        held or was about to take the lead, the next waiting writer is woken to take it."""
        with self._queue_lock:
            write.abandoned = True
            if self._leader is write:
                self._hand_over()

    def _hand_over(self) -> None:
        """Give the lead to the first writer still waiting, and wake it; or free it (caller
        holds the queue lock). Handing it over, rather than freeing it for whoever comes
        next, keeps the queued writes together in the next batch."""
        self._leader = next((w for w in self._queue if not w.abandoned), None)
        if self._leader is not None:
            self._leader.woken.set()

    def _lead(self) -> None:
        """Run the queued writes as one batch, wake their writers, hand the lead over."""
        with self._queue_lock:
            batch, self._queue = self._queue, []
        interrupted: BaseException | None = None
        try:
            with self._lock:
                try:
                    self._run(batch)
                except BaseException as e:  # KeyboardInterrupt in the leader: all writes fail
                    interrupted = e
                    self._fail(batch, e, "was interrupted")
        finally:
            with self._queue_lock:
                for w in batch:
                    w.done = True
                    w.woken.set()
                self._hand_over()
        if interrupted is not None:
            raise interrupted

    def _run(self, batch: list[_Write[Any]]) -> None:
        """Run ``batch`` in one transaction and commit it (caller holds the lock)."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            for w in batch:
                w.error = e
            return None
        shared = len(batch) > 1
        for w in batch:
            try:
                if shared:
                    db.execute("SAVEPOINT w")
                w.value = w.fn(db)
                if shared:
                    db.execute("RELEASE w")
            except Exception as e:
                w.error = e
                if not self._undo(shared):
                    return self._fail(batch, e, "was abandoned by SQLite")
        if not db.in_transaction:  # a lone write that failed was rolled back already
            return None
        try:
            db.execute("COMMIT")
        except sqlite3.Error as e:
            self._fail(batch, e, "failed to commit")
        return None

    def _undo(self, shared: bool) -> bool:
        """Undo the failed write's statements; False if the transaction is gone."""
        db = self._db
        try:
            if db.in_transaction:
                if shared:
                    db.execute("ROLLBACK TO w")
                    db.execute("RELEASE w")
                else:
                    db.execute("ROLLBACK")
                return True
        except sqlite3.Error:
            pass
        return not shared and not db.in_transaction

    def _fail(self, batch: list[_Write[Any]], cause: BaseException | None, what: str) -> None:
        """Roll back what is left: no write of ``batch`` is stored, so each raises (its own
        error if it had one, else a StoreError naming ``cause``)."""
        if self._db.in_transaction:
            with suppress(sqlite3.Error):  # the connection may have ended it already
                self._db.execute("ROLLBACK")
        lost = StoreError(
            f"{self._where}: the shared transaction {what} ({cause}); nothing was written"
        )
        for w in batch:
            if w.error is None:
                w.error = lost
