"""The concurrency benchmark's workflow, side ledger, audited store and worker process.

``bench/concurrency.py`` runs W copies of this file as real worker processes::

    python bench/concurrency_flow.py --store sqlite --path S.sqlite3 --audit A --ledger L \\
        --control DIR --lease-ttl 2

Each is a :class:`durable_core.Worker` (SIGTERM stops it after the current invocation) on
an :class:`AuditedStore`: the real store (SQLite file or DynamoDB table) wrapped so that
every fenced write is logged to an append-only audit database, separate from the store:

- before the call a ``begin`` row (its autoincrement ``seq`` is the call's start on one
  global order shared by all workers), after it an end row (``ref`` = the begin row) saying
  ``accepted``, ``refused`` (LeaseLostError) or ``error``; a worker killed in between
  leaves the begin row alone (outcome unknown);
- every lease the store grants (``claim_due``, ``acquire_lease``) as a ``grant`` row
  written after the grant returned.

The store committed an accepted write somewhere between its two rows, and a grant before
its row, so "W started after H ended" is a real order between commits
(``concurrency_check`` relies on that and nothing else).

Every step body appends its effect (execution, step, pid, attempt, a unique effect id) to
the side ledger (another SQLite file) before returning the effect id, so re-executed bodies
are countable and every recorded step result can be matched to the body run that made it.
The callback's submit step publishes the token in the ledger for the harness's feeder.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import structlog

from durable_core import (
    DurableContext,
    Execution,
    LeaseLostError,
    Operation,
    Runtime,
    RuntimeOptions,
    StepContext,
    Store,
    Worker,
    durable,
)
from durable_core.records import Lease
from durable_core.stores.base import InvocationEnd
from durable_core.testing._stores import DelegatingStore

LEDGER_ENV = "CONCURRENCY_LEDGER"
CONTROL_ENV = "CONCURRENCY_CONTROL"
WAIT_S = 1  # the shortest durable wait there is
STEPS = ("reserve", "charge", "ship")
FUNCTION = "bench:concurrency-flow"
REGION = "us-east-1"
T = TypeVar("T")

_LEDGER_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS effects (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "execution_id TEXT NOT NULL, step TEXT NOT NULL, pid INTEGER NOT NULL, "
    "attempt INTEGER NOT NULL, effect TEXT NOT NULL UNIQUE)",
    "CREATE TABLE IF NOT EXISTS tokens (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "execution_id TEXT NOT NULL, token TEXT NOT NULL, pid INTEGER NOT NULL)",
)
_AUDIT_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, ref INTEGER, "
    "kind TEXT NOT NULL, execution_id TEXT NOT NULL, owner TEXT NOT NULL, "
    "fence INTEGER NOT NULL, outcome TEXT NOT NULL, ops TEXT NOT NULL, pid INTEGER NOT NULL)",
)


class SideDB:
    """An append-only SQLite file shared by processes (WAL; a commit survives a kill -9)."""

    def __init__(self, path: str | os.PathLike[str], schema: Sequence[str]) -> None:
        self._lock = threading.Lock()
        self.db = sqlite3.connect(path, timeout=120, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")  # durable across a process kill
        for statement in schema:
            self.db.execute(statement)

    def append(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> int:
        """Insert ``rows`` in one transaction; return the last row's ``seq``."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self.db.executemany(sql, rows)
                seq = self.db.execute("SELECT last_insert_rowid()").fetchone()[0]
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            del cursor
            return int(seq)

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[sqlite3.Row]:
        with self._lock:
            self.db.row_factory = sqlite3.Row
            try:
                return list(self.db.execute(sql, params or {}))
            finally:
                self.db.row_factory = None

    def close(self) -> None:
        with self._lock:
            self.db.close()


def ledger(path: str | os.PathLike[str]) -> SideDB:
    return SideDB(path, _LEDGER_SCHEMA)


def audit_db(path: str | os.PathLike[str]) -> SideDB:
    return SideDB(path, _AUDIT_SCHEMA)


# --- the workflow -----------------------------------------------------------------------

_ledger: SideDB | None = None


