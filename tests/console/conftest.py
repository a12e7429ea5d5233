"""Fixtures of the console's browser tests: a real store, the fake API on it, and chromium.

The API runs in a thread of the test process on 127.0.0.1 and a free port (uvicorn, on a
socket bound before it starts); Debian's chromium is driven by Playwright through its
``executable_path``. Without /usr/bin/chromium every test here is skipped, saying so.
"""

from __future__ import annotations

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

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The mutating requests that reached the API, in order."""
        return self.app.state.requests  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless chromium for the session (skips every test if it is not installed)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (scripts/setup)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def console(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    """The fake API with the console, on a store holding the scenarios' real executions."""
    import uvicorn

    from .fake_api import create_app
    from .scenarios import BROKEN_ENV, populate

    broken = tmp_path / "refund-service-down"
    broken.touch()
    monkeypatch.setenv(BROKEN_ENV, str(broken))
    monkeypatch.setenv("TOUR_LEDGER", str(tmp_path / "tour_ledger.sqlite3"))
    monkeypatch.setenv("ORDER_LEDGER", str(tmp_path / "order_ledger.sqlite3"))
    store = tmp_path / "durable.sqlite3"
    ids = populate(store)
    app = create_app(store, pivots={"console.scenarios:take_payment": "capture"})
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the fake API did not start"
        time.sleep(0.02)
    try:
        yield Console(f"http://127.0.0.1:{port}", app, ids, broken)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        app.state.runtime.store.close()


@pytest.fixture
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests save their screenshots ($CONSOLE_SHOTS, else a temp dir)."""
    explicit = os.environ.get("CONSOLE_SHOTS")
    path = Path(explicit) if explicit else tmp_path_factory.mktemp("console-shots")
    path.mkdir(parents=True, exist_ok=True)
    return path
