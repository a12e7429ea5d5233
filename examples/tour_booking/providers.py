"""Simulated airline, hotel and car-rental services that keep a ledger in SQLite.

Each provider is idempotent by the key it is given, like real booking APIs with an
``Idempotency-Key`` header: a repeated request with a key it has seen returns the same
booking and changes nothing. Every request is still written to the ledger, repeats marked
``duplicate``, so you can see what a crash made the saga send twice and that it had no
effect twice.

The ledger is a small SQLite file (``$TOUR_LEDGER``, default ``tour_ledger.sqlite3`` next to
the durable store) shared by every process, so a test can kill a worker and still count
what reached the providers.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from durable_core import StepContext
from saga import CompensationContext

LEDGER_ENV = "TOUR_LEDGER"
STORE_ENV = "DURABLE_STORE"
DEFAULT_STORE = Path(".durable") / "durable.sqlite3"


class SoldOutError(Exception):
    """The provider has nothing left for this request; retrying will not help."""


class Tour(BaseModel):
    """The saga's input: one traveller's tour. Defaults are the seed tour."""

    tour_id: str = Field(default="TOUR-SGN-DAD-01", min_length=1, max_length=64)
    traveller: str = "Nguyen Van An"
    origin: str = "SGN"
    destination: str = "DAD"
    depart: date = date(2026, 3, 14)
    nights: int = Field(default=3, ge=1, le=30)
    hotel: str = "Hilton Da Nang"
    fail_flight: bool = False
    """Simulate: the airline has no seat left."""
    fail_hotel: bool = False
    """Simulate: the hotel is full."""
    fail_car: bool = False
    """Simulate: no airport car is available."""


class Booking(BaseModel):
    """What a provider returns for a booking."""

    provider: str
    ref: str
    detail: str


@dataclass(frozen=True)
class LedgerRow:
    """One request a provider received."""

    seq: int
    provider: str
    action: str
    """book, cancel, reject (sold out) or noop (cancel of a booking that never landed)."""
    idempotency_key: str
    ref: str
    detail: str
    duplicate: bool


def ledger_path() -> Path:
    """``$TOUR_LEDGER``, else ``tour_ledger.sqlite3`` in the durable store's directory."""
    explicit = os.environ.get(LEDGER_ENV)
    if explicit:
        return Path(explicit)
    store = Path(os.environ.get(STORE_ENV) or DEFAULT_STORE)
    return store.parent / "tour_ledger.sqlite3"


@contextmanager
def _ledger() -> Iterator[sqlite3.Connection]:
    path = ledger_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS ledger (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            "provider TEXT NOT NULL, action TEXT NOT NULL, idempotency_key TEXT NOT NULL, "
            "ref TEXT NOT NULL, detail TEXT NOT NULL, duplicate INTEGER NOT NULL, "
            "at TEXT NOT NULL)"
        )
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def _record(provider: str, action: str, key: str, ref: str, detail: str) -> bool:
    """Write one request; return True if it is new (not a repeat of the same action+key)."""
    with _ledger() as db:
        seen = db.execute(
            "SELECT 1 FROM ledger WHERE provider=? AND action=? AND idempotency_key=? LIMIT 1",
            (provider, action, key),
        ).fetchone()
        db.execute(
            "INSERT INTO ledger (provider, action, idempotency_key, ref, detail, duplicate, "
            "at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (provider, action, key, ref, detail, int(seen is not None), _now()),
        )
        return seen is None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _ref(prefix: str, key: str) -> str:
    return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:6].upper()}"


def _booked(provider: str, key: str) -> bool:
    with _ledger() as db:
        row = db.execute(
            "SELECT 1 FROM ledger WHERE provider=? AND action='book' AND idempotency_key=?",
            (provider, key),
        ).fetchone()
    return row is not None


def _book(
    provider: str, prefix: str, sc: StepContext, detail: str, sold_out: str | None
) -> Booking:
    if sold_out is not None:
        _record(provider, "reject", sc.idempotency_key, "-", sold_out)
        raise SoldOutError(sold_out)
    ref = _ref(prefix, sc.idempotency_key)
    _record(provider, "book", sc.idempotency_key, ref, detail)
    return Booking(provider=provider, ref=ref, detail=detail)


def _cancel(provider: str, prefix: str, c: CompensationContext) -> str:
    ref = _ref(prefix, c.idempotency_key)
    if not _booked(provider, c.idempotency_key):
        _record(provider, "noop", c.idempotency_key, ref, "nothing was booked with this key")
        return f"{ref}: nothing to cancel"
    _record(provider, "cancel", c.idempotency_key, ref, f"cancelled for saga {c.saga}")
    return f"{ref}: cancelled"


# --- the three services --------------------------------------------------------------------


def book_flight(sc: StepContext, tour: Tour) -> Booking:
    """Book the outbound flight."""
    detail = f"VN 112 {tour.origin}→{tour.destination} {tour.depart.isoformat()}"
    sold_out = f"no seat left on {detail}" if tour.fail_flight else None
    return _book("airline", "VN", sc, detail, sold_out)


def cancel_flight(c: CompensationContext) -> str:
    """Cancel the flight booked under ``c.idempotency_key``."""
    return _cancel("airline", "VN", c)


def book_hotel(sc: StepContext, tour: Tour) -> Booking:
    """Book the hotel room."""
    detail = f"{tour.hotel}, {tour.nights} nights from {tour.depart.isoformat()}"
    sold_out = f"{tour.hotel} is full" if tour.fail_hotel else None
    return _book("hotel", "HLT", sc, detail, sold_out)


def cancel_hotel(c: CompensationContext) -> str:
    """Cancel the room booked under ``c.idempotency_key``."""
    return _cancel("hotel", "HLT", c)


def book_car(sc: StepContext, tour: Tour) -> Booking:
    """Book the airport car."""
    detail = f"airport car {tour.destination} → {tour.hotel}"
    sold_out = (
        f"no airport car at {tour.destination} on {tour.depart.isoformat()}"
        if tour.fail_car
        else None
    )
    return _book("cars", "CAR", sc, detail, sold_out)


def cancel_car(c: CompensationContext) -> str:
    """Cancel the car booked under ``c.idempotency_key``."""
    return _cancel("cars", "CAR", c)


# --- reading the ledger --------------------------------------------------------------------


def ledger_rows(execution_id: str | None = None) -> list[LedgerRow]:
    """Every request the providers received (for one execution, if given), in order."""
    if not ledger_path().exists():
        return []
    with _ledger() as db:
        rows = db.execute(
            "SELECT seq, provider, action, idempotency_key, ref, detail, duplicate FROM ledger "
            "ORDER BY seq"
        ).fetchall()
    out = [LedgerRow(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6])) for r in rows]
    if execution_id is None:
        return out
    return [r for r in out if r.idempotency_key.startswith(f"{execution_id}:")]


def effects(execution_id: str) -> list[tuple[str, str, str]]:
    """The effects that landed for one execution: (provider, action, step), repeats removed."""
    return [
        (r.provider, r.action, r.idempotency_key.split(":", 1)[1])
        for r in ledger_rows(execution_id)
        if not r.duplicate
    ]
