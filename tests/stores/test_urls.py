"""Store URLs: every accepted form parses to its store; anything else is a clear error."""

from __future__ import annotations

from pathlib import Path

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
        ("postgres://db/x", "unknown kind 'postgres'"),
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
