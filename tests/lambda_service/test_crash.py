"""A handler killed mid-invocation is re-invoked by the emulator and repeats no finished step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .emulator import REGION, Emulator, InvokeServer, Subprocess, events

pytestmark = pytest.mark.aws


def test_killed_handler_is_reinvoked_and_completed_steps_do_not_repeat(
    emulator: Emulator, invoke_server: InvokeServer, tmp_path: Path
) -> None:
    ledger, marker = tmp_path / "ledger.txt", tmp_path / "marker"
    spec = Subprocess(
        "lambda_service.crash_flow:handler",
        env={
            "CRASH_LEDGER": str(ledger),
            "CRASH_MARKER": str(marker),
            "AWS_ENDPOINT_URL_LAMBDA": emulator.url,
            "AWS_DEFAULT_REGION": REGION,  # Lambda sets it (and AWS_REGION)
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
        },
    )
    started: list[str] = []

    def slow_is_visible() -> bool:
        # The step's START is sent without blocking its body: kill only once the service
        # shows the step running, so the crash leaves that trace in the history.
        hist = emulator.history(started[0]) if started else []
        return ("StepStarted", "slow") in events(hist, "StepStarted")

    # kill the first run only, in the middle of the slow step
    spec.kill_when = lambda: spec.killed == 0 and marker.exists() and slow_is_visible()
    invoke_server.register("crash", spec)
    arn = emulator.start("crash", {"order": "A-7"})
    started.append(arn)
    ex = emulator.wait(arn, timeout=90)
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == ["reserve A-7", "slow-done", "confirm"]
    assert spec.killed == 1 and spec.runs == 2
    # the step that finished before the kill ran once; the one killed mid-body ran again
    assert ledger.read_text().splitlines() == [
        "reserve A-7",
        "slow-start attempt=1",
        "slow-start attempt=1",
        "slow-done",
        "confirm",
    ]
    assert events(emulator.history(arn), "StepStarted", "StepSucceeded") == [
        ("StepStarted", "reserve"),
        ("StepSucceeded", "reserve"),
        ("StepStarted", "slow"),  # sent by the killed run: the running step was visible
        ("StepSucceeded", "slow"),
        ("StepStarted", "confirm"),
        ("StepSucceeded", "confirm"),
    ]
