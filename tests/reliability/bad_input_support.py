"""Shared kit of the bad-input corpus (``test_bad_records.py``, ``test_bad_api_input.py``).

- :func:`examples`: hypothesis settings for one test. The CI profile is derandomized (the
  same examples on every run) with a per-example deadline; ``HYPOTHESIS_PROFILE=long``
  multiplies the example counts by :data:`LONG_FACTOR` and draws fresh random examples.
  Nothing is loaded globally (``settings.load_profile``), so other hypothesis tests in the
  same session keep their own settings.
- :class:`Bench`: a real SQLite store file in its own directory, a virtual clock and a
  runtime, with one *healthy* execution of :func:`flow` parked at its timer. Every bad case
  runs next to it; :meth:`Bench.finish_healthy` then reopens the file and drives the healthy
  execution to its expected result with ``tick`` — as a worker would — proving the bad case
  neither broke the store nor stranded another execution.
- :func:`typed`: run a call and return its outcome, failing the test if it raised anything
  but a :class:`~durable_core.errors.DurableError` (a bare ``KeyError``, a pydantic error, a
  ``json`` or ``sqlite3`` error leaking out is a bug).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from pydantic import BaseModel

from durable_core import (
    DurableContext,
    DurableError,
    Execution,
    ExecutionStatus,
    Operation,
    Runtime,
    RuntimeOptions,
    durable,
)
from durable_core.stores.sqlite import SQLiteStore
from durable_core.testing import VirtualClock

T = TypeVar("T")

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
LONG = PROFILE == "long"
LONG_FACTOR = 20
"""How many times more examples every test runs under ``HYPOTHESIS_PROFILE=long``."""
DEADLINE = timedelta(seconds=10)
"""Per example: far above the ~10-100 ms an example takes; a hang fails instead of waiting."""
TEST_TIMEOUT_S = 600 if LONG else 120
"""pytest-timeout per test (the whole hypothesis run of that test)."""
PAYLOAD_LIMIT = 4096
"""``max_payload_bytes`` of the bench's runtime: small, so over-limit values stay cheap."""


def examples(n: int) -> settings:
    """Settings for a test that runs ``n`` examples in CI (``n * LONG_FACTOR`` when long)."""
    return settings(
        max_examples=n * LONG_FACTOR if LONG else n,
        derandomize=not LONG,
        deadline=DEADLINE,
        database=None,  # no .hypothesis/ directory in the checkout; CI reruns are identical
        print_blob=True,
        # tmp_path is shared by a test's examples; each example makes its own directory in it
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )


# --- the workflow every bench runs ------------------------------------------------------------


class Order(BaseModel):
    """The event of :func:`flow`."""

    order_id: str
    amount: int


class Approval(BaseModel):
    """What the ``approval`` callback delivers."""

    approved: bool
    by: str


FLOW_NAME = "reliability.bad_input:flow"
OP_NAMES = ("charge", "approval", "cool-off", "ship")
COOL_OFF = timedelta(minutes=5)
CALLBACK_TIMEOUT = timedelta(days=1)


@durable(name=FLOW_NAME)
def flow(ctx: DurableContext, order: Order) -> dict[str, Any]:
    """Step, callback, timer, step: every kind of record a journal holds."""
    charged = ctx.step("charge", lambda sc: order.amount * 2)
    cb = ctx.create_callback("approval", timeout=CALLBACK_TIMEOUT, result_type=Approval)
    approval: Approval = cb.result()
    ctx.wait("cool-off", COOL_OFF)
    shipped = ctx.step("ship", lambda sc: f"{order.order_id}:{approval.by}")
    return {"charged": charged, "shipped": shipped, "approved": approval.approved}


def expected_result(order: Order, approval: Approval) -> dict[str, Any]:
    """What :func:`flow` returns for ``order`` once ``approval`` arrived."""
    return {
        "charged": order.amount * 2,
        "shipped": f"{order.order_id}:{approval.by}",
        "approved": approval.approved,
    }


HEALTHY_ID = "healthy-1"
HEALTHY_ORDER = Order(order_id="H-1", amount=21)
HEALTHY_APPROVAL = Approval(approved=True, by="ana")


# --- outcomes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one call did: its value, or the typed error it raised."""

    value: Any = None
    error: DurableError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def typed(call: Callable[[], Any], what: str) -> Outcome:
    """Run ``call``; a DurableError is an outcome, anything else fails the test."""
    try:
        return Outcome(value=call())
    except DurableError as e:
        error = e
    except Exception as e:
        raise AssertionError(
            f"{what} leaked an untyped {type(e).__module__}.{type(e).__qualname__}: {e}\n"
            + "".join(traceback.format_exception(e))
        ) from e
    assert str(error).strip(), f"{what}: {type(error).__name__} with an empty message"
    return Outcome(error=error)


def names_one_of(error: BaseException, *candidates: str) -> bool:
    """True if the error's message names (quotes) one of ``candidates``."""
    text = str(error)
    return any(repr(c) in text or f'"{c}"' in text for c in candidates)


def assert_typed_failure(ex: Execution, *names: str, written: Execution | None = None) -> None:
    """A FAILED/CANCELLED execution recorded a durable_core error that names something.

    ``written``: the record as the test damaged it; an error already there is not the
    engine's doing and is not checked.
    """
    if ex.status not in (ExecutionStatus.FAILED, ExecutionStatus.CANCELLED):
        return
    if written is not None and written.error == ex.error:
        return
    assert ex.error is not None, f"{ex.id!r} ended {ex.status.value} without an error"
    assert ex.error.type.startswith("durable_core."), (
        f"execution {ex.id!r} failed with an untyped {ex.error.type}: {ex.error.message}"
    )
    if ex.error.type == "durable_core.errors.CallbackFailedError":
        return  # the caller's own message, as it sent it (AWS's SDK raises it so too)
    assert any(n in ex.error.message for n in names), (
        f"the error of {ex.id!r} names none of {names}: {ex.error.message}"
    )


