"""Shared fixtures for the saga tests: a virtual clock, a runtime on a MemoryStore, a ledger.

Time never passes by sleeping: ``saga_helpers.settle`` drives an execution and, while it
waits only for time (a durable timer or a retry delay), moves the virtual clock to its
wake-up time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from durable_core import MemoryStore, Runtime, Store
from durable_core.testing import VirtualClock


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def store() -> Store:
    return MemoryStore()


@pytest.fixture
def rt(store: Store, clock: VirtualClock) -> Runtime:
    return Runtime(store, clock=clock)


@pytest.fixture(autouse=True)
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own tour ledger file (and order ledger file)."""
    path = tmp_path / "ledger.sqlite3"
    monkeypatch.setenv("TOUR_LEDGER", str(path))
    monkeypatch.setenv("ORDER_LEDGER", str(tmp_path / "order_ledger.sqlite3"))
    return path
