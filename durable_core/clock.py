"""The clock seam: where "now" and sleeping come from.

The runtime never calls ``datetime.now`` or ``time.sleep`` directly, so the testing kit's
virtual clock can make a 30-day wait pass instantly. All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Source of the current time and of (possibly virtual) sleeps."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` (a virtual clock advances instead)."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def sleep_async(self, seconds: float) -> None:
        """Sleep without blocking the event loop (async retry delays)."""
        if seconds > 0:
            await asyncio.sleep(seconds)
