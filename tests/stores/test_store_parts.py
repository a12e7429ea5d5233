"""The store protocol's two parts: every self-hosted store is both, the service backend is
only the journal part (the service schedules), and the journal finds the optional hooks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from durable_core import MemoryStore, SQLiteStore
from durable_core.aws_lambda.service import ServiceClock, ServiceStore
from durable_core.clock import SystemClock
from durable_core.journal import InvocationOptions, Journal
from durable_core.records import Execution, Lease
from durable_core.serde import PydanticSerde
from durable_core.stores.base import (
    AssigningStore,
    JournalStore,
    SchedulingStore,
    ScopeAnnouncingStore,
    Store,
)
from durable_core.testing._stores import CountingStore, CrashingStore, CrashPoint

_NOW = datetime(2026, 1, 1, tzinfo=UTC)


class _NoClient:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"no service call expected, got {name}")


def _service() -> ServiceStore:
    return ServiceStore(
        _NoClient(),  # type: ignore[arg-type]
        arn="arn:aws:lambda:us-east-1:000000000000:function:f:1/durable-execution/x/y",
        token="t",
        execution_id="x",
        clock=ServiceClock(SystemClock()),
    )


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
    store = _service()
    assert isinstance(store, JournalStore)
    assert isinstance(store, AssigningStore)
    assert isinstance(store, ScopeAnnouncingStore)
    assert not isinstance(store, SchedulingStore)
    assert not isinstance(store, Store)
    for method in ("create_execution", "claim_due", "acquire_lease", "finish_invocation"):
        assert not hasattr(store, method), method


def test_every_backend_of_the_contract_suite_is_a_store(store: Store) -> None:
    """Memory, SQLite and DynamoDB (the registry in conftest.py, so a new backend too)."""
    assert isinstance(store, JournalStore)
    assert isinstance(store, SchedulingStore)
    assert isinstance(store, Store)


def test_the_testing_kits_wrappers_are_stores() -> None:
    for wrapper in (
        CountingStore(MemoryStore()),
        CrashingStore(MemoryStore(), crash_at=1, point=CrashPoint.AFTER_WRITE),
    ):
        assert isinstance(wrapper, Store)
        assert not isinstance(wrapper, ScopeAnnouncingStore)


def _journal(store: JournalStore) -> Journal:
    return Journal(
        execution=Execution(id="x", function="f", input="null", created_at=_NOW, updated_at=_NOW),
        operations=[],
        store=store,
        lease=Lease(execution_id="x", owner="w", fence=1, expires=_NOW + timedelta(hours=1)),
        clock=SystemClock(),
        serde=PydanticSerde(),
        options=InvocationOptions(
            lease_ttl=timedelta(minutes=1), inline_retry_threshold=timedelta(0)
        ),
    )


def test_the_journal_takes_its_scope_hook_from_the_store_that_declares_it() -> None:
    service = _service()
    assert _journal(service).on_begin == service.on_begin
    assert _journal(MemoryStore()).on_begin is None
