"""The durable function ``bench/bench_callbacks.py`` drives: wait for one callback, then
record it once.

The step after the callback appends ``(execution id, payload)`` to the SQLite ledger at
``$CALLBACK_LEDGER``; the bench counts the rows per execution, so a callback completed
twice, or the step after it run twice, shows as a second row.
"""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Any

from durable_core import DurableContext, StepContext, durable

NAME = "bench.callbacks:confirm"


def ledger() -> sqlite3.Connection:
    """The ledger (created on first use), in autocommit mode."""
    db = sqlite3.connect(os.environ["CALLBACK_LEDGER"], timeout=30, isolation_level=None)
    db.execute("CREATE TABLE IF NOT EXISTS done (eid TEXT NOT NULL, payload TEXT NOT NULL)")
    return db


@durable(name=NAME)
def confirm(ctx: DurableContext, event: Any) -> Any:
    """Wait for the ``confirm`` callback, then record its payload in the ledger."""
    value = ctx.create_callback("confirm").result()

    def record(sc: StepContext) -> None:
        db = ledger()
        try:
            db.execute("INSERT INTO done VALUES (?, ?)", (sc.execution_id, json.dumps(value)))
        finally:
            db.close()

    ctx.step("record", record)
    return value
