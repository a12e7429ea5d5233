"""SQLiteStore specifics: schema versioning, corrupt rows, pragmas, several processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from durable_core.errors import CorruptRecordError, SchemaVersionError
from durable_core.stores.sqlite import SQLiteStore
from tests.stores.test_contract import T0, TTL, execution, leased, step


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    SQLiteStore(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    con.commit()
    con.close()
    with pytest.raises(SchemaVersionError, match="version '99'.*upgrade the library"):
        SQLiteStore(path)


def test_corrupt_row_names_it_and_others_still_load(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = SQLiteStore(path)
    for eid in ("good", "bad"):
        lease = leased(store, eid)
        store.write_operations(lease, [step("a")], T0, TTL)
    con = sqlite3.connect(path)
    con.execute("UPDATE operations SET data='{\"id\": 3' WHERE execution_id='bad'")
    con.commit()
    con.close()
    with pytest.raises(CorruptRecordError, match="operation row 'a' of execution 'bad'"):
        store.load_operations("bad")
    assert [o.id for o in store.load_operations("good")] == ["a"]
    assert store.claim_due("w", T0 + timedelta(hours=1), TTL, 10)  # the store still works


def test_wal_and_full_sync_by_default(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    assert store._con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._con.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    fast = SQLiteStore(tmp_path / "f.sqlite3", durability="normal")
    assert fast._con.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with pytest.raises(ValueError, match="durability"):
        SQLiteStore(tmp_path / "x.sqlite3", durability="fast")  # type: ignore[arg-type]


def _claim_all(path: str, owner: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = SQLiteStore(path)
    got: list[str] = []
    while batch := store.claim_due(owner, T0, TTL, 7):
        got.extend(lease.execution_id for lease in batch)
    out.put(got)


def test_two_processes_claim_each_execution_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = SQLiteStore(path)
    for i in range(300):
        store.create_execution(execution(f"e{i:03}"))
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(str(path), f"p{n}", out)) for n in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    claimed = results[0] + results[1]
    assert sorted(claimed) == [f"e{i:03}" for i in range(300)]


def test_threads_sharing_one_store_lose_nothing(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    leases = {f"e{i}": leased(store, f"e{i}") for i in range(4)}

    def write(eid: str) -> None:
        lease = leases[eid]
        for n in range(50):
            lease = store.write_operations(lease, [step(f"{eid}-{n}")], T0, TTL)

    threads = [threading.Thread(target=write, args=(eid,)) for eid in leases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for eid in leases:
        assert [o.id for o in store.load_operations(eid)] == [f"{eid}-{n}" for n in range(50)]
