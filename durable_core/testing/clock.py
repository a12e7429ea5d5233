"""A virtual clock for tests: time moves only when the test (or the engine) moves it.

Invariants:
- ``now()`` is timezone-aware UTC and never runs backwards.
- ``sleep(seconds)`` returns at once after advancing the virtual time by ``seconds``, so an
  inline retry delay costs nothing and a 30-day wait can be skipped in one call.
- Every method is safe to call from several threads (the runtime's lease keeper and the
  branches of ``parallel`` read the clock concurrently).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from durable_core.errors import ValidationError

DEFAULT_START = datetime(2030, 1, 1, tzinfo=UTC)
"""Where a :class:`VirtualClock` starts unless told otherwise: fixed, so runs are repeatable."""


class VirtualClock:
    """A :class:`~durable_core.clock.Clock` whose time moves only when told to.

    Example::

        clock = VirtualClock()
        clock.advance(timedelta(days=30))   # instantly
        clock.sleep(1.5)                    # also instantly, time moved 1.5 s

    Args:
        start: the initial time (timezone-aware); default :data:`DEFAULT_START`.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._now = _aware(start) if start is not None else DEFAULT_START

    def now(self) -> datetime:
        """The current virtual time (UTC)."""
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        """Advance the virtual time by ``seconds`` and return at once (negative: no-op)."""
        if seconds > 0:
            self.advance(timedelta(seconds=seconds))

    async def sleep_async(self, seconds: float) -> None:
        """:meth:`sleep` for an event loop: advance and return at once."""
        self.sleep(seconds)

    def advance(self, delta: timedelta) -> datetime:
        """Move the time forward by ``delta``; return the new time.

        Raises:
            ValidationError: ``delta`` is negative (time never runs backwards).
        """
        if delta < timedelta(0):
            raise ValidationError(
                f"a virtual clock only moves forward; advance() got {delta}. "
                "Start a new VirtualClock to test an earlier time."
            )
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: datetime) -> datetime:
        """Move the time forward to ``when`` (a no-op if it is already there).

        Raises:
            ValidationError: ``when`` is naive or earlier than the current virtual time.
        """
        target = _aware(when)
        with self._lock:
            if target < self._now:
                raise ValidationError(
                    f"a virtual clock only moves forward; set({target.isoformat()}) is before "
                    f"the current virtual time {self._now.isoformat()}."
                )
            self._now = target
            return self._now

    def __repr__(self) -> str:
        return f"VirtualClock({self.now().isoformat()})"


def _aware(when: datetime) -> datetime:
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise ValidationError(
            f"a virtual clock needs a timezone-aware datetime, got {when!r}; "
            "use e.g. datetime(2030, 1, 1, tzinfo=UTC)."
        )
    return when.astimezone(UTC)
