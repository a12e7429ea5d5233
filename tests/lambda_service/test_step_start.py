"""A running step is visible on the service: its START is sent, and never blocks its body.

AWS's SDK sends an at-least-once step's START (and each ``wait_for_condition`` poll's)
without waiting for it, and a context's START before anything under it. These tests hold a
START checkpoint back until the step's body has begun: a START sent before running the body
would deadlock them (and fail on the 20 s guard), so they pass only if it is sent alongside.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from tenacity import stop_after_attempt, wait_fixed

from durable_core import DurableContext, RetryPolicy, StepConfig, StepContext, durable

from .emulator import Deploy, Emulator, events

pytestmark = pytest.mark.aws


class HoldStart:
    """A client that holds the checkpoint carrying step ``name``'s START until released."""

    def __init__(self, client: Any, name: str) -> None:
        self._client = client
        self._name = name
        self.released = threading.Event()
        self.held = 0
        self.timed_out = False

    def checkpoint_durable_execution(self, **kwargs: Any) -> Mapping[str, Any]:
        updates = kwargs.get("Updates") or []
        if any(
            u["Type"] == "STEP" and u["Action"] == "START" and u.get("Name") == self._name
            for u in updates
        ):
            self.held += 1
            if not self.released.wait(timeout=20):
                self.timed_out = True
        return self._client.checkpoint_durable_execution(**kwargs)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_default_step_start_is_sent_while_its_body_runs(
    deploy: Deploy, emulator: Emulator
) -> None:
    client = HoldStart(emulator.client, "charge")

    @durable
    def flow(ctx: DurableContext, event: None) -> str:
        def charge(sc: StepContext) -> str:
            client.released.set()  # the body runs although its START is still held
            return "charged"

        return ctx.step("charge", charge)

    deploy("start-nonblocking", flow, client=client)
    arn = emulator.start("start-nonblocking", None)
    ex = emulator.wait(arn)
    assert ex["Status"] == "SUCCEEDED", ex
    assert client.held == 1 and not client.timed_out
    assert events(emulator.history(arn), "StepStarted", "StepSucceeded") == [
        ("StepStarted", "charge"),
        ("StepSucceeded", "charge"),
    ]


def test_every_attempt_and_every_poll_is_started(deploy: Deploy, emulator: Emulator) -> None:
    retry = StepConfig(retry=RetryPolicy(stop=stop_after_attempt(3), wait=wait_fixed(1)))

    @durable
    def flow(ctx: DurableContext, event: None) -> int:
        def flaky(sc: StepContext) -> int:
            if sc.attempt < 3:
                raise ConnectionError(f"attempt {sc.attempt}")
            return sc.attempt

        attempts = ctx.step("flaky", flaky, retry)
        polls = ctx.wait_for_condition(
            "ready",
            lambda n, sc: n + 1,
            initial_state=0,
            done=lambda n: n >= 2,
            wait=wait_fixed(1),
            state_type=int,
        )
        return attempts + polls

    deploy("start-attempts", flow)
    arn = emulator.start("start-attempts", None)
    ex = emulator.wait(arn)
    assert ex["Status"] == "SUCCEEDED", ex
    hist = emulator.history(arn)
    assert events(hist, "StepStarted", "StepFailed", "StepSucceeded") == [
        ("StepStarted", "flaky"),
        ("StepFailed", "flaky"),
        ("StepStarted", "flaky"),
        ("StepFailed", "flaky"),
        ("StepStarted", "flaky"),
        ("StepSucceeded", "flaky"),
        ("StepStarted", "ready"),
        ("StepSucceeded", "ready"),  # the emulator lists a poll's RETRY as a step event
        ("StepStarted", "ready"),
        ("StepSucceeded", "ready"),
    ]
    assert {e["SubType"] for e in hist if e.get("Name") == "ready"} == {"WaitForCondition"}


def test_a_context_that_ran_no_operation_is_started_too(deploy: Deploy, emulator: Emulator) -> None:
    @durable
    def flow(ctx: DurableContext, event: None) -> list[str]:
        plain = ctx.run_in_child_context("plain", lambda c: "no operations")
        batch = ctx.parallel([lambda c: "a", lambda c: "b"], name="pair").values()
        ctx.wait("tick", timedelta(seconds=1))
        return [plain, *batch]

    deploy("start-contexts", flow)
    arn = emulator.start("start-contexts", None)
    ex = emulator.wait(arn)
    assert ex["Status"] == "SUCCEEDED", ex
    hist = emulator.history(arn)
    by_id: dict[str, list[str]] = {}
    for e in hist:
        if e["EventType"].startswith("Context"):
            by_id.setdefault(e["Id"], []).append(e["EventType"])
    # plain, pair and its two branches: each started once, then succeeded
    assert sorted(by_id.values()) == [["ContextStarted", "ContextSucceeded"]] * 4
    assert ("ContextStarted", "plain") in events(hist, "ContextStarted")
