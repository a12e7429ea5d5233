"""SQLiteStore specifics: schema checks, corrupt rows, pragmas, real processes and threads."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from durable_core.errors import (
    CorruptRecordError,
    ExecutionNotFoundError,
    SchemaVersionError,
    StoreError,
)
from durable_core.records import CallbackOutcome, ExecutionStatus, OperationStatus
from durable_core.stores.base import InvocationEnd
from durable_core.stores.sqlite import SQLiteStore

from .records import T0, TTL, at, callback, execution, leased, step, token


def raw(path: Path, *statements: str) -> list[Any]:
    """Run SQL on the file outside the store (as an operator or a bug would); last rows."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        rows: list[Any] = []
        for statement in statements:
            rows = con.execute(statement).fetchall()
        return rows
    finally:
        con.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "durable.sqlite3"


# --- opening ----------------------------------------------------------------------------------


def test_a_file_from_a_newer_schema_version_is_refused_untouched(path: Path) -> None:
    with SQLiteStore(path) as store:
        store.create_execution(execution("e1"))
    raw(path, "UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with pytest.raises(
        SchemaVersionError, match=r"schema version 2, written by a newer durable-saga.*Upgrade"
    ):
        SQLiteStore(path)
    assert raw(path, "SELECT value FROM meta") == [("2",)]
    assert raw(path, "SELECT id FROM executions") == [("e1",)]


@pytest.mark.parametrize(
    "setup",
    [
        ["CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)"],
        ["CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"],
        [
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "INSERT INTO meta VALUES ('schema_version', '1')",
            "CREATE TABLE executions (id TEXT PRIMARY KEY, status TEXT, wake_us INT, data TEXT)",
            "CREATE TABLE operations (seq INTEGER PRIMARY KEY, execution_id TEXT, data TEXT)",
        ],
    ],
    ids=["another-programs-db", "no-version", "same-version-other-layout"],
)
def test_an_unknown_layout_is_refused_untouched(path: Path, setup: list[str]) -> None:
    raw(path, *setup)
    before = raw(path, "SELECT name, sql FROM sqlite_master ORDER BY name")
    with pytest.raises(SchemaVersionError, match="not a store this durable-saga can read"):
        SQLiteStore(path)
    assert raw(path, "SELECT name, sql FROM sqlite_master ORDER BY name") == before


def test_a_file_that_is_not_a_database_is_a_store_error(path: Path) -> None:
    path.write_bytes(b"this is a text file, not SQLite\n" * 100)
    with pytest.raises(StoreError, match="cannot be opened as a durable-saga SQLite store"):
        SQLiteStore(path)


def test_wal_mode_and_synchronous_level(tmp_path: Path) -> None:
    full = SQLiteStore(tmp_path / "a" / "b" / "full.sqlite3")  # parent directories created
    normal = SQLiteStore(tmp_path / "normal.sqlite3", durability="normal")
    try:
        assert raw(full.path, "PRAGMA journal_mode") == [("wal",)]  # persistent in the file
        assert raw(normal.path, "PRAGMA journal_mode") == [("wal",)]
        assert full._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
        assert normal._db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    finally:
        full.close()
        normal.close()
    with pytest.raises(ValueError, match="durability"):
        SQLiteStore(tmp_path / "x.sqlite3", durability="fast")  # type: ignore[arg-type]


def _open_and_create(path: str, name: str, gate: Any, out: Any) -> None:
    gate.wait(timeout=60)
    with SQLiteStore(path) as store:
        store.create_execution(execution(name))
    out.put(name)


