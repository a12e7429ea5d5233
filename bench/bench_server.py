"""List and search latency of ``search_executions`` on 100,000 executions in SQLite.

Run: ``PYTHONPATH=. python bench/bench_server.py [--rows 100000] [--runs 50]``. Fills a
fresh store (one transaction, through the store's own row format), then times the first
page (50 rows) of each listing the API serves; prints the median and p95 in ms.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from durable_core.records import ErrorInfo, Execution, ExecutionStatus
from durable_core.stores.search import ExecutionQuery
from durable_core.stores.sqlite import SQLiteStore
from durable_core.stores.sqlite_rows import _row
from durable_core.stores.sqlite_schema import _INSERT

FUNCTIONS = ["shop:order", "shop:refund", "travel:book_tour", "mail:digest"]


def fill(store: SQLiteStore, rows: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    batch = []
    for i in range(rows):
        at = start + timedelta(seconds=i)
        status = [ExecutionStatus.SUCCEEDED, ExecutionStatus.RUNNING, ExecutionStatus.FAILED][i % 3]
        ex = Execution(
            id=f"ord-{i:07d}",
            function=FUNCTIONS[i % len(FUNCTIONS)],
            input=f'{{"n": {i}}}',
            status=status,
            created_at=at,
            updated_at=at,
            waiting_for="callback 'shipper'" if status is ExecutionStatus.RUNNING else None,
            error=ErrorInfo(type="saga.errors.SagaCompensated", message="x")
            if i % 97 == 0 and status is ExecutionStatus.FAILED
            else None,
        )
        batch.append(_row(ex))
    db = store._db  # a benchmark fills the file in one transaction
    db.execute("BEGIN")
    db.executemany(_INSERT, batch)
    db.execute("COMMIT")


def timed(store: SQLiteStore, query: ExecutionQuery, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        store.search_executions(query)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "bench.sqlite3")
        t0 = time.perf_counter()
        fill(store, args.rows)
        print(f"filled {args.rows} executions in {time.perf_counter() - t0:.1f} s")
        cursor = store.search_executions(ExecutionQuery(limit=50)).next_cursor
        cases = {
            "newest 50": ExecutionQuery(),
            "second page": ExecutionQuery(cursor=cursor),
            "function": ExecutionQuery(function="travel:book_tour"),
            "status RUNNING": ExecutionQuery(status=ExecutionStatus.RUNNING),
            "waiting 'shipper'": ExecutionQuery(waiting_contains=("shipper",)),
            "saga compensated": ExecutionQuery(
                status=ExecutionStatus.FAILED, error_type="saga.errors.SagaCompensated"
            ),
            "id contains (1 match)": ExecutionQuery(id_contains="0012345"),
            "time range": ExecutionQuery(
                created_after=datetime(2026, 1, 1, 10, tzinfo=UTC),
                created_before=datetime(2026, 1, 1, 11, tzinfo=UTC),
            ),
        }
        print(f"{'first page of':<24} {'median ms':>10} {'p95 ms':>8}")
        for name, query in cases.items():
            median, p95 = timed(store, query, args.runs)
            print(f"{name:<24} {median:>10.2f} {p95:>8.2f}")
        store.close()


if __name__ == "__main__":
    main()
