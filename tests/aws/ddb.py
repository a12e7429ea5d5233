"""DynamoDB Local for tests: one server per test process, shared by every suite that needs it.

``tests/aws/conftest.py`` uses it for the ``ddb_*`` fixtures; other suites (the store
contract registry in ``tests/stores``) can load this file by path and call
:func:`new_store`. The server starts on first use on a free 127.0.0.1 port through
``tools/ddb_local`` (the loopback-only launcher, ``-inMemory -disableTelemetry``) and is
stopped by its PID when the process exits. If java or the npm package truly cannot be
had, :func:`endpoint` skips the calling test with a loud reason.
"""

from __future__ import annotations

import atexit
import importlib.util
import sys
import threading
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
_lock = threading.Lock()
_state: dict[str, Any] = {}


def ddblocal() -> ModuleType:
    """``tools/ddb_local/ddblocal.py`` (not a package, so loaded by path)."""
    if "ddblocal" not in sys.modules:
        path = ROOT / "tools" / "ddb_local" / "ddblocal.py"
        spec = importlib.util.spec_from_file_location("ddblocal", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["ddblocal"] = module
        spec.loader.exec_module(module)
    return sys.modules["ddblocal"]


def endpoint() -> str:
    """The URL of this process's DynamoDB Local, started on first call."""
    with _lock:
        if "error" in _state:
            pytest.skip(_state["error"])
        if "server" not in _state:
            tool = ddblocal()
            try:
                server = tool.start()
            except tool.DynamoDBLocalUnavailableError as exc:
                _state["error"] = (
                    f"!!! DynamoDB Local is unavailable, so the DynamoDB tests did NOT run: "
                    f"{exc} (run .ci/install-aws.sh; needs java 17+ and npm)"
                )
                pytest.skip(_state["error"])
            _state["server"] = server
            atexit.register(stop)
        return str(_state["server"].endpoint)


def stop() -> None:
    """Stop the server (by its PID) if this process started one."""
    with _lock:
        server = _state.pop("server", None)
    if server is not None:
        server.stop()


def client(url: str | None = None) -> Any:
    """A new boto3 DynamoDB client for DynamoDB Local (one per thread in race tests).

    DynamoDB Local accepts any credentials but keeps tables per access key and region, so
    every client uses the same dummy ones.
    """
    import boto3
    from botocore.config import Config

    return boto3.client(
        "dynamodb",
        endpoint_url=url or endpoint(),
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"mode": "standard"}, max_pool_connections=20),
    )


def new_store(**kwargs: Any) -> Any:
    """A DynamoDBStore on a new, empty table (``drop(store)`` deletes it)."""
    from durable_core.stores.dynamodb import DynamoDBStore

    store = DynamoDBStore(f"durable-{uuid.uuid4().hex[:12]}", client=client(), **kwargs)
    store.create_table()
    return store


def drop(store: Any) -> None:
    """Delete a table made by :func:`new_store`."""
    store._client.delete_table(TableName=store.table_name)
