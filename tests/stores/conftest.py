"""The store backends the shared contract suite runs against.

To add a backend, add an entry to ``BACKENDS``: a function that, given pytest's ``request``
and a temporary directory, returns a factory of handles on ONE fresh, empty storage. Calling
the factory twice gives two independent handles (connections, clients) on the same data,
as two worker processes would have.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from durable_core.stores import MemoryStore, SQLiteStore, Store

StoreFactory = Callable[[], Store]
_ids = itertools.count()


def _memory(request: pytest.FixtureRequest, tmp: Path) -> StoreFactory:
    shared = MemoryStore()
    return lambda: shared


def _sqlite(request: pytest.FixtureRequest, tmp: Path) -> StoreFactory:
    path = tmp / f"contract-{next(_ids)}.sqlite3"
    return lambda: SQLiteStore(path)


def _dynamodb(request: pytest.FixtureRequest, tmp: Path) -> StoreFactory:
    from aws import ddb  # tests/aws/ddb.py: DynamoDB Local on 127.0.0.1, once per process

    from durable_core.stores.dynamodb import DynamoDBStore

    table = ddb.new_store()  # a fresh table; skips loudly if DynamoDB Local is unavailable
    request.addfinalizer(lambda: ddb.drop(table))
    return lambda: DynamoDBStore(table.table_name, client=ddb.client())


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], StoreFactory]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "dynamodb": _dynamodb,
}
MARKS: dict[str, list[pytest.MarkDecorator]] = {"dynamodb": [pytest.mark.aws]}


def _params() -> list[object]:
    return [pytest.param(name, marks=MARKS.get(name, []), id=name) for name in BACKENDS]


@pytest.fixture(params=_params())
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Handles on one fresh storage of each backend."""
    base = BACKENDS[request.param](request, tmp_path)
    opened: list[Store] = []

    def make() -> Store:
        handle = base()
        opened.append(handle)
        return handle

    yield make
    for handle in opened:
        handle.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    """One fresh store of each backend."""
    return store_factory()
