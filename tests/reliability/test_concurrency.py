"""Concurrency: 4 real worker processes on one store drive many executions to the end.

``bench/concurrency.py`` is the harness (it is also the benchmark command): executions
with two steps, a 1 s durable wait, a callback completed from outside and a last step;
one worker SIGKILLed at a random point, another frozen (SIGSTOP) inside a step until its
execution was taken over, then resumed. ``bench/concurrency_check.py`` judges the run
from the workers' audit log of every store write (accepted, refused), the side ledger of
step effects and the final journals.

Here: the full SQLite run (1,000 executions, 4 workers, ~30 s on 2 cores), the DynamoDB
Local run at 100 executions (``aws``), and the negative controls — the checker must fail
on a hand-made audit log where a stale fence writes after a newer one, and on a real run
whose store has its fence check switched off.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))

import concurrency  # noqa: E402
import concurrency_check as check  # noqa: E402


def assert_clean(result: dict[str, Any], executions: int) -> None:
    verdict, seed = result["verdict"], result["config"]["seed"]
    why = f"seed={seed} verdict={verdict} stall={result['stall']} workers={result['workers']}"
    assert result["ok"], why
    assert verdict["executions"] == verdict["finished"] == executions, why
    for count in check.MUST_BE_ZERO:
        assert verdict[count] == 0, f"{count}: {why}"
    assert verdict["fencing_violations"] == 0, why
    # the disruptions really happened, and fencing had something to refuse
    assert result["killed"] == 1, why
    assert result["stall"]["state"] == "resumed", why
    assert result["stall"]["taken_over"], why
    assert verdict["refused_writes"] >= 1, why  # the resumed worker's stale checkpoint
    assert result["feeder"]["callbacks_completed"] == executions, why
    exits = sorted(row["exit"] for row in result["workers"])
    assert exits == [-signal.SIGKILL, 0, 0, 0], why


def test_sqlite_4_workers_1000_executions_none_lost_none_double_advanced(
    tmp_path: Path,
) -> None:
    config = concurrency.Config(store="sqlite", executions=1000, workers=4, seed=None)
    result = concurrency.run(config, work_dir=tmp_path)
    assert_clean(result, 1000)


def test_sqlite_workers_running_4_executions_each_through_a_kill(tmp_path: Path) -> None:
    """``durable worker --concurrency 4``: the killed worker had several executions in
    flight; each is taken over once, nothing lost or advanced twice. (No freeze: a frozen
    process usually holds the file's write lock mid-commit then, see bench/README.md.)"""
    config = concurrency.Config(
        store="sqlite", executions=200, workers=3, concurrency=4, stall=False, seed=None
    )
    result = concurrency.run(config, work_dir=tmp_path)
    verdict, why = result["verdict"], f"seed={result['config']['seed']} {result['verdict']}"
    assert result["ok"], why
    assert verdict["executions"] == verdict["finished"] == 200, why
    for count in (*check.MUST_BE_ZERO, "fencing_violations"):
        assert verdict[count] == 0, f"{count}: {why}"
    assert result["killed"] == 1, why
    assert sorted(row["exit"] for row in result["workers"]) == [-signal.SIGKILL, 0, 0], why


@pytest.mark.aws
def test_dynamodb_local_4_workers_100_executions(tmp_path: Path) -> None:
    from aws import ddb  # type: ignore[import-not-found]  # tests/aws/ddb.py, by sys.path

    config = concurrency.Config(store="dynamodb", executions=100, endpoint=ddb.endpoint())
    result = concurrency.run(config, work_dir=tmp_path)
    assert_clean(result, 100)


def test_the_harness_catches_a_store_that_does_not_fence(tmp_path: Path) -> None:
    """Negative control: the stalled worker's stale checkpoint is accepted, and counted."""
    config = concurrency.Config(executions=40, workers=3, kills=0, unfenced=True, seed=7)
    result = concurrency.run(config, work_dir=tmp_path)
    verdict = result["verdict"]
    assert result["stall"]["taken_over"], result
    assert not result["ok"]
    assert verdict["double_advanced"] >= 1, verdict
    assert verdict["duplicate_records"] >= 1, verdict  # the step recorded by both holders
    assert verdict["refused_writes"] == 0, verdict


# --- the fencing checker on hand-made audit logs ---------------------------------------


class Log:
    """Builds audit rows as AuditedStore writes them, on one global sequence."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def _add(self, **row: Any) -> int:
        seq = len(self.rows) + 1
        self.rows.append({"seq": seq, "execution_id": "e1", "ops": "[]", **row})
        return seq

    def grant(self, owner: str, fence: int) -> None:
        self._add(ref=None, kind="grant", owner=owner, fence=fence, outcome="accepted", pid=1)

    def begin(self, owner: str, fence: int, op: str = "op-1") -> int:
        ops = f'[["{op}", "SUCCEEDED"]]'
        return self._add(
            ref=None, kind="write", owner=owner, fence=fence, outcome="begin", ops=ops, pid=1
        )

    def end(self, begin: int, outcome: str) -> None:
        row = dict(self.rows[begin - 1])
        del row["seq"]
        self._add(**{**row, "ref": begin, "outcome": outcome})

    def verdict(self) -> check.Verdict:
        return check.check_fencing(check.calls_from_audit(self.rows))


def test_checker_counts_a_lower_fence_writing_after_a_higher_one() -> None:
    log = Log()
    log.grant("A", 1)
    log.end(log.begin("A", 1), "accepted")
    log.grant("B", 2)
    log.end(log.begin("B", 2), "accepted")
    log.end(log.begin("A", 1), "accepted")  # A's stale lease wrote after B's: double advance
    verdict = log.verdict()
    assert verdict.counts["double_advanced"] == 1
    assert "fence 1 after fence 2" in verdict.examples["double_advanced"][0]
    assert not verdict.ok


def test_checker_counts_a_stale_write_after_a_newer_grant_alone() -> None:
    log = Log()
    log.grant("A", 1)
    log.grant("B", 2)  # B holds the execution now, even before it writes
    log.end(log.begin("A", 1), "accepted")
    assert log.verdict().counts["double_advanced"] == 1


def test_checker_counts_one_fence_granted_twice() -> None:
    log = Log()
    log.grant("A", 1)
    log.grant("B", 1)
    assert log.verdict().counts["double_advanced"] == 1


def test_checker_passes_a_refused_stale_write_and_overlapping_calls() -> None:
    log = Log()
    log.grant("A", 1)
    overlapping = log.begin("A", 1)  # started before B's grant ended: order unknown
    log.grant("B", 2)
    log.end(overlapping, "accepted")
    log.end(log.begin("B", 2), "accepted")
    log.end(log.begin("A", 1), "refused")  # fencing at work
    killed = log.begin("B", 2)  # the worker died during the call: outcome unknown
    del killed
    verdict = log.verdict()
    assert verdict.counts["double_advanced"] == 0
    assert verdict.counts["refused_writes"] == 1
    assert verdict.counts["unknown_writes"] == 1
    assert verdict.ok


def test_checker_counts_a_final_record_accepted_twice_and_a_lost_one() -> None:
    log = Log()
    log.grant("A", 1)
    log.end(log.begin("A", 1, op="op-1"), "accepted")
    log.grant("B", 2)
    log.end(log.begin("B", 2, op="op-1"), "accepted")
    log.end(log.begin("B", 2, op="op-2"), "accepted")
    calls = check.calls_from_audit(log.rows)
    journal = [{"id": "op-1", "name": "reserve", "type": "STEP", "status": "SUCCEEDED"}]
    executions = {"e1": {"status": "RUNNING", "result": None, "operations": journal}}
    verdict = check.check_records(calls, ["e1", "e2"], executions)
    assert verdict.counts["duplicate_records"] == 1  # op-1 recorded final twice
    assert verdict.counts["lost"] == 2  # op-2 accepted but not in the journal; e2 missing
    assert verdict.counts["unfinished"] == 1
