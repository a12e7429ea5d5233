"""Filtered, cursor-paginated listing of executions: the query, the page and the cursor.

Every store implements ``search_executions(query) -> ExecutionPage`` (see
:class:`~durable_core.stores.base.SchedulingStore`); this module holds what they share, so
the filters mean the same on each backend.

Invariants:
- **Newest first, stable**: executions are ordered by ``(created_at, id)`` descending, and
  a cursor is the key of the last row of a page; the next page starts strictly after it,
  so rows created meanwhile never repeat or shift a page.
- :meth:`ExecutionQuery.matches` is the definition of every filter; a store that filters
  in its own query language (SQLite's SQL) must select exactly the rows it accepts
  (the contract suite checks both against the same data).
- A cursor is opaque text; one that does not decode is a ValidationError naming it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from durable_core.errors import ValidationError
from durable_core.records import Execution, ExecutionStatus

MAX_PAGE = 500
"""The most rows one page may ask for."""


@dataclass(frozen=True, kw_only=True)
class ExecutionQuery:
    """What to list: every filter given must hold (an unset one matches everything)."""

    function: str | None = None
    """The function's registered name, exactly."""
    status: ExecutionStatus | None = None
    """The execution's status."""
    id_contains: str | None = None
    """Text the execution id contains (case-sensitive)."""
    waiting_contains: tuple[str, ...] = ()
    """Texts that ``waiting_for`` contains, each one (ignoring ASCII case, as SQLite's
    ``lower`` does)."""
    waiting_excludes: tuple[str, ...] = ()
    """Texts that ``waiting_for`` does not contain, none of them (ignoring ASCII case)."""
    role: str | None = None
    """The execution's role (``Execution.role``, e.g. ``"saga"``), exactly."""
    error_type: str | None = None
    """The type name of the recorded error, exactly."""
    parked: bool | None = None
    """True: RUNNING with an error recorded (parked, see :mod:`durable_core.parking`)."""
    created_after: datetime | None = None
    """Created at or after this time."""
    created_before: datetime | None = None
    """Created strictly before this time."""
    limit: int = 50
    """Rows per page (1 to :data:`MAX_PAGE`)."""
    cursor: str | None = None
    """The ``next_cursor`` of the previous page, or None for the first page."""
    after: tuple[datetime, str] | None = field(init=False, default=None)
    """The decoded cursor: the key of the last row already returned."""

    def __post_init__(self) -> None:
        if not isinstance(self.limit, int) or not 1 <= self.limit <= MAX_PAGE:
            raise ValidationError(f"limit must be between 1 and {MAX_PAGE}, got {self.limit!r}")
        for name in ("created_after", "created_before"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                object.__setattr__(self, name, value.replace(tzinfo=UTC))
        if self.cursor is not None:
            object.__setattr__(self, "after", decode_cursor(self.cursor))

    def matches(self, ex: Execution) -> bool:
        """True if ``ex`` passes every filter (the cursor aside)."""
        waiting = fold(ex.waiting_for or "")
        return (
            (self.function is None or ex.function == self.function)
            and (self.status is None or ex.status is self.status)
            and (self.id_contains is None or self.id_contains in ex.id)
            and all(fold(w) in waiting for w in self.waiting_contains)
            and not any(fold(w) in waiting for w in self.waiting_excludes)
            and (self.role is None or ex.role == self.role)
            and (
                self.error_type is None
                or (ex.error is not None and ex.error.type == self.error_type)
            )
            and (self.parked is None or self.parked == is_parked(ex))
            and (self.created_after is None or ex.created_at >= self.created_after)
            and (self.created_before is None or ex.created_at < self.created_before)
        )

    def follows(self, ex: Execution) -> bool:
        """True if ``ex`` comes after the cursor (always, on the first page)."""
        return self.after is None or (ex.created_at, ex.id) < self.after


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(text: str) -> str:
    """``text`` with ASCII letters lowercased (and no other change, like SQLite's ``lower``)."""
    return text.translate(_ASCII_LOWER)


def is_parked(ex: Execution) -> bool:
    """A parked execution is RUNNING with an error recorded (:mod:`durable_core.parking`)."""
    return ex.status is ExecutionStatus.RUNNING and ex.error is not None


@dataclass(frozen=True)
class ExecutionPage:
    """One page of a listing, newest first."""

    items: list[Execution]
    next_cursor: str | None
    """Pass it as ``ExecutionQuery.cursor`` for the next page; None on the last page."""


def sort_key(ex: Execution) -> tuple[datetime, str]:
    """The listing order's key (sort with ``reverse=True``)."""
    return (ex.created_at, ex.id)


def page_of(rows: list[Execution], limit: int) -> ExecutionPage:
    """A page from up to ``limit + 1`` matching rows, newest first (one more says there is
    a next page)."""
    items = rows[:limit]
    more = len(rows) > limit and items
    return ExecutionPage(items, encode_cursor(items[-1]) if more else None)


def encode_cursor(ex: Execution) -> str:
    """The cursor that continues after ``ex``."""
    key = json.dumps([ex.created_at.astimezone(UTC).isoformat(), ex.id])
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The ``(created_at, id)`` a cursor continues after; ValidationError if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, eid = json.loads(raw)
        when = datetime.fromisoformat(created)
        if not isinstance(eid, str) or when.tzinfo is None:
            raise ValueError("not a cursor")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        shown = cursor if len(cursor) <= 60 else cursor[:60] + "..."
        raise ValidationError(
            f"cursor {shown!r} is not a cursor of this listing; pass the next_cursor of the "
            "previous page as it was, or none for the first page"
        ) from None
    return when, eid
