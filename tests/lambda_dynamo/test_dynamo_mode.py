"""Durable functions on plain Lambda with DynamoDB: the handlers called directly, on
DynamoDB Local, with a virtual clock; the sweeper's asynchronous invokes go to a local
Lambda Invoke endpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aws import ddb
from lambda_service.crash_flow import crash_flow
from lambda_service.emulator import PYTHONPATH, ROOT, InvokeServer, client
from lambda_service.local_runs import local_tour_effects

from durable_core import DurableContext, ExecutionStatus, durable
from durable_core.aws_lambda import callback_handler, dynamodb_handler, sweeper_handler
from durable_core.errors import (
    CallbackAlreadyCompletedError,
    ExecutionConflictError,
    ValidationError,
    VersionMismatchError,
)
from durable_core.testing import VirtualClock
from examples.order_processing import services as order_services
from examples.order_processing.saga import process_order
from examples.tour_booking import providers
from examples.tour_booking.providers import Tour
from examples.tour_booking.saga import book_tour

pytestmark = pytest.mark.aws


@pytest.fixture
def ledgers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(providers.LEDGER_ENV, str(tmp_path / "tour.sqlite3"))
    monkeypatch.setenv(order_services.LEDGER_ENV, str(tmp_path / "order.sqlite3"))
    return tmp_path


def _timer_flow(calls: Counter[str]) -> Any:
    @durable
    def remind(ctx: DurableContext, event: dict[str, str]) -> str:
        ctx.step("note", lambda sc: calls.update(["note"]) or event["who"])
        ctx.wait("a-day", timedelta(days=1))
        return ctx.step("remind", lambda sc: calls.update(["remind"]) or f"hi {event['who']}")

    return remind


def _await(predicate: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_start_wait_and_resume_through_the_sweeper(
    store: Any, clock: VirtualClock, invoke_server: InvokeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "7")
    calls: Counter[str] = Counter()
    handler = dynamodb_handler(_timer_flow(calls), store=store, clock=clock)
    invoke_server.register("reminders", lambda event: handler(event, None))
    sweep = sweeper_handler(
        store=store, function_name="reminders", lambda_client=client(invoke_server.url), clock=clock
    )

    started = handler({"execution_id": "r-1", "input": {"who": "An"}}, None)
    assert (started["status"], started["version"]) == ("RUNNING", "7")
    assert started["wake_at"] == (clock.now() + timedelta(days=1)).isoformat()
    assert sweep({}, None) == {"dispatched": [], "failed": []}  # nothing due yet

    clock.advance(timedelta(days=1))
    assert sweep({}, None) == {"dispatched": ["r-1"], "failed": []}
    _await(lambda: store.get_execution("r-1").status is ExecutionStatus.SUCCEEDED, "the resume")
    assert invoke_server.qualifiers == [("reminders", "7")]  # the version it started with
    assert [(n, k, e) for n, k, e in invoke_server.invocations] == [
        ("reminders", "Event", {"execution_id": "r-1"})
    ]
    assert calls == {"note": 1, "remind": 1}
    assert handler({"execution_id": "r-1"}, None)["result"] == "hi An"
    assert handler({"execution_id": "r-1", "input": {"who": "An"}}, None)["status"] == "SUCCEEDED"


def test_a_resume_under_another_version_fails_clearly_and_changes_nothing(
    store: Any, clock: VirtualClock
) -> None:
    calls: Counter[str] = Counter()
    v1 = dynamodb_handler(_timer_flow(calls), store=store, clock=clock, version="1")
    v2 = dynamodb_handler(_timer_flow(calls), store=store, clock=clock, version="2")
    v1({"execution_id": "r-2", "input": {"who": "Binh"}}, None)
    before = (store.get_execution("r-2"), store.load_operations("r-2"))
    clock.advance(timedelta(days=2))
    with pytest.raises(VersionMismatchError, match="started under version '1'.*runs version '2'"):
        v2({"execution_id": "r-2"}, None)
    after = store.get_execution("r-2")
    assert (after.status, after.version, after.fence) == (
        ExecutionStatus.RUNNING,
        "1",
        before[0].fence,
    )
    assert store.load_operations("r-2") == before[1]
    assert v1({"execution_id": "r-2"}, None)["result"] == "hi Binh"
    assert calls == {"note": 1, "remind": 1}


def test_an_id_of_another_function_or_input_is_refused(store: Any, clock: VirtualClock) -> None:
    handler = dynamodb_handler(_timer_flow(Counter()), store=store, clock=clock)
    handler({"execution_id": "r-3", "input": {"who": "Chi"}}, None)
    with pytest.raises(ExecutionConflictError):
        handler({"execution_id": "r-3", "input": {"who": "Dung"}}, None)

    @durable
    def other(ctx: DurableContext, event: Any) -> None:
        return None

    with pytest.raises(ExecutionConflictError, match="belongs to durable function"):
        dynamodb_handler(other, store=store, clock=clock)({"execution_id": "r-3"}, None)


def test_tour_booking_leaves_the_same_ledger_as_in_process(
    store: Any, clock: VirtualClock, ledgers: Path
) -> None:
    handler = dynamodb_handler(book_tour, store=store, clock=clock)
    for name, tour in (("ok", Tour()), ("rollback", Tour(fail_hotel=True))):
        done = handler(
            {"execution_id": f"tour-{name}", "input": tour.model_dump(mode="json")}, None
        )
        expected = "SUCCEEDED" if name == "ok" else "FAILED"
        assert done["status"] == expected, done
        assert providers.effects(f"tour-{name}") == local_tour_effects(
            ledgers, tour, f"local-{name}"
        )
    assert [(p, a) for p, a, _ in providers.effects("tour-rollback")] == [
        ("airline", "book"),
        ("hotel", "reject"),
        ("airline", "cancel"),
    ]


def test_order_processing_resumes_after_the_shipper_callback(
    store: Any, clock: VirtualClock, ledgers: Path, reopen: Any
) -> None:
    handler = dynamodb_handler(process_order, store=store, clock=clock)
    sweep = sweeper_handler(store=store, functions=[process_order], clock=clock)
    waiting = handler(
        {"execution_id": "o-1", "input": order_services.Order().model_dump(mode="json")}, None
    )
    assert waiting["status"] == "RUNNING"
    assert "shipper-confirmation" in waiting["waiting_for"]
    token = next(op.callback_id for op in store.load_operations("o-1") if op.callback_id)
    # the shipper's webhook (a Function URL event): any process with the table completes it
    webhook = callback_handler(store=reopen(store), clock=clock)
    body = json.dumps({"token": token, "result": {"tracking": "VNP-9"}})
    assert webhook({"body": body}, None) == {
        "status": "SUCCEEDED",
        "callback": "shipper-confirmation",
    }
    with pytest.raises(CallbackAlreadyCompletedError):
        webhook({"token": token, "error": {"type": "Late", "message": "too late"}}, None)
    assert sweep({}, None) == {"ran": 1}
    done = store.get_execution("o-1")
    assert done.status is ExecutionStatus.SUCCEEDED
    assert json.loads(done.result or "null")["tracking"] == "VNP-9"
    assert sweep({}, None) == {"ran": 0}


def test_a_killed_invocation_is_recovered_by_the_sweeper_without_repeating_steps(
    store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger, marker = tmp_path / "ledger.txt", tmp_path / "marker"
    monkeypatch.setenv("CRASH_LEDGER", str(ledger))  # the sweeper runs the steps here
    monkeypatch.setenv("CRASH_MARKER", str(marker))
    env = {
        **os.environ,
        "PYTHONPATH": PYTHONPATH,
        "DURABLE_TABLE": store.table_name,
        "DDB_ENDPOINT": ddb.endpoint(),
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": ddb.REGION,
        "CRASH_LEDGER": str(ledger),
        "CRASH_MARKER": str(marker),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lambda_service.lambda_proc",
            "lambda_dynamo.crash_proc:handler",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps({"execution_id": "k-1", "input": {"order": "A-7"}}).encode())
    proc.stdin.close()
    _await(lambda: marker.exists() or proc.poll() is not None, "the slow step")
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert store.get_execution("k-1").lease_owner is not None  # the dead invocation's lease

    # the sweeper runs a minute later (virtual), when the dead invocation's lease expired
    later = VirtualClock(datetime.now(UTC) + timedelta(minutes=1))
    assert sweeper_handler(store=store, functions=[crash_flow], clock=later)({}, None) == {"ran": 1}
    done = store.get_execution("k-1")
    assert done.status is ExecutionStatus.SUCCEEDED, done.waiting_for
    assert json.loads(done.result or "null") == ["reserve A-7", "slow-done", "confirm"]
    assert ledger.read_text().splitlines() == [
        "reserve A-7",
        "slow-start attempt=1",
        "slow-start attempt=1",
        "slow-done",
        "confirm",
    ]


def test_the_sweeper_reports_an_execution_it_cannot_dispatch_and_goes_on(
    store: Any, clock: VirtualClock, invoke_server: InvokeServer
) -> None:
    first = dynamodb_handler(_timer_flow(Counter()), store=store, clock=clock)
    first({"execution_id": "s-1", "input": {"who": "Em"}}, None)
    clock.advance(timedelta(days=1))
    sweep = sweeper_handler(
        store=store,
        function_name={"nobody:else": "x"},
        lambda_client=client(invoke_server.url),
        clock=clock,
    )
    report = sweep({}, None)
    assert report["dispatched"] == []
    assert [f["execution_id"] for f in report["failed"]] == ["s-1"]
    assert "no Lambda function is mapped" in report["failed"][0]["error"]
    assert store.get_execution("s-1").lease_owner is None  # released: still due, not stuck


def test_a_callback_body_that_is_not_json_is_refused_and_writes_nothing(
    store: Any, clock: VirtualClock, reopen: Any
) -> None:
    @durable
    def approve(ctx: DurableContext, event: Any) -> Any:
        return ctx.create_callback("approval", timeout=timedelta(days=1)).result()

    dynamodb_handler(approve, store=store, clock=clock)({"execution_id": "cb-1", "input": 1}, None)
    token = next(op.callback_id for op in store.load_operations("cb-1") if op.callback_id)

    def table() -> list[dict[str, Any]]:
        items = ddb.client().scan(TableName=store.table_name, ConsistentRead=True)["Items"]
        return sorted(items, key=json.dumps)

    before = table()
    webhook = callback_handler(store=reopen(store), clock=clock)
    for body in ('{"token": "' + token, "token=" + token, ""):
        with pytest.raises(ValidationError, match=r'"body" .*not valid JSON'):
            webhook({"body": body}, None)
    assert table() == before
    good = json.dumps({"token": token, "result": "ok"})
    assert webhook({"body": good}, None) == {"status": "SUCCEEDED", "callback": "approval"}
