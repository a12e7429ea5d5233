"""Raw SQLite's own commit cost: the floor under any SQLite-backed durable step.

One "step" here is one transaction that inserts one journal-sized row and commits:
``BEGIN IMMEDIATE; INSERT; COMMIT`` with the same settings as durable-saga's SQLiteStore
(WAL; ``synchronous=FULL`` for ``full``, ``NORMAL`` for ``normal``). Nothing else: no
serialization, no lease check, no read. Runs with the standard library's ``sqlite3`` of
the interpreter the benchmark venvs share, so it is the same SQLite library.

Variants: ``full`` (fsync per commit) and ``normal`` (no fsync per commit in WAL mode).
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from _common import Spec, main, repeat

PAYLOAD = json.dumps(
    {"id": "x" * 32, "type": "STEP", "name": "s1", "status": "SUCCEEDED", "result": "1"}
)


def op_steps(spec: Spec) -> dict[str, Any]:
    n, runs, variant = int(spec["n"]), int(spec.get("runs", 3)), spec["variant"]
    if variant not in ("full", "normal"):
        raise SystemExit(f"unknown variant {variant!r}; known: full, normal")
    with tempfile.TemporaryDirectory(dir=spec.get("tmp_dir")) as tmp:
        con = sqlite3.connect(Path(tmp) / "raw.sqlite3", isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(f"PRAGMA synchronous={variant.upper()}")
        con.execute("CREATE TABLE ops (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        keys = iter(range(10**12))

        def one(size: int) -> None:
            for _ in range(size):
                con.execute("BEGIN IMMEDIATE")
                con.execute("INSERT INTO ops VALUES (?, ?)", (next(keys), PAYLOAD))
                con.execute("COMMIT")

        seconds = repeat(one, n, runs)
        con.close()
    return {"seconds": seconds, "sqlite_version": sqlite3.sqlite_version}


if __name__ == "__main__":
    main({"steps": op_steps}, system="raw-sqlite")