def _the_ledger() -> SideDB:
    global _ledger  # noqa: PLW0603  # one connection per worker process
    if _ledger is None:
        _ledger = ledger(os.environ[LEDGER_ENV])
    return _ledger


def _maybe_stall(execution_id: str, step: str) -> None:
    """Stop this process (SIGSTOP) inside a step if the harness asked it to, once.

    The harness writes ``<control>/stall-<pid>``; the first step body of that worker then
    records where it stopped in ``stalled-<pid>`` and freezes, holding its lease, until the
    harness has seen another worker take the execution over and sends SIGCONT.
    """
    control = os.environ.get(CONTROL_ENV)
    if not control:
        return
    request = Path(control) / f"stall-{os.getpid()}"
    try:
        request.unlink()
    except FileNotFoundError:
        return
    note = Path(control) / f"stalled-{os.getpid()}"
    note.with_suffix(".tmp").write_text(json.dumps({"execution_id": execution_id, "step": step}))
    note.with_suffix(".tmp").replace(note)
    os.kill(os.getpid(), signal.SIGSTOP)


def effect(sc: StepContext) -> str:
    """A step body: record the effect in the side ledger, return its unique id."""
    effect_id = uuid.uuid4().hex
    _the_ledger().append(
        "INSERT INTO effects (execution_id, step, pid, attempt, effect) VALUES (?, ?, ?, ?, ?)",
        [(sc.execution_id, sc.name, os.getpid(), sc.attempt, effect_id)],
    )
    _maybe_stall(sc.execution_id, sc.name)
    return effect_id


def submit(token: str, sc: StepContext) -> None:
    """The callback's submit step: publish the token for the feeder."""
    _the_ledger().append(
        "INSERT INTO tokens (execution_id, token, pid) VALUES (?, ?, ?)",
        [(sc.execution_id, token, os.getpid())],
    )


def order_for(execution_id: str) -> str:
    """The event an execution is started with."""
    return f"order-{execution_id}"


def answer_for(execution_id: str) -> str:
    """What the feeder completes an execution's callback with."""
    return f"approved:{execution_id}"


@durable(name=FUNCTION)
def flow(ctx: DurableContext, order: str) -> dict[str, Any]:
    """Two steps, a 1 s durable wait, a callback completed from outside, one more step."""
    effects = [ctx.step(STEPS[0], effect), ctx.step(STEPS[1], effect)]
    ctx.wait("cool-off", WAIT_S)
    approval = ctx.wait_for_callback("approval", submit, timeout=timedelta(minutes=30))
    effects.append(ctx.step(STEPS[2], effect))
    return {"order": order, "effects": effects, "approval": approval}


# --- the audited store ------------------------------------------------------------------

_BEGIN = "INSERT INTO audit (ref, kind, execution_id, owner, fence, outcome, ops, pid) "
_BEGIN += "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


