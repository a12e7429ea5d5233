"""Real worker processes on a temp SQLite store, and bounded waits on what they do.

Workers are started as ``python -m durable_core.cli worker`` (the same code as the
``durable`` console script) with the current directory set to this folder, so the CLI puts
it on ``sys.path`` and ``rt_flows:<name>`` resolves in the worker as in the test.
Every wait here is a bounded poll of something a process produces (a ledger line, a store
row, an exit), never a sleep standing in for time passing.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
WAIT_S = 30.0


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def read_ledger(path: Path) -> list[dict[str, Any]]:
    """All complete lines of a ledger file (a line being written is skipped)."""
    if not path.exists():
        return []
    text = path.read_text()
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


class Workers:
    """Starts worker subprocesses and guarantees they are gone after the test."""

    def __init__(self, store: Path, logs: Path) -> None:
        self.store = store
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, *args: str, lease_ttl: float = 60, name: str = "worker"
    ) -> subprocess.Popen[bytes]:
        """Start ``durable worker`` with ``args`` on the test's store."""
        log = (self.logs / f"{name}-{len(self.procs)}.log").open("wb")
        cmd = [
            sys.executable, "-m", "durable_core.cli", "--store", str(self.store),
            "worker", "--poll", "0.05", "--lease-ttl", str(lease_ttl), *args,
        ]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(cmd, cwd=HERE, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        self.procs.append(proc)
        return proc

    def log(self, index: int = -1) -> str:
        """The combined output of a worker (for failure messages)."""
        files = sorted(self.logs.glob("*.log"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        return files[index].read_text() if files else ""

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=WAIT_S)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "durable.sqlite3"


@pytest.fixture
def workers(store_path: Path, tmp_path: Path) -> Iterator[Workers]:
    logs = tmp_path / "logs"
    logs.mkdir()
    w = Workers(store_path, logs)
    try:
        yield w
    finally:
        w.stop_all()


@pytest.fixture
def flows(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The ``rt_flows`` module, imported under the same name the workers use."""
    monkeypatch.syspath_prepend(str(HERE))
    return importlib.import_module("rt_flows")