def test_processes_opening_a_new_file_at_once_create_the_schema_once(path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    gate, out = ctx.Barrier(4), ctx.Queue()
    procs = [
        ctx.Process(target=_open_and_create, args=(str(path), f"p{i}", gate, out)) for i in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:  # small queue items never block a child's exit, so join first
        p.join(timeout=120)
        assert p.exitcode == 0, f"{p.name} exited with {p.exitcode} (traceback above)"
    done = sorted(out.get(timeout=10) for _ in procs)
    assert done == ["p0", "p1", "p2", "p3"]
    assert raw(path, "SELECT * FROM meta") == [("schema_version", "1")]
    with SQLiteStore(path) as store:
        assert sorted(e.id for e in store.list_executions()) == done


# --- rows ---------------------------------------------------------------------------------


def test_a_corrupt_operation_row_is_named_and_other_rows_still_load(path: Path) -> None:
    store = SQLiteStore(path)
    for eid in ("good", "bad"):
        store.write_operations(leased(store, eid), [step("a"), step("b")], T0, TTL)
    (seq,) = raw(path, "SELECT seq FROM operations WHERE execution_id = 'bad' AND op_id = 'b'")[0]
    raw(path, 'UPDATE operations SET record = \'{"id": "b", \' WHERE seq = ' + str(seq))
    with pytest.raises(CorruptRecordError) as info:
        store.load_operations("bad")
    message = str(info.value)
    assert f"Operation 'b' (row seq={seq}) of execution 'bad'" in message
    assert "backup" in message
    assert "sqlite3" in message
    assert [o.id for o in store.load_operations("good")] == ["a", "b"]
    assert store.get_execution("bad").id == "bad"
    store.close()


def test_records_leave_unset_fields_out_and_records_with_nulls_still_load(path: Path) -> None:
    store = SQLiteStore(path)
    store.write_operations(leased(store, "ex"), [step("a"), step("b")], T0, TTL)
    (record,) = raw(path, "SELECT record FROM operations WHERE op_id = 'a'")[0]
    assert "null" not in record and '"result"' not in record
    # A record written with every field (as earlier versions did) reads the same.
    full = step("b").model_dump_json()
    assert '"result":null' in full
    raw(path, f"UPDATE operations SET record = '{full}' WHERE op_id = 'b'")
    assert store.load_operations("ex") == [step("a"), step("b")]
    store.close()


def test_a_file_without_the_journal_order_index_gets_it_and_loads_in_write_order(
    path: Path,
) -> None:
    store = SQLiteStore(path)
    store.write_operations(leased(store, "ex"), [step("z"), step("a"), step("m")], T0, TTL)
    store.close()
    raw(path, "DROP INDEX operations_order")  # a file made before the index existed
    store = SQLiteStore(path)
    assert [o.id for o in store.load_operations("ex")] == ["z", "a", "m"]
    plan = raw(
        path,
        "EXPLAIN QUERY PLAN SELECT seq FROM operations WHERE execution_id = 'ex' ORDER BY seq",
    )
    assert any("operations_order" in str(row) for row in plan)
    assert not any("TEMP B-TREE" in str(row) for row in plan)
    store.close()


@pytest.mark.parametrize(
    "damage",
    ["not json at all", '{"id": "bad", "function": "m:f"}', "__STATUS__"],
    ids=["not-json", "missing-fields", "bad-enum"],
)
def test_a_corrupt_execution_row_is_named_and_others_still_load(path: Path, damage: str) -> None:
    store = SQLiteStore(path)
    for eid in ("bad", "good"):
        store.create_execution(execution(eid))
    record = raw(path, "SELECT record FROM executions WHERE id = 'bad'")[0][0]
    damaged = record.replace('"RUNNING"', '"EXPLODED"') if damage == "__STATUS__" else damage
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("UPDATE executions SET record = ? WHERE id = 'bad'", (damaged,))
    con.close()
    with pytest.raises(CorruptRecordError, match="execution 'bad'.*does not parse"):
        store.get_execution("bad")
    with capture_logs() as logs:  # a listing skips (and logs) the bad row, as claim_due does
        assert [e.id for e in store.list_executions()] == ["good"]
    assert [log["event"] for log in logs] == ["list_executions skips an unreadable execution"]
    assert "execution 'bad'" in logs[0]["error"]
    assert store.get_execution("good").id == "good"
    # A worker is not stalled by the bad row: it claims everything else.
    assert [lease.execution_id for lease in store.claim_due("w", T0, TTL, 1)] == ["good"]
    assert raw(path, "SELECT record FROM executions WHERE id = 'bad'") == [(damaged,)]
    store.close()


NOT_UTF8 = "CAST(X'7B226964223A2022FFFE' AS TEXT)"
"""SQL for text that is not UTF-8: ``{"id": "`` then the bytes 0xFF 0xFE."""


def test_an_execution_record_that_is_not_utf8_is_a_corrupt_record_naming_it(path: Path) -> None:
    store = SQLiteStore(path)
    for eid in ("bad", "good"):
        store.create_execution(execution(eid))
    raw(path, f"UPDATE executions SET record = {NOT_UTF8} WHERE id = 'bad'")
    damaged = raw(path, "SELECT CAST(record AS BLOB) FROM executions WHERE id = 'bad'")
    with pytest.raises(
        CorruptRecordError,
        match=r"execution 'bad' .* is not UTF-8 text .*backup.*\(executions, id='bad'\)",
    ):
        store.get_execution("bad")
    with pytest.raises(CorruptRecordError, match="execution 'bad'"):
        store.acquire_lease("bad", "w", T0, TTL)  # a write through the row is refused too
    with capture_logs() as logs:
        assert [e.id for e in store.list_executions()] == ["good"]
        assert [e.id for e in store.list_executions(status=ExecutionStatus.RUNNING)] == ["good"]
    assert [log["event"] for log in logs] == ["list_executions skips an unreadable execution"] * 2
    assert all("execution 'bad'" in log["error"] and "UTF-8" in log["error"] for log in logs)
    assert [lease.execution_id for lease in store.claim_due("w", T0, TTL, 2)] == ["good"]
    assert raw(path, "SELECT CAST(record AS BLOB) FROM executions WHERE id = 'bad'") == damaged
    store.close()


def test_an_execution_id_that_is_not_utf8_is_skipped_by_a_listing(path: Path) -> None:
    store = SQLiteStore(path)
    for eid in ("bad", "good"):
        store.create_execution(execution(eid))
    raw(path, "UPDATE executions SET id = CAST(X'6261FF' AS TEXT) WHERE id = 'bad'")
    with capture_logs() as logs:
        assert [e.id for e in store.list_executions()] == ["good"]
    assert "holds the record of execution 'bad'" in logs[0]["error"]
    store.close()


@pytest.mark.parametrize("column", ["record", "op_id"])
def test_an_operation_row_that_is_not_utf8_is_a_corrupt_record_naming_it(
    path: Path, column: str
) -> None:
    store = SQLiteStore(path)
    for eid in ("good", "bad"):
        store.write_operations(leased(store, eid), [step("a"), step("b")], T0, TTL)
    (seq,) = raw(path, "SELECT seq FROM operations WHERE execution_id = 'bad' AND op_id = 'b'")[0]
    value = NOT_UTF8 if column == "record" else "CAST(X'62FF' AS TEXT)"
    raw(path, f"UPDATE operations SET {column} = {value} WHERE seq = {seq}")
    with pytest.raises(CorruptRecordError) as info:
        store.load_operations("bad")
    message = str(info.value)
    assert f"(row seq={seq}) of execution 'bad'" in message
    if column == "record":
        assert f"Operation 'b' (row seq={seq})" in message
        assert "is not UTF-8 text" in message
    else:
        assert "holds the record of operation 'b'" in message
    assert "backup" in message
    assert [o.id for o in store.load_operations("good")] == ["a", "b"]
    assert store.get_execution("bad").id == "bad"
    store.close()


@pytest.mark.parametrize("column", ["record", "execution_id"])
def test_a_callback_row_that_is_not_utf8_is_a_corrupt_record_naming_it(
    path: Path, column: str
) -> None:
    store = SQLiteStore(path)
    shared = token()
    store.write_operations(leased(store, "bad"), [callback("cb", shared)], T0, TTL)
    raw(path, f"UPDATE operations SET {column} = {NOT_UTF8} WHERE op_id = 'cb'")
    outcome = CallbackOutcome(status=OperationStatus.SUCCEEDED, result="1")
    for call in (
        lambda: store.complete_callback(shared, outcome, at(1)),
        lambda: store.heartbeat_callback(shared, at(1)),
    ):
        with pytest.raises(CorruptRecordError, match="Operation 'cb' .*execution .*UTF-8"):
            call()
    assert store.get_execution("bad").signal_seq == 0  # nothing was signalled or written
    store.close()


@pytest.mark.parametrize("when", ["fenced-upsert", "renewal"])
def test_a_failure_mid_batch_rolls_back_the_whole_write(path: Path, when: str) -> None:
    """Also when the write opened its transaction alone (no savepoint: all is rolled back)."""
    now = T0 if when == "fenced-upsert" else at(20)  # at 20 s the write also renews
    store = SQLiteStore(path)
    shared = token()
    store.write_operations(leased(store, "e1"), [callback("cb", shared)], T0, TTL)
    lease = leased(store, "e2")
    batch = [step("x"), step("y"), callback("cb2", shared)]  # the token is e1's
    with pytest.raises(StoreError, match="UNIQUE"):
        store.write_operations(lease, batch, now, TTL)
    assert store.load_operations("e2") == []
    assert store.get_execution("e2").lease_expires == at(30)
    assert store.write_operations(lease, [step("x")], at(1), TTL) == lease  # still usable
    store.close()


def test_non_utc_datetimes_come_back_in_utc(path: Path) -> None:
    plus5 = timezone(timedelta(hours=5))
    local = T0.astimezone(plus5)
    store = SQLiteStore(path)
    created, _ = store.create_execution(execution("e1", created=local, wake=local))
    assert created.created_at.tzinfo is not None
    assert created.created_at.utcoffset() == timedelta(0)
    ex = store.get_execution("e1")
    assert (ex.created_at, ex.wake_at) == (T0, T0)
    assert ex.wake_at is not None
    assert ex.wake_at.utcoffset() == timedelta(0)
    (lease,) = store.claim_due("w", local, TTL, 5)  # the same instant, another zone
    assert lease.expires == at(30)
    assert lease.expires.utcoffset() == timedelta(0)
    assert '"2030-01-01T12:00:00Z"' in raw(path, "SELECT record FROM executions")[0][0]
    store.close()


def test_a_held_write_lock_times_out_with_a_store_error(path: Path) -> None:
    store = SQLiteStore(path, busy_timeout_s=0.2)
    store.create_execution(execution("e1"))
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked"):
            store.acquire_lease("e1", "w", T0, TTL)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.acquire_lease("e1", "w", T0, TTL) is not None
    store.close()


# --- several processes and threads ----------------------------------------------------------


def _work_off(path: str, owner: str, gate: Any, out: Any) -> None:
    """A worker process: claim due executions, checkpoint one step in each, finish them."""
    got: list[tuple[str, int]] = []
    with SQLiteStore(path) as store:
        gate.wait(timeout=60)
        while batch := store.claim_due(owner, T0, TTL, 2):
            for lease in batch:
                store.write_operations(lease, [step(owner)], T0, TTL)
                store.finish_invocation(lease, InvocationEnd(status=ExecutionStatus.SUCCEEDED), T0)
                got.append((lease.execution_id, lease.fence))
            time.sleep(0.001)  # the steps' bodies would run here, outside any transaction
    out.put((owner, got))


def test_two_worker_processes_claim_and_run_each_execution_exactly_once(path: Path) -> None:
    ids = [f"e{i:03}" for i in range(300)]
    with SQLiteStore(path, durability="normal") as setup:
        for eid in ids:
            setup.create_execution(execution(eid))
    ctx = multiprocessing.get_context("spawn")
    gate, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_work_off, args=(str(path), f"p{n}", gate, out)) for n in range(2)]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert all(results.values()), "both processes must have claimed some: no real race"
    claimed = [eid for got in results.values() for eid, _ in got]
    assert sorted(claimed) == ids  # every execution once: none lost, none twice
    assert {fence for got in results.values() for _, fence in got} == {1}
    claimer = {eid: owner for owner, got in results.items() for eid, _ in got}
    with SQLiteStore(path) as store:
        for eid in ids:
            ex = store.get_execution(eid)
            assert (ex.status, ex.fence, ex.lease_owner) == (ExecutionStatus.SUCCEEDED, 1, None)
            assert [o.id for o in store.load_operations(eid)] == [claimer[eid]]


