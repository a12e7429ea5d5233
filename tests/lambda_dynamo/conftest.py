"""Fixtures: DynamoDB Local (through ``tests/aws/ddb.py``, one server per test process) and a
local Lambda Invoke endpoint for the sweeper's asynchronous invokes.

If java or the npm package cannot be had, ``ddb`` skips these tests with a loud reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aws import ddb
from lambda_service.emulator import InvokeServer

from durable_core.testing import VirtualClock


@pytest.fixture
def store() -> Iterator[Any]:
    """A DynamoDBStore on a new table of DynamoDB Local (dropped after the test)."""
    made = ddb.new_store()
    yield made
    ddb.drop(made)


@pytest.fixture
def clock() -> VirtualClock:
    """The handlers' shared virtual clock."""
    return VirtualClock()


@pytest.fixture
def invoke_server() -> Iterator[InvokeServer]:
    """The Lambda Invoke API on 127.0.0.1, for the sweeper's ``InvocationType=Event``."""
    server = InvokeServer()
    yield server
    server.close()


@pytest.fixture
def reopen() -> Callable[[Any], Any]:
    """Another DynamoDBStore (own client) on the same table: what another Lambda sees."""
    from durable_core.stores.dynamodb import DynamoDBStore

    return lambda s: DynamoDBStore(s.table_name, client=ddb.client())