class AuditedStore(DelegatingStore):
    """Delegates to a real store; logs every fenced write and every lease it grants.

    ``release_lease`` passes through unlogged: it is not fenced by contract (a no-op if lost).
    """

    def __init__(self, inner: Store, audit: SideDB) -> None:
        super().__init__(inner)
        self.audit = audit
        self.pid = os.getpid()

    def _row(
        self, ref: int | None, kind: str, lease: Lease, outcome: str, ops: str
    ) -> tuple[Any, ...]:
        return (ref, kind, lease.execution_id, lease.owner, lease.fence, outcome, ops, self.pid)

    def _fenced(self, kind: str, lease: Lease, ops: str, call: Callable[[], T]) -> T:
        begin = self.audit.append(_BEGIN, [self._row(None, kind, lease, "begin", ops)])
        try:
            result = call()
        except LeaseLostError:
            self.audit.append(_BEGIN, [self._row(begin, kind, lease, "refused", ops)])
            raise
        except Exception:
            self.audit.append(_BEGIN, [self._row(begin, kind, lease, "error", ops)])
            raise
        self.audit.append(_BEGIN, [self._row(begin, kind, lease, "accepted", ops)])
        return result

    def _granted(self, leases: Sequence[Lease]) -> None:
        if leases:
            self.audit.append(
                _BEGIN, [self._row(None, "grant", x, "accepted", "[]") for x in leases]
            )

    # fenced writes and grants

    def acquire_lease(
        self, execution_id: str, owner: str, now: datetime, ttl: timedelta
    ) -> Lease | None:
        lease = self.inner.acquire_lease(execution_id, owner, now, ttl)
        self._granted([lease] if lease is not None else [])
        return lease

    def claim_due(self, owner: str, now: datetime, ttl: timedelta, limit: int) -> list[Lease]:
        leases = self.inner.claim_due(owner, now, ttl, limit)
        self._granted(leases)
        return leases

    def renew_lease(self, lease: Lease, now: datetime, ttl: timedelta) -> Lease:
        return self._fenced("renew", lease, "[]", lambda: self.inner.renew_lease(lease, now, ttl))

    def write_operations(
        self, lease: Lease, operations: Sequence[Operation], now: datetime, ttl: timedelta
    ) -> Lease:
        ops = json.dumps([[op.id, op.status.value] for op in operations])
        return self._fenced(
            "write", lease, ops, lambda: self.inner.write_operations(lease, operations, now, ttl)
        )

    def finish_invocation(self, lease: Lease, end: InvocationEnd, now: datetime) -> Execution:
        ops = json.dumps([["#execution", end.status.value]])
        return self._fenced(
            "finish", lease, ops, lambda: self.inner.finish_invocation(lease, end, now)
        )


# --- opening stores and the worker process ----------------------------------------------


def ddb_client(endpoint: str) -> Any:
    """A boto3 client for DynamoDB Local (the same dummy keys as tests/aws/ddb.py)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"mode": "standard"}, max_pool_connections=20),
    )


def open_store(
    kind: str, path: str | None, table: str | None, endpoint: str | None, *, unfenced: bool = False
) -> Store:
    """The real store behind a run: a SQLite file or a DynamoDB (Local) table.

    ``unfenced`` (SQLite only) is the checker's negative control: a store whose fence check
    is switched off, so a stale lease holder's writes are accepted.
    """
    if kind == "sqlite":
        from durable_core.stores.sqlite import SQLiteStore

        assert path is not None
        store: Store = _unfenced_store_class()(path) if unfenced else SQLiteStore(path)
        return store
    from durable_core.stores.dynamodb import DynamoDBStore

    assert table is not None
    assert endpoint is not None
    return DynamoDBStore(table, client=ddb_client(endpoint))


def _unfenced_store_class() -> type[Any]:
    from durable_core.stores.sqlite import _UPSERT_OP, SQLiteStore

    class UnfencedSQLiteStore(SQLiteStore):
        """BROKEN ON PURPOSE: accepts writes under any lease (negative control only)."""

        def _check(self, db: sqlite3.Connection, lease: Lease) -> Execution:
            return self._get(db, lease.execution_id)

        def _upsert_fenced(self, db: sqlite3.Connection, lease: Lease, row: Any) -> bool:
            db.execute(_UPSERT_OP, row)
            return True

    return UnfencedSQLiteStore


def worker_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description="one audited concurrency-bench worker")
    parser.add_argument("--store", choices=["sqlite", "dynamodb"], required=True)
    parser.add_argument("--path")
    parser.add_argument("--table")
    parser.add_argument("--endpoint")
    parser.add_argument("--audit", required=True)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--control", required=True)
    parser.add_argument("--lease-ttl", type=float, default=2.0)
    parser.add_argument("--poll", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--unfenced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    os.environ[LEDGER_ENV] = args.ledger
    os.environ[CONTROL_ENV] = args.control
    inner = open_store(args.store, args.path, args.table, args.endpoint, unfenced=args.unfenced)
    store = AuditedStore(inner, audit_db(args.audit))
    options = RuntimeOptions(lease_ttl=timedelta(seconds=args.lease_ttl))
    rt = Runtime(store, functions=[flow], options=options)
    worker = Worker(rt, poll_interval=args.poll, batch=16, concurrency=args.concurrency)
    print(f"ready {os.getpid()} {rt.worker_id}", flush=True)
    try:
        return worker.run_forever()
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
