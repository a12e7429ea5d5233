"""``SQLiteStore(path, read_only=True)``: reads what writers wrote, writes nothing, ever."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from durable_core import Execution, ExecutionStatus, SQLiteStore, StoreError
from durable_core.errors import SchemaVersionError
from durable_core.stores.urls import open_store_url

NOW = datetime(2026, 12, 3, tzinfo=UTC)


def _execution(eid: str) -> Execution:
    return Execution(
        id=eid, function="m:f", input="null", status=ExecutionStatus.RUNNING, created_at=NOW,
        updated_at=NOW, wake_at=NOW,
    )  # fmt: skip


def test_a_read_only_store_reads_and_refuses_every_write(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite3"
    with SQLiteStore(path) as writer:
        writer.create_execution(_execution("e-1"))
        with SQLiteStore(path, read_only=True) as reader:
            assert [ex.id for ex in reader.list_executions()] == ["e-1"]
            writer.create_execution(_execution("e-2"))  # a writer goes on beside it
            assert {ex.id for ex in reader.list_executions()} == {"e-1", "e-2"}
            with pytest.raises(StoreError, match="open read-only"):
                reader.create_execution(_execution("e-3"))
    assert {ex.id for ex in SQLiteStore(path).list_executions()} == {"e-1", "e-2"}


def test_a_read_only_open_takes_no_lock_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite3"
    SQLiteStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's long write
    try:
        with open_store_url(str(path), create=False, read_only=True) as reader:
            assert reader.list_executions() == []
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with pytest.raises(StoreError, match="no store file"):
        SQLiteStore(tmp_path / "missing.sqlite3", read_only=True)
    assert not (tmp_path / "missing.sqlite3").exists()
    (tmp_path / "empty.sqlite3").touch()
    with pytest.raises(SchemaVersionError, match="is empty"):
        SQLiteStore(tmp_path / "empty.sqlite3", read_only=True)
