"""The audit log: one record per mutating request a server accepted, kept in the store.

Every store keeps it (``append_audit`` / ``list_audit`` on
:class:`~durable_core.stores.base.SchedulingStore`), so the log lives with the executions it
talks about, on SQLite and on DynamoDB alike.

Invariants:
- Records are only appended; nothing updates or deletes one.
- A record never holds a callback token or an API key: the server writes the action, the
  execution id and the actor, and a callback's path with its token masked.
- ``list_audit`` is newest first; its cursor is opaque text (where the last record returned
  is), ValidationError if it is not one of the store's.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from durable_core.errors import ValidationError


class AuditEntry(BaseModel):
    """One accepted mutating request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    """Unique id of the record (a UUID's hex)."""
    at: datetime
    """When the request was accepted."""
    actor: str
    """Who sent it: the API key's actor, or ``callback`` for a webhook call."""
    role: str | None = None
    """The role of the actor's key (None for a webhook call)."""
    action: str
    """What was done: ``start``, ``cancel``, ``terminate``, ``saga.retry``,
    ``callback.succeed``..."""
    execution_id: str | None = None
    """The execution it acted on."""
    reason: str | None = None
    """The reason given, if any."""
    status: int
    """The HTTP status of the answer."""


def check_audit_cursor(cursor: str | None, pattern: str) -> str | None:
    """``cursor`` if it is one of this store's (``pattern``, a regex); else ValidationError."""
    if cursor is None or re.fullmatch(pattern, cursor):
        return cursor
    raise ValidationError(
        f"cursor {cursor[:40]!r} is not a cursor of the audit log; pass the next_cursor of "
        "the previous page as it was, or none for the first page"
    )


class AuditPage(BaseModel):
    """One page of the audit log, newest first."""

    model_config = ConfigDict(frozen=True)

    items: list[AuditEntry]
    next_cursor: str | None
