"""``durable run / worker / list / show / callback / cancel`` end to end on SQLite."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from .conftest import Durable

HELLO = "examples.hello_durable.workflow:hello"
ORDER = '{"order_id": "A-1", "amount": 42.5}'


def callback_token(durable: Durable, execution_id: str, name: str) -> str:
    ops = durable("show", execution_id, "--json", "--show-tokens").json()["operations"]
    (token,) = [op["callback_id"] for op in ops if op["name"] == name]
    return str(token)


def test_hello_fast_forward_runs_the_24h_wait_to_completion(durable: Durable) -> None:
    r = durable("run", HELLO, "--input", ORDER, "--id", "A-1", "--fast-forward")

    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == f"started execution A-1 ({HELLO})"
    assert "fast-forward: skipping 24h timer 'cool-off'" in lines
    assert "SUCCEEDED" in lines
    result = r.out.split("SUCCEEDED\n", 1)[1]
    assert '"order_id": "A-1"' in result
    assert '"amount": 42.5' in result
    assert re.search(r'"charge_id": "ch_[0-9a-f]{16}"', result)


def test_hello_without_fast_forward_suspends_then_resumes_where_it_stopped(
    durable: Durable, store: Path
) -> None:
    r = durable("run", HELLO, "--input", ORDER, "--id", "A-1")

    assert r.code == 0, r.err
    (line,) = [x for x in r.out.splitlines() if x.startswith("SUSPENDED")]
    assert re.fullmatch(
        r"SUSPENDED: waiting for timer 'cool-off' until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
        rf" — run 'durable --store {re.escape(str(store))} worker' to resume it",
        line,
    )
    listed = durable("list").out
    assert "A-1" in listed
    assert "RUNNING" in listed
    assert "timer 'cool-off'" in listed
    assert durable("worker", "--until-idle").out.startswith("idle: ran 0 invocation(s)")

    again = durable("run", HELLO, "--input", ORDER, "--id", "A-1", "--fast-forward")

    assert again.code == 0, again.err
    assert again.out.startswith("execution A-1 already exists (RUNNING); continuing it")
    assert "SUCCEEDED" in again.out
    shown = durable("show", "A-1").out
    # The payment was not retried again on resume: still the record of its 2nd attempt.
    assert "STEP 'process-payment' SUCCEEDED (attempt 2)" in shown


def test_show_prints_the_timeline_in_code_order(durable: Durable) -> None:
    durable("run", HELLO, "--input", ORDER, "--id", "A-1", "--fast-forward")

    r = durable("show", "A-1")

    assert r.code == 0
    header = dict(
        line.split(None, 1) for line in r.out.split("\n\n")[0].splitlines() if " " in line
    )
    assert header["execution"].strip() == "A-1"
    assert header["status"].strip() == "SUCCEEDED"
    names = re.findall(r"^\s+\d+\. \S+ '([^']+)'", r.out, flags=re.MULTILINE)
    assert names == ["validate-order", "process-payment", "cool-off", "send-confirmation"]
    assert "3. WAIT 'cool-off' SUCCEEDED" in r.out
    assert "(24h)" in r.out


def test_show_nests_child_context_operations_under_their_parent(durable: Durable) -> None:
    assert durable("run", "cli_flows:nested", "--id", "n").code == 0

    lines = [x for x in durable("show", "n").out.splitlines() if re.match(r"\s+[\d.]+\. ", x)]

    assert [x.strip() for x in lines] == [
        "1. STEP 'first' SUCCEEDED (attempt 1)",
        "2. CONTEXT 'group' SUCCEEDED",
        "2.1. STEP 'inner-a' SUCCEEDED (attempt 1)",
        "2.2. STEP 'inner-b' SUCCEEDED (attempt 1)",
        "3. STEP 'last' SUCCEEDED (attempt 1)",
    ]
    assert lines[2].index("2.1") > lines[1].index("2.")  # indented under the context


def test_a_failed_execution_exits_1_and_names_the_error(durable: Durable) -> None:
    r = durable("run", HELLO, "--input", '{"order_id": "B-1", "amount": 20000}', "--id", "B-1")

    assert r.code == 1
    assert "FAILED: durable_core.errors.StepFailedError: step 'validate-order'" in r.out
    assert "OrderRejectedError" in r.out
    assert "show B-1" in r.out
    assert "OrderRejectedError" in durable("show", "B-1").out


def test_fast_forward_skips_a_durable_retry_delay(durable: Durable) -> None:
    r = durable("run", "cli_flows:flaky", "--id", "f", "--fast-forward")

    assert r.code == 0, r.err
    assert "fast-forward: skipping 10m retry delay of step 'call-upstream' (attempt 2)" in r.out
    assert '"ok on attempt 2"' in r.out


def test_callback_succeed_completes_the_wait_and_a_worker_finishes_it(durable: Durable) -> None:
    r = durable("run", "cli_flows:approval", "--input", '{"what": "refund"}', "--id", "cb-1")

    assert r.code == 0, r.err
    assert "SUSPENDED: waiting for" in r.out
    token = callback_token(durable, "cb-1", "approval")
    assert token not in r.out  # masked unless asked for
    assert f"callback 'approval' (token {token[:4]}…)" in r.out
    assert "complete it: durable" in r.out and "callback succeed <TOKEN>" in r.out
    assert "show cb-1 --show-tokens" in r.out
    shown = durable("run", "cli_flows:approval", "--input", '{"what": "refund"}', "--id", "cb-1",
                    "--show-tokens")  # fmt: skip
    assert f"callback 'approval' (token {token})" in shown.out
    assert token in shown.out.split("complete it:")[1].splitlines()[0]

    beat = durable("callback", "heartbeat", token)
    assert beat.code == 0
    assert "heartbeat recorded for callback 'approval'" in beat.out

    done = durable("callback", "succeed", token, "--payload", '{"approved": true}')
    assert done.code == 0, done.err
    assert "callback 'approval' SUCCEEDED" in done.out
    assert "worker" in done.out

    # cli_flows is not in the current directory: the worker must be told to trust it.
    worker = durable("worker", "--until-idle", "--allow-module", "cli_flows")
    assert worker.out.startswith("idle: ran 1 invocation(s)")
    shown = durable("show", "cb-1").out
    assert "SUCCEEDED" in shown
    assert '"answer": {"approved": true}' in shown

    twice = durable("callback", "succeed", token)
    assert twice.code == 2
    assert twice.err.startswith("error: Callback 'approval' of execution 'cb-1' is already")


def test_callback_fail_fails_the_execution(durable: Durable) -> None:
    durable("run", "cli_flows:approval", "--input", '{"what": "refund"}', "--id", "cb-2")
    token = callback_token(durable, "cb-2", "approval")

    r = durable("callback", "fail", token, "--message", "manager said no", "--type", "Denied")
    assert r.code == 0, r.err
    durable("worker", "--until-idle", "--allow-module", "cli_flows")

    shown = durable("show", "cb-2").out
    assert re.search(r"^status +FAILED$", shown, flags=re.MULTILINE)
    assert "CallbackFailedError" in shown
    assert "manager said no" in shown


def test_fast_forward_does_not_skip_a_callback(durable: Durable) -> None:
    r = durable("run", "cli_flows:approval", "--input", '{"what": "x"}', "--fast-forward")

    assert r.code == 0
    assert "fast-forward:" not in r.out
    assert "callback 'approval'" in r.out


def test_cancel_then_worker_ends_the_execution_cancelled(durable: Durable) -> None:
    durable("run", HELLO, "--input", ORDER, "--id", "C-1")

    r = durable("cancel", "C-1", "--reason", "customer changed their mind")
    assert r.code == 0, r.err
    assert "cancellation of C-1 requested (customer changed their mind)" in r.out
    durable("worker", "--until-idle")

    cancelled = durable("list", "--status", "cancelled").out
    assert "C-1" in cancelled
    assert "CANCELLED" in cancelled
    assert "customer changed their mind" in durable("show", "C-1").out
    again = durable("cancel", "C-1")
    assert again.code == 2
    assert "already finished (CANCELLED)" in again.err


def test_list_filters_and_limits(durable: Durable) -> None:
    for i in range(3):
        durable("run", "cli_flows:nested", "--id", f"n{i}")
    durable("run", HELLO, "--input", ORDER, "--id", "waiting")

    assert durable("list", "--status", "RUNNING").out.count("\n") == 2  # header + 1 row
    assert len(durable("list", "--limit", "2").out.splitlines()) == 3
    assert durable("list", "--status", "FAILED").out == "no executions with status FAILED\n"


def test_list_skips_a_record_that_is_not_utf8_and_names_it_on_stderr(
    durable: Durable, store: Path
) -> None:
    for eid in ("n0", "bad", "n1"):
        durable("run", "cli_flows:nested", "--id", eid)
    con = sqlite3.connect(store, isolation_level=None)
    con.execute("UPDATE executions SET record = CAST(X'7B2269FF' AS TEXT) WHERE id = 'bad'")
    con.close()

    r = durable("list")

    assert r.code == 0, r.err
    assert [line.split()[0] for line in r.out.splitlines()] == ["ID", "n1", "n0"]
    assert "execution 'bad'" in r.err
    assert "not UTF-8" in r.err
    shown = durable("show", "bad")
    assert shown.code == 2
    assert shown.err.startswith("error: The record of execution 'bad'")


def test_show_json_has_the_raw_records(durable: Durable) -> None:
    durable("run", "cli_flows:nested", "--id", "n")

    doc = durable("show", "n", "--json").json()

    assert doc["execution"]["status"] == "SUCCEEDED"
    assert [op["name"] for op in doc["operations"]] == [
        "first",
        "inner-a",
        "inner-b",
        "group",
        "last",
    ]


def test_the_store_and_its_directory_are_created_by_run(durable: Durable, store: Path) -> None:
    assert not store.parent.exists()
    durable("run", "cli_flows:nested")
    assert store.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "nope"), "No execution with id 'nope'"),
        (("cancel", "nope"), "No execution with id 'nope'"),
        (("run", HELLO, "--input", "{not json"), "--input is not valid JSON"),
        (("run", HELLO, "--input", '{"order_id": "A"}'), "amount: Field required"),
        (("run", "examples.hello_durable.workflow:nope"), "has no attribute 'nope'"),
        (("run", "no_such_module:fn"), "cannot import module 'no_such_module'"),
        (("run", "not-a-reference"), "use the form 'package.module:function'"),
        (("callback", "succeed", "x" * 43), "No callback has this token"),
        (("callback", "succeed", "short"), "that is not a callback token"),
        (("callback", "heartbeat", "y" * 43), "No callback has this token"),
        (("callback", "succeed", "x" * 43, "--payload", "{"), "--payload is not valid JSON"),
        (("list", "--status", "bogus"), "--status 'bogus' is not one of"),
        (("worker", "--lease-ttl", "0.5"), "--lease-ttl must be at least 1 second"),
        (("worker", "--concurrency", "0"), "concurrency must be a whole number >= 1"),
        (
            ("worker", "--max-recovery-attempts", "0"),
            "--max-recovery-attempts must be a whole number of at least 1",
        ),
        (("worker", "--shutdown-grace", "nan"), "--shutdown-grace must be 0 to 86400 seconds"),
        (("worker", "--until-idle", "--import", "no_such_module"), "cannot import it"),
    ],
)
def test_user_errors_exit_2_with_one_line_and_no_traceback(
    durable: Durable, args: tuple[str, ...], message: str
) -> None:
    durable("run", "cli_flows:nested", "--id", "exists")  # so the store file exists

    r = durable(*args)

    assert r.code == 2
    assert r.err.startswith("error: ")
    assert message in r.err
    assert "Traceback" not in r.err + r.out


def test_read_only_commands_do_not_create_a_store(durable: Durable, store: Path) -> None:
    r = durable("list")

    assert r.code == 2
    assert "no store at" in r.err
    assert not store.exists()


def test_the_same_id_with_another_input_is_refused(durable: Durable) -> None:
    durable("run", HELLO, "--input", ORDER, "--id", "A-1")

    r = durable("run", HELLO, "--input", '{"order_id": "A-1", "amount": 1}', "--id", "A-1")

    assert r.code == 2
    assert "already exists" in r.err


def test_worker_import_finds_functions_registered_under_a_custom_name(durable: Durable) -> None:
    for eid in ("lost", "found"):
        assert durable("run", "cli_flows:greet", "--id", eid).code == 0
    durable("callback", "succeed", callback_token(durable, "lost", "who"), "--payload", '"bo"')
    # Without --import the worker cannot resolve "greeter": it parks the execution, saying why.
    durable("worker", "--until-idle")
    shown = durable("show", "lost").out
    assert re.search(r"^parked +parked: function not registered: ", shown, flags=re.MULTILINE)
    assert "--import MODULE" in shown
    durable("callback", "succeed", callback_token(durable, "found", "who"), "--payload", '"ann"')

    r = durable("worker", "--until-idle", "--import", "cli_flows")

    assert r.code == 0
    assert r.out.startswith("idle: ran 1 invocation(s)")
    assert '"hello ann"' in durable("show", "found").out


@pytest.mark.parametrize("action", ["succeed", "fail", "heartbeat"])
def test_a_token_starting_with_a_dash_is_still_the_token(durable: Durable, action: str) -> None:
    durable("run", "cli_flows:nested", "--id", "exists")
    extra = ["--message", "m"] if action == "fail" else []

    r = durable("callback", action, "-" + "x" * 42, *extra)

    assert r.code == 2
    assert "No callback has this token" in r.err


def test_run_says_when_another_worker_holds_the_execution(durable: Durable, store: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from durable_core.stores.sqlite import SQLiteStore

    durable("run", HELLO, "--input", ORDER, "--id", "A-1")
    other = SQLiteStore(store)
    try:
        assert other.acquire_lease("A-1", "host:99:other", datetime.now(UTC), timedelta(minutes=1))
    finally:
        other.close()

    r = durable("run", HELLO, "--input", ORDER, "--id", "A-1", "--fast-forward")

    assert r.code == 0
    assert "RUNNING: worker host:99:other is running it now" in r.out
    assert "fast-forward" not in r.out
