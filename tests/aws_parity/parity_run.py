"""Run one program written twice (AWS's SDK, durable-saga) on the emulator, side by side.

A :class:`Pair` holds the two versions of a program and what to do with a running
execution (a ``driver``: complete a callback, ...). :class:`ParityRunner` (the ``parity``
fixture) serves both versions as Lambda functions, starts both executions at once, drives
and awaits them on two threads, and returns both histories.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lambda_service.emulator import Deploy, Emulator, InvokeServer

Driver = Callable[[Emulator, str], None]
"""``driver(emulator, arn)``: acts on a running execution (runs on the execution's thread)."""


class LambdaContextStub:
    """The part of Lambda's context object AWS's SDK reads."""

    aws_request_id = "parity-request"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def serve_aws(server: InvokeServer, name: str, fn: Callable[..., Any], client: Any) -> None:
    """Serve the AWS-SDK program ``fn(event, ctx)`` as function ``name``."""
    from aws_durable_execution_sdk_python import durable_execution

    handler = durable_execution(boto3_client=client)(fn)
    server.register(name, lambda event: handler(event, LambdaContextStub()))


@dataclass
class Pair:
    """One program, written with AWS's SDK (``aws``) and with durable-saga (``ours``)."""

    aws: Callable[..., Any]
    """``fn(event, ctx: aws DurableContext)``, not yet decorated."""
    ours: Any
    """A ``@durable`` function."""
    event: Any = field(default_factory=dict)
    driver: Driver | None = None
    options: dict[str, Any] = field(default_factory=dict)
    """``LambdaOptions`` for durable-saga's handler."""


@dataclass
class Outcome:
    """What one execution ended as."""

    execution: dict[str, Any]
    history: list[dict[str, Any]]

    @property
    def status(self) -> str:
        return str(self.execution["Status"])


class ParityRunner:
    """Serve and run both versions of a program; return both outcomes."""

    def __init__(self, server: InvokeServer, emulator: Emulator) -> None:
        self.server = server
        self.emu = emulator
        self.deploy = Deploy(server, emulator)

    def run(self, case: str, pair: Pair, *, timeout: float = 60) -> tuple[Outcome, Outcome]:
        """Run ``pair`` as functions ``parity-{case}-aws`` and ``-ours``; (aws, ours)."""
        aws_name, ours_name = f"parity-{case}-aws", f"parity-{case}-ours"
        serve_aws(self.server, aws_name, pair.aws, self.emu.client)
        self.deploy(ours_name, pair.ours, **pair.options)
        return self.run_served(aws_name, ours_name, pair.event, pair.driver, timeout=timeout)

    def run_served(
        self,
        aws_name: str,
        ours_name: str,
        event: Any,
        driver: Driver | None = None,
        *,
        timeout: float = 60,
        on_start: Callable[[str, str], None] | None = None,
    ) -> tuple[Outcome, Outcome]:
        """Start ``aws_name`` and ``ours_name`` (already served) at once; (aws, ours).

        ``on_start(function, arn)`` is called as soon as each execution has started.
        """
        results: dict[str, Outcome | BaseException] = {}

        def one(function: str) -> None:
            try:
                arn = self.emu.start(function, event, name=f"{function}-{time.monotonic_ns()}")
                if on_start is not None:
                    on_start(function, arn)
                if driver is not None:
                    driver(self.emu, arn)
                execution = self.emu.wait(arn, timeout=timeout)
                results[function] = Outcome(execution, self.emu.history(arn))
            except BaseException as exc:  # re-raised on the test's thread
                results[function] = exc

        threads = [threading.Thread(target=one, args=(f,)) for f in (aws_name, ours_name)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        outcomes = []
        for function in (aws_name, ours_name):
            result = results[function]
            if isinstance(result, BaseException):
                raise result
            outcomes.append(result)
        return outcomes[0], outcomes[1]


# --- drivers ------------------------------------------------------------------------------


def callback_ids(emu: Emulator, arn: str, count: int = 1, *, timeout: float = 30) -> list[str]:
    """The ids of the execution's first ``count`` callbacks, once it suspended on them.

    Waiting for the ``InvocationCompleted`` after the callbacks started makes the order of
    events the same on every run: the answer never races the invocation that asked.
    """
    deadline = time.monotonic() + timeout
    while True:
        history = emu.history(arn)
        found = [
            (i, e["CallbackStartedDetails"]["CallbackId"])
            for i, e in enumerate(history)
            if e["EventType"] == "CallbackStarted"
        ]
        if len(found) >= count:
            last = found[count - 1][0]
            if any(e["EventType"] == "InvocationCompleted" for e in history[last:]):
                return [cid for _, cid in found[:count]]
        if time.monotonic() > deadline:
            raise AssertionError(f"{arn}: fewer than {count} callbacks started in {timeout} s")
        time.sleep(0.05)


def wait_for_event(emu: Emulator, arn: str, event_type: str, *, timeout: float = 30) -> None:
    """Block until the execution's history has an event of ``event_type``."""
    deadline = time.monotonic() + timeout
    while not any(e["EventType"] == event_type for e in emu.history(arn)):
        if time.monotonic() > deadline:
            raise AssertionError(f"{arn}: no {event_type} within {timeout} s")
        time.sleep(0.05)


def succeed_callback(result: str) -> Driver:
    """A driver that completes the first callback with the raw text ``result``."""

    def drive(emu: Emulator, arn: str) -> None:
        (cid,) = callback_ids(emu, arn)
        emu.client.send_durable_execution_callback_success(CallbackId=cid, Result=result.encode())

    return drive


def fail_callback(error: dict[str, Any]) -> Driver:
    """A driver that fails the first callback with ``error`` (an ErrorObject)."""

    def drive(emu: Emulator, arn: str) -> None:
        (cid,) = callback_ids(emu, arn)
        emu.client.send_durable_execution_callback_failure(CallbackId=cid, Error=error)

    return drive


def heartbeat_then_succeed(result: str, beats: int = 2) -> Driver:
    """A driver that heartbeats the first callback ``beats`` times, then completes it."""

    def drive(emu: Emulator, arn: str) -> None:
        (cid,) = callback_ids(emu, arn)
        for _ in range(beats):
            emu.client.send_durable_execution_callback_heartbeat(CallbackId=cid)
            time.sleep(0.05)
        emu.client.send_durable_execution_callback_success(CallbackId=cid, Result=result.encode())

    return drive


def no_driver(emu: Emulator, arn: str) -> None:
    """Leave the execution alone (a callback that must time out)."""


def as_json(value: Any) -> str:
    """``value`` as AWS's SDK writes a plain JSON result (``json.dumps`` defaults)."""
    return json.dumps(value)