def test_threads_sharing_one_store_lose_nothing(path: Path) -> None:
    store = SQLiteStore(path)
    leases = {f"e{i}": leased(store, f"e{i}") for i in range(8)}
    tokens = {eid: token() for eid in leases}
    errors: list[BaseException] = []

    def work(eid: str) -> None:
        try:
            lease = leases[eid]
            for n in range(40):
                lease = store.write_operations(lease, [step(f"{eid}-{n}")], T0, TTL)
            store.write_operations(lease, [callback("cb", tokens[eid])], T0, TTL)
            outcome = CallbackOutcome(status=OperationStatus.SUCCEEDED, result='"ok"')
            store.complete_callback(tokens[eid], outcome, at(1))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(eid,)) for eid in leases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    for eid in leases:
        ops = store.load_operations(eid)
        assert [o.id for o in ops] == [f"{eid}-{n}" for n in range(40)] + ["cb"]
        assert ops[-1].status is OperationStatus.SUCCEEDED
        assert store.get_execution(eid).signal_seq == 1
    store.close()


def test_threads_sharing_one_store_claim_each_execution_once(path: Path) -> None:
    store = SQLiteStore(path)
    ids = [f"e{i:03}" for i in range(100)]
    for eid in ids:
        store.create_execution(execution(eid))
    claimed: list[str] = []
    gate = threading.Barrier(4)

    def claim(owner: str) -> None:
        gate.wait()
        while batch := store.claim_due(owner, T0, TTL, 2):
            claimed.extend(lease.execution_id for lease in batch)

    threads = [threading.Thread(target=claim, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(claimed) == ids
    store.close()


# --- group commit ---------------------------------------------------------------------------


def test_each_threaded_write_is_committed_when_it_returns(path: Path) -> None:
    """Writers share commits, but none returns before its own rows are on disk."""
    store = SQLiteStore(path)
    leases = {f"e{i}": leased(store, f"e{i}") for i in range(6)}
    unseen: list[str] = []
    errors: list[BaseException] = []

    def work(eid: str) -> None:
        other = sqlite3.connect(path)  # another connection sees only committed rows
        try:
            lease = leases[eid]
            for n in range(30):
                lease = store.write_operations(lease, [step(f"{eid}-{n}")], T0, TTL)
                q = "SELECT count(*) FROM operations WHERE execution_id = ? AND op_id = ?"
                if other.execute(q, (eid, f"{eid}-{n}")).fetchone() != (1,):
                    unseen.append(f"{eid}-{n}")
        except BaseException as e:
            errors.append(e)
        finally:
            other.close()

    threads = [threading.Thread(target=work, args=(eid,)) for eid in leases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert unseen == []
    store.close()


def test_a_writer_failing_inside_a_shared_commit_undoes_only_its_own_rows(path: Path) -> None:
    store = SQLiteStore(path)
    good = leased(store, "good")
    shared = token()
    store.write_operations(leased(store, "owner"), [callback("cb", shared)], T0, TTL)
    bad = leased(store, "bad")
    gate = threading.Barrier(2)
    outcomes: dict[str, BaseException | None] = {}

    def write(name: str, lease: Any, batch: list[Any]) -> None:
        gate.wait()
        try:
            for _ in range(20):
                lease = store.write_operations(lease, batch, T0, TTL)
                batch = [step(f"{name}-{time.perf_counter_ns()}")]
            outcomes[name] = None
        except StoreError as e:
            outcomes[name] = e

    threads = [
        threading.Thread(target=write, args=("good", good, [step("g")])),
        threading.Thread(target=write, args=("bad", bad, [step("b"), callback("x", shared)])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outcomes["good"] is None
    assert "UNIQUE" in str(outcomes["bad"])
    assert store.load_operations("bad") == []  # its whole batch rolled back
    assert len(store.load_operations("good")) == 20  # the other writer lost nothing
    store.close()
    reopened = SQLiteStore(path)
    assert len(reopened.load_operations("good")) == 20
    reopened.close()


def test_concurrent_writers_share_commits(path: Path) -> None:
    """Eight threads checkpointing at once need far fewer commits (fsyncs) than writes."""
    store = SQLiteStore(path)
    leases = {f"e{i}": leased(store, f"e{i}") for i in range(8)}
    commits: list[str] = []
    store._db.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    gate = threading.Barrier(len(leases))

    def work(eid: str) -> None:
        lease = leases[eid]
        gate.wait()
        for n in range(40):
            lease = store.write_operations(lease, [step(f"{eid}-{n}")], T0, TTL)

    threads = [threading.Thread(target=work, args=(eid,)) for eid in leases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    store._db.set_trace_callback(None)
    assert all(len(store.load_operations(eid)) == 40 for eid in leases)
    assert len(commits) < 8 * 40 * 0.75, f"{len(commits)} commits for {8 * 40} writes"
    store.close()


def test_loading_a_journal_leaves_the_garbage_collector_as_it_found_it(path: Path) -> None:
    import gc

    store = SQLiteStore(path)
    store.write_operations(leased(store, "ex"), [step("a")], T0, TTL)
    assert gc.isenabled()
    assert [o.id for o in store.load_operations("ex")] == ["a"]
    assert gc.isenabled()
    with pytest.raises(ExecutionNotFoundError):
        store.load_operations("missing")
    assert gc.isenabled()
    gc.disable()
    try:
        store.load_operations("ex")
        assert not gc.isenabled()  # a caller that turned it off keeps it off
    finally:
        gc.enable()
    store.close()
