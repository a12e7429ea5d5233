"""The backends the store contract suite (``test_contract.py``) runs against.

Each entry of ``BACKENDS`` says how to make one kind of store; adding a backend is one
entry, and every contract test then runs against it:

- ``new(tmp_path)``: a fresh, empty store (``tmp_path`` is the test's own directory);
- ``reopen(store)``: another handle on the same storage, as a second worker process would
  open it (a new connection or client; a MemoryStore can only share itself);
- ``drop(store)``: delete the storage after the test, once every handle is closed;
- ``marks``: pytest marks for every test of that backend (``aws`` for DynamoDB Local,
  which ``tests/aws/ddb.py`` starts once per process, skipping loudly if it cannot;
  ``postgres`` for a real PostgreSQL 15);
- ``fixtures``: fixtures the backend needs first (``pg_server``: the session's PostgreSQL,
  ``tests/stores/pgserver.py``, which gives each test a database of its own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from durable_core.stores import MemoryStore, SQLiteStore, Store

from . import pgserver

_pg: dict[str, pgserver.PgServer] = {}


def _keep(store: Any) -> None:
    """Nothing to delete: the storage goes away with the handle or the tmp directory."""


@dataclass(frozen=True)
class Backend:
    """How the contract suite makes, shares and deletes one kind of store."""

    new: Callable[[Path], Any]
    reopen: Callable[[Any], Any]
    drop: Callable[[Any], None] = _keep
    marks: tuple[pytest.MarkDecorator, ...] = ()
    fixtures: tuple[str, ...] = ()


def _ddb() -> Any:
    from aws import ddb  # tests/aws/ddb.py: DynamoDB Local on 127.0.0.1, once per process

    return ddb


def _ddb_handle(store: Any) -> Any:
    from durable_core.stores.dynamodb import DynamoDBStore

    return DynamoDBStore(store.table_name, client=_ddb().client())


def _pg_new(_tmp: Path) -> Any:
    from durable_core.stores.postgres import PostgresStore

    return PostgresStore(_pg["server"].new_database(), pool_size=4)


def _pg_handle(store: Any) -> Any:
    from durable_core.stores.postgres import PostgresStore

    return PostgresStore(store.dsn, pool_size=4)


BACKENDS: dict[str, Backend] = {
    "memory": Backend(new=lambda _tmp: MemoryStore(), reopen=lambda store: store),
    "sqlite": Backend(
        new=lambda tmp: SQLiteStore(tmp / "contract.sqlite3"),
        reopen=lambda store: SQLiteStore(store.path),
    ),
    "dynamodb": Backend(
        new=lambda _tmp: _ddb().new_store(),  # a fresh table per test
        reopen=_ddb_handle,
        drop=lambda store: _ddb().drop(store),
        marks=(pytest.mark.aws,),
    ),
    "postgres": Backend(
        new=_pg_new,  # a fresh database per test
        reopen=_pg_handle,
        drop=lambda store: _pg["server"].drop_database(store.dsn),
        marks=(pytest.mark.postgres,),
        fixtures=("pg_server",),
    ),
}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pgserver.PgServer]:
    """A real PostgreSQL 15 on 127.0.0.1 for the session (skips if it cannot be had),
    stopped by ``pg_ctl stop`` at the end."""
    server = pgserver.start()
    _pg["server"] = server
    try:
        yield server
    finally:
        del _pg["server"]
        server.stop()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that uses a store once per backend (read at collection time)."""
    if "backend" in metafunc.fixturenames:
        params = [pytest.param(name, marks=b.marks, id=name) for name, b in BACKENDS.items()]
        metafunc.parametrize("backend", params, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    """The backend this test runs against."""
    return BACKENDS[request.param]


@pytest.fixture
def store(backend: Backend, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """A fresh, empty store of each backend."""
    for name in backend.fixtures:
        request.getfixturevalue(name)
    made = backend.new(tmp_path)
    try:
        yield made
    finally:
        made.close()
        backend.drop(made)


@pytest.fixture
def store_factory(backend: Backend, store: Store) -> Iterator[Callable[[], Store]]:
    """Open another handle on the storage behind ``store`` (closed after the test)."""
    handles: list[Store] = []

    def another() -> Store:
        handles.append(backend.reopen(store))
        return handles[-1]

    yield another
    for handle in handles:
        handle.close()
