"""Operator decisions are authorised actions: only ``saga.operator`` / ``durable-saga`` decide.

A parked saga waits on a privileged callback. Whoever holds its token cannot complete it
through the generic paths (``durable callback``, ``Runtime.send_callback_*``); a decision is
validated when submitted and recorded with its actor; the token is never logged.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from saga_helpers import Effects, parking_saga, settle
from structlog.testing import LogCapture

from durable_core import (
    ExecutionStatus,
    PrivilegedCallbackError,
    Runtime,
    SQLiteStore,
    Worker,
)
from durable_core.cli import main as durable_cli
from durable_core.records import MAX_ACTOR_LENGTH
from durable_core.testing import VirtualClock
from saga import (
    InvalidOperatorActionError,
    SagaNotParkedError,
    SagaStatus,
    resolve,
    retry_compensation,
    saga_status,
    skip_compensation,
    terminate,
)
from saga.cli import main as saga_cli
from saga.operator import MAX_TEXT, default_actor

FORGED = {"action": "skip", "reason": "forged", "actor": "mallory"}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.sqlite3"


@pytest.fixture
def fx() -> Effects:
    return Effects()


@pytest.fixture
def srt(db: Path, fx: Effects) -> Iterator[Runtime]:
    """A runtime on a SQLite file (so the CLIs can open the same store)."""
    runtime = Runtime(SQLiteStore(db), functions=[parking_saga(fx)], clock=VirtualClock())
    yield runtime
    runtime.store.close()


def park(rt: Runtime, fx: Effects) -> str:
    ex = settle(rt, rt.start(parking_saga(fx), execution_id="order-1").id)
    assert ex.status is ExecutionStatus.RUNNING
    assert saga_status(rt, ex.id).status is SagaStatus.COMPENSATION_FAILED
    return ex.id


def operator_token(rt: Runtime, eid: str) -> str:
    (token,) = [
        op.callback_id
        for op in rt.operations(eid)
        if op.name == "operator:b" and op.status.value == "STARTED" and op.callback_id
    ]
    return token


def still_parked(rt: Runtime, eid: str, fx: Effects, before: object) -> None:
    """Nothing was recorded, and a worker run leaves the saga parked with nothing undone."""
    assert (rt.get(eid), rt.operations(eid)) == before
    settle(rt, eid)
    outcome = saga_status(rt, eid)
    assert outcome.status is SagaStatus.COMPENSATION_FAILED
    assert outcome.operator_actions == []
    assert fx.count("undo:a") == 0


# --- forged decisions through the generic paths ------------------------------------------------


@pytest.mark.parametrize("path", ["success", "success_json", "failure", "heartbeat"])
def test_a_forged_decision_through_the_runtime_is_refused(
    srt: Runtime, fx: Effects, path: str
) -> None:
    eid = park(srt, fx)
    token = operator_token(srt, eid)
    before = (srt.get(eid), srt.operations(eid))
    send: dict[str, Callable[[], object]] = {
        "success": lambda: srt.send_callback_success(token, FORGED),
        "success_json": lambda: srt.send_callback_success_json(token, json.dumps(FORGED)),
        "failure": lambda: srt.send_callback_failure(token, "forged"),
        "heartbeat": lambda: srt.send_callback_heartbeat(token),
    }

    with pytest.raises(PrivilegedCallbackError, match="'operator:b' of execution 'order-1'"):
        send[path]()

    still_parked(srt, eid, fx, before)


@pytest.mark.parametrize(
    "args",
    [
        ["callback", "succeed", "{token}", "--payload", json.dumps(FORGED)],
        ["callback", "succeed", "{token}", "--payload", '{"action": "banana"}'],
        ["callback", "fail", "{token}", "--message", "forged"],
        ["callback", "heartbeat", "{token}"],
    ],
    ids=["skip", "banana", "fail", "heartbeat"],
)
def test_a_forged_decision_through_durable_callback_exits_2_and_records_nothing(
    srt: Runtime, fx: Effects, db: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    eid = park(srt, fx)
    token = operator_token(srt, eid)
    before = (srt.get(eid), srt.operations(eid))

    code = durable_cli(["--store", str(db), *[a.replace("{token}", token) for a in args]])

    assert code == 2
    err = capsys.readouterr().err
    assert "error: callback 'operator:b' of execution 'order-1' is privileged" in err
    assert "durable-saga retry|skip|resolve" in err
    still_parked(srt, eid, fx, before)


# --- decisions through the operator API --------------------------------------------------------


def test_a_decision_is_recorded_with_the_actor_given(srt: Runtime, fx: Effects) -> None:
    eid = park(srt, fx)

    skip_compensation(srt, eid, "refunded by hand", actor="ops-anna", drive=True)

    outcome = saga_status(srt, eid)
    assert outcome.status is SagaStatus.PARTIALLY_COMPENSATED
    assert [(a.action, a.actor, a.reason) for a in outcome.operator_actions] == [
        ("skip", "ops-anna", "refunded by hand")
    ]
    assert fx.count("undo:a") == 1


def test_without_an_actor_the_decision_names_user_at_host(
    srt: Runtime, fx: Effects, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGNAME", "ops-zoe")
    eid = park(srt, fx)

    resolve(srt, eid, "cancelled at the hotel's desk", drive=True)

    (action,) = saga_status(srt, eid).operator_actions
    assert action.actor == default_actor()
    assert action.actor is not None and action.actor.startswith("ops-zoe@")


def test_the_cli_records_user_at_host_by_default(
    srt: Runtime, fx: Effects, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGNAME", "ops-yui")
    eid = park(srt, fx)

    assert saga_cli(["--store", str(db), "skip", eid, "--reason", "done by hand"]) == 0

    (action,) = saga_status(srt, eid).operator_actions
    assert (action.action, action.actor) == ("skip", default_actor())
    assert action.actor is not None and action.actor.startswith("ops-yui@")


@pytest.mark.parametrize(
    "call",
    [
        lambda rt, eid: retry_compensation(rt, eid, actor=""),
        lambda rt, eid: retry_compensation(rt, eid, actor="   "),
        lambda rt, eid: skip_compensation(rt, eid, "why", actor="ana\nadmin"),
        lambda rt, eid: skip_compensation(rt, eid, "why", actor=42),
        lambda rt, eid: skip_compensation(rt, eid, "x" * (MAX_TEXT + 1)),
        lambda rt, eid: resolve(rt, eid, "n" * (MAX_TEXT + 1)),
        lambda rt, eid: resolve(rt, eid, "done", actor="a" * (MAX_TEXT + 1)),
        lambda rt, eid: terminate(rt, eid, "why", actor="a" * (MAX_ACTOR_LENGTH + 1)),
    ],
    ids=[
        "empty-actor",
        "blank-actor",
        "newline-actor",
        "int-actor",
        "long-reason",
        "long-note",
        "long-actor",
        "terminate-actor-over-the-request-bound",
    ],
)
def test_a_malformed_decision_is_refused_and_records_nothing(
    srt: Runtime, fx: Effects, call: Callable[[Runtime, str], object]
) -> None:
    eid = park(srt, fx)
    before = (srt.get(eid), srt.operations(eid))

    with pytest.raises(InvalidOperatorActionError, match="Nothing was recorded"):
        call(srt, eid)

    still_parked(srt, eid, fx, before)


@pytest.mark.parametrize(
    "argv",
    [
        ["skip", "order-1", "--reason", " "],
        ["skip", "order-1"],
        ["banana", "order-1"],
        ["retry", "order-1", "--actor", ""],
    ],
    ids=["blank-reason", "no-reason", "bad-action", "blank-actor"],
)
def test_a_malformed_decision_on_the_cli_exits_2_and_records_nothing(
    srt: Runtime, fx: Effects, db: Path, argv: list[str]
) -> None:
    eid = park(srt, fx)
    before = (srt.get(eid), srt.operations(eid))

    try:
        code = saga_cli(["--store", str(db), *argv])
    except SystemExit as e:  # argparse: an unknown action or a missing option
        code = int(e.code or 0)

    assert code == 2
    still_parked(srt, eid, fx, before)


def test_an_action_on_a_saga_that_is_not_parked_names_it_and_records_nothing(
    srt: Runtime, fx: Effects, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eid = park(srt, fx)
    skip_compensation(srt, eid, "refunded by hand", drive=True)  # the saga ends
    before = srt.operations(eid)

    for call in (
        lambda: retry_compensation(srt, eid),
        lambda: skip_compensation(srt, eid, "again"),
        lambda: resolve(srt, eid, "again"),
    ):
        with pytest.raises(SagaNotParkedError, match="saga 'order-1' is not parked"):
            call()
    assert saga_cli(["--store", str(db), "retry", eid]) == 2
    assert "saga 'order-1' is not parked" in capsys.readouterr().err
    assert srt.operations(eid) == before


# --- journals written before the flag ------------------------------------------------------------


def test_a_saga_parked_before_privileged_callbacks_is_decided_through_the_operator_path(
    srt: Runtime, fx: Effects, db: Path
) -> None:
    eid = park(srt, fx)
    with sqlite3.connect(db) as raw:  # the record as the previous version wrote it
        raw.execute(
            "UPDATE operations SET record = json_remove(record, '$.privileged') "
            "WHERE json_extract(record, '$.name') = 'operator:b'"
        )
    assert all(op.privileged is None for op in srt.operations(eid))

    retry_compensation(srt, eid, actor="ops-anna")  # the undo fails again: parks again
    settle(srt, eid)

    assert saga_status(srt, eid).status is SagaStatus.COMPENSATION_FAILED
    parks = [op for op in srt.operations(eid) if op.name == "operator:b"]
    assert [op.privileged for op in parks] == [None, True]  # the new park is privileged
    skip_compensation(srt, eid, "refunded by hand", actor="ops-anna", drive=True)
    assert saga_status(srt, eid).status is SagaStatus.PARTIALLY_COMPENSATED
    assert fx.count("undo:a") == 1


# --- tokens never in a log line ------------------------------------------------------------------


@pytest.fixture
def every_log_line() -> Iterator[LogCapture]:
    """Capture structlog at every level (debug included), whatever was configured before."""
    previous = structlog.get_config()
    capture = LogCapture()
    structlog.configure(
        processors=[capture],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
    )
    try:
        yield capture
    finally:
        structlog.configure(**previous)


def test_no_token_appears_in_any_log_line_when_a_saga_parks(
    srt: Runtime, fx: Effects, every_log_line: LogCapture
) -> None:
    srt.start(parking_saga(fx), execution_id="order-1")
    Worker(srt, poll_interval=0.01).run(until_idle=True)
    retry_compensation(srt, "order-1")  # parks again on a new callback
    Worker(srt, poll_interval=0.01).run(until_idle=True)

    tokens = [op.callback_id for op in srt.operations("order-1") if op.callback_id]
    assert len(tokens) == 2
    lines = [repr(entry) for entry in every_log_line.entries]
    assert any("parked for an operator" in line for line in lines)
    leaked = [line for line in lines for token in tokens if token in line]
    assert leaked == []
