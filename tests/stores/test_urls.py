"""Store URLs: every accepted form parses to its store; anything else is a clear error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from durable_core.errors import StoreError, ValidationError
from durable_core.stores.sqlite import SQLiteStore
from durable_core.stores.urls import open_store_url, parse_store_url


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("state/durable.sqlite3", Path("state/durable.sqlite3")),
        ("sqlite:///state/durable.sqlite3", Path("state/durable.sqlite3")),
        ("sqlite:////tmp/x/durable.sqlite3", Path("/tmp/x/durable.sqlite3")),
        ("SQLITE:///a.db", Path("a.db")),
    ],
)
def test_sqlite_forms(url: str, path: Path) -> None:
    where = parse_store_url(url)
    assert (where.kind, where.path) == ("sqlite", path)


def test_dynamodb_form() -> None:
    where = parse_store_url(
        "dynamodb://orders-prod?region=eu-west-1&endpoint=http://127.0.0.1:8000"
    )
    assert (where.kind, where.table, where.region, where.endpoint) == (
        "dynamodb",
        "orders-prod",
        "eu-west-1",
        "http://127.0.0.1:8000",
    )
    assert str(where) == "dynamodb://orders-prod?region=eu-west-1&endpoint=http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("", "empty"),
        ("mysql://db/x", "unknown kind 'mysql'"),
        ("sqlite://", "needs a file"),
        ("sqlite:///", "needs a file"),
        ("dynamodb://", "table name"),
        ("dynamodb://ab", "table name"),
        ("dynamodb://key:s3cret@table", "credentials never go in the URL"),
        ("dynamodb://t-1?region=mars", "not an AWS region"),
        ("dynamodb://t-1?regoin=eu-west-1", "only region= and endpoint="),
        ("dynamodb://t-1?region=eu-west-1&region=us-east-1", "once each"),
        ("dynamodb://t-1?endpoint=file:///etc/passwd", "http(s) URL"),
        ("dynamodb://t-1/extra", "nothing may follow"),
    ],
)
def test_bad_urls_name_the_url_and_open_nothing(url: str, says: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="store URL") as info:
        parse_store_url(url)
    assert says in str(info.value)
    assert "s3cret" not in str(info.value)


def test_open_refuses_a_missing_sqlite_file_unless_asked_to_create(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new/durable.sqlite3"
    with pytest.raises(StoreError, match="no store at"):
        open_store_url(url, create=False)
    assert not (tmp_path / "new").exists()
    store = open_store_url(url, create=True)
    try:
        assert isinstance(store, SQLiteStore)
        assert (tmp_path / "new" / "durable.sqlite3").exists()
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "dsn", "pool_size"),
    [
        ("postgresql://app@127.0.0.1:5433/orders", "postgresql://app@127.0.0.1:5433/orders", None),
        ("postgres://app@db.internal/orders", "postgresql://app@db.internal/orders", None),
        (
            "postgresql://app@127.0.0.1/orders?sslmode=require&pool_size=16",
            "postgresql://app@127.0.0.1/orders?sslmode=require",
            16,
        ),
        ("postgresql://app@[::1]:5432/db", "postgresql://app@[::1]:5432/db", None),
    ],
)
def test_postgres_forms(url: str, dsn: str, pool_size: int | None) -> None:
    where = parse_store_url(url)
    assert (where.kind, where.dsn, where.pool_size) == ("postgres", dsn, pool_size)
    assert str(where) == dsn


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://app:s3cret@127.0.0.1/orders", "a password never goes in the URL"),
        ("postgresql://127.0.0.1/orders", "name the PostgreSQL user"),
        ("postgresql://app@/orders", "host name"),
        ("postgresql://app@127.0.0.1", "name the database"),
        ("postgresql://app@127.0.0.1/", "name the database"),
        ("postgresql://app@127.0.0.1/a/b", "name the database"),
        ("postgresql://app@127.0.0.1:99999/orders", "port must be a number"),
        ("postgresql://app@127.0.0.1:five/orders", "port must be a number"),
        ("postgresql://app@127.0.0.1/orders?password=x", "only application_name"),
        ("postgresql://app@127.0.0.1/orders?pool_size=1&pool_size=2", "once each"),
        ("postgresql://app@127.0.0.1/orders?pool_size=0", "pool_size= must be a whole number"),
        ("postgresql://app@127.0.0.1/orders?sslmode=maybe", "sslmode must be one of"),
    ],
)
def test_bad_postgres_urls_name_the_url_and_open_nothing(url: str, says: str) -> None:
    with pytest.raises(ValidationError, match="store URL") as info:
        parse_store_url(url)
    assert says in str(info.value)
    assert "s3cret" not in str(info.value)


@pytest.mark.postgres
def test_open_a_postgres_url_needs_the_schema_unless_asked_to_create(pg_server: Any) -> None:
    from durable_core.stores.postgres import PostgresStore

    dsn = pg_server.new_database()
    try:
        with pytest.raises(StoreError, match="holds no durable-saga schema"):
            open_store_url(dsn, create=False)
        store = open_store_url(dsn + "?pool_size=2", create=True)
        try:
            assert isinstance(store, PostgresStore)
            assert store.dsn == dsn
        finally:
            store.close()
        open_store_url(dsn, create=False, read_only=True).close()
    finally:
        pg_server.drop_database(dsn)
