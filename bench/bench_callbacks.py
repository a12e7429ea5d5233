"""The callback endpoint of ``durable serve`` under a bounded load of concurrent requests.

Run: ``PYTHONPATH=. python bench/bench_callbacks.py [--executions 200] [--sends 3]
[--concurrency 16 64]``. For each concurrency: a fresh SQLite store, a real ``durable
serve`` and a real ``durable worker`` on it (processes, 127.0.0.1); ``--executions``
executions of :mod:`bench.callback_flow` started through the API, each waiting on its
callback; then every token is sent ``--sends`` times (duplicates, in a shuffled order) to
``POST /api/v1/callbacks/{token}/succeed`` with httpx, at most ``concurrency`` requests in
flight. It prints the throughput (requests/s) and the latency (p50, p95) of the sends,
and counts what must be 0: *lost* (an execution that did not finish, or a token no send
completed), *doubled* (a token completed by two sends, or the step after the callback
recorded twice), *wrong* (a result that is not the payload of the send that was
accepted) and *other* (an answer that is neither 200 nor 409). Exits 1 if any is not 0.
Then it sends as many requests at the same concurrency to a route that writes nothing (the
heartbeat of an unknown token, 404): the *floor*, what HTTP alone costs here.

``tests/server/test_callback_load.py`` runs :func:`run` small (40 executions x 3 sends at
concurrency 16) and asserts the same counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import secrets
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.callback_flow import NAME
from durable_core import ExecutionStatus, OperationType
from durable_core.server.auth import hash_key
from durable_core.stores.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Report:
    """What one run measured and counted."""

    executions: int
    sends: int
    concurrency: int
    requests: int
    seconds: float
    """Wall time of the sends, first to last answer."""
    p50_ms: float
    p95_ms: float
    accepted: int
    """Answers 200: one per token expected."""
    conflicts: int
    """Answers 409 (the token was used): ``sends - 1`` per token expected."""
    other: int
    lost: int
    doubled: int
    wrong: int
    floor_per_second: float = 0.0
    """The same number of requests at the same concurrency to a route that writes nothing
    (the heartbeat of an unknown token: 404): what HTTP alone costs on this machine."""
    floor_p95_ms: float = 0.0

    @property
    def per_second(self) -> float:
        """Requests answered per second."""
        return self.requests / self.seconds

    @property
    def clean(self) -> bool:
        """Nothing lost, doubled, wrong or unexpected; every duplicate answered 409."""
        expected_conflicts = self.executions * (self.sends - 1)
        return (self.lost, self.doubled, self.wrong, self.other) == (0, 0, 0, 0) and (
            self.accepted,
            self.conflicts,
        ) == (self.executions, expected_conflicts)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _processes(tmp: Path, key: str) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """Start ``durable serve`` and ``durable worker`` on the store in ``tmp``; return the
    server's URL once it answers."""
    store = tmp / "store.sqlite3"
    SQLiteStore(store).close()  # both processes open an existing file
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CALLBACK_LEDGER": str(tmp / "ledger.db")}
    env["DURABLE_API_KEYS"] = f"bench:operate:{hash_key(key)}"
    port = _free_port()
    cli = [sys.executable, "-m", "durable_core.cli"]
    log = (tmp / "processes.log").open("wb")
    serve = [*cli, "serve", "--store", f"sqlite:///{store}", "--port", str(port)]
    worker = [*cli, "--store", str(store), "--log-level", "warning", "worker"]
    worker += ["--import", "bench.callback_flow", "--concurrency", "4", "--poll", "0.02"]
    procs = [
        subprocess.Popen(cmd, env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
        for cmd in (serve, worker)
    ]
    url = f"http://127.0.0.1:{port}"
    _until(lambda: _answers(url, key), 30, "durable serve to answer", procs)
    return url, procs


def _answers(url: str, key: str) -> bool:
    try:
        r = httpx.get(f"{url}/api/v1/whoami", headers={"Authorization": f"Bearer {key}"})
    except httpx.TransportError:
        return False
    return r.status_code == 200


def _until(done: Any, seconds: float, what: str, procs: list[subprocess.Popen[bytes]]) -> None:
    """Poll ``done()`` until it is true (a real server and worker: no virtual time)."""
    deadline = time.monotonic() + seconds
    while not done():
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"a process exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting {seconds:.0f} s for {what}")
        time.sleep(0.05)  # polling real processes, not waiting for time


def _tokens(store: SQLiteStore, ids: list[str]) -> dict[str, str]:
    """The callback token of each execution that waits on its callback by now."""
    found: dict[str, str] = {}
    for eid in ids:
        for op in store.load_operations(eid):
            if op.type is OperationType.CALLBACK and op.callback_id:
                found[eid] = op.callback_id
    return found


async def _fire(
    url: str,
    sends: list[tuple[str, dict[str, Any]]],
    concurrency: int,
    *,
    action: str = "succeed",
) -> tuple[list[tuple[str, dict[str, Any], int]], list[float], float]:
    """Send every ``(token, payload)``, at most ``concurrency`` in flight; return each
    answer's status (0: no answer), the latencies and the wall time."""
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    answers: list[tuple[str, dict[str, Any], int]] = []
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def send(token: str, payload: dict[str, Any]) -> None:
            async with gate:
                t0 = time.perf_counter()
                try:
                    r = await client.post(f"/api/v1/callbacks/{token}/{action}", json=payload)
                    status = r.status_code
                except httpx.HTTPError:
                    status = 0
                latencies.append((time.perf_counter() - t0) * 1000)
                answers.append((token, payload, status))

        t0 = time.perf_counter()
        await asyncio.gather(*(send(t, p) for t, p in sends))
        wall = time.perf_counter() - t0
    return answers, latencies, wall


