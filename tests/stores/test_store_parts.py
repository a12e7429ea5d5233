"""The store protocol's two parts: every self-hosted store is both, the service backend is
only the journal part (the service schedules), and the journal finds the optional hooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from durable_core import MemoryStore, SQLiteStore
from durable_core.aws_lambda.service import ServiceClock, ServiceStore
from durable_core.clock import SystemClock
from durable_core.stores.base import (
    AssigningStore,
    JournalStore,
    SchedulingStore,
    ScopeAnnouncingStore,
    Store,
)


class _NoClient:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"no service call expected, got {name}")


def test_self_hosted_stores_are_both_parts(tmp_path: Path) -> None:
    sqlite = SQLiteStore(tmp_path / "s.sqlite3")
    try:
        for store in (MemoryStore(), sqlite):
            assert isinstance(store, Store)
            assert isinstance(store, JournalStore)
            assert isinstance(store, SchedulingStore)
            assert not isinstance(store, ScopeAnnouncingStore)
    finally:
        sqlite.close()


def test_the_service_backend_is_the_journal_part_with_its_hooks_only() -> None:
    store = ServiceStore(
        _NoClient(),  # type: ignore[arg-type]
        arn="arn:aws:lambda:us-east-1:000000000000:function:f:1/durable-execution/x/y",
        token="t",
        execution_id="x",
        clock=ServiceClock(SystemClock()),
    )
    assert isinstance(store, JournalStore)
    assert isinstance(store, AssigningStore)
    assert isinstance(store, ScopeAnnouncingStore)
    assert not isinstance(store, SchedulingStore)
    assert not isinstance(store, Store)
    for method in ("create_execution", "claim_due", "acquire_lease", "finish_invocation"):
        assert not hasattr(store, method), method
