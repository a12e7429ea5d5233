"""Records and shortcuts shared by the store tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from durable_core.records import (
    Execution,
    Lease,
    Operation,
    OperationStatus,
    OperationType,
)
from durable_core.stores.base import Store

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)
_tokens = itertools.count()


def at(seconds: float) -> datetime:
    """``T0`` plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def execution(
    eid: str, *, created: datetime = T0, wake: datetime | None = T0, **kw: Any
) -> Execution:
    """A RUNNING execution due at ``wake``."""
    return Execution(
        id=eid,
        function="m:f",
        input="{}",
        created_at=created,
        updated_at=created,
        wake_at=wake,
        **kw,
    )


def step(op_id: str, status: OperationStatus = OperationStatus.SUCCEEDED, **kw: Any) -> Operation:
    """A step record named after its id."""
    return Operation(id=op_id, type=OperationType.STEP, name=op_id, status=status, **kw)


def token() -> str:
    """A new callback token (long and opaque, like the engine's)."""
    return f"tok-{next(_tokens):06d}-" + "x" * 32


def callback(op_id: str, callback_id: str, **kw: Any) -> Operation:
    """A STARTED callback record with token ``callback_id``."""
    return Operation(
        id=op_id,
        type=OperationType.CALLBACK,
        name=op_id,
        status=OperationStatus.STARTED,
        callback_id=callback_id,
        started_at=T0,
        **kw,
    )


def leased(store: Store, eid: str, owner: str = "w1", now: datetime = T0, **kw: Any) -> Lease:
    """Create execution ``eid`` and take its lease."""
    store.create_execution(execution(eid, **kw))
    lease = store.acquire_lease(eid, owner, now, TTL)
    assert lease is not None
    return lease


def datetimes(model: BaseModel) -> dict[str, datetime]:
    """The datetime fields of a record that are set."""
    return {k: v for k, v in model if isinstance(v, datetime)}
