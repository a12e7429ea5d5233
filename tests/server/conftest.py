"""A real ``durable serve`` process per test module, on SQLite or DynamoDB Local.

``served`` starts the server (a free port on 127.0.0.1, keys of the three roles) and polls
``/api/v1/whoami`` until it answers; ``worker`` is a Runtime on the same store with the
example functions, which the tests tick to run what the server recorded.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from durable_core import Runtime
from durable_core.server.auth import hash_key
from durable_core.stores.urls import open_store_url

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "reader": "read-key-" + "r" * 40,
    "oper": "oper-key-" + "o" * 40,
    "boss": "admin-key-" + "a" * 40,
}
ROLES = {"reader": "read", "oper": "operate", "boss": "admin"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A running server and how to talk to it."""

    url: str
    store_url: str
    process: subprocess.Popen[str]
    log: Path

    def client(self, who: str | None = "boss", **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {KEYS[who]}"} if who else {}
        headers |= kwargs.pop("headers", {})
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, **kwargs)


def serve(store_url: str, tmp: Path, *extra: str) -> Served:
    port = free_port()
    keys = "\n".join(f"{a}:{ROLES[a]}:{hash_key(k)}" for a, k in KEYS.items())
    env = {**os.environ, "DURABLE_API_KEYS": keys, "PYTHONPATH": str(ROOT)}
    env |= {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}  # DynamoDB Local
    log = tmp / "server.log"
    cmd = [sys.executable, "-m", "durable_core.cli", "serve", "--store", store_url]
    cmd += ["--port", str(port), "--max-body-bytes", "4096", *extra]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"durable serve exited {proc.returncode}: {log.read_text()}")
        try:
            r = httpx.get(
                f"{url}/api/v1/whoami", headers={"Authorization": f"Bearer {KEYS['boss']}"}
            )
            if r.status_code == 200:
                return Served(url, store_url, proc, log)
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling the server's readiness, not waiting for time
    proc.kill()
    raise AssertionError(f"durable serve did not answer within 30 s: {log.read_text()}")


def _ddb() -> Any:
    from aws import ddb  # tests/aws/ddb.py: DynamoDB Local on 127.0.0.1, once per process

    return ddb


@pytest.fixture(scope="module", params=["sqlite", pytest.param("dynamodb", marks=pytest.mark.aws)])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("serve")
    os.environ.setdefault("TOUR_LEDGER", str(tmp / "tour_ledger.sqlite3"))
    os.environ.setdefault("ORDER_LEDGER", str(tmp / "order_ledger.sqlite3"))
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'store.sqlite3'}"
    else:
        ddb = _ddb()
        table = ddb.new_store().table_name
        url = f"dynamodb://{table}?region={ddb.REGION}&endpoint={ddb.endpoint()}"
    srv = serve(url, tmp)
    yield srv
    srv.process.terminate()
    srv.process.wait(10)
    log = srv.log.read_text()
    for key in KEYS.values():
        assert key not in log


@pytest.fixture(scope="module")
def worker(served: Served) -> Iterator[Runtime]:
    from examples.order_processing.saga import process_order
    from examples.tour_booking.saga import book_tour
    from server.flows import pivoted_trip, stuck_rollback, waits_for_approval

    if served.store_url.startswith("dynamodb://"):
        from durable_core.stores.dynamodb import DynamoDBStore

        table = served.store_url.removeprefix("dynamodb://").partition("?")[0]
        store: Any = DynamoDBStore(table, client=_ddb().client())
    else:
        store = open_store_url(served.store_url, create=False)
    yield Runtime(
        store,
        functions=[process_order, book_tour, stuck_rollback, waits_for_approval, pivoted_trip],
    )
    store.close()


def run_until_idle(runtime: Runtime) -> None:
    """Tick until nothing is due now (bounded)."""
    for _ in range(200):
        if runtime.tick(limit=50) == 0:
            return
    raise AssertionError("still due after 200 ticks")
