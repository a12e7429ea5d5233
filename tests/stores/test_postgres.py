"""What the PostgreSQL store does beyond the shared contract: its schema, bad input, damage.

Against a real PostgreSQL 15 (``pgserver.py``), each test in a database of its own.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from durable_core.errors import CorruptRecordError, SchemaVersionError, StoreError
from durable_core.stores.postgres import PostgresStore
from durable_core.stores.postgres_schema import SCHEMA_VERSION
from durable_core.stores.search import ExecutionQuery

from .pgserver import PgServer
from .records import T0, TTL, callback, execution, leased, step

pytestmark = pytest.mark.postgres

psycopg = pytest.importorskip("psycopg")


@pytest.fixture
def dsn(pg_server: PgServer) -> Iterator[str]:
    made = pg_server.new_database()
    yield made
    pg_server.drop_database(made)


def sql(dsn: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params or None)
        return list(cur.fetchall()) if cur.description else []


def test_schema_is_created_once_by_processes_opening_a_new_database_together(dsn: str) -> None:
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []
    gate = threading.Barrier(4)

    def open_one() -> None:
        gate.wait()
        try:
            stores.append(PostgresStore(dsn, pool_size=1))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for s in stores:
        s.close()
    assert errors == []
    assert len(stores) == 4
    assert sql(dsn, "SELECT version FROM durable_schema_version") == [(SCHEMA_VERSION,)]


def test_a_newer_schema_is_refused_naming_the_store_and_changing_nothing(dsn: str) -> None:
    PostgresStore(dsn).close()
    sql(dsn, "INSERT INTO durable_schema_version VALUES (%s)", SCHEMA_VERSION + 1)
    with pytest.raises(SchemaVersionError) as info:
        PostgresStore(dsn)
    message = str(info.value)
    assert "PostgreSQL store 127.0.0.1:" in message
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert "Upgrade durable-saga" in message
    versions = sql(dsn, "SELECT version FROM durable_schema_version ORDER BY version")
    assert versions == [(SCHEMA_VERSION,), (SCHEMA_VERSION + 1,)]


def test_tables_of_the_same_names_without_a_version_are_refused(dsn: str) -> None:
    sql(dsn, "CREATE TABLE durable_executions (id int)")
    with pytest.raises(SchemaVersionError, match="not a schema this durable-saga wrote"):
        PostgresStore(dsn)
    assert sql(dsn, "SELECT to_regclass('durable_schema_version')") == [(None,)]


def test_without_create_an_empty_database_is_an_error_and_gets_no_tables(dsn: str) -> None:
    with pytest.raises(StoreError, match="holds no durable-saga schema"):
        PostgresStore(dsn, create=False)
    assert sql(dsn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
    PostgresStore(dsn).close()
    PostgresStore(dsn, create=False).close()  # once made, it opens


def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(StoreError) as info:
        PostgresStore(f"postgresql://app:s3cret@127.0.0.1:{port}/orders", connect_timeout_s=1.5)
    assert f"PostgreSQL store 127.0.0.1:{port}/orders: cannot connect" in str(info.value)
    assert "Connection refused" in str(info.value)
    assert "s3cret" not in str(info.value)


def test_a_missing_database_or_user_is_a_clear_error(pg_server: PgServer) -> None:
    with pytest.raises(StoreError, match=r'database "nope" does not exist.*createdb'):
        PostgresStore(pg_server.dsn("nope"))
    with pytest.raises(StoreError, match=r'role "ghost" does not exist'):
        PostgresStore(pg_server.dsn().replace("postgres@", "ghost@"))


def test_a_connection_string_that_does_not_parse_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="does not parse"):
        PostgresStore("host=127.0.0.1 dbname='unterminated")


def test_a_callback_token_of_another_operation_writes_nothing(dsn: str) -> None:
    with PostgresStore(dsn) as store:
        lease = leased(store, "e1")
        store.write_operations(lease, [callback("c1", "tok-shared")], T0, TTL)
        with pytest.raises(StoreError, match="durable_operations_callback_id_key"):
            store.write_operations(lease, [step("a"), callback("c2", "tok-shared")], T0, TTL)
        assert [op.id for op in store.load_operations("e1")] == ["c1"]


def test_damaged_rows_are_named_and_skipped_by_claims_and_listings(dsn: str) -> None:
    with PostgresStore(dsn) as store:
        store.create_execution(execution("good"))
        store.create_execution(execution("bad"))
        lease = leased(store, "journal")
        store.write_operations(lease, [step("a")], T0, TTL)
        sql(dsn, """UPDATE durable_executions SET record = '{"id": "bad"}' WHERE id = 'bad'""")
        sql(dsn, """UPDATE durable_operations SET record = '{"id": 3}'""")

        with pytest.raises(CorruptRecordError, match=r"execution 'bad' .* does not parse"):
            store.get_execution("bad")
        with pytest.raises(CorruptRecordError, match=r"Operation 'a' \(row seq=\d+\)"):
            store.load_operations("journal")
        claimed = store.claim_due("w2", T0, TTL, 10)
        assert [c.execution_id for c in claimed] == ["good"]
        assert {e.id for e in store.list_executions()} == {"good", "journal"}
        page = store.search_executions(ExecutionQuery())
        assert {e.id for e in page.items} == {"good", "journal"}


def test_text_postgres_cannot_index_still_round_trips(dsn: str) -> None:
    ex = execution("e\u00e9").evolve(input='"a\x00b"', waiting_for="order\x00 42")
    with PostgresStore(dsn) as store:
        store.create_execution(ex)
        assert store.get_execution("e\u00e9") == ex
        found = store.search_executions(ExecutionQuery(waiting_contains=("ORDER",)))
        assert [e.id for e in found.items] == ["e\u00e9"]


def test_claims_from_two_handles_at_once_split_the_work(dsn: str) -> None:
    with PostgresStore(dsn) as one, PostgresStore(dsn) as two:
        for i in range(40):
            one.create_execution(execution(f"e{i:02d}"))
        got: dict[str, list[str]] = {}
        gate = threading.Barrier(2)

        def claim(name: str, store: PostgresStore) -> None:
            gate.wait()
            leases = []
            while batch := store.claim_due(name, T0, TTL, 3):
                leases += batch
            got[name] = [lease.execution_id for lease in leases]

        threads = [threading.Thread(target=claim, args=a) for a in (("w1", one), ("w2", two))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        everything = got["w1"] + got["w2"]
        assert sorted(everything) == [f"e{i:02d}" for i in range(40)]  # each once, none lost
        assert all(one.get_execution(e).fence == 1 for e in everything)
