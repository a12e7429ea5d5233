"""The callback endpoint under concurrent duplicate sends: nothing lost, nothing doubled.

A small run of ``bench/bench_callbacks.py`` (a real ``durable serve`` and ``durable
worker`` on SQLite): 40 executions each wait on a callback, every token is sent 3 times
with 16 requests in flight. Each token completes its callback exactly once (one 200), each
duplicate is answered 409, every execution finishes with the payload of the accepted send,
and the step after the callback ran once. No timing is asserted (see docs/server.md).
"""

from __future__ import annotations

from pathlib import Path

from bench.bench_callbacks import run


def test_duplicate_concurrent_callbacks_complete_each_execution_exactly_once(
    tmp_path: Path,
) -> None:
    report = run(40, 3, 16, tmp_path)
    assert (report.lost, report.doubled, report.wrong, report.other) == (0, 0, 0, 0)
    assert (report.accepted, report.conflicts) == (40, 80)  # every duplicate answered 409
    assert report.requests == 120 and report.clean