def run(executions: int, sends: int, concurrency: int, tmp: Path, *, seed: int = 14) -> Report:
    """One measured run in the empty directory ``tmp`` (see the module docstring)."""
    key = secrets.token_urlsafe(32)
    url, procs = _processes(tmp, key)
    store = SQLiteStore(tmp / "store.sqlite3")
    try:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
            ids = [f"cb-{i:05d}" for i in range(executions)]
            for eid in ids:
                r = c.post("/api/v1/executions", json={"function": NAME, "execution_id": eid})
                r.raise_for_status()
        tokens: dict[str, str] = {}

        def all_waiting() -> bool:
            tokens.update(_tokens(store, [e for e in ids if e not in tokens]))
            return len(tokens) == len(ids)

        _until(all_waiting, 120, f"{executions} executions to wait on their callback", procs)
        plan = [(tokens[eid], {"eid": eid, "send": k}) for eid in ids for k in range(sends)]
        random.Random(seed).shuffle(plan)
        answers, latencies, wall = asyncio.run(_fire(url, plan, concurrency))
        unknown: list[tuple[str, dict[str, Any]]] = [("x" * 43, {}) for _ in plan]
        floor, floor_latencies, floor_wall = asyncio.run(
            _fire(url, unknown, concurrency, action="heartbeat")
        )

        def all_finished() -> bool:
            return all(store.get_execution(e).status.is_terminal for e in ids)

        with contextlib.suppress(TimeoutError):  # what did not finish is counted as lost
            _until(all_finished, 120, "the executions to finish", procs)
        report = _report(store, ids, tokens, answers, latencies, wall, sends, concurrency, tmp)
        if any(status != 404 for _, _, status in floor):
            raise RuntimeError("the floor's unknown-token heartbeats were not all answered 404")
        floor_latencies.sort()
        return dataclasses.replace(
            report,
            floor_per_second=len(floor) / floor_wall,
            floor_p95_ms=floor_latencies[max(0, int(len(floor) * 0.95) - 1)],
        )
    finally:
        store.close()
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)


def _report(
    store: SQLiteStore,
    ids: list[str],
    tokens: dict[str, str],
    answers: list[tuple[str, dict[str, Any], int]],
    latencies: list[float],
    wall: float,
    sends: int,
    concurrency: int,
    tmp: Path,
) -> Report:
    statuses = Counter(status for _, _, status in answers)
    accepted = {}
    per_token = Counter(token for token, _, status in answers if status == 200)
    for token, payload, status in answers:
        if status == 200:
            accepted[token] = payload
    db = sqlite3.connect(tmp / "ledger.db")
    rows = Counter(eid for (eid,) in db.execute("SELECT eid FROM done"))
    recorded = {eid: json.loads(p) for eid, p in db.execute("SELECT eid, payload FROM done")}
    db.close()
    lost = doubled = wrong = 0
    for eid in ids:
        ex = store.get_execution(eid)
        token = tokens[eid]
        if ex.status is not ExecutionStatus.SUCCEEDED or per_token[token] == 0 or not rows[eid]:
            lost += 1
            continue
        if per_token[token] > 1 or rows[eid] > 1:
            doubled += 1
        result = json.loads(ex.result or "null")
        if result != accepted[token] or recorded[eid] != accepted[token]:
            wrong += 1
    latencies.sort()
    return Report(
        executions=len(ids),
        sends=sends,
        concurrency=concurrency,
        requests=len(answers),
        seconds=wall,
        p50_ms=statistics.median(latencies),
        p95_ms=latencies[max(0, int(len(latencies) * 0.95) - 1)],
        accepted=statuses[200],
        conflicts=statuses[409],
        other=sum(n for status, n in statuses.items() if status not in (200, 409)),
        lost=lost,
        doubled=doubled,
        wrong=wrong,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executions", type=int, default=200)
    parser.add_argument("--sends", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    args = parser.parse_args()
    print(
        f"{'concurrency':>11} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'200':>5} {'409':>5} {'other':>5} {'lost':>4} {'doubled':>7} {'wrong':>5} "
        f"{'floor req/s':>11} {'floor p95':>9}"
    )
    clean = True
    for concurrency in args.concurrency:
        with tempfile.TemporaryDirectory() as tmp:
            r = run(args.executions, args.sends, concurrency, Path(tmp))
        clean = clean and r.clean
        print(
            f"{r.concurrency:>11} {r.requests:>8} {r.per_second:>7.0f} {r.p50_ms:>7.1f} "
            f"{r.p95_ms:>7.1f} {r.accepted:>5} {r.conflicts:>5} {r.other:>5} {r.lost:>4} "
            f"{r.doubled:>7} {r.wrong:>5} {r.floor_per_second:>11.0f} {r.floor_p95_ms:>9.1f}"
        )
    sys.exit(0 if clean else 1)


if __name__ == "__main__":
    main()
