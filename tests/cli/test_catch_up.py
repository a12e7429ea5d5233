"""``durable start``, ``worker --until-idle --wait-timers-within``, and the rough edges of
issue 14: a reader that goes away (``| head``), a module that does not compile, JSON
Python reads but JSON does not allow, ``show`` after a retry, heartbeats without a timeout.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from .conftest import HERE, Durable
from .test_commands import callback_token
from .test_parked_commands import WORKER, _parked
from .test_store_urls import BIN, argv, cli

HELLO = "examples.hello_durable.workflow:hello"
DEEP = "[" * 3000 + "]" * 3000


def test_start_enqueues_without_running_and_a_worker_runs_it(durable: Durable) -> None:
    r = durable("start", "cli_flows:nested", "--id", "s-1")

    assert r.code == 0, r.err
    assert r.out.startswith("started execution s-1 (cli_flows:nested); run 'durable --store ")
    assert r.out.endswith(" worker' to run it\n")
    shown = durable("show", "s-1").out
    assert re.search(r"^status +RUNNING$", shown, flags=re.MULTILINE)
    assert re.search(r"^waiting for +a worker to run it$", shown, flags=re.MULTILINE)
    assert "operations: none recorded yet" in shown  # nothing ran inline
    again = durable("start", "cli_flows:nested", "--id", "s-1")
    assert again.out == "execution s-1 already exists (RUNNING); nothing changed\n"

    worker = durable(*WORKER)
    assert worker.out.startswith("idle: ran 1 invocation(s); 0 execution(s) still waiting")
    assert re.search(r"^result +10$", durable("show", "s-1").out, flags=re.MULTILINE)
    assert durable("start", "cli_flows:nested", "--id", "s-1").out.startswith(
        "execution s-1 already exists (SUCCEEDED)"
    )


def test_start_refuses_bad_input_before_anything_is_stored(durable: Durable, store: Path) -> None:
    for args, message in [
        (("--input", "{bad"), "error: --input is not valid JSON"),
        (("--input", '{"amount": 1}'), "error: --input does not fit the event type of"),
        (("--input", '{"order_id": "A", "amount": NaN}'), "error: --input is not valid JSON"),
    ]:
        r = durable("start", HELLO, *args)
        assert r.code == 2
        assert r.err.startswith(message), r.err
    assert not store.exists()
    durable("start", HELLO, "--input", '{"order_id": "A", "amount": 1}', "--id", "x")
    other = durable("start", HELLO, "--input", '{"order_id": "B", "amount": 1}', "--id", "x")
    assert other.code == 2
    assert "different" in other.err


def test_worker_until_idle_waits_for_timers_due_within_the_given_time(durable: Durable) -> None:
    assert durable("run", "cli_flows:short_timer", "--id", "t-1").code == 0

    not_waiting = durable(*WORKER)  # the timer is 1 s away: nothing is due now
    assert not_waiting.out.startswith("idle: ran 0 invocation(s); 1 execution(s) still waiting")
    too_short = durable(*WORKER, "--wait-timers-within", "250ms")
    assert too_short.out.startswith("idle: ran 0 invocation(s)")  # not due within 250 ms
    waited = durable(*WORKER, "--wait-timers-within", "30s")

    assert waited.code == 0, waited.err
    assert re.match(r"waiting [\d.]+s for t-1\n", waited.out), waited.out
    assert "idle: ran 1 invocation(s); 0 execution(s) still waiting" in waited.out
    assert re.search(r"^result +\"woke\"$", durable("show", "t-1").out, flags=re.MULTILINE)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--wait-timers-within", "5m"), "error: --wait-timers-within needs --until-idle"),
        (("--until-idle", "--wait-timers-within", "soon"), "is not a duration"),
        (("--until-idle", "--wait-timers-within", "0s"), "more than 0 and at most 7d"),
        (("--until-idle", "--wait-timers-within", "8d"), "more than 0 and at most 7d"),
    ],
)
def test_wait_timers_within_refuses_what_is_not_a_bounded_duration(
    durable: Durable, args: tuple[str, ...], message: str
) -> None:
    r = durable("worker", *args)
    assert r.code == 2
    assert r.err.startswith("error:") and message in r.err, r.err


def test_output_cut_short_by_its_reader_ends_quietly_with_exit_141(tmp_path: Path) -> None:
    store = tmp_path / "d.sqlite3"
    big = '{"what": "%s"}' % ("x" * 100_000)  # more than a pipe holds
    started = cli("--store", str(store), "start", "cli_flows:approval", "--input", big,
                  "--id", "big", cwd=HERE)  # fmt: skip
    assert started.returncode == 0, started.stderr

    reader = subprocess.Popen([*argv("--store", str(store), "show", "big", "--json")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert reader.stdout is not None and reader.stderr is not None
    assert reader.stdout.read(10) == b'{\n  "execu'  # what `head -c 10` reads, then it exits
    reader.stdout.close()
    code = reader.wait(timeout=60)
    err = reader.stderr.read().decode()

    assert code == 141, err
    assert err == ""  # no traceback, no "Exception ignored" at exit
    piped = subprocess.run(f"{' '.join(argv('--store', str(store), 'list'))} | head -n 1",
                           shell=True, capture_output=True, text=True, check=False)  # fmt: skip
    assert piped.stdout.startswith("ID ") and piped.stderr == ""


def test_a_syntax_error_in_the_users_module_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "broken_flow.py").write_text("def flow(ctx, event):\n    return (\n")
    for args in (("run", "broken_flow:flow"), ("start", "broken_flow:flow"),
                 ("worker", "--until-idle", "--import", "broken_flow")):  # fmt: skip
        r = cli("--store", str(tmp_path / "d.sqlite3"), *args, cwd=tmp_path)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith("error: "), r.stderr
        assert "broken_flow" in r.stderr and "line 2" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("text", "why"),
    [("NaN", "NaN is not a JSON value"), ('{"x": -Infinity}', "-Infinity is not a JSON value"),
     ("Infinity", "Infinity is not a JSON value"), (DEEP, "nested too deeply")],
)  # fmt: skip
def test_json_that_python_reads_but_json_forbids_is_refused_with_exit_2(
    durable: Durable, store: Path, text: str, why: str
) -> None:
    r = durable("run", "cli_flows:approval", "--input", text)
    assert (r.code, r.out) == (2, "")
    assert r.err.startswith("error: --input ") and why in r.err, r.err
    assert "Traceback" not in r.err
    assert not store.exists()

    assert durable("run", "cli_flows:approval", "--input", '{"what": "x"}', "--id", "j").code == 0
    token = callback_token(durable, "j", "approval")
    p = durable("callback", "succeed", token, "--payload", text)
    assert p.code == 2
    assert p.err.startswith("error: --payload ") and why in p.err, p.err
    assert "WAITING" not in durable("show", "j").out
    assert "callback 'approval' (token" in durable("show", "j").out  # still waiting


def test_show_after_a_retry_says_what_list_says_not_the_journals_old_wait(
    durable: Durable, monkeypatch: pytest.MonkeyPatch
) -> None:
    _parked(durable, monkeypatch, "st-1")
    monkeypatch.setenv("CLI_FLOWS_CODE", "old")
    assert durable("retry", "st-1", "--actor", "ops-an").code == 0

    listed = durable("list").out.splitlines()[1]
    shown = durable("show", "st-1").out
    waiting = re.search(r"^waiting for +(.*)$", shown, flags=re.MULTILINE)
    assert waiting is not None
    assert waiting.group(1) == "retry requested by ops-an (was parked: non-determinism); due now"
    assert waiting.group(1)[:50] in listed  # the list cuts it at 60
    assert re.search(r"^next run +due now \(since ", shown, flags=re.MULTILINE)


def test_a_heartbeat_on_a_callback_without_a_heartbeat_timeout_says_so(durable: Durable) -> None:
    assert durable("run", "cli_flows:greet", "--id", "hb").code == 0
    token = callback_token(durable, "hb", "who")

    r = durable("callback", "heartbeat", token)

    assert r.code == 0, r.err
    assert r.out == "heartbeat recorded for callback 'who' (it has no heartbeat timeout)\n"


def test_hints_name_the_command_as_a_fresh_shell_must_type_it(tmp_path: Path) -> None:
    store = tmp_path / "d.sqlite3"
    venv = BIN.parent
    start = ("--store", str(store), "start", HELLO, "--input", '{"order_id": "A", "amount": 1}')

    fresh = cli(*start, env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path)  # venv not activated
    beside = cli(*start, env={"PATH": "/usr/bin:/bin"}, cwd=venv.parent)  # after scripts/setup
    activated = cli(*start, env={"PATH": f"{BIN}:/usr/bin:/bin"}, cwd=tmp_path)

    assert f"; run '{BIN / 'durable'} --store {store} worker' to run it" in fresh.stdout
    relative = f"{venv.name}/bin/durable"
    assert f"; run '{relative} --store {store} worker' to run it" in beside.stdout
    assert f"; run 'durable --store {store} worker' to run it" in activated.stdout