# --- the bench ------------------------------------------------------------------------------


def row_bytes(path: Path, table: str, where: str, key: Any) -> list[Any]:
    """Every column of the matching rows, text read as bytes (it may not be UTF-8)."""
    columns = [c[1] for c in raw(path, f"PRAGMA table_info({table})")]
    cast = ", ".join(f"CAST({c} AS BLOB)" for c in columns)
    return raw(path, f"SELECT {cast} FROM {table} WHERE {where} = ?", key)


def raw(path: Path, sql: str, *params: Any) -> list[Any]:
    """Run SQL on the file outside the store, as another program (or a bad disk) would."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


class Bench:
    """A store file, a virtual clock, a runtime and one healthy execution at its timer."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "durable.sqlite3"
        self.clock = VirtualClock()
        self.store = SQLiteStore(self.path)
        self.rt = self.runtime(self.store)

    def runtime(self, store: SQLiteStore) -> Runtime:
        return Runtime(
            store,
            functions=[flow],
            clock=self.clock,
            options=RuntimeOptions(max_payload_bytes=PAYLOAD_LIMIT),
            worker_id="bench",
        )

    @classmethod
    @contextmanager
    def fresh(cls, base: Path) -> Iterator[Bench]:
        """A bench in a new directory under ``base``, deleted afterwards."""
        directory = Path(tempfile.mkdtemp(dir=base))
        bench = cls(directory)
        try:
            yield bench
        finally:
            bench.store.close()
            shutil.rmtree(directory, ignore_errors=True)

    # --- executions of flow ---------------------------------------------------------------

    def at_callback(self, eid: str, order: Order) -> str:
        """Run ``flow`` until it waits for its callback; return the token."""
        ex = self.rt.run(flow, order, execution_id=eid)
        assert ex.status is ExecutionStatus.RUNNING, ex
        return self.token(eid)

    def token(self, eid: str) -> str:
        (op,) = [o for o in self.rt.operations(eid) if o.callback_id is not None]
        assert op.callback_id is not None
        return op.callback_id

    def at_timer(self, eid: str, order: Order, approval: Approval) -> None:
        """Run ``flow`` past its callback until it waits on its timer."""
        token = self.at_callback(eid, order)
        self.rt.send_callback_success(token, approval.model_dump())
        ex = self.rt.drive(eid)
        assert ex.status is ExecutionStatus.RUNNING, ex
        assert ex.wake_at == self.clock.now() + COOL_OFF, ex

    def done(self, eid: str, order: Order, approval: Approval) -> None:
        """Run ``flow`` to the end (the clock moves past the timer)."""
        self.at_timer(eid, order, approval)
        self.clock.advance(COOL_OFF)
        ex = self.rt.drive(eid)
        assert ex.status is ExecutionStatus.SUCCEEDED, ex

    def start_healthy(self) -> None:
        self.at_timer(HEALTHY_ID, HEALTHY_ORDER, HEALTHY_APPROVAL)
        self.healthy_journal = self.rt.operations(HEALTHY_ID)

    def journal_rows(self, eid: str) -> list[Any]:
        """The raw operation rows of ``eid`` (seq, op_id, callback_id, record)."""
        return raw(
            self.path,
            "SELECT seq, op_id, callback_id, record FROM operations "
            "WHERE execution_id = ? ORDER BY seq",
            eid,
        )

    def finish_healthy(self, *, ticks: int = 6) -> list[DurableError]:
        """Reopen the file and drive the healthy execution to its result with ``tick``.

        Returns the typed errors ticks raised on the way (a corrupt execution claimed in
        the same tick, say). The healthy execution's earlier records must be unchanged.
        """
        self.store.close()
        self.store = SQLiteStore(self.path)  # the file still opens
        self.rt = self.runtime(self.store)
        assert self.rt.operations(HEALTHY_ID) == self.healthy_journal, "healthy journal changed"
        finished = [op for op in self.healthy_journal if op.status.is_terminal]
        self.clock.advance(COOL_OFF)
        errors: list[DurableError] = []
        for _ in range(ticks):
            out = typed(lambda: self.rt.tick(limit=16), "tick")
            if out.error is not None:
                errors.append(out.error)
            if self.rt.get(HEALTHY_ID).status.is_terminal:
                break
        ex = self.rt.get(HEALTHY_ID)
        assert ex.status is ExecutionStatus.SUCCEEDED, (
            f"the healthy execution did not finish after {ticks} ticks: {ex} "
            f"(tick errors: {errors})"
        )
        assert self.rt.result(HEALTHY_ID) == expected_result(HEALTHY_ORDER, HEALTHY_APPROVAL)
        journal = self.rt.operations(HEALTHY_ID)
        assert [op for op in journal if op in finished] == finished  # settled records unchanged
        assert [op.name for op in journal] == list(OP_NAMES)
        return errors


def journal_of(rt: Runtime, eid: str) -> list[Operation]:
    """The journal, or [] if the execution does not exist."""
    out = typed(lambda: rt.operations(eid), f"operations({eid!r})")
    return out.value if out.ok else []
