"""Fixtures of the console's browser tests: a real store, the real server app on it, and chromium.

The API runs in a thread of the test process on 127.0.0.1 and a free port (uvicorn, on a
socket bound before it starts); Debian's chromium is driven by Playwright through its
``executable_path``. Without /usr/bin/chromium every test here is skipped, saying so.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
READ_KEY = "key-read"
OPERATE_KEY = "key-operate"


@dataclass
class Console:
    """The running console: its base URL, the API app, the store's executions."""

    url: str
    app: Any
    ids: dict[str, str]
    refund_broken: Path
    store_path: Path

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The mutating requests that reached the API, in order."""
        return self.app.requests  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless chromium per test module (skips every test if it is not installed); closed
    after it, since Playwright's sync API holds an event loop in this thread while it runs."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (scripts/setup)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


class _Recorder:
    """ASGI middleware of the tests around the real app: it notes each mutating request
    (path, CSRF header and cookie, body) and, once the app has answered it, lets a worker
    run what became due, as ``durable worker`` beside ``durable serve`` would."""

    def __init__(self, app: Any, worker: Any) -> None:
        self.app = app
        self.worker = worker
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        cookies = dict(
            part.strip().split("=", 1)
            for part in headers.get("cookie", "").split(";")
            if "=" in part
        )
        self.requests.append(
            {
                "path": scope["path"],
                "csrf": headers.get("x-csrf-token"),
                "cookie": cookies.get("durable_csrf"),
                "body": json.loads(body) if body.strip() else None,
            }
        )
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
        while self.worker.tick():
            pass


@pytest.fixture
def console(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    """``durable serve``'s app (the real API and console) on a store holding the scenarios'
    real executions, with a worker that runs what each request made due."""
    import uvicorn

    from durable_core import Runtime
    from durable_core.server import create_app
    from durable_core.server.auth import ApiKey, Role, hash_key
    from durable_core.stores.sqlite import SQLiteStore

    from .scenarios import BROKEN_ENV, FUNCTIONS, populate

    broken = tmp_path / "refund-service-down"
    broken.touch()
    monkeypatch.setenv(BROKEN_ENV, str(broken))
    monkeypatch.setenv("TOUR_LEDGER", str(tmp_path / "tour_ledger.sqlite3"))
    monkeypatch.setenv("ORDER_LEDGER", str(tmp_path / "order_ledger.sqlite3"))
    path = tmp_path / "durable.sqlite3"
    ids = populate(path)
    store = SQLiteStore(str(path))
    worker = Runtime(store, functions=FUNCTIONS)
    keys = [
        ApiKey("ana@read", Role.READ, hash_key(READ_KEY)),
        ApiKey("oscar@ops", Role.OPERATE, hash_key(OPERATE_KEY)),
    ]
    app = _Recorder(create_app(store, keys=keys), worker)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield Console(f"http://127.0.0.1:{port}", app, ids, broken, path)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        store.close()


@pytest.fixture
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests save their screenshots ($CONSOLE_SHOTS, else a temp dir)."""
    explicit = os.environ.get("CONSOLE_SHOTS")
    path = Path(explicit) if explicit else tmp_path_factory.mktemp("console-shots")
    path.mkdir(parents=True, exist_ok=True)
    return path
