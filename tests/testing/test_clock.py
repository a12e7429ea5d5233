"""VirtualClock: moves only when told, never backwards, safe across threads."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from durable_core import Clock, ValidationError
from durable_core.testing import VirtualClock
from durable_core.testing.clock import DEFAULT_START


def test_starts_at_a_fixed_time_and_stands_still() -> None:
    clock = VirtualClock()
    assert clock.now() == DEFAULT_START
    assert clock.now() == clock.now()
    assert clock.now().tzinfo is UTC


def test_is_a_clock() -> None:
    assert isinstance(VirtualClock(), Clock)


def test_sleep_advances_instantly() -> None:
    clock = VirtualClock()
    clock.sleep(1.5)
    clock.sleep(0)
    clock.sleep(-3)  # like time.sleep(0): nothing happens
    assert clock.now() == DEFAULT_START + timedelta(seconds=1.5)


def test_advance_and_set_move_forward() -> None:
    clock = VirtualClock(datetime(2030, 6, 1, tzinfo=UTC))
    assert clock.advance(timedelta(days=30)) == datetime(2030, 7, 1, tzinfo=UTC)
    assert clock.set(datetime(2031, 1, 1, tzinfo=UTC)) == datetime(2031, 1, 1, tzinfo=UTC)
    assert clock.set(clock.now()) == datetime(2031, 1, 1, tzinfo=UTC)  # no-op


def test_time_never_runs_backwards() -> None:
    clock = VirtualClock()
    with pytest.raises(ValidationError, match="only moves forward"):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValidationError, match="only moves forward"):
        clock.set(DEFAULT_START - timedelta(days=1))
    assert clock.now() == DEFAULT_START


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        VirtualClock(datetime(2030, 1, 1))
    with pytest.raises(ValidationError, match="timezone-aware"):
        VirtualClock().set(datetime(2031, 1, 1))


def test_other_timezones_are_converted_to_utc() -> None:
    clock = VirtualClock(datetime(2030, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))))
    assert clock.now() == datetime(2030, 1, 1, tzinfo=UTC)
    assert clock.now().tzinfo is UTC


def test_concurrent_sleeps_add_up_exactly() -> None:
    clock = VirtualClock()

    def sleeper() -> None:
        for _ in range(500):
            clock.sleep(1)

    threads = [threading.Thread(target=sleeper) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.now() == DEFAULT_START + timedelta(seconds=4000)


def test_repr_shows_the_time() -> None:
    assert "2030-01-01" in repr(VirtualClock())
